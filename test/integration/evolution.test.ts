/**
 * Acceptance 2 (property: evolving old -> new yields exactly new) and 4 (failure after any
 * statement converges on the next run), against the real engine.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { ClickHouseClient } from "@clickhouse/client";
import { validateStream } from "../../schemas/loader";
import { StreamInput, StreamSpec } from "../../schemas/model";
import { applyPlan, planFromServer, reconcile } from "../../components/ingestion/apply";
import {
    readStreamState,
    summarizeState,
    StateSummary,
} from "../../components/ingestion/introspect";
import { PlanOptions, streamObjectNames } from "../../components/ingestion/planner";
import { EmbeddedClickHouse, openEmbedded, queryRows } from "../harness/clickhouse";
import { KafkaBroker, startKafka } from "../../runtime/kafka";

let ch: EmbeddedClickHouse;
let client: ClickHouseClient;
/** A second session on the same engine: drops run beside the next case (a Kafka table with
 * running consumers takes ~0.5 s to shut down, and nothing waits for it). */
let janitor: { queryAsync(sql: string): Promise<unknown>; close(): void };
const drops: Array<Promise<unknown>> = [];
const dropLater = (db: string) =>
    drops.push(janitor.queryAsync(`DROP DATABASE IF EXISTS ${db} SYNC`));
// A recreated Kafka table's consumer waits until the dropped one's group membership times out
// (the engine does not leave the group on DROP): 6 s here instead of librdkafka's 45 s.
const CONFIG =
    "<clickhouse><kafka><session_timeout_ms>6000</session_timeout_ms><heartbeat_interval_ms>1000</heartbeat_interval_ms></kafka></clickhouse>\n";
before(async () => {
    ch = await openEmbedded(undefined, { configXml: CONFIG });
    client = ch.client;
    janitor = new (require("chdb") as typeof import("chdb")).Session(ch.path);
});
after(async () => {
    await Promise.all(drops);
    janitor?.close();
    await ch?.close();
});

const BROKERS = "127.0.0.1:1";
const ROWS = 25;
let dbSeq = 0;
const freshDb = (prefix: string) => `${prefix}_${++dbSeq}`;
const opts = (database: string, allow = true): PlanOptions => ({
    database,
    kafkaBrokers: BROKERS,
    allowDestructiveChanges: allow,
});

/** Inserts ROWS distinct rows into the target; each column gets a value its type family accepts. */
async function insertRows(db: string, spec: StreamSpec): Promise<void> {
    const values = spec.columns.map((c) =>
        c.name === "ts"
            ? "now() - number"
            : `CAST(toString(number), '${c.type.replace(/'/g, "\\'")}')`,
    );
    await client.command({
        query: `INSERT INTO ${db}.${spec.name} (${spec.columns.map((c) => c.name).join(", ")}) SELECT ${values.join(", ")} FROM numbers(${ROWS})`,
    });
}

/** count() and a checksum over the given columns (as text, so a lossless retype keeps it). */
async function fingerprint(
    db: string,
    table: string,
    columns: string[],
): Promise<{ n: string; h: string }> {
    const expr = columns.length
        ? `sum(cityHash64(${columns.map((c) => `toString(${c})`).join(", ")}))`
        : "0";
    return (
        await queryRows<{ n: string; h: string }>(
            client,
            `SELECT toString(count()) AS n, toString(${expr}) AS h FROM ${db}.${table}`,
        )
    )[0]!;
}

/** Every table in the database, attached or detached. */
async function objectsIn(db: string): Promise<string[]> {
    const rows = await queryRows<{ name: string }>(
        client,
        "SELECT name FROM system.tables WHERE database = {db:String} UNION ALL SELECT concat(table, ' (detached)') AS name FROM system.detached_tables WHERE database = {db:String}",
        { db },
    );
    return rows.map((r) => r.name).sort();
}

async function summaryOf(db: string, stream: string): Promise<StateSummary> {
    return summarizeState(await readStreamState(client, db, stream));
}

