/**
 * Case 4, latency: a producer keeps a steady rate (default 5,000 msg/s for 60 s) into a fresh
 * topic consumed by the generated DDL, and every row's produce-to-queryable latency is measured:
 * each message carries its produce time in its event time (`ts`), and this process asks for the
 * rows that became visible every 100 ms; a row's latency is the moment the answer that first holds
 * it arrived minus its produce time. Polling makes the figure pessimistic by up to one interval.
 *
 * Each message's `user_id` is its sequence number, so a row is counted once however the parts
 * holding it are merged: a poll reads the parts it has not read before, only rows at or above the
 * lowest sequence number not yet seen, and skips rows already seen.
 *
 * Before the clock starts, a few warm-up messages go through, so the figure is the steady state,
 * not the consumer's group join (which the pipeline case reports).
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { applyPlan } from "../../components/ingestion/apply";
import { planStream } from "../../components/ingestion/planner";
import type { StreamSpec } from "../../schemas/model";
import { sampleMessages } from "../../schemas/sample";
import {
    caseSeconds,
    elapsedMs,
    fmt,
    log,
    now,
    progressLog,
    quantile,
    round,
    sleep,
} from "./clock";
import {
    BenchContext,
    CaseResult,
    benchProducer,
    benchStream,
    countRows,
    kafkaSettingsOf,
    planOptions,
    queryRows,
    targetRef,
    withServer,
} from "./common";
import { CpuUse, cpuMeter, interferenceNotes } from "./cpu";

const TOPIC = "bench.latency";
const POLL_MS = 100;
const TICK_MS = 10;

export async function runLatency(ctx: BenchContext): Promise<CaseResult> {
    const started = now();
    const { latencyRate: rate, latencySeconds: seconds } = ctx.options;
    const partitions = ctx.example.topic.partitions;
    await ctx.kafka.createTopic(TOPIC, partitions);
    const spec = benchStream(ctx, { topic: TOPIC, group: "bench-latency" });
    const options = planOptions(ctx);
    const settings = kafkaSettingsOf(spec, options);
    const table = targetRef(spec);
    return withServer(ctx, "latency", async (server, client) => {
        await applyPlan(client, planStream(spec, undefined, options));
        const producer = benchProducer(ctx, "bench-latency");
        const sender = sequencedSender(producer, spec, partitions);
        try {
            log(
                `latency: warm-up (consumer group join), then ${fmt(rate)} msg/s for ${seconds} s (${settings.join(", ")})`,
            );
            const warmupMs = await warmUp(client, table, sender, partitions * 10);
            const watch = watchRows(client, table, sender.sent, Math.ceil(rate * seconds) + rate);
            const cpu = cpuMeter(server, ctx.kafka);
            const run = await produceSteadily(sender, rate, seconds, watch.latencies);
            await watch.drain(run.produced);
            return latencyResult(started, {
                rate,
                ...run,
                ...watch.counts(),
                latencies: watch.latencies,
                warmupMs,
                used: cpu(),
                settings,
            });
        } finally {
            await producer.close();
        }
    });
}

type Sender = ReturnType<typeof sequencedSender>;

/**
 * Sends messages stamped now, numbered in `user_id` from 0 on (`sent` is the next number), each
 * to the next partition in turn.
 */
function sequencedSender(
    producer: ReturnType<typeof benchProducer>,
    spec: StreamSpec,
    partitions: number,
) {
    let tick = 0;
    let seq = 0;
    return {
        get sent(): number {
            return seq;
        },
        async send(count: number): Promise<void> {
            const values = sampleMessages(spec, count, {
                seed: ++tick,
                startMs: Date.now(),
                stepMs: 0,
            });
            await producer.send({
                messages: values.map((value) => {
                    const m = JSON.parse(value) as Record<string, unknown>;
                    m["user_id"] = seq;
                    return {
                        topic: TOPIC,
                        partition: seq++ % partitions,
                        value: JSON.stringify(m),
                    };
                }),
            });
        },
    };
}

/** Sends `count` messages and waits until they are in the target: the consumer has joined. */
async function warmUp(
    client: ClickHouseClient,
    table: string,
    sender: Sender,
    count: number,
): Promise<number> {
    const w0 = now();
    await sender.send(count);
    while ((await countRows(client, table)) < sender.sent) {
        if (elapsedMs(w0) > 90_000)
            throw new Error("latency: warm-up messages did not arrive within 90 s");
        await sleep(POLL_MS);
    }
    return elapsedMs(w0);
}

