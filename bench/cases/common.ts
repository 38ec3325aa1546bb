/**
 * What the benchmark cases share: the run's options, the context they run in (the Kafka broker,
 * the data produced ahead, the stream under test), the shape of a case's result, and small helpers
 * (progress lines, CPU time of a process, a ClickHouse server per case, the bench stream).
 *
 * Every case runs against the real components of the test tiers (test/harness/): a Kafka 4.3.1
 * broker and the ClickHouse engine (chdb) in a server child process speaking the HTTP interface.
 * Each case that needs ClickHouse gets a fresh server, stopped when the case ends, so background
 * work of one case (merges, Kafka consumers) never runs during another.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { applyPlan } from "../../components/ingestion/apply";
import { PlanOptions, planStream, streamObjectNames } from "../../components/ingestion/planner";
import { loadStreams } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import { quoteIdent } from "../../schemas/sql";
import { ClickHouseServer, startClickHouseServer } from "../../runtime/chserver";
import type { KafkaBroker } from "../../runtime/kafka";
import { queryRows } from "../../components/ingestion/introspect";
import { sleep } from "../../runtime/process";

export const CASE_NAMES = ["pipeline", "naive", "limit", "latency", "plan-cost"] as const;
export type CaseName = (typeof CASE_NAMES)[number];

export interface BenchOptions {
    readonly quick: boolean;
    /** Messages produced ahead for the pipeline, and rows of the bulk insert (limit). */
    readonly messages: number;
    /** Naive loop: stops after this many messages or this many seconds, whichever comes first. */
    readonly naiveMaxMessages: number;
    readonly naiveMaxSeconds: number;
    /** Latency: steady produce rate (messages per second) and how long it is kept up. */
    readonly latencyRate: number;
    readonly latencySeconds: number;
    /** Plan cost: stream counts previewed. */
    readonly planSizes: readonly number[];
    /** Plan cost of applied streams (objects exist) only up to this count: creating them is slow. */
    readonly planAppliedMax: number;
    /**
     * Consumer settings merged into the bench stream, for tuning experiments (`--consumer`).
     * Empty: the stream's own settings, i.e. what the planner generates for the example stream.
     */
    readonly consumer: Partial<StreamSpec["consumer"]>;
}

export type Figure = number | string | boolean | null;

export interface CaseResult {
    readonly name: CaseName;
    /** Wall time of the whole case, set-up included. */
    readonly seconds: number;
    /** Flat figures: what the table prints. Units are in the names (PerSec, Ms, MB, ...). */
    readonly figures: Record<string, Figure>;
    /** Anything longer: timelines, per-size rows, settings. */
    readonly details?: unknown;
    readonly notes: readonly string[];
}

/** The messages produced ahead, shared by the pipeline, naive and limit cases. */
export interface ProducedData {
    readonly topic: string;
    readonly partitions: number;
    readonly count: number;
    /** Sum of message value sizes (what the pipeline parses), bytes. */
    readonly bytes: number;
    /** The same rows with the target's column names, one JSON object a line (the bulk insert). */
    readonly rowsFile: string;
    readonly rowsFileBytes: number;
    /** The messages as produced, one a line. */
    readonly messagesFile: string;
}

export interface BenchContext {
    readonly options: BenchOptions;
    readonly kafka: KafkaBroker;
    /** Scratch directory of this run (servers' data, the rows file); removed at the end. */
    readonly scratch: string;
    /** The stream every throughput and latency case ingests: schemas/streams/web_events.yaml. */
    readonly example: StreamSpec;
    /** Produces the shared data on first call (see data.ts). */
    data(): Promise<ProducedData>;
}

/** Database the cases create their tables in. */
export const BENCH_DB = "bench";

