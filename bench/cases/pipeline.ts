/**
 * Case 1, pipeline: the messages are already in Kafka; the generated DDL (Kafka table -> views ->
 * MergeTree target and dead-letter table) is applied to a fresh ClickHouse server, and the clock
 * runs until every row is in the target. Nothing is produced meanwhile; the only other work on the
 * machine is this process asking for the row count every 100 ms.
 *
 * Reported: rows/s and MB/s over the whole run (from the DDL to the last row: consumer start-up,
 * group join and partition assignment included), the start-up on its own (time to the first rows)
 * and the steady rate after it, plus the CPU seconds ClickHouse and the broker used per row.
 *
 * Then a variant that explains the result: the same rows, 100 per Kafka message (newline-separated
 * JSON, which the Kafka engine reads as 100 rows), through the same DDL. The difference between
 * the two is what the engine spends per message rather than per row.
 */
import * as fs from "node:fs";
import * as readline from "node:readline";
import { applyPlan } from "../../components/ingestion/apply";
import { planStream, streamObjectNames } from "../../components/ingestion/planner";
import type { StreamSpec } from "../../schemas/model";
import { quoteIdent } from "../../schemas/sql";
import type { ClickHouseClient } from "@clickhouse/client";
import { caseSeconds, elapsedMs, fmt, log, now, progressLog, round, sleep } from "./clock";
import {
    BENCH_DB,
    BenchContext,
    CaseResult,
    Figure,
    ProducedData,
    activeParts,
    benchProducer,
    benchStream,
    kafkaSettingsOf,
    planOptions,
    queryRows,
    withServer,
} from "./common";
import { CpuUse, clickhouseCpuUsPerRow, cpuMeter, interferenceNotes } from "./cpu";

const POLL_MS = 100;
const ROWS_PER_BATCHED_MESSAGE = 100;

interface Measured {
    readonly figures: Record<string, Figure>;
    readonly timeline: Array<[number, number]>;
    readonly notes: string[];
}

export async function runPipeline(ctx: BenchContext): Promise<CaseResult> {
    const started = now();
    const data = await ctx.data();
    const spec = benchStream(ctx, { topic: data.topic, group: "bench-pipeline" });
    const settings = kafkaSettingsOf(spec, planOptions(ctx));
    log(`pipeline: ${fmt(data.count)} messages through the generated DDL (${settings.join(", ")})`);
    const main = await measure(ctx, "pipeline", spec, data.count, data.bytes);

    const batchedTopic = `${data.topic}.batched`;
    const messages = await produceBatched(ctx, data, batchedTopic);
    log(`pipeline: the same rows as ${fmt(messages)} messages of ${ROWS_PER_BATCHED_MESSAGE} rows`);
    const batched = await measure(
        ctx,
        "pipeline-batched",
        benchStream(ctx, { topic: batchedTopic, group: "bench-pipeline-batched" }),
        data.count,
        data.bytes,
    );
    const figures: Record<string, Figure> = { ...main.figures };
    for (const k of ["seconds", "rowsPerSec", "clickhouseCpuUsPerRow", "otherCpuSeconds"]) {
        figures[`batched${ROWS_PER_BATCHED_MESSAGE}${k[0]!.toUpperCase()}${k.slice(1)}`] =
            batched.figures[k] ?? null;
    }
    return {
        name: "pipeline",
        seconds: caseSeconds(started),
        figures,
        details: {
            kafkaSettings: settings,
            timeline: main.timeline,
            batched: {
                rowsPerMessage: ROWS_PER_BATCHED_MESSAGE,
                messages,
                ...batched.figures,
                timeline: batched.timeline,
            },
        },
        notes: [...main.notes, ...batched.notes.map((n) => `batched variant: ${n}`)],
    };
}

/** Applies the stream's DDL on a fresh server and waits until `expected` rows are in its target. */
async function measure(
    ctx: BenchContext,
    label: string,
    spec: StreamSpec,
    expected: number,
    bytes: number,
): Promise<Measured> {
    const names = streamObjectNames(spec.name);
    return withServer(ctx, label, async (server, client) => {
        const plan = planStream(spec, undefined, planOptions(ctx));
        const cpu = cpuMeter(server, ctx.kafka);
        const t0 = now();
        await applyPlan(client, plan);
        const ddlMs = elapsedMs(t0);
        const loaded = await waitForRows(client, label, names, t0, expected);
        const totalMs = elapsedMs(t0);
        const used = cpu();
        if (loaded.rejected > 0)
            throw new Error(`${label}: ${loaded.rejected} messages went to the dead-letter table`);
        const parts = await activeParts(client, names.target);
        return pipelineMeasured(label, { ...loaded, totalMs, ddlMs, used, parts, bytes });
    });
}