// ---------------------------------------------------------------------------------------------
// Stream generator: column names keep their type family, so data converts across every change.
// ---------------------------------------------------------------------------------------------

const NUMERIC = ["UInt32", "UInt64", "Int64", "Float64", "Nullable(UInt64)"];
const TEXT = ["String", "LowCardinality(String)", "Nullable(String)"];
const OPTIONAL = [
    { name: "a", family: NUMERIC },
    { name: "b", family: NUMERIC },
    { name: "c", family: TEXT },
    { name: "d", family: TEXT },
];

const streamArbitrary: fc.Arbitrary<StreamSpec> = fc
    .record({
        present: fc.subarray(OPTIONAL.map((o) => o.name)),
        order: fc.shuffledSubarray(OPTIONAL.map((o) => o.name)),
        types: fc.tuple(...OPTIONAL.map((o) => fc.constantFrom(...o.family))),
        defaults: fc.tuple(...OPTIONAL.map(() => fc.boolean())),
        key: fc.constantFrom("id", "ts,id", "id,a"),
        partition: fc.boolean(),
        ttlDays: fc.option(fc.constantFrom(30, 400), { nil: undefined }),
        consumers: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
        flush: fc.option(fc.constantFrom(250, 1000), { nil: undefined }),
        skipUnknown: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
        onError: fc.constantFrom("deadLetter" as const, "fail" as const),
        replacing: fc.boolean(),
        description: fc.constantFrom(undefined, "first", "second"),
        group: fc.constantFrom(undefined, "custom-group"),
    })
    .map((r) => {
        const optional = r.order
            .filter((n) => r.present.includes(n))
            .map((name) => {
                const i = OPTIONAL.findIndex((o) => o.name === name);
                const type = r.types[i]!;
                const def =
                    r.defaults[i] && name !== "a"
                        ? OPTIONAL[i]!.family === TEXT
                            ? "'x'"
                            : "7"
                        : undefined;
                return { name, type, ...(def !== undefined ? { default: def } : {}) };
            });
        const hasA = optional.some((c) => c.name === "a" && !c.type.startsWith("Nullable"));
        const input: StreamInput = {
            name: "prop",
            ...(r.description ? { description: r.description } : {}),
            topic: { name: "prop.topic", partitions: 2 },
            columns: [
                { name: "id", type: "UInt64" },
                { name: "ts", type: "DateTime" },
                ...optional,
            ],
            orderBy: r.key === "id,a" && !hasA ? ["id"] : r.key.split(","),
            ...(r.partition ? { partitionBy: "toYYYYMM(ts)" } : {}),
            ...(r.ttlDays !== undefined ? { ttl: `ts + INTERVAL ${r.ttlDays} DAY` } : {}),
            consumer: {
                ...(r.consumers !== undefined ? { consumers: r.consumers } : {}),
                ...(r.flush !== undefined ? { flushIntervalMs: r.flush } : {}),
                ...(r.group !== undefined ? { group: r.group } : {}),
            },
            formatSettings:
                r.skipUnknown !== undefined
                    ? { input_format_skip_unknown_fields: r.skipUnknown }
                    : {},
            onError: r.onError,
            ...(r.replacing
                ? { engine: { type: "ReplacingMergeTree" as const, version: "id" } }
                : {}),
        };
        return validateStream(input, "property").spec;
    });

/** Columns kept with the same type: their values must survive any change. */
function stableColumns(from: StreamSpec, to: StreamSpec): string[] {
    return to.columns
        .filter((c) => from.columns.some((o) => o.name === c.name && o.type === c.type))
        .map((c) => c.name);
}

/** What `to` looks like created from scratch (cached per spec). */
const freshSummaries = new Map<string, StateSummary>();
async function freshSummary(to: StreamSpec): Promise<StateSummary> {
    const key = JSON.stringify(to);
    const cached = freshSummaries.get(key);
    if (cached) return cached;
    const db = freshDb("fresh");
    await reconcile(client, to, opts(db));
    const s = await summaryOf(db, to.name);
    dropLater(db);
    freshSummaries.set(key, s);
    return s;
}

