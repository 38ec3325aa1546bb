/**
 * The sandbox: the whole pipeline on this machine, no cloud and no Docker.
 *   ./run sandbox          up: API server + broker + ClickHouse, `pulumi up` of the `sandbox` stack,
 *                          sample events for every stream, rows counted per stream
 *   ./run sandbox status   the per-stream report again
 *   ./run sandbox down     destroy the stack and stop everything
 */
import { createClient } from "@clickhouse/client";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readIngestionHealth } from "../components/ingestion/health";
import { loadStreams } from "../schemas/loader";
import { sampleMessages } from "../schemas/sample";
import { SANDBOX_DIR, STATE_FILE, SUPERVISOR_LOG, SandboxState } from "./sandbox-state";
import { kafkaProducer } from "../test/harness/kafka";
import { isAlive, sleep } from "../test/harness/process";
import { removeStack, startEngine } from "../test/harness/pulumi";

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
        // No Strimzi operator runs against the local API server, so nothing would ever turn Ready.
        kafkaWaitForReady: "false",
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
        ingestionKafkaBrokers: state.kafkaBootstrap,
        allowDestructiveChanges: "true",
        dropTargetOnDelete: "true",
    };
}

function readState(): SandboxState | undefined {
    if (!fs.existsSync(STATE_FILE)) return undefined;
    const state = JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as SandboxState;
    return isAlive(state.supervisorPid) ? state : undefined;
}

async function startSupervisor(): Promise<SandboxState> {
    const running = readState();
    if (running) {
        say(`reusing the running sandbox (supervisor pid ${running.supervisorPid})`);
        return running;
    }
    fs.mkdirSync(SANDBOX_DIR, { recursive: true });
    fs.rmSync(STATE_FILE, { force: true });
    const logFd = fs.openSync(SUPERVISOR_LOG, "a");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "sandbox-supervisor.ts")], {
        detached: true,
        stdio: ["ignore", logFd, logFd],
        env: process.env,
    });
    child.unref();
    say(`starting the API server, the Kafka broker and ClickHouse (log: ${path.relative(process.cwd(), SUPERVISOR_LOG)})...`);
    let shown = fs.statSync(SUPERVISOR_LOG).size;
    const deadline = Date.now() + 15 * 60_000;
    while (Date.now() < deadline) {
        const text = fs.readFileSync(SUPERVISOR_LOG, "utf8");
        for (const line of text.slice(shown).split("\n").filter(Boolean)) say(`  ${line}`);
        shown = text.length;
        const state = readState();
        if (state) return state;
        if (child.pid !== undefined && !isAlive(child.pid)) {
            throw new Error(`the sandbox supervisor exited; see ${SUPERVISOR_LOG}`);
        }
        await sleep(1000);
    }
    throw new Error(`the sandbox did not come up within 15 minutes; see ${SUPERVISOR_LOG}`);
}

async function report(state: SandboxState, produced: Record<string, number>): Promise<void> {
    const client = createClient({ url: state.clickhouseUrl });
    try {
        const streams = loadStreams().map((s) => s.spec);
        const health = await readIngestionHealth(client, DATABASE, streams.map((s) => s.name));
        const rows = streams.map((s) => {
            const h = health.find((x) => x.stream === s.name);
            return [
                s.name,
                s.topic.name,
                String(produced[s.name] ?? "-"),
                String(h?.rowsIngested ?? 0),
                String(h?.rowsRejected ?? 0),
                String(h?.assignedPartitions ?? 0),
                h?.lastException ? h.lastException.slice(0, 60) : "none",
            ];
        });
        const header = ["stream", "topic", "produced", "rows", "dead-letter", "partitions", "last exception"];
        const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
        say("");
        say(line(header));
        say(line(widths.map((w) => "-".repeat(w))));
        for (const r of rows) say(line(r));
        say("");
        say("where to look:");
        say(`  rows:        curl '${state.clickhouseUrl}/?query=SELECT+*+FROM+${DATABASE}.web_events+LIMIT+5+FORMAT+PrettyCompact'`);
        say(`  rejected:    curl '${state.clickhouseUrl}/?query=SELECT+error,raw_message+FROM+${DATABASE}.web_events_dlq+LIMIT+5+FORMAT+Vertical'`);
        say(`  consumers:   curl '${state.clickhouseUrl}/?query=SELECT+table,assignments.partition_id,exceptions.text+FROM+system.kafka_consumers+FORMAT+Vertical'`);
        say(`  kubernetes:  kubectl --kubeconfig ${state.kubeconfig} -n ${NAMESPACE} get kafka,kafkanodepools,kafkatopics,kafkausers,statefulsets,svc,pdb`);
        say(`  broker:      ${state.kafkaBootstrap} (log ${state.kafkaLog})`);
        say(`  tear down:   ./run sandbox down`);
    } finally {
        await client.close();
    }
}

async function up(): Promise<void> {
    const state = await startSupervisor();
    const engine = await startEngine({
        backendDir: path.join(SANDBOX_DIR, "pulumi-state"),
        env: { KUBECONFIG: state.kubeconfig },
    });
    const stack = await engine.stack(STACK, sandboxConfig(state));
    say("pulumi up (stack 'sandbox')...");
    const result = await stack.up({ onOutput: (o) => process.stdout.write(o) });
    if (result.summary.result !== "succeeded") throw new Error(`pulumi up ${result.summary.result}`);

    const kafka = await kafkaProducer(state.kafkaBootstrap);
    const produced: Record<string, number> = {};
    for (const { spec } of loadStreams()) {
        say(`producing ${MESSAGES_PER_STREAM} sample events to ${spec.topic.name} (1 in ${MALFORMED_EVERY} malformed)...`);
        produced[spec.name] = await kafka.produce(
            spec.topic.name,
            sampleMessages(spec, MESSAGES_PER_STREAM, { malformedEvery: MALFORMED_EVERY }),
        );
    }
    say("waiting for the rows to land...");
    const client = createClient({ url: state.clickhouseUrl });
    const expected = Object.values(produced).reduce((a, b) => a + b, 0);
    const deadline = Date.now() + 120_000;
    let landed = 0;
    while (Date.now() < deadline) {
        const health = await readIngestionHealth(client, DATABASE, Object.keys(produced));
        landed = health.reduce((a, h) => a + h.rowsIngested + h.rowsRejected, 0);
        if (landed >= expected) break;
        await sleep(1000);
    }
    await client.close();
    if (landed < expected) say(`only ${landed} of ${expected} messages landed within 2 minutes; the report shows where`);
    await report(state, produced);
}

async function down(): Promise<void> {
    const state = readState();
    if (state) {
        const engine = await startEngine({
            backendDir: path.join(SANDBOX_DIR, "pulumi-state"),
            env: { KUBECONFIG: state.kubeconfig },
        });
        say("pulumi destroy (stack 'sandbox')...");
        const stack = await engine.stack(STACK, {});
        await removeStack(stack, (o) => process.stdout.write(o));
        say(`stopping the supervisor (pid ${state.supervisorPid})...`);
        process.kill(state.supervisorPid, "SIGTERM");
        const deadline = Date.now() + 60_000;
        while (isAlive(state.supervisorPid) && Date.now() < deadline) await sleep(500);
        if (isAlive(state.supervisorPid)) process.kill(-state.supervisorPid, "SIGKILL");
    } else {
        say("no running sandbox");
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
        if (!state) throw new Error("no running sandbox: start it with ./run sandbox");
        await report(state, {});
    } else throw new Error(`unknown sandbox command '${command}': use up, status or down`);
}

main().catch((e: unknown) => {
    process.stderr.write(`[sandbox] failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
});
