/**
 * `npm run bench`: ingestion throughput and latency against the naive way and the physical limit,
 * and plan cost as streams grow, measured side by side in one run on this machine.
 *
 *   tsx bench/index.ts [--quick] [--case <name>[,<name>...]] [--n <count>] [--out <file.json>]
 *                      [--consumer '<json>'] [--rate <msg/s>] [--duration <s>]
 *
 *   --quick       small sizes (100k messages, 10 s of latency, ...): the whole run in under 2 min
 *   --case        pipeline, naive, limit, baselines, latency, plan-cost (default: all, in that
 *                 order)
 *   --n           messages produced ahead for the pipeline and rows of the bulk insert
 *   --out         where the JSON goes (default bench/results/<timestamp>.json)
 *   --consumer    consumer settings merged into the bench stream, e.g. '{"flushIntervalMs":250}'
 *                 (tuning experiments; default none: what the planner generates)
 *   --rate, --duration   the latency case's produce rate and length
 *
 * It starts what it needs (a Kafka broker, a ClickHouse server per case, see bench/cases/common.ts),
 * prints progress on stderr, the table and the ratios on stdout, and writes the JSON with the
 * machine's facts. Exit code 1 when a case failed (the others still run and are reported).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs as parseCommandLine } from "node:util";
import { KAFKA_VERSION, KafkaBroker, startKafka } from "../runtime/kafka";
import {
    BenchContext,
    BenchOptions,
    CASE_NAMES,
    CaseName,
    CaseResult,
    Figure,
    ProducedData,
    elapsedMs,
    loadExample,
    log,
    now,
    queryRows,
    round,
    withServer,
} from "./cases/common";
import { produceData } from "./cases/data";
import { runBaselines } from "./cases/baselines";
import { runLatency } from "./cases/latency";
import { runLimit } from "./cases/limit";
import { runNaive } from "./cases/naive";
import { runPipeline } from "./cases/pipeline";
import { runPlanCost } from "./cases/plan-cost";

const ROOT = path.resolve(__dirname, "..");

const RUNNERS: Record<CaseName, (ctx: BenchContext) => Promise<CaseResult>> = {
    pipeline: runPipeline,
    naive: runNaive,
    limit: runLimit,
    baselines: runBaselines,
    latency: runLatency,
    "plan-cost": runPlanCost,
};

interface Args {
    readonly options: BenchOptions;
    readonly cases: readonly CaseName[];
    readonly out: string | undefined;
}

function usage(message: string): never {
    process.stderr.write(
        `${message}\nusage: tsx bench/index.ts [--quick] [--case <${CASE_NAMES.join("|")}>[,...]] [--n <count>] ` +
            `[--out <file.json>] [--consumer '<json>'] [--rate <msg/s>] [--duration <s>]\n`,
    );
    process.exit(2);
}

export function parseArgs(argv: readonly string[]): Args {
    let values;
    try {
        ({ values } = parseCommandLine({
            args: [...argv],
            strict: true,
            allowPositionals: false,
            options: {
                quick: { type: "boolean" },
                case: { type: "string", multiple: true },
                n: { type: "string" },
                out: { type: "string" },
                consumer: { type: "string" },
                rate: { type: "string" },
                duration: { type: "string" },
            },
        }));
    } catch (e) {
        usage(e instanceof Error ? e.message : String(e));
    }
    const quick = values.quick ?? false;
    const cases: CaseName[] = [];
    for (const c of (values.case ?? []).flatMap((v) => v.split(","))) {
        if (!(CASE_NAMES as readonly string[]).includes(c))
            usage(`unknown case ${JSON.stringify(c)}`);
        cases.push(c as CaseName);
    }
    const positive = (flag: string, v: string | undefined) => {
        if (v === undefined) return undefined;
        const x = Number(v);
        if (!Number.isInteger(x) || x <= 0)
            usage(`${flag} needs a positive integer, not ${JSON.stringify(v)}`);
        return x;
    };
    const n = positive("--n", values.n);
    const rate = positive("--rate", values.rate);
    const duration = positive("--duration", values.duration);
    const out = values.out === undefined ? undefined : path.resolve(values.out);
    let consumer: BenchOptions["consumer"] = {};
    if (values.consumer !== undefined) {
        try {
            consumer = JSON.parse(values.consumer) as BenchOptions["consumer"];
        } catch {
            usage("--consumer needs a JSON object, e.g. '{\"flushIntervalMs\":500}'");
        }
    }
    const options: BenchOptions = {
        quick,
        messages: n ?? (quick ? 100_000 : 1_000_000),
        naiveMaxMessages: quick ? 2_000 : 20_000,
        naiveMaxSeconds: quick ? 10 : 60,
        latencyRate: rate ?? 5_000,
        latencySeconds: duration ?? (quick ? 10 : 60),
        planSizes: [1, 10, 50, 200],
        planAppliedMax: quick ? 50 : 200,
        consumer,
    };
    const ordered = CASE_NAMES.filter((c) => cases.length === 0 || cases.includes(c));
    return { options, cases: ordered, out };
}

// ---------------------------------------------------------------------------------------------
// Machine facts

function tryRun(cmd: string, args: string[]): string | null {
    try {
        // java -version prints on stderr.
        return (
            execFileSync(cmd, args, {
                encoding: "utf8",
                stdio: ["ignore", "pipe", "pipe"],
            }).trim() || null
        );
    } catch (e) {
        const err = e as { stderr?: string };
        return err.stderr?.trim() || null;
    }
}

function packageVersion(name: string): string | null {
    try {
        const file = path.join(ROOT, "node_modules", name, "package.json");
        return (JSON.parse(fs.readFileSync(file, "utf8")) as { version?: string }).version ?? null;
    } catch {
        return null;
    }
}

function machineFacts(
    clickhouseVersion: string | null,
    loadAtStart: readonly number[],
): Record<string, unknown> {
    const cpus = os.cpus();
    const javaVersion = tryRun(
        process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : "java",
        ["-version"],
    );
    const dirty = tryRun("git", ["-C", ROOT, "status", "--porcelain"]);
    return {
        cores: cpus.length,
        cpuModel: cpus[0]?.model ?? null,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        java: javaVersion?.split("\n")[0] ?? null,
        kafka: KAFKA_VERSION,
        clickhouse: clickhouseVersion,
        chdb: packageVersion("chdb"),
        clickhouseClient: packageVersion("@clickhouse/client"),
        platformaticKafka: packageVersion("@platformatic/kafka"),
        gitCommit: tryRun("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]),
        gitDirty: dirty !== null && dirty.length > 0,
        // Other work on the machine makes every figure pessimistic; cases report what they saw.
        loadAverageAtStart: loadAtStart.map((l) => round(l, 2)),
        loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)),
    };
}

// ---------------------------------------------------------------------------------------------
// Ratios, targets and the table

interface Target {
    readonly name: string;
    readonly target: string;
    readonly measured: string;
    readonly met: boolean | null;
    readonly note: string;
}

function fig(results: Map<CaseName, CaseResult>, c: CaseName, k: string): number | undefined {
    const v = results.get(c)?.figures[k];
    return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function evaluate(results: Map<CaseName, CaseResult>): {
    ratios: Record<string, Figure>;
    targets: Target[];
} {
    const ratios = ratiosOf(results);
    const targets = [
        limitTarget(results, ratios),
        naiveTarget(ratios),
        latencyTarget(results),
        planCostTarget(results),
    ].filter((t): t is Target => t !== undefined);
    return { ratios, targets };
}

function ratiosOf(results: Map<CaseName, CaseResult>): Record<string, Figure> {
    const pipe = fig(results, "pipeline", "rowsPerSec");
    const steady = fig(results, "pipeline", "steadyRowsPerSec");
    const bulk = fig(results, "limit", "bulkRowsPerSec");
    const naive = fig(results, "naive", "rowsPerSec");
    const naiveBound = fig(results, "naive", "rowsPerSecLessRoundTrip");
    const broker = fig(results, "limit", "brokerFetchMsgPerSec");
    const batched = fig(results, "pipeline", "batched100RowsPerSec");
    const pipeCpu = fig(results, "pipeline", "clickhouseCpuUsPerRow");
    const bulkCpu = fig(results, "limit", "bulkClickhouseCpuUsPerRow");
    return {
        pipelineOverLimit: pipe !== undefined && bulk ? round(pipe / bulk, 3) : null,
        pipelineSteadyOverLimit: steady !== undefined && bulk ? round(steady / bulk, 3) : null,
        pipelineBatched100OverLimit:
            batched !== undefined && bulk ? round(batched / bulk, 3) : null,
        pipelineOverNaive: pipe !== undefined && naive ? round(pipe / naive, 1) : null,
        pipelineOverNaiveLessRoundTrip:
            pipe !== undefined && naiveBound ? round(pipe / naiveBound, 1) : null,
        pipelineOverBrokerConsume: pipe !== undefined && broker ? round(pipe / broker, 3) : null,
        pipelineCpuPerRowOverLimit:
            pipeCpu !== undefined && bulkCpu ? round(pipeCpu / bulkCpu, 2) : null,
        ...baselineRatios(results),
        ...floorRatios(results),
    };
}

/** The pipeline against the engine's own floor (the same messages through the views, no Kafka). */
function floorRatios(results: Map<CaseName, CaseResult>): Record<string, Figure> {
    const steady = fig(results, "pipeline", "steadyRowsPerSec");
    const pipeCpu = fig(results, "pipeline", "clickhouseCpuUsPerRow");
    const floor = fig(results, "limit", "floorRowsPerSec");
    const floorCpu = fig(results, "limit", "floorClickhouseCpuUsPerRow");
    return {
        pipelineSteadyOverEngineFloor:
            steady !== undefined && floor ? round(steady / floor, 3) : null,
        pipelineCpuPerRowOverEngineFloor:
            pipeCpu !== undefined && floorCpu ? round(pipeCpu / floorCpu, 2) : null,
    };
}