describe("acceptance 2: the plan for old -> new, applied to a database holding old, yields exactly new", () => {
    it("holds for generated pairs of streams, with every row kept", async () => {
        let runs = 0;
        await fc.assert(
            fc.asyncProperty(streamArbitrary, streamArbitrary, async (from, to) => {
                runs++;
                const db = freshDb("evo");
                await reconcile(client, from, opts(db));
                await insertRows(db, from);
                const stable = stableColumns(from, to);
                const before = await fingerprint(db, from.name, stable);

                const { plan } = await reconcile(client, to, opts(db));
                const evolved = await summaryOf(db, to.name);
                // A deployed stream keeps its consumer group (and offsets) when the file stops
                // naming one: fresh, that is the same stream with the old group written out.
                const keptGroup =
                    to.consumer.group === undefined && from.consumer.group !== undefined
                        ? { ...to, consumer: { ...to.consumer, group: from.consumer.group } }
                        : to;
                const expected = await freshSummary(keptGroup);
                if (to.onError === "fail" && from.onError === "deadLetter") {
                    // The dead-letter table holds rows and is kept on purpose (plan note).
                    assert.ok(
                        evolved.dlq && plan.notes.some((n) => n.includes("prop_dlq is kept")),
                    );
                    delete (evolved as Record<string, unknown>)["dlq"];
                }
                assert.deepEqual(evolved, expected);
                assert.deepEqual(
                    await fingerprint(db, to.name, stable),
                    before,
                    "rows and the values of unchanged columns survive",
                );
                dropLater(db);
            }),
            { numRuns: 25, seed: Number(process.env["FC_SEED"] ?? 20260521) },
        );
        assert.equal(runs, 25);
    });
});

// ---------------------------------------------------------------------------------------------
// Failure injection
// ---------------------------------------------------------------------------------------------

class InjectedFailure extends Error {}

interface Scenario {
    readonly name: string;
    readonly from?: StreamSpec;
    readonly to: StreamSpec;
}

const BASE: StreamInput = {
    name: "fi",
    topic: { name: "fi.topic", partitions: 3 },
    columns: [
        { name: "id", type: "UInt64" },
        { name: "ts", type: "DateTime" },
        { name: "page", type: "String" },
        { name: "score", type: "Float64" },
    ],
    orderBy: ["page", "ts"],
    partitionBy: "toYYYYMM(ts)",
    ttl: "ts + INTERVAL 30 DAY",
};
const variant = (change: (s: StreamInput) => StreamInput = (s) => s) =>
    validateStream(change(structuredClone(BASE)), "scenario").spec;

const SCENARIOS: Scenario[] = [
    { name: "create from nothing", to: variant() },
    {
        name: "add a column, change TTL, consumers and format settings",
        from: variant(),
        to: variant((s) => ({
            ...s,
            columns: [
                ...s.columns,
                { name: "referrer", type: "LowCardinality(String)", default: "'direct'" },
            ],
            ttl: "ts + INTERVAL 90 DAY",
            consumer: { consumers: 2, flushIntervalMs: 500 },
            formatSettings: { input_format_skip_unknown_fields: 1 },
        })),
    },
    {
        name: "rebuild for a new ORDER BY, dropping and retyping columns",
        from: variant(),
        to: variant((s) => ({
            ...s,
            orderBy: ["id"],
            columns: s.columns
                .filter((c) => c.name !== "score")
                .map((c) => (c.name === "page" ? { ...c, type: "LowCardinality(String)" } : c)),
        })),
    },
    {
        name: "switch onError from deadLetter to fail",
        from: variant(),
        to: variant((s) => ({ ...s, onError: "fail" })),
    },
];

/** Sets up a database holding `from` (if any) with rows; returns the fingerprint to keep. */
async function setUp(db: string, s: Scenario): Promise<{ n: string; h: string } | undefined> {
    if (!s.from) return undefined;
    await reconcile(client, s.from, opts(db));
    await insertRows(db, s.from);
    return fingerprint(db, s.from.name, stableColumns(s.from, s.to));
}