/**
 * Polls the target every `POLL_MS` for the rows numbered `first` to `first + expected - 1` that
 * became visible, and records each one's latency once, however its parts are merged.
 */
function watchRows(client: ClickHouseClient, table: string, first: number, expected: number) {
    const seenRows = new Uint8Array(expected);
    const seenParts = new Set<string>();
    let low = first;
    const latencies: number[] = [];
    let polling = true;
    let polls = 0;
    let newParts = 0;
    const poller = (async () => {
        while (polling) {
            const t = now();
            const parts = await queryRows<{
                part: string;
                rows: Array<[string | number, string | number]>;
            }>(
                client,
                `SELECT _part AS part, groupArray((user_id, toUnixTimestamp64Milli(event_time))) AS rows FROM ${table} ` +
                    `WHERE _part NOT IN {seen:Array(String)} AND user_id >= {low:UInt64} GROUP BY _part`,
                { seen: [...seenParts], low },
            );
            const at = Date.now();
            polls++;
            for (const p of parts) {
                seenParts.add(p.part);
                let fresh = 0;
                for (const [s, ts] of p.rows) {
                    const i = Number(s) - first;
                    if (i < 0 || i >= expected || seenRows[i]) continue;
                    seenRows[i] = 1;
                    fresh++;
                    latencies.push(at - Number(ts));
                }
                if (fresh > 0) newParts++;
            }
            while (low - first < expected && seenRows[low - first]) low++;
            await sleep(Math.max(0, POLL_MS - elapsedMs(t)));
        }
    })();
    return {
        /** Latency of each row seen so far, ms, in the order seen. */
        latencies,
        /** Waits up to 30 s for `produced` rows to be seen, then stops polling. */
        async drain(produced: number): Promise<void> {
            const drain = Date.now();
            while (latencies.length < produced && Date.now() - drain < 30_000) await sleep(POLL_MS);
            polling = false;
            await poller;
        },
        counts: () => ({ polls, newParts }),
    };
}

/** Sends `rate` messages a second for `seconds`, in ticks of `TICK_MS`. */
async function produceSteadily(
    sender: Sender,
    rate: number,
    seconds: number,
    latencies: readonly number[],
): Promise<{ produced: number; produceMs: number }> {
    const p0 = Date.now();
    let produced = 0;
    const progress = progressLog(10_000);
    while (Date.now() - p0 < seconds * 1000) {
        const due = Math.floor(((Date.now() - p0) * rate) / 1000) - produced;
        if (due > 0) {
            await sender.send(due);
            produced += due;
        }
        const t = Date.now() - p0;
        progress(
            t,
            () =>
                `latency: ${fmt(produced)} produced, ${fmt(latencies.length)} seen after ${(t / 1000).toFixed(0)} s`,
        );
        await sleep(TICK_MS);
    }
    return { produced, produceMs: Date.now() - p0 };
}

function latencyResult(
    started: number,
    m: {
        rate: number;
        produced: number;
        produceMs: number;
        polls: number;
        newParts: number;
        latencies: readonly number[];
        warmupMs: number;
        used: CpuUse;
        settings: readonly string[];
    },
): CaseResult {
    const { rate, produced, produceMs, latencies, used } = m;
    const sorted = [...latencies].sort((a, b) => a - b);
    const p = (q: number) => round(quantile(sorted, q));
    const observedShare = produced > 0 ? latencies.length / produced : 0;
    log(
        `latency: p50 ${p(0.5)} ms, p95 ${p(0.95)} ms, p99 ${p(0.99)} ms over ${fmt(latencies.length)} rows`,
    );
    return {
        name: "latency",
        seconds: caseSeconds(started),
        figures: {
            targetRatePerSec: rate,
            achievedRatePerSec: round((produced / produceMs) * 1000),
            rowsProduced: produced,
            rowsObserved: latencies.length,
            p50Ms: p(0.5),
            p95Ms: p(0.95),
            p99Ms: p(0.99),
            maxMs: p(1),
            pollIntervalMs: POLL_MS,
            warmupMs: round(m.warmupMs),
            partsWithNewRowsPerSec: round(m.newParts / (produceMs / 1000), 1),
            clickhouseCpuSeconds: used.clickhouse,
            brokerCpuSeconds: used.broker,
            otherCpuSeconds: used.other,
            benchCpuSeconds: used.bench,
        },
        details: { kafkaSettings: m.settings, polls: m.polls },
        notes: [
            ...(observedShare < 0.99
                ? [`only ${(observedShare * 100).toFixed(1)}% of the produced rows were observed`]
                : []),
            ...interferenceNotes(used, produceMs),
        ],
    };
}
