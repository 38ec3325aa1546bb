/**
 * The sandbox: the whole pipeline on this machine, no cloud and no Docker.
 *   ./run sandbox          up: API server + broker + ClickHouse, `pulumi up` of the `sandbox` stack,
 *                          sample events for every stream, rows counted per stream
 *   ./run sandbox status   the per-stream report again
 *   ./run sandbox down     destroy the stack and stop everything
 */
import { createClient } from "@clickhouse/client";
import type { Stack } from "@pulumi/pulumi/automation";
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readIngestionHealth } from "../components/ingestion/health";
import { loadStreams } from "../schemas/loader";
import { defaultConsumerGroup } from "../schemas/naming";
import type { StreamSpec } from "../schemas/model";
import { lagReader } from "../runtime/kafka-lag";
import { sampleMessages } from "../schemas/sample";
import { runExportImport, showRollupFilling } from "./sandbox-jobs";
import { SANDBOX_DIR, STATE_FILE, SUPERVISOR_LOG, SandboxState } from "./sandbox-state";
import {
    clearDeadRun,
    describeDeadRun,
    readState,
    recordSupervisor,
    startingSupervisor,
    sweepAfterStop,
} from "./sandbox-leftovers";
import { kafkaProducer } from "../runtime/kafka";
import { isAlive, sleep, terminatePid } from "../runtime/process";
import { removeStack, startEngine } from "../runtime/pulumi";

const STACK = "sandbox";
const DATABASE = "ingest";
const NAMESPACE = "kcs-sandbox";
const MESSAGES_PER_STREAM = 2_000;
/** One message in this many is malformed, to show the dead-letter path. */
const MALFORMED_EVERY = 50;

const say = (line: string) => process.stdout.write(`[sandbox] ${line}\n`);

/** The sandbox stack's config: the embedded local defaults, plus where this run's components listen. */
function sandboxConfig(state: SandboxState): Record<string, string> {
    return {
        namespace: NAMESPACE,
        kafkaEphemeralStorage: "true",
        kafkaPlainListener: "true",
        kafkaBrokerCpu: "100m",
        kafkaBrokerMemory: "512Mi",
        clickhouseEphemeralStorage: "true",
        clickhouseCpu: "100m",
        clickhouseMemory: "512Mi",
        clickhouseDatabase: DATABASE,
        ingestionConnection: "url",
        ingestionUrl: state.clickhouseUrl,
        // The sandbox's ClickHouse server listens on loopback, plain HTTP.
        ingestionAllowInsecureHttp: "true",
        ingestionKafkaBrokers: state.kafkaBootstrap,
        allowDestructiveChanges: "true",
        dropTargetOnDelete: "true",
    };
}