/** Objects a converged stream has: its five, plus a kept dead-letter table. */
function expectedObjects(s: Scenario): string[] {
    const n = streamObjectNames(s.to.name);
    const keepsDlq = s.from?.onError === "deadLetter" && s.to.onError === "fail";
    return [
        n.target,
        n.kafka,
        n.mv,
        ...(s.to.onError === "deadLetter" || keepsDlq ? [n.dlq] : []),
        ...(s.to.onError === "deadLetter" ? [n.dlqMv] : []),
    ].sort();
}

async function assertConverged(
    db: string,
    s: Scenario,
    kept: { n: string; h: string } | undefined,
): Promise<void> {
    const summary = await summaryOf(db, s.to.name);
    if (s.from?.onError === "deadLetter" && s.to.onError === "fail")
        delete (summary as Record<string, unknown>)["dlq"];
    assert.deepEqual(summary, await freshSummary(s.to));
    assert.deepEqual(
        await objectsIn(db),
        expectedObjects(s),
        "no orphan, leftover or detached objects",
    );
    if (kept)
        assert.deepEqual(
            await fingerprint(db, s.to.name, stableColumns(s.from!, s.to)),
            kept,
            "no lost rows",
        );
    assert.deepEqual((await planFromServer(client, s.to, opts(db))).plan.statements, []);
}

describe("acceptance 4: a run failing after any statement converges on the next run", () => {
    for (const s of SCENARIOS) {
        it(`${s.name}: fails after each statement in turn, then reruns`, async () => {
            const probeDb = freshDb("probe");
            await setUp(probeDb, s);
            const { plan } = await planFromServer(client, s.to, opts(probeDb));
            dropLater(probeDb);
            assert.ok(plan.statements.length >= 2, "the scenario exercises a multi-statement plan");
            for (let k = 0; k < plan.statements.length; k++) {
                const db = freshDb("fail");
                const kept = await setUp(db, s);
                const { plan: p } = await planFromServer(client, s.to, opts(db));
                await assert.rejects(
                    applyPlan(client, p, {
                        afterStatement: (_st, i) => {
                            if (i === k)
                                throw new InjectedFailure(`injected after statement ${k + 1}`);
                        },
                    }),
                    InjectedFailure,
                );
                // Whatever was interrupted, there are rows to keep and objects to converge.
                if (kept)
                    assert.equal(
                        (
                            await fingerprint(
                                db,
                                s.to.name === s.from!.name ? s.to.name : s.from!.name,
                                [],
                            )
                        ).n,
                        kept.n,
                        `rows kept mid-way (after statement ${k + 1})`,
                    );
                await reconcile(client, s.to, opts(db));
                await assertConverged(db, s, kept);
                dropLater(db);
            }
        });
    }

    it("converges after several interrupted runs in a row (random failure points)", async () => {
        const s = SCENARIOS[2]!;
        await fc.assert(
            fc.asyncProperty(
                fc.array(fc.nat(20), { minLength: 1, maxLength: 3 }),
                async (failures) => {
                    const db = freshDb("multi");
                    const kept = await setUp(db, s);
                    for (const f of failures) {
                        const { plan } = await planFromServer(client, s.to, opts(db));
                        if (plan.statements.length === 0) break;
                        const at = f % plan.statements.length;
                        await applyPlan(client, plan, {
                            afterStatement: (_st, i) => {
                                if (i === at) throw new InjectedFailure("injected");
                            },
                        }).catch((e: unknown) => {
                            if (!(e instanceof InjectedFailure)) throw e;
                        });
                    }
                    await reconcile(client, s.to, opts(db));
                    await assertConverged(db, s, kept);
                    dropLater(db);
                },
            ),
            { numRuns: 6, seed: 4242 },
        );
    });
});

