/**
 * Issue 9 on the real engine: no plan loses, corrupts or silently changes stored data.
 * - random sequences of schema evolutions over a large table keep every row and every stored value
 *   of the columns that survive each step (KCS_SAFETY_ROWS rows, 100,000 by default);
 * - objects under a stream's derived names that are not its own are refused, never touched;
 * - a TTL change is destructive and its preview names the rows it deletes, measured;
 * - a failed update puts the Kafka table and views back before it returns;
 * - a declared rename keeps rows and the consumer group;
 * - a plan that fails or does not converge in rehearsal is stopped before the server sees it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ClickHouseClient } from "@clickhouse/client";
import fc from "fast-check";
import * as pulumi from "@pulumi/pulumi";
import { validateStream } from "../../schemas/loader";
import { StreamInput, StreamSpec } from "../../schemas/model";
import { STREAM_OBJECT_ROLES, streamObjectNames } from "../../schemas/naming";
import {
    applyPlan,
    measureImpact,
    planFromServer,
    reconcile,
} from "../../components/ingestion/apply";
import { readStreamState } from "../../components/ingestion/introspect";
import {
    DestructiveChangeRefusedError,
    PlanOptions,
    planDrop,
} from "../../components/ingestion/planner";
import { rehearse } from "../../components/ingestion/rehearse";
import {
    streamIngestionProvider,
    StreamIngestionInputs,
} from "../../components/ingestion/provider";
import {
    EmbeddedClickHouse,
    HttpFront,
    openEmbedded,
    queryRows,
    serveHttp,
} from "../harness/clickhouse";

const ROWS = Number(process.env["KCS_SAFETY_ROWS"] ?? 100_000);
const BROKERS = "127.0.0.1:1";
let ch: EmbeddedClickHouse;
let client: ClickHouseClient;
let seq = 0;
const freshDb = (prefix: string) => `${prefix}_${++seq}`;
const opts = (database: string, over: Partial<PlanOptions> = {}): PlanOptions => ({
    database,
    kafkaBrokers: BROKERS,
    ...over,
});

// The provider's own path: the real HTTP interface in front of the engine, with a password.
let front: HttpFront;
const httpConnection = (): StreamIngestionInputs["connection"] => ({
    kind: "http",
    url: front.url,
    allowInsecureHttp: true, // the local front end on loopback
    username: "ingest",
    password: { fromEnv: "KCS_SAFETY_PASSWORD" },
});

before(async () => {
    ch = await openEmbedded();
    client = ch.client;
    process.env["KCS_SAFETY_PASSWORD"] = "safety-pw";
    front = await serveHttp(ch, { username: "ingest", password: "safety-pw" });
});
after(async () => {
    await front?.close();
    await ch?.close();
});

const spec = (input: StreamInput): StreamSpec =>
    validateStream(structuredClone(input), "test").spec;

const BASE: StreamInput = {
    name: "ev",
    topic: { name: "ev.topic", partitions: 2 },
    columns: [
        { name: "id", type: "UInt64" },
        { name: "ts", type: "DateTime" },
        { name: "page", type: "String" },
        { name: "score", type: "Float64" },
    ],
    orderBy: ["id"],
    partitionBy: "toYYYYMM(ts)",
};

/** count() and a hash over the given columns of every row. */
async function fingerprint(db: string, table: string, columns: readonly string[]) {
    const hash = columns.length
        ? `toString(sum(cityHash64(${columns.map((c) => `\`${c}\``).join(", ")})))`
        : "'-'";
    const [row] = await queryRows<{ n: string; h: string }>(
        client,
        `SELECT toString(count()) AS n, ${hash} AS h FROM \`${db}\`.\`${table}\``,
    );
    return row!;
}

async function fill(db: string, rows: number): Promise<void> {
    // Rows spread evenly over ~600 days (about 20 monthly partitions, whatever the row count), so
    // TTLs and partitions have something to bite.
    const spacing = Math.max(1, Math.floor((600 * 86_400) / rows));
    await client.command({
        query:
            `INSERT INTO \`${db}\`.ev (id, ts, page, score) SELECT number, now() - toIntervalSecond(number * ${spacing}), ` +
            `concat('/p/', toString(number % 97)), number / 7 FROM numbers(${rows})`,
    });
}