/** Spawns the supervisor, detached (a process group of its own), and records it at once. */
function spawnSupervisor(adminPassword: string): number {
    const logFd = fs.openSync(SUPERVISOR_LOG, "a");
    const child = spawn(
        process.execPath,
        ["--import", "tsx", path.join(__dirname, "sandbox-supervisor.ts")],
        {
            detached: true,
            stdio: ["ignore", logFd, logFd],
            // The password reaches the local ClickHouse through the environment only.
            env: { ...process.env, KCS_SANDBOX_CLICKHOUSE_PASSWORD: adminPassword },
        },
    );
    fs.closeSync(logFd);
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start the sandbox supervisor`);
    recordSupervisor(child.pid, child.spawnargs);
    return child.pid;
}

async function startSupervisor(adminPassword: string): Promise<SandboxState> {
    const running = readState();
    if (running) {
        say(`reusing the running sandbox (supervisor pid ${running.supervisorPid})`);
        return running;
    }
    fs.mkdirSync(SANDBOX_DIR, { recursive: true });
    let pid = startingSupervisor();
    if (pid !== undefined) {
        say(`waiting for the sandbox supervisor (pid ${pid}) that is still starting...`);
    } else {
        // A run that died without stopping leaves processes and data a new run cannot share.
        await clearDeadRun(say);
        fs.rmSync(STATE_FILE, { force: true });
        pid = spawnSupervisor(adminPassword);
        say(
            `starting the API server, the Kafka broker and ClickHouse (log: ${path.relative(process.cwd(), SUPERVISOR_LOG)})...`,
        );
    }
    let shown = fs.statSync(SUPERVISOR_LOG).size;
    const deadline = Date.now() + 15 * 60_000;
    while (Date.now() < deadline) {
        const text = fs.readFileSync(SUPERVISOR_LOG, "utf8");
        for (const line of text.slice(shown).split("\n").filter(Boolean)) say(`  ${line}`);
        shown = text.length;
        const state = readState();
        if (state) return state;
        if (!isAlive(pid)) throw new Error(`the sandbox supervisor exited; see ${SUPERVISOR_LOG}`);
        await sleep(1000);
    }
    throw new Error(`the sandbox did not come up within 15 minutes; see ${SUPERVISOR_LOG}`);
}

/** Each stream's consumer lag, from the sandbox's broker (its group on its topic). */
function streamLag(bootstrap: string, streams: readonly StreamSpec[]) {
    const reader = lagReader(bootstrap);
    return {
        of: (name: string) => {
            const spec = streams.find((s) => s.name === name)!;
            const group = spec.consumer.group ?? defaultConsumerGroup(DATABASE, spec.name);
            return reader.lag(group, spec.topic.name);
        },
        close: () => reader.close(),
    };
}

async function report(
    state: SandboxState,
    produced: Record<string, number>,
    password: string,
): Promise<void> {
    const client = createClient({ url: state.clickhouseUrl, username: "admin", password });
    try {
        const streams = loadStreams().map((s) => s.spec);
        const lag = streamLag(state.kafkaBootstrap, streams);
        const health = await readIngestionHealth(
            client,
            DATABASE,
            streams.map((s) => s.name),
            lag.of,
        ).finally(() => lag.close());
        const rows = streams.map((s) => {
            const h = health.find((x) => x.stream === s.name);
            return [
                s.name,
                s.topic.name,
                String(produced[s.name] ?? "-"),
                String(h?.rowsIngested ?? 0),
                String(h?.rowsRejected ?? 0),
                String(h?.assignedPartitions ?? 0),
                h?.lag !== undefined ? String(h.lag) : "?",
                h?.lastException ? h.lastException.slice(0, 60) : "none",
            ];
        });
        const header = [
            "stream",
            "topic",
            "produced",
            "rows",
            "dead-letter",
            "partitions",
            "lag",
            "last exception",
        ];
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
        say("");
        say(line(header));
        say(line(widths.map((w) => "-".repeat(w))));
        for (const r of rows) say(line(r));
        say("");
        for (const s of streams.filter((x) => x.engine.type === "ReplacingMergeTree")) {
            say(
                `${s.name} deduplicates rows with the same ORDER BY key (ReplacingMergeTree): fewer rows than messages is expected.`,
            );
        }
        say("");
        say("where to look (the admin password is in the cluster's Secret):");
        say(
            `  password:    PW=$(kubectl --kubeconfig ${state.kubeconfig} -n ${NAMESPACE} get secret clickhouse-credentials -o jsonpath='{.data.admin-password}' | base64 -d)`,
        );
        say(
            `  rows:        curl -u "admin:$PW" '${state.clickhouseUrl}/?query=SELECT+*+FROM+${DATABASE}.web_events+LIMIT+5+FORMAT+PrettyCompact'`,
        );
        say(
            `  rejected:    curl -u "admin:$PW" '${state.clickhouseUrl}/?query=SELECT+error,raw_message+FROM+${DATABASE}.web_events_dlq+LIMIT+5+FORMAT+Vertical'`,
        );
        say(
            `  consumers:   curl -u "admin:$PW" '${state.clickhouseUrl}/?query=SELECT+table,assignments.partition_id,exceptions.text+FROM+system.kafka_consumers+FORMAT+Vertical'`,
        );
        say(
            `  kubernetes:  kubectl --kubeconfig ${state.kubeconfig} -n ${NAMESPACE} get kafka,kafkanodepools,kafkatopics,kafkausers,statefulsets,svc,pdb,cronjobs`,
        );
        say(`  broker:      ${state.kafkaBootstrap} (log ${state.kafkaLog})`);
        say(
            `  edit a stream, then: . tools/env.sh && pulumi preview --diff --refresh --stack sandbox && pulumi up --stack sandbox`,
        );
        say(`  tear down:   ./run sandbox down`);
    } finally {
        await client.close();
    }
}

/**
 * The sandbox stack; its ClickHouse admin password is generated once and kept encrypted in its
 * config. It lives in the local backend with the local passphrase (tools/pulumi-local.sh), the
 * ones `. tools/env.sh` exports, so `pulumi preview --diff --stack sandbox` works from a shell; and
 * the program is type-checked, as a user's `pulumi up` is.
 */
async function sandboxStack(kubeconfig?: string): Promise<{ stack: Stack; adminPassword: string }> {
    const engine = await startEngine({
        backendDir: "local",
        env: kubeconfig ? { KUBECONFIG: kubeconfig } : {},
        typeCheck: true,
    });
    const stack = await engine.stack(STACK, {});
    const key = "kafka-clickhouse-stack:clickhouseAdminPassword";
    const existing = await stack.getConfig(key).catch(() => undefined);
    if (existing) return { stack, adminPassword: existing.value };
    const adminPassword = randomBytes(18).toString("base64url");
    await stack.setConfig(key, { value: adminPassword, secret: true });
    return { stack, adminPassword };
}

/**
 * Drops the resources of a run that is gone from the stack's state, keeping its config (the admin
 * password). They lived in that run's API server, broker and ClickHouse, whose data is deleted
 * (see sandbox-leftovers.ts), so there is nothing to refresh or destroy; a refresh could not even
 * try, its providers' kubeconfig went with the run. Says so when there were any.
 */
async function forgetDeadRunResources(stack: Stack): Promise<void> {
    const exported = await stack.exportStack();
    const deployment = exported.deployment as { resources?: unknown[] } | undefined;
    if ((deployment?.resources?.length ?? 0) === 0) return;
    say("forgetting the sandbox stack's resources left from a previous run (they went with it)...");
    await stack.importStack({
        ...exported,
        deployment: { ...deployment, resources: [], pending_operations: [] },
    });
}

async function up(): Promise<void> {
    fs.mkdirSync(SANDBOX_DIR, { recursive: true });
    const { adminPassword } = await sandboxStack();
    const fresh = readState() === undefined;
    const state = await startSupervisor(adminPassword);
    const { stack } = await sandboxStack(state.kubeconfig);
    await stack.setAllConfig({
        ...Object.fromEntries(
            Object.entries(sandboxConfig(state)).map(([k, v]) => [
                `kafka-clickhouse-stack:${k}`,
                { value: v },
            ]),
        ),
        // The provider reaches the local API server from any shell, without KUBECONFIG.
        "kubernetes:kubeconfig": { value: state.kubeconfig },
    });
    if (fresh) await forgetDeadRunResources(stack);
    say("pulumi up (stack 'sandbox')...");
    const result = await stack.up({ onOutput: (o) => process.stdout.write(o) });
    if (result.summary.result !== "succeeded")
        throw new Error(`pulumi up ${result.summary.result}`);

    const kafka = await kafkaProducer(state.kafkaBootstrap);
    const produced: Record<string, number> = {};
    for (const { spec } of loadStreams()) {
        say(
            `producing ${MESSAGES_PER_STREAM} sample events to ${spec.topic.name} (1 in ${MALFORMED_EVERY} malformed)...`,
        );
        produced[spec.name] = await kafka.produce(
            spec.topic.name,
            sampleMessages(spec, MESSAGES_PER_STREAM, { malformedEvery: MALFORMED_EVERY }),
        );
    }
    say("waiting for the rows to land...");
    const client = createClient({
        url: state.clickhouseUrl,
        username: "admin",
        password: adminPassword,
    });
    const expected = Object.values(produced).reduce((a, b) => a + b, 0);
    const deadline = Date.now() + 120_000;
    let landed = 0;
    let unchangedFor = 0;
    while (Date.now() < deadline) {
        const health = await readIngestionHealth(client, DATABASE, Object.keys(produced));
        const now = health.reduce((a, h) => a + h.rowsIngested + h.rowsRejected, 0);
        unchangedFor = now === landed && now > 0 ? unchangedFor + 1 : 0;
        landed = now;
        // Deduplicating targets (ReplacingMergeTree) may end below the message count: stop once stable.
        if (landed >= expected || unchangedFor >= 5) break;
        await sleep(1000);
    }
    if (landed < expected)
        say(`${landed} of ${expected} messages are rows or dead letters; see the report`);
    try {
        const streams = loadStreams().map((s) => s.spec);
        const produce = (topic: string, messages: string[]) => kafka.produce(topic, messages);
        const waves = await showRollupFilling(client, DATABASE, streams, produce, say);
        if (waves) produced[waves.stream] = (produced[waves.stream] ?? 0) + waves.produced;
        const dataDir = path.join(SANDBOX_DIR, "job-data");
        await runExportImport(client, state.clickhouseUrl, DATABASE, adminPassword, dataDir, say);
    } finally {
        await client.close();
    }
    await report(state, produced, adminPassword);
}

/** SIGTERM; after 60 s SIGKILL; then whatever of the run still runs (see sandbox-leftovers.ts). */
async function stopSupervisor(pid: number): Promise<void> {
    say(`stopping the supervisor (pid ${pid})...`);
    await terminatePid(pid, { graceMs: 60_000 });
    await sweepAfterStop(say);
}

async function down(): Promise<void> {
    const state = readState();
    if (state) {
        const { stack } = await sandboxStack(state.kubeconfig);
        say("pulumi destroy (stack 'sandbox')...");
        try {
            await removeStack(stack, (o) => process.stdout.write(o));
        } finally {
            // A failed destroy must not leave the API server, broker and engine running: the
            // stack is removed either way, and everything it ran on goes with the supervisor.
            await stopSupervisor(state.supervisorPid);
            fs.rmSync(SANDBOX_DIR, { recursive: true, force: true });
            fs.rmSync(path.resolve(__dirname, "..", `Pulumi.${STACK}.yaml`), { force: true });
        }
    } else {
        const starting = startingSupervisor();
        if (starting !== undefined) await stopSupervisor(starting);
        const stopped = await clearDeadRun(say);
        say(
            stopped > 0
                ? `stopped ${stopped} leftover processes of a dead run`
                : "no running sandbox",
        );
        // Its API server is gone, so there is nothing to destroy: forget the stack's state.
        const { stack } = await sandboxStack();
        await stack.workspace.removeStack(stack.name, { force: true });
    }
    fs.rmSync(SANDBOX_DIR, { recursive: true, force: true });
    fs.rmSync(path.resolve(__dirname, "..", `Pulumi.${STACK}.yaml`), { force: true });
    say("sandbox removed");
}

async function main(): Promise<void> {
    const command = process.argv[2] ?? "up";
    if (command === "up") await up();
    else if (command === "down") await down();
    else if (command === "status") {
        const state = readState();
        if (!state)
            throw new Error(describeDeadRun() ?? "no running sandbox: start it with ./run sandbox");
        const { adminPassword } = await sandboxStack(state.kubeconfig);
        await report(state, {}, adminPassword);
    } else throw new Error(`unknown sandbox command '${command}': use up, status or down`);
}

main().catch((e: unknown) => {
    process.stderr.write(`[sandbox] failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
});
