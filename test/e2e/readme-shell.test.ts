/**
 * The README's commands as a user types them: each step is a fresh bash shell that sources
 * `tools/env.sh` and runs the `pulumi` binary, with type-checking on (no
 * PULUMI_NODEJS_TRANSPILE_ONLY), no KUBECONFIG and no passphrase of its own (the local one
 * env.sh sets, the sandbox's). Against a real API server (kwok), a real broker and the real
 * ClickHouse engine: stack init and config, `pulumi preview --diff` and `pulumi up`, then the
 * edit-a-stream loop (preview shows the ALTER, up applies it), and a config typo and a bad stream
 * file reported as Pulumi's own clean error. Readiness gating is off here: no operator stand-in
 * runs (test/e2e/stack.test.ts covers gating); this file is about the shell path.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { renderKafkaConfig } from "../../components/clickhouse/render";
import { ClickHouseServer, startClickHouseServer } from "../../runtime/chserver";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { KubeCluster, startKube } from "../../runtime/kube";
import { PROJECT_DIR, localPulumi, localStackConfig, uniqueStackName } from "../../runtime/pulumi";

const log = (line: string) => process.stderr.write(`[readme-shell] ${line}\n`);

interface ShellResult {
    readonly code: number;
    /** stdout and stderr interleaved, as a terminal shows them. */
    readonly output: string;
}

/**
 * Runs a script in a new `bash` from the project root, as a user's terminal would: no variable of
 * this test process that a user would not have (the test runner's TRANSPILE_ONLY, KUBECONFIG,
 * any passphrase), plus `vars`.
 */
function shell(script: string, vars: Record<string, string> = {}): Promise<ShellResult> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...vars };
    for (const k of [
        "PULUMI_NODEJS_TRANSPILE_ONLY",
        "KUBECONFIG",
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_HOME",
        "NODE_OPTIONS",
    ])
        delete env[k];
    if (!("PULUMI_BACKEND_URL" in vars)) delete env.PULUMI_BACKEND_URL;
    return new Promise((resolve, reject) => {
        const child = spawn("bash", ["-c", `set -euo pipefail\n${script}`], {
            cwd: PROJECT_DIR,
            env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? -1, output }));
    });
}

const tail = (text: string, lines = 40) => text.trimEnd().split("\n").slice(-lines).join("\n");

