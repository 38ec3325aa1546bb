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
import {
    BenchContext,
    CaseResult,
    benchStream,
    countRows,
    cpuMeter,
    createTargetOnly,
    elapsedMs,
    fmt,
    interferenceNotes,
    log,
    now,
    planOptions,
    queryRows,
    round,
    rowMapper,
    targetRef,
    withServer,
} from "./common";
import { Consumer, MessagesStreamModes, stringDeserializers } from "../../runtime/kafka-client";

const ROUND_TRIPS = 200;

export async function runNaive(ctx: BenchContext): Promise<CaseResult> {
    const started = now();
    const data = await ctx.data();
    const spec = benchStream(ctx, { topic: data.topic, group: "bench-naive" });
    const max = Math.min(ctx.options.naiveMaxMessages, data.count);
    const maxMs = ctx.options.naiveMaxSeconds * 1000;
    return withServer(ctx, "naive", async (server, admin) => {
        await createTargetOnly(admin, spec, planOptions(ctx));
        const client = server.client({ compression: { request: false, response: false } });
        const table = targetRef(spec);
        const toRow = rowMapper(spec);
        const r0 = now();
        for (let i = 0; i < ROUND_TRIPS; i++) await queryRows(client, "SELECT 1");
        const roundTripMs = elapsedMs(r0) / ROUND_TRIPS;
        log(
            `naive: one INSERT per message, up to ${fmt(max)} messages or ${ctx.options.naiveMaxSeconds} s`,
        );
        const consumer = new Consumer({
            clientId: "bench-naive",
            groupId: "bench-naive",
            bootstrapBrokers: [ctx.kafka.bootstrap],
            deserializers: stringDeserializers,
        });
        // The loop ends by itself; this only ends it when no message ever comes.
        const stuck = setTimeout(() => void consumer.close(true), maxMs + 60_000);
        const t0 = now();
        let firstAt: number | undefined;
        let inserted = 0;
        let lastLog = 0;
        let cpu: ReturnType<typeof cpuMeter> | undefined;
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
                await client.insert({
                    table,
                    values: [toRow(String(message.value))],
                    format: "JSONEachRow",
                });
                inserted++;
                const t = elapsedMs(firstAt);
                if (inserted >= max || t >= maxMs) break;
                if (t - lastLog > 5_000) {
                    lastLog = t;
                    log(`naive: ${fmt(inserted)} inserts after ${(t / 1000).toFixed(1)} s`);
                }
            }
        } finally {
            clearTimeout(stuck);
            // Already closed when the timer fired.
            await consumer.close(true).catch(() => undefined);
        }
        if (firstAt === undefined || cpu === undefined)
            throw new Error("naive: no message received");
        const ms = elapsedMs(firstAt);
        const used = cpu();
        const joinMs = firstAt - t0;
        const rows = await countRows(admin, table);
        if (rows !== inserted)
            throw new Error(`naive: ${inserted} inserts but ${rows} rows in ${table}`);
        const [parts] = await queryRows<{ parts: string }>(
            admin,
            "SELECT count() AS parts FROM system.parts WHERE database = {db:String} AND active",
            { db: "bench" },
        );
        const rowsPerSec = (inserted / ms) * 1000;
        log(
            `naive: ${fmt(inserted)} rows in ${(ms / 1000).toFixed(1)} s = ${fmt(rowsPerSec)} rows/s`,
        );
        return {
            name: "naive",
            seconds: round(elapsedMs(started) / 1000, 1),
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
                groupJoinMs: round(joinMs),
                clickhouseCpuSeconds: used.clickhouse,
                benchCpuSeconds: used.bench,
                otherCpuSeconds: used.other,
                activePartsAfter: Number(parts?.parts ?? 0),
            },
            notes: interferenceNotes(used, ms),
        };
    });
}