/** The count of rows in the target over time, up to `expected` rows (or dead letters). */
interface Loaded {
    readonly rows: number;
    readonly rejected: number;
    /** [ms since the DDL, rows] at each change of the count. */
    readonly timeline: Array<[number, number]>;
    /** [ms since the DDL, rows] when the first rows were seen. */
    readonly first: [number, number] | undefined;
}

/** Polls the target's and the dead-letter table's counts until `expected` messages arrived. */
async function waitForRows(
    client: ClickHouseClient,
    label: string,
    names: { target: string; dlq: string },
    t0: number,
    expected: number,
): Promise<Loaded> {
    const ref = (t: string) => `${quoteIdent(BENCH_DB)}.${quoteIdent(t)}`;
    const timeline: Array<[number, number]> = [];
    let first: [number, number] | undefined;
    let rows = 0;
    let rejected = 0;
    const progress = progressLog(5_000);
    // Generous: a tenth of the naive loop's rate would still finish.
    const deadline = t0 + Math.max(120_000, (expected / 2_000) * 1000);
    for (;;) {
        const [r] = await queryRows<{ ok: string; bad: string }>(
            client,
            `SELECT (SELECT count() FROM ${ref(names.target)}) AS ok, (SELECT count() FROM ${ref(names.dlq)}) AS bad`,
        );
        const t = elapsedMs(t0);
        const ok = Number(r?.ok ?? 0);
        rejected = Number(r?.bad ?? 0);
        if (ok !== rows) {
            timeline.push([round(t), ok]);
            if (rows === 0) first = [t, ok];
            rows = ok;
        }
        if (rows + rejected >= expected) return { rows, rejected, timeline, first };
        progress(
            t,
            () => `${label}: ${fmt(rows)} / ${fmt(expected)} rows after ${(t / 1000).toFixed(1)} s`,
        );
        if (now() > deadline) {
            throw new Error(
                `${label}: only ${rows} of ${expected} rows (${rejected} dead letters) after ${Math.round(t / 1000)} s`,
            );
        }
        await sleep(POLL_MS);
    }
}

/** The figures of one run: overall rate, start-up, steady rate after it, CPU per row. */
function pipelineMeasured(
    label: string,
    m: Loaded & {
        totalMs: number;
        ddlMs: number;
        used: CpuUse;
        parts: number;
        bytes: number;
    },
): Measured {
    const { rows, first, totalMs, used } = m;
    const firstMs = first?.[0] ?? totalMs;
    const firstRows = first?.[1] ?? rows;
    const steady =
        totalMs > firstMs && rows > firstRows
            ? ((rows - firstRows) / (totalMs - firstMs)) * 1000
            : null;
    const rowsPerSec = (rows / totalMs) * 1000;
    log(
        `${label}: ${fmt(rows)} rows in ${(totalMs / 1000).toFixed(1)} s = ${fmt(rowsPerSec)} rows/s (first rows after ${(firstMs / 1000).toFixed(1)} s${steady ? `, then ${fmt(steady)} rows/s` : ""})`,
    );
    return {
        figures: {
            rows,
            seconds: round(totalMs / 1000, 2),
            rowsPerSec: round(rowsPerSec),
            mbPerSec: round((m.bytes / 1e6 / totalMs) * 1000, 1),
            firstRowsAfterMs: round(firstMs),
            steadyRowsPerSec: steady !== null ? round(steady) : null,
            ddlMs: round(m.ddlMs),
            clickhouseCpuSeconds: used.clickhouse,
            brokerCpuSeconds: used.broker,
            otherCpuSeconds: used.other,
            clickhouseCpuUsPerRow: clickhouseCpuUsPerRow(used, rows),
            targetParts: m.parts,
        },
        timeline: m.timeline,
        notes: interferenceNotes(used, totalMs),
    };
}

/** Produces the data's messages again, `ROWS_PER_BATCHED_MESSAGE` lines per Kafka message. */
async function produceBatched(
    ctx: BenchContext,
    data: ProducedData,
    topic: string,
): Promise<number> {
    await ctx.kafka.createTopic(topic, data.partitions);
    const producer = benchProducer(ctx, "bench-batched", "lz4");
    let sent = 0;
    try {
        let lines: string[] = [];
        let batch: Array<{ topic: string; partition: number; value: string }> = [];
        const flush = async () => {
            if (lines.length > 0) {
                batch.push({ topic, partition: sent++ % data.partitions, value: lines.join("\n") });
                lines = [];
            }
            if (batch.length > 0) await producer.send({ messages: batch });
            batch = [];
        };
        const input = readline.createInterface({ input: fs.createReadStream(data.messagesFile) });
        for await (const line of input) {
            if (line.length === 0) continue;
            lines.push(line);
            if (lines.length === ROWS_PER_BATCHED_MESSAGE) {
                batch.push({ topic, partition: sent++ % data.partitions, value: lines.join("\n") });
                lines = [];
                if (batch.length === 50) await flush();
            }
        }
        await flush();
    } finally {
        await producer.close();
    }
    return sent;
}
