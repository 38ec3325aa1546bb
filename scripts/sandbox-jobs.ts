/**
 * The operational half of the sandbox: a rollup filling as events arrive, and one export and one
 * import run locally with the very requests their Jobs would send (JOB_SCRIPT and `requestArgs`,
 * through the real curl) against the sandbox's ClickHouse HTTP interface.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { rawGroupBySql, rollupQuerySql } from "../components/ingestion/plan/rollup";
import {
    CREDENTIALS_ENV,
    CREDENTIAL_FILES,
    JOB_PATHS,
    JOB_SCRIPT,
    JOB_SCRIPT_NAME,
    queryStep,
    requestArgs,
} from "../components/jobs/http";
import { queryRows } from "../components/ingestion/introspect";
import type { StreamSpec } from "../schemas/model";
import { loadQueries } from "../schemas/queries";
import { sampleMessages } from "../schemas/sample";

/** The example queries the sandbox runs (not deployed: see schemas/query-examples/). */
export const EXAMPLES_DIR = path.resolve(__dirname, "..", "schemas", "query-examples");
const EXPORT = "export-web-events";
const IMPORT = "import-web-events";

type Say = (line: string) => void;

/**
 * Runs a Job's command line locally, the credentials in files as the Job's Secret volume holds
 * them (in memory-backed /dev/shm where there is one, removed afterwards).
 */
export async function runJobLocally(
    args: readonly string[],
    credentials: { user: string; password: string },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const base = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
    const dir = fs.mkdtempSync(path.join(base, "kcs-job-credentials-"));
    try {
        fs.writeFileSync(path.join(dir, CREDENTIAL_FILES.user), credentials.user, { mode: 0o600 });
        fs.writeFileSync(path.join(dir, CREDENTIAL_FILES.password), credentials.password, {
            mode: 0o600,
        });
        return await runScript(args, dir);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function runScript(
    args: readonly string[],
    credentialsDir: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn("/bin/sh", ["-c", JOB_SCRIPT, JOB_SCRIPT_NAME, ...args], {
            env: { PATH: process.env.PATH, [CREDENTIALS_ENV]: credentialsDir },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", (e) =>
            reject(new Error(`cannot run curl through /bin/sh: ${e.message}`)),
        );
        child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
}

/** Events in the rollup and in the raw table, summed over every bucket. */
async function rollupTotals(
    client: ClickHouseClient,
    database: string,
    spec: StreamSpec,
    rollup: string,
): Promise<{ buckets: number; rollup: number; raw: number }> {
    const measure = spec.rollups?.find((r) => r.name === rollup)?.measures[0]?.name;
    const [rolled] = await queryRows<{ buckets: string; total: string }>(
        client,
        `SELECT count() AS buckets, sum(\`${measure}\`) AS total FROM (${rollupQuerySql(database, spec, rollup)})`,
    );
    const [raw] = await queryRows<{ total: string }>(
        client,
        `SELECT sum(\`${measure}\`) AS total FROM (${rawGroupBySql(database, spec, rollup)})`,
    );
    return {
        buckets: Number(rolled?.buckets ?? 0),
        rollup: Number(rolled?.total ?? 0),
        raw: Number(raw?.total ?? 0),
    };
}

/**
 * Produces `waves` batches to the first stream with a rollup and prints, after each, the rollup's
 * total next to the same GROUP BY over the raw table.
 */
export async function showRollupFilling(
    client: ClickHouseClient,
    database: string,
    streams: readonly StreamSpec[],
    produce: (topic: string, messages: string[]) => Promise<number>,
    say: Say,
    waves = 3,
    perWave = 500,
): Promise<{ stream: string; produced: number } | undefined> {
    const spec = streams.find((s) => (s.rollups ?? []).length > 0);
    const rollup = spec?.rollups?.[0];
    if (!spec || !rollup) return undefined;
    const measure = rollup.measures[0]!.name;
    say(`rollup ${spec.name}_${rollup.name} (${rollup.interval} buckets of ${measure}) filling:`);
    for (let wave = 1; wave <= waves; wave++) {
        const before = await rollupTotals(client, database, spec, rollup.name);
        const messages = sampleMessages(spec, perWave, { seed: 1000 + wave });
        await produce(spec.topic.name, messages);
        const deadline = Date.now() + 30_000;
        let now = before;
        while (Date.now() < deadline) {
            now = await rollupTotals(client, database, spec, rollup.name);
            if (now.raw >= before.raw + perWave && now.rollup === now.raw) break;
            await new Promise((r) => setTimeout(r, 500));
        }
        say(
            `  wave ${wave}: +${perWave} events -> ${now.buckets} buckets, ${measure} ${now.rollup} in the rollup, ${now.raw} by GROUP BY over ${spec.name}${now.rollup === now.raw ? " (equal)" : " (NOT equal yet)"}`,
        );
    }
    return { stream: spec.name, produced: waves * perWave };
}

/**
 * Runs the example export (web events to a file) and import (the file into a copy of the table)
 * locally, as their Jobs would, and compares the two tables' fingerprints.
 */
export async function runExportImport(
    client: ClickHouseClient,
    url: string,
    database: string,
    password: string,
    dataDir: string,
    say: Say,
): Promise<void> {
    const examples = new Map(loadQueries(EXAMPLES_DIR).map((q) => [q.spec.name, q.spec]));
    const exp = examples.get(EXPORT);
    const imp = examples.get(IMPORT);
    if (!exp?.export || !imp?.import)
        throw new Error(`${EXAMPLES_DIR} lacks ${EXPORT} or ${IMPORT}`);
    fs.rmSync(dataDir, { recursive: true, force: true });
    const paths = { ...JOB_PATHS, dataDir };
    const target = imp.import.table;
    await client.command({ query: `DROP TABLE IF EXISTS \`${database}\`.\`${target}\`` });
    await client.command({
        query: `CREATE TABLE \`${database}\`.\`${target}\` AS \`${database}\`.web_events`,
    });
    // The local server has one user (admin): both requests run as admin here.
    const credentials = { user: "admin", password };
    for (const q of [exp, imp]) {
        say(`running the Job request of schemas/query-examples/${q.name}.yaml locally (curl)...`);
        const r = await runJobLocally(
            requestArgs(queryStep(q, database, paths), { url, database }, paths),
            credentials,
        );
        for (const line of r.stderr.trim().split("\n")) say(`  ${line}`);
        if (r.code !== 0) throw new Error(`${q.name} failed (curl exit ${r.code}): ${r.stdout}`);
    }
    const fingerprint = async (table: string) => {
        const [row] = await queryRows<{ n: string; h: string }>(
            client,
            `SELECT toString(count()) AS n, toString(sum(cityHash64(*))) AS h FROM \`${database}\`.\`${table}\` WHERE event_time >= now() - INTERVAL 24 HOUR`,
        );
        return `${row?.n} rows, hash ${row?.h}`;
    };
    const [a, b] = [await fingerprint("web_events"), await fingerprint(target)];
    say(`  web_events (last day): ${a}; ${target}: ${b}${a === b ? " (equal)" : " (DIFFERENT)"}`);
}