// ---------------------------------------------------------------------------------------------
// Evolution while messages flow through a real broker: the ordering the planner chooses (stop
// consumption, alter, define views on a placeholder, start consumption last) loses no message,
// and every row consumed after an added column exists carries the message's value for it.
// ---------------------------------------------------------------------------------------------

describe("acceptance 3 under live ingestion (real Kafka broker)", () => {
    let kafka: KafkaBroker | undefined;
    // A broker that cannot start fails this suite (with its reason); it never skips silently.
    before(async () => {
        kafka = await startKafka();
    });
    after(async () => kafka?.stop());

    const live = (change: (s: StreamInput) => StreamInput = (s) => s): StreamSpec =>
        validateStream(
            change({
                name: "live",
                topic: { name: "live.events", partitions: 3 },
                formatSettings: { input_format_skip_unknown_fields: 1 },
                columns: [
                    { name: "id", type: "UInt64" },
                    { name: "payload", type: "String" },
                ],
                orderBy: ["id"],
                consumer: { flushIntervalMs: 200 },
            }),
            "live",
        ).spec;
    const message = (id: number) => JSON.stringify({ id, payload: `p${id}`, region: `r${id % 3}` });

    it("adds a column and changes consumer and format settings mid-stream without losing a message", async (t) => {
        assert.ok(kafka, "the broker started in before()");
        const db = freshDb("live");
        const options: PlanOptions = { database: db, kafkaBrokers: kafka.bootstrap };
        await kafka.createTopic("live.events", 3);
        await reconcile(client, live(), options);

        let next = 0;
        const produce = async (n: number) => {
            const ids = Array.from({ length: n }, (_, i) => next + i);
            next += n;
            await kafka!.produce("live.events", ids.map(message));
        };
        const count = async () =>
            (
                await queryRows<{ n: string; d: string }>(
                    client,
                    `SELECT toString(count()) AS n, toString(uniqExact(id)) AS d FROM ${db}.live`,
                )
            )[0]!;
        const waitForIds = async (n: number) => {
            const deadline = Date.now() + 60_000;
            for (;;) {
                const c = await count();
                if (Number(c.d) >= n) return c;
                if (Date.now() > deadline)
                    assert.fail(`${n} distinct ids expected, ${c.d} arrived`);
                await new Promise((r) => setTimeout(r, 250));
            }
        };

        await produce(1_000);
        const changes: Array<(s: StreamInput) => StreamInput> = [
            (s) => ({
                ...s,
                columns: [
                    ...s.columns,
                    { name: "region", type: "LowCardinality(String)", default: "'none'" },
                ],
            }),
            (s) => ({ ...s, consumer: { flushIntervalMs: 100, consumers: 2 } }),
            (s) => ({
                ...s,
                formatSettings: {
                    input_format_skip_unknown_fields: 1,
                    date_time_input_format: "best_effort",
                },
            }),
        ];
        let spec = live();
        let regionFrom = Infinity;
        for (const change of changes) {
            // Messages keep arriving while the change is applied.
            const producing = produce(1_000);
            spec = validateStream(change(structuredClone(spec)), "live").spec;
            await reconcile(client, spec, options);
            if (regionFrom === Infinity) regionFrom = next; // produced after the column exists
            await producing;
        }
        await produce(1_000);

        const c = await waitForIds(next);
        t.diagnostic(
            `${next} messages, ${c.n} rows (${Number(c.n) - next} redelivered: at-least-once)`,
        );
        assert.equal(c.d, String(next), "every message arrived");
        const [missing] = await queryRows<{ n: string }>(
            client,
            `SELECT toString(countIf(region != concat('r', toString(id % 3)))) AS n FROM ${db}.live WHERE id >= {from:UInt64}`,
            { from: regionFrom },
        );
        assert.equal(
            missing!.n,
            "0",
            "rows consumed after the column was added carry the message's value",
        );
        const [dlq] = await queryRows<{ n: string }>(
            client,
            `SELECT toString(count()) AS n FROM ${db}.live_dlq`,
        );
        assert.equal(dlq!.n, "0");
        dropLater(db);
    });
});
