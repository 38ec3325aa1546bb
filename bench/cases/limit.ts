/**
 * Case 3, limits: what the engine and the broker can do at best on this machine.
 *
 * - Bulk insert: the same rows (target column names) sent as one `INSERT ... FORMAT JSONEachRow`
 *   stream over HTTP into a fresh table with exactly the target's generated DDL, parsed with the
 *   stream's format settings. The pipeline parses the same JSON and writes the same table, so this
 *   is the ceiling it is compared with.
 * - Engine floor: the same raw messages (source field names, as produced) inserted in bulk into the
 *   stream's objects exactly as the planner makes them, with its placeholder for the Kafka table (a
 *   Null table with the Kafka table's columns and virtual columns, the views attached): the
 *   engine's own cost of parsing the messages, running the views and writing the target, without
 *   Kafka. What the pipeline costs beyond it is the Kafka engine's.
 * - Broker: Kafka's own consumer perf tool (org.apache.kafka.tools.ConsumerPerformance) reading the
 *   produced messages, i.e. how fast any consumer could get them.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { finished } from "node:stream/promises";
import { kafkaLibDir } from "../../runtime/kafka";
import { caseSeconds, elapsedMs, fmt, log, now, round } from "./clock";
import {
    BENCH_DB,
    BenchContext,
    CaseResult,
    Figure,
    benchStream,
    countRows,
    formatSettingsOf,
    planOptions,
    targetRef,
    withServer,
    withTargetTable,
} from "./common";
import { applyPlan } from "../../components/ingestion/apply";
import { planStream, streamObjectNames } from "../../components/ingestion/planner";
import { quoteIdent } from "../../schemas/sql";
import { clickhouseCpuUsPerRow, cpuMeter, interferenceNotes } from "./cpu";

export async function runLimit(ctx: BenchContext): Promise<CaseResult> {
    const started = now();
    const bulk = await bulkInsert(ctx);
    const floor = await engineFloor(ctx);
    const data = await ctx.data();
    log(`limit: broker consume rate with ConsumerPerformance (${fmt(data.count)} records)`);
    const perf = await consumerPerformance(ctx, data.topic, data.count);
    log(`limit: broker delivers ${fmt(perf.fetchMsgPerSec ?? perf.msgPerSec ?? 0)} msg/s`);
    const figures: Record<string, Figure> = {
        bulkRows: bulk.rows,
        bulkSeconds: bulk.seconds,
        bulkRowsPerSec: bulk.rowsPerSec,
        bulkMbPerSec: bulk.mbPerSec,
        bulkClickhouseCpuSeconds: bulk.clickhouseCpuSeconds,
        bulkClickhouseCpuUsPerRow: bulk.clickhouseCpuUsPerRow,
        bulkOtherCpuSeconds: bulk.otherCpuSeconds,
        floorRowsPerSec: floor.rowsPerSec,
        floorSeconds: floor.seconds,
        floorClickhouseCpuUsPerRow: floor.clickhouseCpuUsPerRow,
        brokerMsgPerSec: perf.msgPerSec,
        brokerMbPerSec: perf.mbPerSec,
        brokerFetchMsgPerSec: perf.fetchMsgPerSec,
        brokerRebalanceMs: perf.rebalanceMs,
    };
    return {
        name: "limit",
        seconds: caseSeconds(started),
        figures,
        details: { consumerPerformance: perf.raw },
        notes: [
            ...bulk.notes,
            ...floor.notes,
            "broker: brokerMsgPerSec includes the group join (brokerRebalanceMs); brokerFetchMsgPerSec excludes it",
        ],
    };
}

/** The produced rows as one JSONEachRow insert into the target's table. */
async function bulkInsert(ctx: BenchContext) {
    return withTargetTable(ctx, "limit", async ({ server, client, spec, table, data }) => {
        log(
            `limit: bulk insert of ${fmt(data.count)} rows (${(data.rowsFileBytes / 1e6).toFixed(1)} MB) as one JSONEachRow stream`,
        );
        const cpu = cpuMeter(server, ctx.kafka);
        const t0 = now();
        const result = await client.exec({
            query: `INSERT INTO ${table} FORMAT JSONEachRow`,
            values: fs.createReadStream(data.rowsFile, { highWaterMark: 1 << 20 }),
            clickhouse_settings: formatSettingsOf(spec),
        });
        // exec resolves once the server has answered, after the insert; the empty body is read
        // to the end so the socket goes back to the pool.
        result.stream.resume();
        await finished(result.stream);
        const ms = elapsedMs(t0);
        const used = cpu();
        const rows = await countRows(client, table);
        if (rows !== data.count)
            throw new Error(`limit: inserted ${rows} rows, expected ${data.count}`);
        const rowsPerSec = (rows / ms) * 1000;
        log(`limit: ${fmt(rows)} rows in ${(ms / 1000).toFixed(2)} s = ${fmt(rowsPerSec)} rows/s`);
        return {
            rows,
            seconds: round(ms / 1000, 2),
            rowsPerSec: round(rowsPerSec),
            mbPerSec: round((data.bytes / 1e6 / ms) * 1000, 1),
            clickhouseCpuSeconds: used.clickhouse,
            clickhouseCpuUsPerRow: clickhouseCpuUsPerRow(used, rows),
            benchCpuSeconds: used.bench,
            otherCpuSeconds: used.other,
            notes: interferenceNotes(used, ms),
        };
    });
}

