/**
 * What the benchmark cases share: the run's options, the context they run in (the Kafka broker,
 * the data produced ahead, the stream under test), the shape of a case's result, and helpers
 * (the bench stream, a ClickHouse server per case, a producer). Time, progress lines and number
 * formatting are in clock.ts; CPU time of processes in cpu.ts.
 *
 * Every case runs against the real components of the test tiers (test/harness/): a Kafka 4.3.1
 * broker and the ClickHouse engine (chdb) in a server child process speaking the HTTP interface.
 * Each case that needs ClickHouse gets a fresh server, stopped when the case ends, so background
 * work of one case (merges, Kafka consumers) never runs during another.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import * as fs from "node:fs";
import * as path from "node:path";
import { applyPlan } from "../../components/ingestion/apply";
import { PlanOptions, planStream, streamObjectNames } from "../../components/ingestion/planner";
import { loadStreams } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import { quoteIdent } from "../../schemas/sql";
import { ClickHouseServer, startClickHouseServer } from "../../runtime/chserver";
import type { KafkaBroker } from "../../runtime/kafka";
import { queryRows } from "../../components/ingestion/introspect";
import { Producer, stringSerializers } from "../../runtime/kafka-client";

export const CASE_NAMES = [
    "pipeline",
    "naive",
    "limit",
    "baselines",
    "latency",
    "plan-cost",
] as const;
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

// bench/index.ts takes these from here with the context and result types.
export { elapsedMs, log, now, round } from "./clock";

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

/**
 * A fresh server holding only the bench stream's target table (on the produced data's topic), for
 * the cases that write the rows themselves: they fill the same table shape as the pipeline.
 */
export async function withTargetTable<T>(
    ctx: BenchContext,
    name: CaseName,
    f: (target: {
        server: ClickHouseServer;
        client: ClickHouseClient;
        spec: StreamSpec;
        table: string;
        data: ProducedData;
    }) => Promise<T>,
): Promise<T> {
    const data = await ctx.data();
    const spec = benchStream(ctx, { topic: data.topic, group: `bench-${name}` });
    return withServer(ctx, name, async (server, client) => {
        await createTargetOnly(client, spec, planOptions(ctx));
        return f({ server, client, spec, table: targetRef(spec), data });
    });
}

/** Active parts in the bench database, or in one of its tables. */
export async function activeParts(client: ClickHouseClient, table?: string): Promise<number> {
    const oneTable = table !== undefined ? " AND table = {t:String}" : "";
    const [row] = await queryRows<{ parts: string }>(
        client,
        `SELECT count() AS parts FROM system.parts WHERE database = {db:String}${oneTable} AND active`,
        { db: BENCH_DB, ...(table !== undefined ? { t: table } : {}) },
    );
    return Number(row?.parts ?? 0);
}

/** A producer of string messages to the bench's broker. */
export function benchProducer(
    ctx: BenchContext,
    clientId: string,
    compression?: "lz4",
): Producer<string, string, string, string> {
    return new Producer({
        clientId,
        bootstrapBrokers: [ctx.kafka.bootstrap],
        serializers: stringSerializers,
        ...(compression !== undefined ? { compression } : {}),
    });
}

export async function countRows(client: ClickHouseClient, table: string): Promise<number> {
    const [row] = await queryRows<{ n: string | number }>(
        client,
        `SELECT count() AS n FROM ${table}`,
    );
    return Number(row?.n ?? 0);
}