/** Progress goes to stderr so stdout carries only the table. */
export function log(line: string): void {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

export { sleep };

export function elapsedMs(since: number): number {
    return performance.now() - since;
}

export const now = (): number => performance.now();

export function round(n: number, digits = 0): number {
    const f = 10 ** digits;
    return Math.round(n * f) / f;
}

/** 1234567 -> "1,234,567". */
export function fmt(n: number): string {
    return Math.round(n).toLocaleString("en-US");
}

// ---------------------------------------------------------------------------------------------
// CPU time of processes: shows whether a case was CPU-bound and where the CPU went.

let clockTicks: number | undefined;

/** User + system CPU seconds a process has used so far (Linux /proc); undefined elsewhere. */
export function cpuSeconds(pid: number | undefined): number | undefined {
    if (pid === undefined) return undefined;
    try {
        clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        // Fields after the command name, which is in parentheses and may contain spaces.
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return (Number(f[11]) + Number(f[12])) / clockTicks;
    } catch {
        return undefined;
    }
}

/** CPU seconds of this process (the bench itself: producers, clients, polling). */
export function ownCpuSeconds(): number {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

/** Busy CPU seconds of the whole machine so far, all cores (Linux /proc/stat). */
export function machineBusySeconds(): number | undefined {
    try {
        const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!;
        // cpu user nice system idle iowait irq softirq steal ...
        const f = line.trim().split(/\s+/).slice(1).map(Number);
        const busy = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0);
        clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
        return busy / clockTicks;
    } catch {
        return undefined;
    }
}

export interface CpuUse {
    readonly clickhouse: number | null;
    readonly broker: number | null;
    readonly bench: number;
    /**
     * CPU the rest of the machine used meanwhile (other processes, the kernel): when it is large,
     * something competed with the case and its figures are pessimistic.
     */
    readonly other: number | null;
}

/** A note when other processes used more than a fifth of a core during a measurement. */
export function interferenceNotes(use: CpuUse, wallMs: number): string[] {
    if (use.other === null || wallMs <= 0) return [];
    const share = use.other / (wallMs / 1000);
    return share > 0.2
        ? [
              `other processes used ${use.other} CPU-s during the measurement (${Math.round(share * 100)}% of a core on average): figures are pessimistic`,
          ]
        : [];
}

/** CPU used by ClickHouse, the broker, this process and everything else between two calls. */
export function cpuMeter(server: ClickHouseServer | undefined, kafka: KafkaBroker): () => CpuUse {
    const ch0 = cpuSeconds(server?.pid);
    const kafka0 = cpuSeconds(kafka.pid);
    const own0 = ownCpuSeconds();
    const all0 = machineBusySeconds();
    return () => {
        const ch1 = cpuSeconds(server?.pid);
        const kafka1 = cpuSeconds(kafka.pid);
        const all1 = machineBusySeconds();
        const clickhouse = ch0 !== undefined && ch1 !== undefined ? ch1 - ch0 : undefined;
        const broker = kafka0 !== undefined && kafka1 !== undefined ? kafka1 - kafka0 : undefined;
        const bench = ownCpuSeconds() - own0;
        const other =
            all0 !== undefined && all1 !== undefined
                ? Math.max(0, all1 - all0 - (clickhouse ?? 0) - (broker ?? 0) - bench)
                : undefined;
        return {
            clickhouse: clickhouse !== undefined ? round(clickhouse, 2) : null,
            broker: broker !== undefined ? round(broker, 2) : null,
            bench: round(bench, 2),
            other: other !== undefined ? round(other, 2) : null,
        };
    };
}

// ---------------------------------------------------------------------------------------------
// The stream under test

/** The example stream the throughput and latency cases ingest (10 columns, 6 partitions). */
export function loadExample(): StreamSpec {
    const found = loadStreams().find((l) => l.spec.name === "web_events");
    if (!found)
        throw new Error("schemas/streams/web_events.yaml is missing: the benchmark ingests it");
    return found.spec;
}

/**
 * The example stream on the bench's topic and consumer group, with the `--consumer` overrides
 * (none by default: then its Kafka settings are exactly what the planner generates).
 */
export function benchStream(
    ctx: BenchContext,
    over: { name?: string; topic: string; group: string },
): StreamSpec {
    return {
        ...ctx.example,
        name: over.name ?? ctx.example.name,
        topic: { ...ctx.example.topic, name: over.topic },
        consumer: { ...ctx.example.consumer, ...ctx.options.consumer, group: over.group },
    };
}

/** Planner options as the stack passes them (no maxDefaultConsumers: the planner's default). */
export function planOptions(ctx: BenchContext): PlanOptions {
    return { database: BENCH_DB, kafkaBrokers: ctx.kafka.bootstrap };
}

/** The Kafka engine settings the planner generates for a stream, as `name = value` strings. */
export function kafkaSettingsOf(spec: StreamSpec, options: PlanOptions): string[] {
    const plan = planStream(spec, undefined, options);
    const create = plan.statements.at(-1)?.sql ?? "";
    const settings = /ENGINE = Kafka(?:\([^)]*\))? SETTINGS (.*)$/.exec(create)?.[1] ?? "";
    return settings
        .split(/, (?=[a-z_]+ = )/)
        .filter((s) =>
            /^kafka_(num_consumers|thread_per_consumer|max_block_size|flush_interval_ms|poll_max_batch_size|poll_timeout_ms)/.test(
                s,
            ),
        );
}