// ---------------------------------------------------------------------------------------------
// Acceptance 1: random sequences of evolutions, nothing allowed, nothing lost or changed
// ---------------------------------------------------------------------------------------------

type Step = (s: StreamInput) => StreamInput;
const withColumns = (s: StreamInput, columns: StreamInput["columns"]): StreamInput => ({
    ...s,
    columns,
});
const STEPS: Record<string, Step> = {
    addPlain: (s) =>
        s.columns.some((c) => c.name === "ref")
            ? s
            : withColumns(s, [...s.columns, { name: "ref", type: "String" }]),
    addDefaulted: (s) =>
        s.columns.some((c) => c.name === "region")
            ? s
            : withColumns(s, [...s.columns, { name: "region", type: "String", default: "'eu'" }]),
    changeDefault: (s) =>
        withColumns(
            s,
            s.columns.map((c) =>
                c.name === "region" ? { ...c, default: c.default === "'eu'" ? "'us'" : "'eu'" } : c,
            ),
        ),
    removeDefault: (s) =>
        withColumns(
            s,
            s.columns.map((c) => {
                if (c.name !== "region") return c;
                const { default: _dropped, ...rest } = c;
                void _dropped;
                return rest;
            }),
        ),
    setDefaultOnPlain: (s) =>
        withColumns(
            s,
            s.columns.map((c) => (c.name === "ref" ? { ...c, default: "'direct'" } : c)),
        ),
    ttl: (s) => ({ ...s, ttl: `ts + INTERVAL ${s.ttl?.includes("300") ? 100 : 300} DAY` }),
    dropColumn: (s) =>
        withColumns(
            s,
            s.columns.filter((c) => c.name !== "score"),
        ),
    retypeNarrow: (s) =>
        withColumns(
            s,
            s.columns.map((c) => (c.name === "score" ? { ...c, type: "Float32" } : c)),
        ),
    orderBy: (s) => ({ ...s, orderBy: s.orderBy.length === 1 ? ["page", "id"] : ["id"] }),
    reorder: (s) => withColumns(s, [...s.columns.slice(1), s.columns[0]!]),
    describe: (s) => ({ ...s, description: s.description === "a" ? "b" : "a" }),
    consumers: (s) => ({
        ...s,
        consumer: { flushIntervalMs: s.consumer?.flushIntervalMs === 250 ? 700 : 250 },
    }),
    formatSettings: (s) => ({
        ...s,
        formatSettings: { input_format_skip_unknown_fields: s.formatSettings ? 0 : 1 },
    }),
    deadLetterDays: (s) => ({ ...s, deadLetterTtlDays: s.deadLetterTtlDays === 5 ? 60 : 5 }),
};

describe("acceptance 1: random evolutions without allowDestructiveChanges keep every stored value", () => {
    it(`holds for generated sequences over ${ROWS.toLocaleString("en-US")} rows`, async (t) => {
        let sequences = 0;
        let steps = 0;
        let refused = 0;
        const started = Date.now();
        await fc.assert(
            fc.asyncProperty(
                fc.array(fc.constantFrom(...Object.keys(STEPS)), { minLength: 4, maxLength: 8 }),
                async (names) => {
                    sequences++;
                    const db = freshDb("seq");
                    let applied = BASE;
                    await reconcile(client, spec(applied), opts(db));
                    await fill(db, ROWS);
                    for (const name of names) {
                        steps++;
                        const next = STEPS[name]!(structuredClone(applied));
                        const before = spec(applied).columns.map((c) => c.name);
                        const after = spec(next).columns.map((c) => c.name);
                        const kept = before.filter((c) => after.includes(c));
                        const was = await fingerprint(db, "ev", kept);
                        try {
                            await reconcile(client, spec(next), opts(db));
                            applied = next;
                        } catch (e) {
                            if (!(e instanceof DestructiveChangeRefusedError)) throw e;
                            refused++;
                        }
                        assert.deepEqual(
                            await fingerprint(db, "ev", kept),
                            was,
                            `step ${name} changed stored rows or values (sequence ${names.join(", ")})`,
                        );
                        assert.equal(was.n, String(ROWS));
                    }
                    await client.command({ query: `DROP DATABASE \`${db}\` SYNC` });
                },
            ),
            { numRuns: ROWS >= 1_000_000 ? 3 : 6, seed: Number(process.env["FC_SEED"] ?? 9) },
        );
        t.diagnostic(
            `${sequences} sequences, ${steps} steps (${refused} refused) over ${ROWS} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
        assert.ok(refused > 0, "the generator reached destructive changes");
        assert.ok(steps - refused > 0, "the generator reached applied changes");
    });

    it("a changed default leaves the rows written before it as they read", async () => {
        const db = freshDb("def");
        const withRegion = (d: string): StreamInput => ({
            ...BASE,
            columns: [...BASE.columns, { name: "region", type: "String", default: d }],
        });
        await reconcile(client, spec(BASE), opts(db));
        await fill(db, 1000);
        await reconcile(client, spec(withRegion("'eu'")), opts(db));
        const { plan } = await reconcile(client, spec(withRegion("'us'")), opts(db));
        assert.ok(plan.statements.some((s) => /MATERIALIZE COLUMN `region`/.test(s.sql)));
        const rows = await queryRows<{ region: string; n: string }>(
            client,
            `SELECT region, toString(count()) AS n FROM \`${db}\`.ev GROUP BY region`,
        );
        assert.deepEqual(rows, [{ region: "eu", n: "1000" }]);
    });
});