/** Pulumi's own clean error: the message, without "unhandled exception" or a Node stack. */
function assertCleanError(r: ShellResult, message: RegExp): void {
    assert.notEqual(r.code, 0, `the command should fail:\n${tail(r.output)}`);
    assert.match(r.output, message, tail(r.output));
    assert.doesNotMatch(r.output, /unhandled exception/, tail(r.output));
    assert.doesNotMatch(r.output, /^\s+at .+[(:]\d+/m, `no stack trace:\n${tail(r.output)}`);
}

describe("e2e: the README's commands, typed in a shell", { timeout: 30 * 60_000 }, () => {
    let kube: KubeCluster;
    let broker: KafkaBroker;
    let ch: ClickHouseServer;
    let work: string;
    let streamsDir: string;
    const stack = uniqueStackName("e2e-readme");
    const namespace = stack.slice(0, 63);
    const adminPassword = randomBytes(18).toString("base64url");
    /** What every shell gets: a test-only backend (env.sh keeps a preset one) and the stack. */
    const vars = (): Record<string, string> => ({
        PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`,
        STACK: stack,
    });

    before(async () => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-readme-shell-"));
        streamsDir = path.join(work, "streams");
        fs.mkdirSync(streamsDir);
        for (const f of fs.readdirSync(path.join(PROJECT_DIR, "schemas/streams")))
            fs.copyFileSync(path.join(PROJECT_DIR, "schemas/streams", f), path.join(streamsDir, f));
        log("starting the API server, the broker and ClickHouse...");
        [kube, broker, ch] = await Promise.all([
            startKube(),
            startKafka(),
            startClickHouseServer({
                configXml: renderKafkaConfig({ securityProtocol: "PLAINTEXT" }),
                username: "admin",
                password: adminPassword,
            }),
        ]);
        await kube.applyCrds();
    });

    after(async () => {
        if (work) {
            const r = await shell(
                '. tools/env.sh >/dev/null 2>&1\npulumi destroy --yes --stack "$STACK" >/dev/null 2>&1 || true\npulumi stack rm --yes --force "$STACK" >/dev/null 2>&1 || true',
                vars(),
            );
            if (r.code !== 0) log(`cleanup: ${tail(r.output, 5)}`);
        }
        fs.rmSync(path.join(PROJECT_DIR, `Pulumi.${stack}.yaml`), { force: true });
        await Promise.allSettled([kube?.stop(), broker?.stop(), ch?.stop()]);
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it("`. tools/env.sh` sets the sandbox's backend and passphrase, and no transpile-only", async () => {
        const r = await shell(
            '. tools/env.sh >/dev/null\necho "backend=$PULUMI_BACKEND_URL"\necho "passphrase=$PULUMI_CONFIG_PASSPHRASE_FILE"\necho "transpile=${PULUMI_NODEJS_TRANSPILE_ONLY-unset}"\ncommand -v pulumi',
        );
        assert.equal(r.code, 0, tail(r.output));
        const local = localPulumi();
        assert.match(r.output, new RegExp(`^backend=file://${local.backendDir}$`, "m"));
        assert.match(r.output, new RegExp(`^passphrase=${local.passphraseFile}$`, "m"));
        assert.match(r.output, /^transpile=unset$/m);
        assert.ok(fs.statSync(local.passphraseFile).size > 16, "a real passphrase, not empty");
    });

    it("stack init, config set, preview --diff and up: type-checked, from a shell", async () => {
        const config: Record<string, string> = {
            ...localStackConfig({
                namespace,
                streamsDir,
                clickhouseUrl: ch.url,
                kafkaBootstrap: broker.bootstrap,
            }),
            kafkaWaitForReady: "false",
            "kubernetes:kubeconfig": kube.kubeconfig,
        };
        const sets = Object.entries(config)
            .map(([k, v]) => `pulumi config set --stack "$STACK" ${k} ${JSON.stringify(v)}`)
            .join("\n");
        const started = Date.now();
        const r = await shell(
            [
                ". tools/env.sh",
                'pulumi stack init --no-select "$STACK"',
                sets,
                'pulumi config set --stack "$STACK" --secret clickhouseAdminPassword "$PW"',
                'pulumi preview --diff --stack "$STACK"',
                'pulumi up --yes --stack "$STACK"',
            ].join("\n"),
            { ...vars(), PW: adminPassword },
        );
        log(
            `init + preview + up: exit ${r.code} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
        );
        assert.equal(r.code, 0, tail(r.output, 60));
        assert.match(r.output, /\[create\] CREATE TABLE/, "the preview shows the DDL");
        const tables = await ch.client().query({
            query: "SELECT name FROM system.tables WHERE database = 'ingest' ORDER BY name",
            format: "JSONEachRow",
        });
        const names = (await tables.json<{ name: string }>()).map((t) => t.name);
        assert.ok(names.includes("web_events") && names.includes("web_events_kafka"), `${names}`);
    });

    it("edit a stream, then preview --diff shows the ALTER and up applies it", async () => {
        const file = path.join(streamsDir, "web_events.yaml");
        const doc = YAML.parse(fs.readFileSync(file, "utf8")) as { columns: object[] };
        doc.columns.push({
            name: "readme_note",
            type: "LowCardinality(String)",
            default: "'none'",
        });
        fs.writeFileSync(file, YAML.stringify(doc));

        const preview = await shell(
            '. tools/env.sh\npulumi preview --diff --refresh --stack "$STACK"',
            vars(),
        );
        assert.equal(preview.code, 0, tail(preview.output, 60));
        assert.match(preview.output, /ADD COLUMN[^\n]*readme_note/, tail(preview.output, 60));
        // Only what will run: not the statements the first `up` already ran (the database and the
        // target table), and no old statement paired with a new one.
        assert.doesNotMatch(preview.output, /CREATE DATABASE/, tail(preview.output, 80));
        assert.doesNotMatch(
            preview.output,
            /CREATE TABLE IF NOT EXISTS `ingest`\.`web_events` \(/,
            tail(preview.output, 80),
        );
        assert.doesNotMatch(
            preview.output,
            /\[\d+\]: "\[[a-z-]+\] [^"\n]*" => /,
            tail(preview.output, 80),
        );

        const up = await shell('. tools/env.sh\npulumi up --yes --stack "$STACK"', vars());
        assert.equal(up.code, 0, tail(up.output, 60));
        const columns = await ch.client().query({
            query: "SELECT name FROM system.columns WHERE database = 'ingest' AND table = 'web_events'",
            format: "JSONEachRow",
        });
        const names = (await columns.json<{ name: string }>()).map((c) => c.name);
        assert.ok(names.includes("readme_note"), `columns: ${names}`);

        const again = await shell(
            '. tools/env.sh\npulumi preview --diff --expect-no-changes --stack "$STACK"',
            vars(),
        );
        assert.equal(again.code, 0, `no changes after up:\n${tail(again.output, 60)}`);
    });

    it("a config typo is Pulumi's clean error: key, stack and hint, no stack trace", async () => {
        const r = await shell(
            '. tools/env.sh\npulumi config set --stack "$STACK" kafkaBroker 3\nstatus=0\npulumi preview --stack "$STACK" || status=$?\npulumi config rm --stack "$STACK" kafkaBroker\nexit $status',
            vars(),
        );
        assertCleanError(
            r,
            /kafka-clickhouse-stack:kafkaBroker: unknown key; did you mean 'kafkaBrokers'\?/,
        );
        assert.match(r.output, new RegExp(`invalid configuration for stack '${stack}'`));
    });

    it("a bad stream file is Pulumi's clean error: file, key and problem, no stack trace", async () => {
        const bad = path.join(streamsDir, "clicks.yaml");
        fs.writeFileSync(
            bad,
            "name: clicks\ntopic: { name: clicks, partitions: 1 }\ncolumns: [{ name: a, type: Strnig }]\norderBy: [a]\n",
        );
        try {
            const r = await shell('. tools/env.sh\npulumi preview --stack "$STACK"', vars());
            assertCleanError(r, /clicks\.yaml: columns\[0\]\.type: /);
        } finally {
            fs.rmSync(bad, { force: true });
        }
    });

    it("the shell's preview is type-checked: with the compiler's defaults (no infra/tsconfig.json) it fails", async () => {
        // An empty tsconfig gives the compiler's defaults: what the host used before
        // infra/tsconfig.json existed. That this fails shows type-checking runs in the shell.
        const empty = path.join(work, "tsconfig.empty.json");
        fs.writeFileSync(empty, "{}\n");
        const r = await shell('. tools/env.sh\npulumi preview --stack "$STACK"', {
            ...vars(),
            PULUMI_NODEJS_TSCONFIG_PATH: empty,
        });
        assert.notEqual(r.code, 0, tail(r.output));
        assert.match(r.output, /error TS\d+/, tail(r.output));
    });
});
