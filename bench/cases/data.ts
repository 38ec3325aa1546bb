/**
 * The data every throughput case reads: `count` realistic web_events messages (schemas/sample.ts,
 * ~220 bytes of JSON, 10 fields, some optional fields left out as real producers do), produced
 * ahead to a topic with the stream's partition count, and the same rows written to a file with
 * the target's column names for the bulk insert (and the messages themselves to a file, for the
 * pipeline's batched variant). Generated in slices so a million messages never sit in memory at
 * once; deterministic for a run (fixed seeds).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { sampleMessages } from "../../schemas/sample";
import { elapsedMs, fmt, log, now } from "./clock";
import { BenchContext, ProducedData, rowMapper } from "./common";

const SLICE = 20_000;
/** Event times are 10 ms apart, ending now: recent enough for the stream's TTL. */
const STEP_MS = 10;

export const DATA_TOPIC = "bench.web_events";

export async function produceData(ctx: BenchContext): Promise<ProducedData> {
    const count = ctx.options.messages;
    const partitions = ctx.example.topic.partitions;
    log(
        `data: ${fmt(count)} ${ctx.example.name} messages to ${DATA_TOPIC} (${partitions} partitions), produced ahead`,
    );
    await ctx.kafka.createTopic(DATA_TOPIC, partitions);
    const rowsFile = path.join(ctx.scratch, "rows.ndjson");
    const messagesFile = path.join(ctx.scratch, "messages.ndjson");
    const fd = fs.openSync(rowsFile, "w");
    const messagesFd = fs.openSync(messagesFile, "w");
    const toRow = rowMapper(ctx.example);
    const startMs = Date.now() - count * STEP_MS;
    let bytes = 0;
    let rowsFileBytes = 0;
    const example = ctx.example;
    function* messages(): Generator<string> {
        for (let done = 0; done < count; done += SLICE) {
            const n = Math.min(SLICE, count - done);
            const slice = sampleMessages(example, n, {
                seed: done / SLICE + 1,
                startMs: startMs + done * STEP_MS,
                stepMs: STEP_MS,
            });
            let rows = "";
            for (const m of slice) {
                bytes += Buffer.byteLength(m);
                rows += JSON.stringify(toRow(m)) + "\n";
            }
            rowsFileBytes += Buffer.byteLength(rows);
            fs.writeSync(fd, rows);
            fs.writeSync(messagesFd, slice.join("\n") + "\n");
            yield* slice;
        }
    }
    const t0 = now();
    try {
        const sent = await ctx.kafka.produce(DATA_TOPIC, messages());
        if (sent !== count) throw new Error(`produced ${sent} messages, expected ${count}`);
    } finally {
        fs.closeSync(fd);
        fs.closeSync(messagesFd);
    }
    log(
        `data: ${fmt(count)} messages (${(bytes / 1e6).toFixed(1)} MB, ${Math.round(bytes / count)} B each) produced in ${(elapsedMs(t0) / 1000).toFixed(1)} s`,
    );
    return { topic: DATA_TOPIC, partitions, count, bytes, rowsFile, rowsFileBytes, messagesFile };
}