// ---------------------------------------------------------------------------------------------
// Acceptance 4: ownership
// ---------------------------------------------------------------------------------------------

describe("acceptance 4: objects under a derived name that are not the stream's are never touched", () => {
    for (const role of STREAM_OBJECT_ROLES) {
        it(`a hand-made table named like the ${role} is refused and left as it was`, async () => {
            const db = freshDb(`own_${role.toLowerCase()}`);
            const name = streamObjectNames("ev")[role];
            await client.command({ query: `CREATE DATABASE \`${db}\`` });
            await client.command({
                query: `CREATE TABLE \`${db}\`.\`${name}\` (k UInt8, v String) ENGINE = MergeTree ORDER BY k COMMENT 'mine'`,
            });
            await client.command({
                query: `INSERT INTO \`${db}\`.\`${name}\` VALUES (1, 'a'), (2, 'b'), (3, 'c')`,
            });
            const definition = async () =>
                (
                    await queryRows<{ q: string }>(
                        client,
                        "SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = {n:String}",
                        { db, n: name },
                    )
                )[0]?.q;
            const before = await definition();

            const { plan } = await planFromServer(client, spec(BASE), opts(db));
            assert.deepEqual(
                plan.refusals.map((r) => r.change),
                ["foreignObject"],
            );
            assert.match(
                plan.refusals[0]!.message,
                new RegExp(
                    `${db}\\.${name} \\(MergeTree\\) carries no ownership marker.*the plan leaves it untouched`,
                ),
            );
            await assert.rejects(applyPlan(client, plan), DestructiveChangeRefusedError);
            // Even allowing every destructive change does not take it over.
            const allowed = await planFromServer(
                client,
                spec(BASE),
                opts(db, { allowDestructiveChanges: true }),
            );
            assert.deepEqual(
                allowed.plan.refusals.map((r) => r.change),
                ["foreignObject"],
            );
            // Deleting the stream leaves it too.
            const actual = await readStreamState(client, db, "ev");
            const drop = planDrop("ev", actual, { database: db, dropTargetOnDelete: true });
            await applyPlan(client, drop);
            assert.equal(await definition(), before);
            assert.equal(
                (
                    await queryRows<{ n: string }>(
                        client,
                        `SELECT toString(count()) AS n FROM \`${db}\`.\`${name}\``,
                    )
                )[0]!.n,
                "3",
            );
        });
    }

    it("a stream named like another stream's derived name is refused, both ways round", async () => {
        const db = freshDb("collide");
        const a = spec(BASE);
        const b = spec({
            ...BASE,
            name: "ev_kafka",
            topic: { name: "other.topic", partitions: 1 },
        });
        await reconcile(client, a, opts(db));
        const first = await planFromServer(client, b, opts(db, { allowDestructiveChanges: true }));
        assert.deepEqual(
            first.plan.refusals.map((r) => r.change),
            ["foreignObject"],
        );
        assert.match(first.plan.refusals[0]!.message, /belongs to stream 'ev' \(its kafka\)/);

        const db2 = freshDb("collide");
        await reconcile(client, b, opts(db2));
        const second = await planFromServer(
            client,
            a,
            opts(db2, { allowDestructiveChanges: true }),
        );
        assert.deepEqual(
            second.plan.refusals.map((r) => r.change),
            ["foreignObject"],
        );
        assert.match(
            second.plan.refusals[0]!.message,
            /belongs to stream 'ev_kafka' \(its target\)/,
        );
    });

    it("unmarked objects of an earlier version are taken over only with adoptUnmarked", async () => {
        const db = freshDb("adopt");
        await reconcile(client, spec(BASE), opts(db));
        for (const t of ["ev", "ev_dlq", "ev_kafka", "ev_mv", "ev_dlq_mv"])
            await client.command({ query: `ALTER TABLE \`${db}\`.\`${t}\` MODIFY COMMENT ''` });
        await fill(db, 100);
        const refused = await planFromServer(client, spec(BASE), opts(db));
        assert.equal(refused.plan.refusals.length, 5);
        const { applied } = await reconcile(client, spec(BASE), opts(db, { adoptUnmarked: true }));
        assert.ok(applied.every((s) => s.kind !== "destructive"));
        assert.equal((await fingerprint(db, "ev", ["id"])).n, "100");
        assert.equal(
            (await planFromServer(client, spec(BASE), opts(db))).plan.statements.length,
            0,
        );
    });
});

