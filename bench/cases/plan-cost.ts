/**
 * Case 5, plan cost: what `pulumi preview` costs ClickHouse as streams grow. For 1, 10, 50 and 200
 * streams (derived from the example streams: distinct names and topics) the dynamic provider's own
 * `check` and `diff` run as the engine calls them, against a ClickHouse server behind a counting
 * HTTP proxy: every request the provider makes is counted (each is one query), with its kind.
 *
 * Two states are previewed:
 * - new: the streams' objects do not exist yet (first preview of a stack, database present);
 * - applied: the streams were created by the provider (`create`), nothing changed since; the
 *   preview must report no change.
 *
 * Checks run 10 at a time, as the engine checks resources concurrently. A wide variant of the
 * example stream (60 columns) shows whether the count depends on columns.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { ConnectionSpec } from "../../components/ingestion/connection";
import {
    StreamIngestionInputs,
    StreamIngestionOutputs,
    providerImplementation,
} from "../../components/ingestion/provider";
import { loadStreams } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import { caseSeconds, elapsedMs, log, now, round } from "./clock";
import { BENCH_DB, BenchContext, CaseResult, Figure, withServer } from "./common";

const CONCURRENCY = 10;

interface Count {
    queries: number;
    connections: number;
    byKind: Record<string, number>;
}

/** An HTTP proxy in front of the server that counts requests (queries) and TCP connections. */
async function countingProxy(upstream: string) {
    const target = new URL(upstream);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    let count: Count = { queries: 0, connections: 0, byKind: {} };
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks);
            const url = new URL(req.url ?? "/", "http://x");
            if (url.pathname === "/") {
                count.queries++;
                const kind = queryKind(
                    url.searchParams.get("query") ?? body.toString("utf8", 0, 2000),
                );
                count.byKind[kind] = (count.byKind[kind] ?? 0) + 1;
            }
            const up = http.request(
                {
                    host: target.hostname,
                    port: target.port,
                    method: req.method,
                    path: req.url,
                    headers: { ...req.headers, host: target.host },
                    agent,
                },
                (upRes) => {
                    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
                    upRes.pipe(res);
                },
            );
            up.on("error", (e) => {
                res.writeHead(502);
                res.end(String(e));
            });
            up.end(body);
        });
    });
    server.on("connection", () => count.connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    return {
        url: `http://127.0.0.1:${port}`,
        take(): Count {
            const c = count;
            count = { queries: 0, connections: 0, byKind: {} };
            return c;
        },
        async close() {
            server.closeAllConnections();
            await new Promise<void>((r) => server.close(() => r()));
            agent.destroy();
        },
    };
}

/** What a provider query is for, from its text (the queries of introspect.ts and apply.ts). */
function queryKind(sql: string): string {
    const s = sql.replace(/\s+/g, " ").trim();
    if (s.includes("system.detached_tables")) return "presence (system.databases, detached_tables)";
    if (/FROM system\.tables/.test(s)) return "system.tables";
    if (/FROM system\.columns/.test(s)) return "system.columns";
    if (s.includes("formatQuerySingleLineOrNull")) return "canonical forms";
    return s.split(" ").slice(0, 3).join(" ");
}

/** Stream i: example i mod 3 under a distinct name and topic. */
function derived(examples: readonly StreamSpec[], prefix: string, i: number): StreamSpec {
    const ex = examples[i % examples.length]!;
    return {
        ...ex,
        name: `${ex.name}_${prefix}${i}`,
        topic: { ...ex.topic, name: `${ex.topic.name}.${prefix}${i}` },
    };
}

