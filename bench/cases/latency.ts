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
 *
 * Consumer lag (the group's committed offsets against the log end, from the broker) is sampled
 * once a second during the steady phase (p95 and max reported beside the latencies); then a burst
 * (100,000 messages, 20,000 with --quick) is sent as fast as the producer goes, and the time from
 * its last acknowledgement until the lag is 0 on every partition is reported.
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
import type { PartitionLag } from "../../components/ingestion/health";
import { lagReader } from "../../runtime/kafka-lag";

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
        const lagSource = lagReader(ctx.kafka.bootstrap);
        const reader = {
            lag: () => lagSource.lag("bench-latency", TOPIC),
            close: () => lagSource.close(),
        };
        const sender = sequencedSender(producer, spec, partitions);
        try {
            log(
                `latency: warm-up (consumer group join), then ${fmt(rate)} msg/s for ${seconds} s (${settings.join(", ")})`,
            );
            const warmupMs = await warmUp(client, table, sender, partitions * 10);
            const watch = watchRows(client, table, sender.sent, Math.ceil(rate * seconds) + rate);
            const cpu = cpuMeter(server, ctx.kafka);
            const sampler = sampleLag(reader, partitions);
            const run = await produceSteadily(sender, rate, seconds, watch.latencies);
            const steadyLag = sampler.stop();
            const used = cpu();
            await watch.drain(run.produced);
            const burst = await lagAfterBurst(reader, sender, ctx.options.quick ? 20_000 : 100_000);
            return latencyResult(started, {
                rate,
                ...run,
                ...watch.counts(),
                latencies: watch.latencies,
                warmupMs,
                used,
                settings,
                steadyLag,
                burst,
            });
        } finally {
            await producer.close();
            await reader.close();
        }
    });
}

type Sender = ReturnType<typeof sequencedSender>;
type Lag = { lag(): Promise<readonly PartitionLag[]> };

/** Lag samples (total over partitions) once a second while the steady phase runs. */
function sampleLag(reader: Lag, partitions: number) {
    const samples: number[] = [];
    let last: readonly PartitionLag[] = [];
    let stopped = false;
    const loop = (async () => {
        while (!stopped) {
            try {
                last = await reader.lag();
                samples.push(last.reduce((sum, p) => sum + p.lag, 0));
            } catch {
                // A sample the broker did not answer is left out.
            }
            await sleep(1000);
        }
    })();
    void loop;
    return {
        stop(): { samples: number; maxLag: number; p95Lag: number; lastPerPartition: number[] } {
            stopped = true;
            const sorted = [...samples].sort((a, b) => a - b);
            const perPartition = Array.from(
                { length: partitions },
                (_, i) => last.find((p) => p.partition === i)?.lag ?? -1,
            );
            return {
                samples: samples.length,
                maxLag: sorted.at(-1) ?? -1,
                p95Lag: sorted.length > 0 ? quantile(sorted, 0.95) : -1,
                lastPerPartition: perPartition,
            };
        },
    };
}

/**
 * A burst of `count` messages sent as fast as the producer goes, then the time from its last
 * acknowledgement until the group's committed offsets reach the log end on every partition.
 */
async function lagAfterBurst(
    reader: Lag,
    sender: Sender,
    count: number,
): Promise<{ messages: number; produceMs: number; lagZeroMs: number; peakLag: number }> {
    const t0 = Date.now();
    for (let left = count; left > 0; left -= 10_000) await sender.send(Math.min(10_000, left));
    const produced = Date.now();
    let peakLag = 0;
    const deadline = produced + 120_000;
    while (Date.now() < deadline) {
        const total = (await reader.lag()).reduce((sum, p) => sum + p.lag, 0);
        peakLag = Math.max(peakLag, total);
        if (total === 0) break;
        await sleep(50);
    }
    const lagZeroMs = Date.now() < deadline ? Date.now() - produced : -1;
    log(
        `latency: burst of ${fmt(count)} produced in ${fmt(produced - t0)} ms; lag back to 0 ${lagZeroMs < 0 ? "not within 120 s" : `${fmt(lagZeroMs)} ms after the last send`} (peak lag seen ${fmt(peakLag)})`,
    );
    return { messages: count, produceMs: produced - t0, lagZeroMs, peakLag };
}

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
        steadyLag: { samples: number; maxLag: number; p95Lag: number; lastPerPartition: number[] };
        burst: { messages: number; produceMs: number; lagZeroMs: number; peakLag: number };
    },
): CaseResult {
    const { rate, produced, produceMs, latencies, used } = m;
    const sorted = [...latencies].sort((a, b) => a - b);
    const p = (q: number) => round(quantile(sorted, q));
    const observedShare = produced > 0 ? latencies.length / produced : 0;
    log(
        `latency: p50 ${p(0.5)} ms, p95 ${p(0.95)} ms, p99 ${p(0.99)} ms over ${fmt(latencies.length)} rows; consumer lag during it: p95 ${fmt(m.steadyLag.p95Lag)}, max ${fmt(m.steadyLag.maxLag)} messages (${m.steadyLag.samples} samples)`,
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
            lagP95Messages: m.steadyLag.p95Lag,
            lagMaxMessages: m.steadyLag.maxLag,
            burstMessages: m.burst.messages,
            burstProduceMs: m.burst.produceMs,
            burstLagZeroMs: m.burst.lagZeroMs,
            burstPeakLag: m.burst.peakLag,
        },
        details: {
            kafkaSettings: m.settings,
            polls: m.polls,
            lagPerPartitionAtEnd: m.steadyLag.lastPerPartition,
        },
        notes: [
            ...(observedShare < 0.99
                ? [`only ${(observedShare * 100).toFixed(1)}% of the produced rows were observed`]
                : []),
            ...interferenceNotes(used, produceMs),
        ],
    };
}