// ---------------------------------------------------------------------------------------------
// Acceptance 5: a TTL change is destructive, and its preview shows the rows it deletes
// ---------------------------------------------------------------------------------------------

describe("acceptance 5: TTL changes show their measured impact", () => {
    it("refused by default, naming the rows and bytes it would delete; shown in the plan when allowed", async () => {
        const db = freshDb("ttl");
        await reconcile(client, spec(BASE), opts(db));
        await fill(db, ROWS);
        // Rows span ~600 days: those older than 100 days are past the new TTL.
        const [{ expected }] = (await queryRows<{ expected: string }>(
            client,
            `SELECT toString(countIf(ts + INTERVAL 100 DAY <= now())) AS expected FROM \`${db}\`.ev`,
        )) as [{ expected: string }];
        assert.ok(Number(expected) > 0 && Number(expected) < ROWS);
        const withTtl = spec({ ...BASE, ttl: "ts + INTERVAL 100 DAY" });
        const provider = streamIngestionProvider as Required<pulumi.dynamic.ResourceProvider>;
        const inputs: StreamIngestionInputs = {
            stream: withTtl,
            database: db,
            kafkaBrokers: BROKERS,
            connection: httpConnection(),
        };
        const checked = await provider.check({ database: db }, inputs);
        const count = Number(expected).toLocaleString("en-US");
        assert.equal(checked.failures?.length, 1);
        assert.match(
            checked.failures![0]!.reason,
            new RegExp(
                `deletes every stored row already past it.*Measured: deletes ${count} of ${ROWS.toLocaleString("en-US")} rows \\(~[0-9.]+ [KMG]?i?B\\) now`,
                "s",
            ),
        );
        // Check changed nothing: no TTL on the table, every row still there.
        assert.equal((await readStreamState(client, db, "ev"))!.tables.target!.ttl, "");
        assert.equal((await fingerprint(db, "ev", ["id"])).n, String(ROWS));

        const allowed = await provider.check(
            { database: db },
            { ...inputs, allowDestructiveChanges: ["ttl"] },
        );
        assert.equal(allowed.failures?.length ?? 0, 0);
        const planned = allowed.inputs["plannedStatements"] as string[];
        assert.ok(
            planned.some((p) =>
                new RegExp(
                    `^\\[destructive\\] ALTER TABLE .* MODIFY TTL .* -- impact: deletes ${count} of`,
                ).test(p),
            ),
            planned.join("\n"),
        );
        const measured = await measureImpact(
            client,
            (await planFromServer(client, withTtl, opts(db, { allowDestructiveChanges: ["ttl"] })))
                .plan,
        );
        assert.equal(measured.statements.filter((s) => s.measured).length, 1);
    });
});