/** The raw messages through the stream's views into its target, the Kafka table a Null table. */
async function engineFloor(ctx: BenchContext) {
    const data = await ctx.data();
    const spec = benchStream(ctx, { topic: data.topic, group: "bench-floor" });
    return withServer(ctx, "limit-floor", async (server, client) => {
        const plan = planStream(spec, undefined, planOptions(ctx));
        // The plan builds the views on a Null placeholder, then swaps in the Kafka table: stop
        // before the swap.
        const swap = plan.statements.findIndex((st) => st.sql.startsWith("DROP TABLE IF EXISTS"));
        if (swap < 0) throw new Error("limit: the plan has no Kafka-table swap to stop before");
        await applyPlan(client, { ...plan, statements: plan.statements.slice(0, swap) });
        const kafkaTable = `${quoteIdent(BENCH_DB)}.${quoteIdent(streamObjectNames(spec.name).kafka)}`;
        log(`limit: engine floor: ${fmt(data.count)} raw messages through the views, no Kafka`);
        const cpu = cpuMeter(server, ctx.kafka);
        const t0 = now();
        const result = await client.exec({
            query: `INSERT INTO ${kafkaTable} FORMAT JSONEachRow`,
            values: fs.createReadStream(data.messagesFile, { highWaterMark: 1 << 20 }),
            clickhouse_settings: formatSettingsOf(spec),
        });
        result.stream.resume();
        await finished(result.stream);
        const ms = elapsedMs(t0);
        const used = cpu();
        const rows = await countRows(client, targetRef(spec));
        if (rows !== data.count)
            throw new Error(`limit: engine floor wrote ${rows} rows, expected ${data.count}`);
        const rowsPerSec = (rows / ms) * 1000;
        log(`limit: engine floor ${fmt(rowsPerSec)} rows/s`);
        return {
            seconds: round(ms / 1000, 2),
            rowsPerSec: round(rowsPerSec),
            clickhouseCpuUsPerRow: clickhouseCpuUsPerRow(used, rows),
            notes: interferenceNotes(used, ms).map((n) => `engine floor: ${n}`),
        };
    });
}

interface PerfResult {
    msgPerSec: number | null;
    mbPerSec: number | null;
    fetchMsgPerSec: number | null;
    rebalanceMs: number | null;
    raw: Record<string, string>;
}

/** Runs Kafka's consumer perf tool against the topic and parses its summary line. */
async function consumerPerformance(
    ctx: BenchContext,
    topic: string,
    records: number,
): Promise<PerfResult> {
    const lib = await kafkaLibDir();
    const java = process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : "java";
    const args = [
        "-Xmx512m",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-cp",
        `${lib}/*`,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        ctx.kafka.bootstrap,
        "--topic",
        topic,
        "--num-records",
        String(records),
        "--group",
        "bench-consumer-perf",
        "--timeout",
        "30000",
    ];
    const stdout = await new Promise<string>((resolve, reject) => {
        execFile(java, args, { timeout: 300_000, maxBuffer: 16 << 20 }, (err, out, errOut) => {
            if (err)
                reject(
                    new Error(`ConsumerPerformance failed: ${err.message}\n${errOut.slice(-2000)}`),
                );
            else resolve(out);
        });
    });
    const lines = stdout
        .trim()
        .split("\n")
        .filter((l) => l.includes(","));
    const header = lines
        .find((l) => l.startsWith("start.time"))
        ?.split(",")
        .map((s) => s.trim());
    const values = lines
        .at(-1)
        ?.split(",")
        .map((s) => s.trim());
    const raw: Record<string, string> = {};
    if (header && values) header.forEach((h, i) => (raw[h] = values[i] ?? ""));
    const num = (k: string) =>
        raw[k] !== undefined && raw[k] !== "" ? round(Number(raw[k])) : null;
    return {
        msgPerSec: num("nMsg.sec"),
        mbPerSec: raw["MB.sec"] !== undefined ? round(Number(raw["MB.sec"]), 1) : null,
        fetchMsgPerSec: num("fetch.nMsg.sec"),
        rebalanceMs: num("rebalance.time.ms"),
        raw,
    };
}