/**
 * Rows per CPU second (every process that works for the rows: ClickHouse, the broker, and for the
 * baselines the client) of the pipeline, and the pipeline's over each baseline's.
 */
function baselineRatios(results: Map<CaseName, CaseResult>): Record<string, Figure> {
    const rows = fig(results, "pipeline", "rows");
    const ch = fig(results, "pipeline", "clickhouseCpuSeconds");
    const broker = fig(results, "pipeline", "brokerCpuSeconds") ?? 0;
    const pipeline = rows !== undefined && ch ? rows / (ch + broker) : undefined;
    const out: Record<string, Figure> = {
        pipelineRowsPerCpuSecond: pipeline !== undefined ? round(pipeline) : null,
    };
    for (const mode of ["batching", "asyncInsert"]) {
        const b = fig(results, "baselines", `${mode}RowsPerCpuSecond`);
        out[`pipelineRowsPerCpuOver_${mode}`] =
            pipeline !== undefined && b ? round(pipeline / b, 2) : null;
    }
    return out;
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function limitTarget(
    results: Map<CaseName, CaseResult>,
    ratios: Record<string, Figure>,
): Target | undefined {
    if (ratios.pipelineOverLimit === null) return undefined;
    const r = ratios.pipelineOverLimit as number;
    const batchedCpu = fig(results, "pipeline", "batched100ClickhouseCpuUsPerRow");
    const pipeCpu = fig(results, "pipeline", "clickhouseCpuUsPerRow");
    const bulkCpu = fig(results, "limit", "bulkClickhouseCpuUsPerRow");
    return {
        name: "pipeline >= 70% of the bulk-insert limit",
        target: ">= 70%",
        measured: pct(r),
        met: r >= 0.7,
        note:
            r >= 0.7
                ? ""
                : `missed by ${((0.7 - r) * 100).toFixed(0)} points; ClickHouse CPU per row: pipeline ${pipeCpu ?? "?"} us, bulk insert ${bulkCpu ?? "?"} us` +
                  (ratios.pipelineSteadyOverLimit !== null
                      ? `; after start-up ${pct(ratios.pipelineSteadyOverLimit as number)}`
                      : "") +
                  (ratios.pipelineBatched100OverLimit !== null
                      ? `; the same rows 100 per message: ${pct(ratios.pipelineBatched100OverLimit as number)} at ${batchedCpu ?? "?"} us per row${perMessageShare(pipeCpu, batchedCpu)}`
                      : ""),
    };
}

/**
 * What the batched case says about where the CPU goes, computed from the two figures: the share
 * of the pipeline's CPU per row that packing 100 rows per message removes.
 */
export function perMessageShare(
    pipeCpu: number | undefined,
    batchedCpu: number | undefined,
): string {
    if (pipeCpu === undefined || batchedCpu === undefined || pipeCpu <= 0) return "";
    const share = Math.max(0, (pipeCpu - batchedCpu) / pipeCpu);
    const saved = round(pipeCpu - batchedCpu, 1);
    return share >= 0.5
        ? `, so ${pct(share)} of the CPU per row (${saved} us) goes with the number of Kafka messages`
        : `, so only ${pct(share)} of the CPU per row goes with the number of Kafka messages: most of it is per row`;
}

function naiveTarget(ratios: Record<string, Figure>): Target | undefined {
    if (ratios.pipelineOverNaive === null) return undefined;
    const r = ratios.pipelineOverNaive as number;
    return {
        name: "pipeline >= 50x the naive loop",
        target: ">= 50x",
        measured: `${r}x`,
        met: r >= 50,
        note:
            (r >= 50 ? "" : `missed by ${(50 - r).toFixed(1)}x; `) +
            (ratios.pipelineOverNaiveLessRoundTrip !== null
                ? `${ratios.pipelineOverNaiveLessRoundTrip}x against the loop without the test server's per-request cost`
                : ""),
    };
}

function latencyTarget(results: Map<CaseName, CaseResult>): Target | undefined {
    const p95 = fig(results, "latency", "p95Ms");
    if (p95 === undefined) return undefined;
    const rate = fig(results, "latency", "targetRatePerSec");
    return {
        name: `p95 produce-to-queryable < 1 s at ${rate ?? "?"} msg/s`,
        target: "< 1000 ms",
        measured: `${p95} ms`,
        met: p95 < 1000,
        note: p95 < 1000 ? "" : `missed by ${Math.round(p95 - 1000)} ms`,
    };
}

function planCostTarget(results: Map<CaseName, CaseResult>): Target | undefined {
    const plan = results.get("plan-cost");
    if (!plan) return undefined;
    const constant =
        plan.figures["constantPerStream"] === true && plan.figures["independentOfColumns"] === true;
    return {
        name: "plan-cost queries constant per stream (no growth per column or per stream)",
        target: "constant",
        measured: `${plan.figures["queriesPerStream"]} per stream`,
        met: constant,
        note: constant
            ? "total = that constant x streams (one check per resource)"
            : "grows: see details",
    };
}

function formatValue(v: Figure): string {
    if (typeof v === "number") return Number.isInteger(v) ? v.toLocaleString("en-US") : String(v);
    return v === null ? "-" : String(v);
}

function printTable(
    results: Map<CaseName, CaseResult>,
    errors: Map<CaseName, string>,
    ratios: Record<string, Figure>,
    targets: Target[],
): void {
    const lines: string[] = [];
    const rows: Array<[string, string, string]> = [];
    for (const name of CASE_NAMES) {
        const r = results.get(name);
        if (r) {
            for (const [k, v] of Object.entries(r.figures)) rows.push([name, k, formatValue(v)]);
            rows.push([name, "caseSeconds", formatValue(r.seconds)]);
        } else if (errors.has(name)) rows.push([name, "FAILED", errors.get(name)!.split("\n")[0]!]);
    }
    for (const [k, v] of Object.entries(ratios)) rows.push(["ratio", k, formatValue(v)]);
    const w0 = Math.max(...rows.map((r) => r[0].length), 4);
    const w1 = Math.max(...rows.map((r) => r[1].length), 6);
    lines.push(`${"case".padEnd(w0)}  ${"figure".padEnd(w1)}  value`);
    lines.push(`${"-".repeat(w0)}  ${"-".repeat(w1)}  ${"-".repeat(12)}`);
    let last = "";
    for (const [c, k, v] of rows) {
        lines.push(`${(c === last ? "" : c).padEnd(w0)}  ${k.padEnd(w1)}  ${v}`);
        last = c;
    }
    lines.push("");
    for (const t of targets) {
        const mark = t.met === null ? "?" : t.met ? "MET   " : "MISSED";
        lines.push(
            `${mark} ${t.name}: ${t.measured} (target ${t.target})${t.note ? `; ${t.note}` : ""}`,
        );
    }
    for (const name of CASE_NAMES) {
        for (const note of results.get(name)?.notes ?? []) lines.push(`note (${name}): ${note}`);
    }
    process.stdout.write(lines.join("\n") + "\n");
}

// ---------------------------------------------------------------------------------------------

/**
 * runtime/kafka.ts formats storage with a random base64url cluster id, which StorageTool
 * reads as an option when it starts with "-" (about 1 run in 64); a second try gets another id.
 */
async function startBroker(): Promise<KafkaBroker> {
    for (let attempt = 1; ; attempt++) {
        try {
            return await startKafka();
        } catch (e) {
            const retry = attempt < 3 && /--cluster-id\/-t: expected one argument/.test(String(e));
            if (!retry) throw e;
            log("kafka: storage format refused a cluster id starting with '-'; retrying");
        }
    }
}

async function main(): Promise<number> {
    const { options, cases, out } = parseArgs(process.argv.slice(2));
    const startedAt = new Date();
    const loadAtStart = os.loadavg();
    const t0 = now();
    log(
        `cases: ${cases.join(", ")}${options.quick ? " (quick)" : ""}; ${os.cpus().length} cores, ${round(os.totalmem() / 2 ** 30, 1)} GiB, load ${loadAtStart.map((l) => l.toFixed(1)).join(" ")}`,
    );
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-bench-"));
    let kafka: KafkaBroker | undefined;
    const results = new Map<CaseName, CaseResult>();
    const errors = new Map<CaseName, string>();
    let clickhouseVersion: string | null = null;
    try {
        log("kafka: starting the broker");
        kafka = await startBroker();
        const broker = kafka;
        let data: Promise<ProducedData> | undefined;
        const ctx: BenchContext = {
            options,
            kafka: broker,
            scratch,
            example: loadExample(),
            data: () => (data ??= produceData(ctx)),
        };
        clickhouseVersion = await withServer(ctx, "facts", async (_s, client) => {
            const [r] = await queryRows<{ v: string }>(client, "SELECT version() AS v");
            return r?.v ?? null;
        });
        for (const name of cases) {
            log(`=== ${name}`);
            try {
                results.set(name, await RUNNERS[name](ctx));
            } catch (e) {
                const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
                errors.set(name, message);
                log(`${name} FAILED: ${message}`);
            }
        }
    } finally {
        await kafka?.stop();
        fs.rmSync(scratch, { recursive: true, force: true });
    }
    const { ratios, targets } = evaluate(results);
    process.stdout.write("\n");
    printTable(results, errors, ratios, targets);
    const file =
        out ??
        path.join(
            ROOT,
            "bench",
            "results",
            `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`,
        );
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const report = {
        startedAt: startedAt.toISOString(),
        totalSeconds: round(elapsedMs(t0) / 1000, 1),
        argv: process.argv.slice(2),
        options,
        machine: machineFacts(clickhouseVersion, loadAtStart),
        cases: Object.fromEntries(results),
        errors: Object.fromEntries(errors),
        ratios,
        targets,
    };
    fs.writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
    log(`results: ${path.relative(process.cwd(), file)} (${report.totalSeconds} s)`);
    return errors.size > 0 ? 1 : 0;
}

if (require.main === module) {
    main().then(
        (code) => process.exit(code),
        (e: unknown) => {
            process.stderr.write(
                `bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
            );
            process.exit(1);
        },
    );
}
