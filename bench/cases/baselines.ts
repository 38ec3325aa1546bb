/**
 * Case 6, baselines: what users run instead of the Kafka engine, on the same produced messages and
 * the same target table, in the same run.
 *
 * - `batching`: a Node consumer (@platformatic/kafka) that maps each message to a target row and
 *   INSERTs every BATCH_ROWS rows or BATCH_MS milliseconds through `@clickhouse/client`
 *   (JSONEachRow), committing offsets after each insert: the common hand-written sink.
 * - `asyncInsert`: the same consumer inserting each fetched batch as it comes (a few hundred rows)
 *   with server-side `async_insert = 1, wait_for_async_insert = 1`, so the server does the batching.
 *
 * Figures: rows/s from the first message to the last insert, and CPU per row of the client (this
 * process: consumer, JSON mapping, HTTP client) and of ClickHouse. The bench process runs nothing
 * else meanwhile, so its CPU is the client's. ClickHouse's CPU here is the local server process:
 * the engine and its HTTP front end (Node, runtime/chserver-http.ts) together, which cannot be
 * told apart per row; the pipeline's rows never pass that front end, so this side of the
 * comparison carries the front end's cost and the pipeline's does not. A JVM sink with
 * ClickHouse's Java client (the stand-in for a Kafka Connect sink) is not here yet.
 */
import { Consumer, MessagesStreamModes, stringDeserializers } from "../../runtime/kafka-client";
import { caseSeconds, elapsedMs, fmt, log, now, progressLog, round } from "./clock";
import { BenchContext, CaseResult, Figure, countRows, rowMapper, withTargetTable } from "./common";
import { cpuMeter, interferenceNotes } from "./cpu";

const BATCH_ROWS = 10_000;
const BATCH_MS = 500;

type Mode = "batching" | "asyncInsert";

export async function runBaselines(ctx: BenchContext): Promise<CaseResult> {
    const started = now();
    const figures: Record<string, Figure> = {};
    const notes: string[] = [];
    for (const mode of ["batching", "asyncInsert"] as const) {
        const r = await runOne(ctx, mode);
        for (const [k, v] of Object.entries(r.figures)) figures[`${mode}${k}`] = v;
        notes.push(...r.notes.map((n) => `${mode}: ${n}`));
    }
    return { name: "baselines", seconds: caseSeconds(started), figures, notes };
}

async function runOne(
    ctx: BenchContext,
    mode: Mode,
): Promise<{ figures: Record<string, Figure>; notes: string[] }> {
    return withTargetTable(ctx, "baselines", async (target) => {
        const { client, table, data } = target;
        log(
            mode === "batching"
                ? `baselines: Node consumer, INSERT every ${fmt(BATCH_ROWS)} rows or ${BATCH_MS} ms (${fmt(data.count)} messages)`
                : `baselines: Node consumer, each fetched batch INSERTed with async_insert (${fmt(data.count)} messages)`,
        );
        const loop = await consumeAndInsert(ctx, target, mode);
        const used = loop.cpu();
        const rows = await countRows(client, table);
        if (rows !== data.count)
            throw new Error(
                `baselines (${mode}): ${fmt(rows)} rows in ${table}, expected ${fmt(data.count)}`,
            );
        const rowsPerSec = (rows / loop.ms) * 1000;
        const perRow = (s: number | null) => (s === null ? null : round((s / rows) * 1e6, 2));
        const total =
            used.clickhouse === null ? null : used.clickhouse + used.bench + (used.broker ?? 0);
        log(
            `baselines (${mode}): ${fmt(rows)} rows in ${(loop.ms / 1000).toFixed(1)} s = ${fmt(rowsPerSec)} rows/s; CPU per row: client ${perRow(used.bench)} us, ClickHouse ${perRow(used.clickhouse)} us`,
        );
        return {
            figures: {
                Rows: rows,
                RowsPerSec: round(rowsPerSec),
                Inserts: loop.inserts,
                ClientCpuUsPerRow: perRow(used.bench),
                ClickhouseCpuUsPerRow: perRow(used.clickhouse),
                BrokerCpuUsPerRow: perRow(used.broker),
                TotalCpuUsPerRow: perRow(total),
                RowsPerCpuSecond: total ? round(rows / total) : null,
            },
            notes: [
                ...interferenceNotes(used, loop.ms),
                "ClickHouse CPU includes the local server's Node HTTP front end (the inserts pass it; the Kafka engine's rows do not)",
            ],
        };
    });
}

type Target = Parameters<Parameters<typeof withTargetTable>[2]>[0];

/** Consumes every produced message and inserts them as `mode` does; times from the first one. */
async function consumeAndInsert(
    ctx: BenchContext,
    { server, client, spec, table, data }: Target,
    mode: Mode,
): Promise<{ ms: number; inserts: number; cpu: ReturnType<typeof cpuMeter> }> {
    const toRow = rowMapper(spec);
    const consumer = new Consumer({
        clientId: `bench-${mode}`,
        groupId: `bench-${mode}`,
        bootstrapBrokers: [ctx.kafka.bootstrap],
        deserializers: stringDeserializers,
    });
    const settings =
        mode === "asyncInsert"
            ? ({ async_insert: 1, wait_for_async_insert: 1 } as const)
            : undefined;
    const stuck = setTimeout(() => void consumer.close(true), 15 * 60_000);
    let firstAt: number | undefined;
    let cpu: ReturnType<typeof cpuMeter> | undefined;
    let consumed = 0;
    let inserts = 0;
    let pending: Record<string, unknown>[] = [];
    let lastFlush = now();
    const progress = progressLog(10_000);
    const flush = async () => {
        if (pending.length === 0) return;
        const values = pending;
        pending = [];
        await client.insert({
            table,
            values,
            format: "JSONEachRow",
            ...(settings ? { clickhouse_settings: settings } : {}),
        });
        inserts++;
        lastFlush = now();
    };
    try {
        const stream = await consumer.consume({
            topics: [data.topic],
            mode: MessagesStreamModes.EARLIEST,
            autocommit: true,
        });
        for await (const message of stream) {
            if (firstAt === undefined) {
                firstAt = now();
                cpu = cpuMeter(server, ctx.kafka);
            }
            pending.push(toRow(String(message.value)));
            consumed++;
            const due =
                mode === "asyncInsert"
                    ? pending.length >= 500
                    : pending.length >= BATCH_ROWS || elapsedMs(lastFlush) >= BATCH_MS;
            if (due || consumed >= data.count) await flush();
            if (consumed >= data.count) break;
            const t = elapsedMs(firstAt);
            progress(
                t,
                () =>
                    `baselines (${mode}): ${fmt(consumed)} consumed after ${(t / 1000).toFixed(0)} s`,
            );
        }
        await flush();
    } finally {
        clearTimeout(stuck);
        await consumer.close(true).catch(() => undefined);
    }
    if (firstAt === undefined || cpu === undefined)
        throw new Error(`baselines (${mode}): no message came`);
    return { ms: elapsedMs(firstAt), inserts, cpu };
}
