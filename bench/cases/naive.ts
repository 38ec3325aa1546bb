/**
 * Case 2, the naive baseline: the consumer people write by hand. A Kafka consumer loop reads the
 * same messages, maps each to a row and sends one `INSERT` per message through @clickhouse/client
 * (over HTTP, like any application), into a fresh table with the target's generated DDL, waiting
 * for each insert before the next (the simple, ordered, at-least-once loop).
 *
 * The client is the stock one with compression off: the test server applies URL settings with a
 * statement of its own per request (real ClickHouse does not), and the rows need no format
 * settings (they are mapped to column names in the loop), so each insert is one engine call.
 * `roundTripMs` (a `SELECT 1` through the same client) shows the server's fixed cost per request:
 * the test server opens an engine connection per request, which a real server does not, so
 * `rowsPerSecLessRoundTrip` (1 / (mean insert - round trip)) bounds the loop from above as if that
 * cost were zero (it removes more than the overhead: a real server's round trip is not free).
 *
 * The rate is counted from the first message received (group join excluded) to the last insert,
 * and stops after `naiveMaxMessages` messages or `naiveMaxSeconds`, whichever comes first: it is a
 * rate, and the loop's rate does not improve with more messages (every insert makes a part, and
 * merges fall behind as parts pile up).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { ClickHouseServer } from "../../runtime/chserver";
import { Consumer, MessagesStreamModes, stringDeserializers } from "../../runtime/kafka-client";
import type { StreamSpec } from "../../schemas/model";
import { caseSeconds, elapsedMs, fmt, log, now, progressLog, round } from "./clock";
import {
    BenchContext,
    CaseResult,
    activeParts,
    countRows,
    queryRows,
    rowMapper,
    withTargetTable,
} from "./common";
import { cpuMeter, interferenceNotes } from "./cpu";

const ROUND_TRIPS = 200;

export async function runNaive(ctx: BenchContext): Promise<CaseResult> {
    const started = now();
    return withTargetTable(ctx, "naive", async ({ server, client: admin, spec, table, data }) => {
        const max = Math.min(ctx.options.naiveMaxMessages, data.count);
        const maxSeconds = ctx.options.naiveMaxSeconds;
        const client = server.client({ compression: { request: false, response: false } });
        const roundTripMs = await meanRoundTripMs(client);
        log(`naive: one INSERT per message, up to ${fmt(max)} messages or ${maxSeconds} s`);
        const loop = await insertEach(ctx, server, client, {
            spec,
            table,
            topic: data.topic,
            max,
            maxMs: maxSeconds * 1000,
        });
        const { inserted, ms } = loop;
        const used = loop.cpu();
        const rows = await countRows(admin, table);
        if (rows !== inserted)
            throw new Error(`naive: ${inserted} inserts but ${rows} rows in ${table}`);
        const parts = await activeParts(admin);
        const rowsPerSec = (inserted / ms) * 1000;
        log(
            `naive: ${fmt(inserted)} rows in ${(ms / 1000).toFixed(1)} s = ${fmt(rowsPerSec)} rows/s`,
        );
        return {
            name: "naive",
            seconds: caseSeconds(started),
            figures: {
                rows: inserted,
                seconds: round(ms / 1000, 2),
                rowsPerSec: round(rowsPerSec, 1),
                meanInsertMs: round(ms / inserted, 2),
                roundTripMs: round(roundTripMs, 2),
                rowsPerSecLessRoundTrip:
                    ms / inserted > roundTripMs
                        ? round(1000 / (ms / inserted - roundTripMs), 1)
                        : null,
                groupJoinMs: round(loop.joinMs),
                clickhouseCpuSeconds: used.clickhouse,
                benchCpuSeconds: used.bench,
                otherCpuSeconds: used.other,
                activePartsAfter: parts,
            },
            notes: interferenceNotes(used, ms),
        };
    });
}

/** The server's fixed cost per request: the mean time of a `SELECT 1` through `client`. */
async function meanRoundTripMs(client: ClickHouseClient): Promise<number> {
    const r0 = now();
    for (let i = 0; i < ROUND_TRIPS; i++) await queryRows(client, "SELECT 1");
    return elapsedMs(r0) / ROUND_TRIPS;
}

/**
 * The hand-written loop: consumes the topic from the start and inserts each message as one row,
 * waiting for each insert, until `max` messages or `maxMs` after the first one.
 */
async function insertEach(
    ctx: BenchContext,
    server: ClickHouseServer,
    client: ClickHouseClient,
    loop: { spec: StreamSpec; table: string; topic: string; max: number; maxMs: number },
): Promise<{ inserted: number; ms: number; joinMs: number; cpu: ReturnType<typeof cpuMeter> }> {
    const toRow = rowMapper(loop.spec);
    const consumer = new Consumer({
        clientId: "bench-naive",
        groupId: "bench-naive",
        bootstrapBrokers: [ctx.kafka.bootstrap],
        deserializers: stringDeserializers,
    });
    // The loop ends by itself; this only ends it when no message ever comes.
    const stuck = setTimeout(() => void consumer.close(true), loop.maxMs + 60_000);
    const t0 = now();
    let firstAt: number | undefined;
    let inserted = 0;
    const progress = progressLog(5_000);
    let cpu: ReturnType<typeof cpuMeter> | undefined;
    try {
        const stream = await consumer.consume({
            topics: [loop.topic],
            mode: MessagesStreamModes.EARLIEST,
            autocommit: true,
        });
        for await (const message of stream) {
            if (firstAt === undefined) {
                firstAt = now();
                cpu = cpuMeter(server, ctx.kafka);
            }
            await client.insert({
                table: loop.table,
                values: [toRow(String(message.value))],
                format: "JSONEachRow",
            });
            inserted++;
            const t = elapsedMs(firstAt);
            if (inserted >= loop.max || t >= loop.maxMs) break;
            progress(t, () => `naive: ${fmt(inserted)} inserts after ${(t / 1000).toFixed(1)} s`);
        }
    } finally {
        clearTimeout(stuck);
        // Already closed when the timer fired.
        await consumer.close(true).catch(() => undefined);
    }
    if (firstAt === undefined || cpu === undefined) throw new Error("naive: no message received");
    return { inserted, ms: elapsedMs(firstAt), joinMs: firstAt - t0, cpu };
}