/** Runs `f` over `items`, `limit` at a time. */
async function eachLimit<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>) {
    let next = 0;
    const worker = async () => {
        while (next < items.length) await f(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

interface SizeRow {
    streams: number;
    state: "new" | "applied";
    queries: number;
    queriesPerStream: number;
    connections: number;
    ms: number;
    byKind: Record<string, number>;
    changes: number;
}

export async function runPlanCost(ctx: BenchContext): Promise<CaseResult> {
    const started = now();
    const examples = loadStreams().map((l) => l.spec);
    const sizes = [...ctx.options.planSizes].sort((a, b) => a - b);
    return withServer(ctx, "plan-cost", async (server, client) => {
        const proxy = await countingProxy(server.url);
        try {
            const provider = countedProvider(ctx, proxy);
            await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${BENCH_DB}` });
            const rows = await previewSizes(ctx, provider, examples, sizes);
            const perExample = await queriesPerExample(provider, examples);
            return planCostResult(started, rows, perExample);
        } finally {
            await proxy.close();
        }
    });
}

type Proxy = Awaited<ReturnType<typeof countingProxy>>;
type Provider = ReturnType<typeof countedProvider>;

/** The provider's calls as the engine makes them, through the counting proxy. */
function countedProvider(ctx: BenchContext, proxy: Proxy) {
    const impl = providerImplementation;
    const connection: ConnectionSpec = {
        kind: "http",
        url: proxy.url,
        allowInsecureHttp: true, // the counting proxy on loopback
    };
    const inputs = (stream: StreamSpec): StreamIngestionInputs => ({
        stream,
        database: BENCH_DB,
        kafkaBrokers: ctx.kafka.bootstrap,
        connection,
    });
    /** One preview of these streams: check each (and diff the existing ones). */
    const preview = async (
        streams: readonly StreamSpec[],
        olds: ReadonlyMap<string, StreamIngestionOutputs>,
    ) => {
        let changes = 0;
        const failures: string[] = [];
        proxy.take();
        const t0 = now();
        await eachLimit(streams, CONCURRENCY, async (s) => {
            const old = olds.get(s.name);
            const news = inputs(s);
            const checked = await impl.check(old ? inputs(old.stream) : {}, news);
            for (const f of checked.failures ?? []) failures.push(`${s.name}: ${f.reason}`);
            if (!old) {
                if ((checked.inputs as StreamIngestionInputs).plannedStatements?.length) changes++;
                return;
            }
            const diff = await impl.diff(
                `${BENCH_DB}.${s.name}`,
                old,
                checked.inputs as StreamIngestionInputs,
            );
            if (diff.changes) changes++;
        });
        const ms = elapsedMs(t0);
        if (failures.length > 0)
            throw new Error(`plan-cost: check failed:\n${failures.slice(0, 5).join("\n")}`);
        return { ms, changes, count: proxy.take() };
    };
    /** Creates the streams not created yet (their queries are not counted). */
    const create = async (
        streams: readonly StreamSpec[],
        applied: Map<string, StreamIngestionOutputs>,
    ) => {
        const missing = streams.filter((s) => !applied.has(s.name));
        const c0 = now();
        await eachLimit(missing, CONCURRENCY, async (s) => {
            const created = await impl.create(inputs(s));
            applied.set(s.name, created.outs as StreamIngestionOutputs);
        });
        proxy.take();
        log(`plan-cost: created ${missing.length} stream(s) in ${Math.round(elapsedMs(c0))} ms`);
    };
    return { preview, create };
}

/** For each size: a preview of that many new streams, then (small sizes) of applied ones. */
async function previewSizes(
    ctx: BenchContext,
    provider: Provider,
    examples: readonly StreamSpec[],
    sizes: readonly number[],
): Promise<SizeRow[]> {
    const rows: SizeRow[] = [];
    const applied = new Map<string, StreamIngestionOutputs>();
    for (const size of sizes) {
        const fresh = Array.from({ length: size }, (_, i) => derived(examples, "n", i));
        const n = await provider.preview(fresh, new Map());
        rows.push(row(size, "new", n));
        log(
            `plan-cost: ${size} new stream(s): ${n.count.queries} queries in ${Math.round(n.ms)} ms`,
        );
        if (size > ctx.options.planAppliedMax) continue;
        const existing = Array.from({ length: size }, (_, i) => derived(examples, "a", i));
        await provider.create(existing, applied);
        const a = await provider.preview(existing, applied);
        rows.push(row(size, "applied", a));
        log(
            `plan-cost: ${size} applied stream(s): ${a.count.queries} queries in ${Math.round(a.ms)} ms, ${a.changes} with changes`,
        );
    }
    return rows;
}

/** Queries of one new stream's check per example, and for a 60-column stream: columns' share. */
async function queriesPerExample(
    provider: Provider,
    examples: readonly StreamSpec[],
): Promise<Record<string, number>> {
    const web = examples.find((e) => e.name === "web_events") ?? examples[0]!;
    const wide: StreamSpec = {
        ...web,
        name: "wide_events",
        topic: { ...web.topic, name: "wide.events" },
        columns: [
            ...web.columns,
            ...Array.from({ length: 60 - web.columns.length }, (_, i) => ({
                name: `extra_${i}`,
                type: "String",
                default: "''",
            })),
        ],
    };
    const w = await provider.preview([wide], new Map());
    const perExample: Record<string, number> = {};
    for (const ex of examples) {
        const one = await provider.preview([derived([ex], "x", 0)], new Map());
        perExample[`${ex.name} (${ex.columns.length} columns)`] = one.count.queries;
    }
    perExample[`wide_events (${wide.columns.length} columns)`] = w.count.queries;
    return perExample;
}

function planCostResult(
    started: number,
    rows: readonly SizeRow[],
    perExample: Record<string, number>,
): CaseResult {
    const perStream = new Set(rows.map((r) => r.queriesPerStream));
    const constantPerStream = perStream.size === 1;
    const columnIndependent = new Set(Object.values(perExample)).size === 1;
    const figures: Record<string, Figure> = {};
    for (const r of rows) {
        figures[`${r.state}${r.streams}Queries`] = r.queries;
        figures[`${r.state}${r.streams}Ms`] = round(r.ms);
    }
    figures["queriesPerStream"] = constantPerStream ? [...perStream][0]! : [...perStream].join("/");
    figures["constantPerStream"] = constantPerStream;
    figures["independentOfColumns"] = columnIndependent;
    figures["appliedWithChanges"] = rows
        .filter((r) => r.state === "applied")
        .reduce((a, r) => a + r.changes, 0);
    const kinds = rows.at(-1)?.byKind ?? {};
    return {
        name: "plan-cost",
        seconds: caseSeconds(started),
        figures,
        details: { rows, perExample, concurrency: CONCURRENCY },
        notes: [
            `per stream, check issues ${Object.entries(kinds)
                .map(([k, v]) => `${round(v / (rows.at(-1)?.streams ?? 1), 2)} x ${k}`)
                .join(", ")}; diff issues none`,
            "the total is (queries per stream) x streams: Pulumi checks each resource on its own " +
                "(components/ingestion/provider-impl.ts check -> apply.ts planFromServer -> " +
                "introspect.ts readStreamState (3 queries) + canonicalize (1))",
        ],
    };
}

function row(
    streams: number,
    state: "new" | "applied",
    r: { ms: number; changes: number; count: Count },
): SizeRow {
    return {
        streams,
        state,
        queries: r.count.queries,
        queriesPerStream: round(r.count.queries / streams, 2),
        connections: r.count.connections,
        ms: round(r.ms),
        byKind: r.count.byKind,
        changes: r.changes,
    };
}