/** `db`.`table` of a stream's target. */
export function targetRef(spec: StreamSpec): string {
    return `${quoteIdent(BENCH_DB)}.${quoteIdent(streamObjectNames(spec.name).target)}`;
}

/**
 * Creates only the database and the target table of a stream, with exactly the DDL the planner
 * generates: the naive loop and the bulk insert write into the same table shape as the pipeline.
 */
export async function createTargetOnly(
    client: ClickHouseClient,
    spec: StreamSpec,
    options: PlanOptions,
): Promise<void> {
    const plan = planStream(spec, undefined, options);
    const prefix = `CREATE TABLE IF NOT EXISTS ${targetRef(spec)} (`;
    const statements = plan.statements.filter(
        (s) => s.sql.startsWith("CREATE DATABASE") || s.sql.startsWith(prefix),
    );
    if (statements.length !== 2) {
        throw new Error(`expected the plan to create the database and ${targetRef(spec)}`);
    }
    await applyPlan(client, { ...plan, statements });
}

/** The stream's format settings as query settings (what its Kafka table parses with). */
export function formatSettingsOf(spec: StreamSpec): Record<string, string | number> {
    const out: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(spec.formatSettings)) {
        out[k] = typeof v === "boolean" ? (v ? 1 : 0) : v;
    }
    return out;
}

/** Maps a message (source field names) to a target row (column names); absent fields stay absent. */
export function rowMapper(spec: StreamSpec): (message: string) => Record<string, unknown> {
    const pairs = spec.columns.map((c) => [c.source ?? c.name, c.name] as const);
    return (message) => {
        const m = JSON.parse(message) as Record<string, unknown>;
        const row: Record<string, unknown> = {};
        for (const [source, column] of pairs) if (source in m) row[column] = m[source];
        return row;
    };
}

// ---------------------------------------------------------------------------------------------
// A ClickHouse server per case

export async function withServer<T>(
    ctx: BenchContext,
    name: string,
    f: (server: ClickHouseServer, client: ClickHouseClient) => Promise<T>,
): Promise<T> {
    const dataDir = path.join(ctx.scratch, `ch-${name}`);
    fs.mkdirSync(dataDir, { recursive: true });
    const server = await startClickHouseServer({ dataDir });
    try {
        const client = server.client();
        return await f(server, client);
    } finally {
        await server.stop({ graceMs: 20_000 });
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
}

export { queryRows };

export async function countRows(client: ClickHouseClient, table: string): Promise<number> {
    const [row] = await queryRows<{ n: string | number }>(
        client,
        `SELECT count() AS n FROM ${table}`,
    );
    return Number(row?.n ?? 0);
}

/** Quantile of a sorted array (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
    if (sorted.length === 0) return NaN;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[i]!;
}