describe("upgrading: resources created before ownership markers", () => {
    it("a resource whose state has no stack takes over its unmarked objects; a new one is refused", async () => {
        const db = freshDb("legacy");
        await reconcile(client, spec(BASE), opts(db));
        for (const t of ["ev", "ev_dlq", "ev_kafka", "ev_mv", "ev_dlq_mv"])
            await client.command({ query: `ALTER TABLE \`${db}\`.\`${t}\` MODIFY COMMENT ''` });
        await fill(db, 200);
        const provider = streamIngestionProvider as Required<pulumi.dynamic.ResourceProvider>;
        const news: StreamIngestionInputs = {
            stream: spec(BASE),
            database: db,
            kafkaBrokers: BROKERS,
            connection: httpConnection(),
            stack: "proj/dev",
        };
        // A new resource (no old state) must not take over what it did not create.
        const fresh = await provider.check({}, news);
        assert.match(fresh.failures?.[0]?.reason ?? "", /carries no ownership marker/);
        // The same objects, known to this resource from a release without markers.
        const legacyOlds = { stream: spec(BASE), database: db, kafkaBrokers: BROKERS };
        const checked = await provider.check(legacyOlds, news);
        assert.equal(checked.failures?.length ?? 0, 0, JSON.stringify(checked.failures));
        const planned = checked.inputs["plannedStatements"] as string[];
        assert.ok(planned.some((p) => /MODIFY COMMENT .*stack=proj\/dev/.test(p)));
        assert.ok(planned.every((p) => !p.startsWith("[destructive]")));
        await provider.update(`${db}.ev`, { ...legacyOlds, streamName: "ev" }, checked.inputs);
        assert.equal((await fingerprint(db, "ev", ["id", "page"])).n, "200");
        const again = await provider.check({ ...checked.inputs }, news);
        assert.deepEqual(again.inputs["plannedStatements"], []);
        // A refresh stores inputs without the plan the update ran, so the next preview's diff
        // shows only what will run then (old [] -> new statements).
        const outs = (
            await provider.update(`${db}.ev`, { ...legacyOlds, streamName: "ev" }, checked.inputs)
        ).outs;
        const read = (await provider.read(`${db}.ev`, outs)) as {
            inputs?: Record<string, unknown>;
        };
        assert.deepEqual(read.inputs?.["plannedStatements"], []);
        assert.deepEqual(read.inputs?.["stream"], outs["stream"]);
        assert.equal(read.inputs?.["stack"], "proj/dev");
    });
});

describe("diff: who the provider connects as is not a change", () => {
    it("a read-only preview user does not mark the stream changed; another server does", async () => {
        const provider = streamIngestionProvider as Required<pulumi.dynamic.ResourceProvider>;
        const olds = {
            stream: spec(BASE),
            database: "d",
            kafkaBrokers: BROKERS,
            connection: httpConnection(),
            streamName: "ev",
        };
        const news = {
            ...olds,
            connection: { ...httpConnection(), username: "preview", password: { fromEnv: "RO" } },
            plannedStatements: [],
        };
        assert.equal((await provider.diff("d.ev", olds, news)).changes, false);
        const moved = { ...news, connection: { ...news.connection, url: "http://127.0.0.1:1" } };
        assert.equal((await provider.diff("d.ev", olds, moved)).changes, true);
    });
});

// ---------------------------------------------------------------------------------------------
// Restore: a failure after consumption stopped puts the Kafka table and views back
// ---------------------------------------------------------------------------------------------

class Injected extends Error {}

describe("a failed update never leaves ingestion stopped", () => {
    const from = spec({ ...BASE, consumer: { flushIntervalMs: 300 } });
    const to = spec({
        ...BASE,
        columns: [...BASE.columns, { name: "region", type: "String", default: "'eu'" }],
        consumer: { flushIntervalMs: 200 },
        formatSettings: { input_format_skip_unknown_fields: 1 },
    });

    it("after a failure at every statement, the Kafka table and both views are in place", async () => {
        const db0 = freshDb("restore");
        await reconcile(client, from, opts(db0));
        const total = (await planFromServer(client, to, opts(db0))).plan.statements.length;
        assert.ok(total >= 5);
        for (let at = 0; at < total; at++) {
            const db = freshDb("restore");
            await reconcile(client, from, opts(db));
            const { plan, actual } = await planFromServer(client, to, opts(db));
            await assert.rejects(
                applyPlan(
                    client,
                    plan,
                    {
                        afterStatement: (_s, i) => {
                            if (i === at) throw new Injected(`injected after statement ${i + 1}`);
                        },
                    },
                    actual,
                ),
                /injected after statement/,
            );
            const state = await readStreamState(client, db, "ev");
            assert.equal(state?.tables.kafka?.engine, "Kafka", `after statement ${at + 1}`);
            assert.equal(state?.tables.mv?.engine, "MaterializedView");
            assert.equal(state?.tables.dlqMv?.engine, "MaterializedView");
            // The next run converges.
            await reconcile(client, to, opts(db));
            assert.equal((await planFromServer(client, to, opts(db))).plan.statements.length, 0);
        }
    });
});

// ---------------------------------------------------------------------------------------------
// Renames
// ---------------------------------------------------------------------------------------------

describe("declared renames keep rows and the consumer group", () => {
    it("renamedFrom renames the tables and keeps the group; without it the plan says so in words", async () => {
        const db = freshDb("rename");
        await reconcile(client, spec(BASE), opts(db));
        await fill(db, 500);
        const group = (await readStreamState(client, db, "ev"))!.tables.kafka!.settings[
            "kafka_group_name"
        ];
        const without = await planFromServer(client, spec({ ...BASE, name: "events" }), opts(db));
        assert.ok(
            without.plan.notes.some((n) =>
                /new stream: events starts empty.*set renamedFrom/.test(n),
            ),
        );

        const renamed = spec({ ...BASE, name: "events", renamedFrom: "ev" });
        const { plan } = await reconcile(client, renamed, opts(db));
        assert.ok(
            plan.statements.some((s) => /^RENAME TABLE `.*`\.`ev` TO `.*`\.`events`$/.test(s.sql)),
        );
        const after = await readStreamState(client, db, "events");
        assert.equal(after!.tables.kafka!.settings["kafka_group_name"], group);
        assert.equal((await fingerprint(db, "events", ["id", "page"])).n, "500");
        assert.equal(
            await readStreamState(client, db, "ev"),
            undefined,
            "no object of the old name is left",
        );
    });
});

// ---------------------------------------------------------------------------------------------
// Rehearsal
// ---------------------------------------------------------------------------------------------

describe("rehearsal stops a bad plan before the server sees it", () => {
    it("a statement the engine refuses fails the rehearsal with the statement and the message", async () => {
        const db = freshDb("reh");
        await reconcile(client, spec(BASE), opts(db));
        const { plan, actual } = await planFromServer(
            client,
            spec({ ...BASE, description: "x" }),
            opts(db),
        );
        const broken = {
            ...plan,
            statements: [
                ...plan.statements,
                {
                    kind: "in-place" as const,
                    summary: "bad",
                    sql: `ALTER TABLE \`${db}\`.\`ev\` MODIFY COLUMN \`nope\` String`,
                },
            ],
        };
        const result = await rehearse(
            spec({ ...BASE, description: "x" }),
            opts(db),
            broken,
            { actual },
            client,
        );
        assert.equal(result.ok, false);
        assert.match(
            result.ok ? "" : result.message,
            /statement 2 of 2 fails in rehearsal \(bad\).*nope/s,
        );
        // The live table is untouched (the rehearsal ran in a scratch database).
        assert.equal(
            (await readStreamState(client, db, "ev"))!.tables.target!.comment.startsWith("x"),
            false,
        );
    });

    it("Kafka tables reading a named collection the rehearsal engine lacks still rehearse", async () => {
        const db = freshDb("reh");
        const options = opts(db, { kafkaNamedCollection: "kafka_sasl" });
        const { plan, actual } = await planFromServer(client, spec(BASE), options);
        assert.ok(plan.statements.some((s) => /ENGINE = Kafka\(`kafka_sasl`\)/.test(s.sql)));
        assert.deepEqual(await rehearse(spec(BASE), options, plan, { actual }, client), {
            ok: true,
            engine: "embedded",
        });
    });

    it("a plan that does not reach the stream file fails as not converging", async () => {
        const db = freshDb("reh");
        await reconcile(client, spec(BASE), opts(db));
        const desired = spec({ ...BASE, description: "y", consumer: { flushIntervalMs: 900 } });
        const { plan, actual } = await planFromServer(client, desired, opts(db));
        const partial = { ...plan, statements: plan.statements.slice(0, 1) };
        const result = await rehearse(desired, opts(db), partial, { actual }, client);
        assert.equal(result.ok, false);
        assert.match(result.ok ? "" : result.message, /does not converge in rehearsal/);
        const full = await rehearse(desired, opts(db), plan, { actual }, client);
        assert.deepEqual(full, { ok: true, engine: "embedded" });
    });
});
