// Rollups through the stream's life, with real Kafka messages before and after each step: the
// target rebuilt (ORDER BY changed) keeps feeding the rollup; a renamed stream carries its rollup
// tables, their rows and a pending backfill snapshot; a run that died part-way through creating a
// rollup converges on the next plan with every row counted once; detached rollup objects are
// attached first, and the provider's observed state lists the rollup objects.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { planFromServer, reconcile } from "../../components/ingestion/apply";
import { readStreamState, summarizeState } from "../../components/ingestion/introspect";
import {
    rawGroupBySql,
    rollupBackfillSql,
    rollupQuerySql,
} from "../../components/ingestion/plan/rollup";
import { PlanOptions, describePlan, planDrop } from "../../components/ingestion/planner";
import { rehearse } from "../../components/ingestion/rehearse";
import type { RollupSpec, StreamSpec } from "../../schemas/model";
import { EmbeddedClickHouse, openEmbedded } from "../harness/clickhouse";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { pollUntil } from "../../runtime/process";
import { FAST_REJOIN_CONFIG, orders, ordersStream, tableKit } from "../harness/rollups";

const DB = "rollcycle";
const JAN = Date.UTC(2026, 0, 1) / 1000;

const rollup = (name: string, extra: Partial<RollupSpec> = {}): RollupSpec => ({
    name,
    time: "order_time",
    interval: "1 minute",
    by: ["country"],
    measures: [
        { name: "orders", fn: "count" },
        { name: "revenue", fn: "sum", column: "amount" },
        { name: "customers", fn: "uniqExact", column: "customer_id" },
    ],
    backfill: false,
    ...extra,
});

const streamSpec = (
    name: string,
    topic: string,
    rollups: RollupSpec[],
    extra: Record<string, unknown> = {},
): StreamSpec => ordersStream(name, { name: topic, partitions: 2 }, rollups, extra);

/** Orders `from` .. `from + n - 1`, one second apart from JAN (ids and times unique). */
const batch = (from: number, n: number) => orders(from, n, JAN);

describe("rollups through rebuild, rename, interrupted runs and detached objects", () => {
    let kafka: KafkaBroker;
    let ch: EmbeddedClickHouse;
    const opts = (allow: PlanOptions["allowDestructiveChanges"] = false): PlanOptions => ({
        database: DB,
        kafkaBrokers: kafka.bootstrap,
        allowDestructiveChanges: allow,
    });
    const { rows, count, waitRows } = tableKit(() => ch.client, DB);
    const tablesLike = async (prefix: string) =>
        (
            await rows(
                `SELECT name FROM system.tables WHERE database = '${DB}' AND startsWith(name, '${prefix}') ORDER BY name`,
            )
        ).map((r) => String(r["name"]));
    async function assertRollupEqualsRaw(spec: StreamSpec, name: string) {
        const got = await rows(rollupQuerySql(DB, spec, name));
        const want = await rows(rawGroupBySql(DB, spec, name));
        assert.ok(want.length > 0, "the raw GROUP BY is empty");
        assert.deepEqual(got, want, `rollup ${name} of ${spec.name}`);
        const orders = got.reduce((a, r) => a + Number(r["orders"]), 0);
        assert.equal(orders, await count(spec.name), `rollup ${name} counts every row once`);
        return orders;
    }
    /** A just-detached table can be "still used by some query" for a moment: retry then. */
    async function untilAttachable<T>(run: () => Promise<T>): Promise<T> {
        let result: T | undefined;
        await pollUntil(
            "the detached objects attach",
            async () => {
                try {
                    result = await run();
                    return true;
                } catch (e) {
                    if (/still used by some query/.test(String(e))) return false;
                    throw e;
                }
            },
            (ok) => ok,
            60_000,
        );
        return result!;
    }
    async function runBackfill(spec: StreamSpec, name: string) {
        const job = rollupBackfillSql(DB, spec, name);
        await ch.client.command({ query: job.insert });
        await ch.client.command({ query: job.cleanup });
    }

    before(async () => {
        kafka = await startKafka();
        ch = await openEmbedded(undefined, { configXml: FAST_REJOIN_CONFIG });
    });
    after(async () => {
        await ch?.close();
        await kafka?.stop();
    });

    it("target rebuilt (ORDER BY change): the rollup's view follows the new target, rows before, during and after counted once", async (t) => {
        const spec = streamSpec("rb", "lc.rb", [rollup("per_minute")]);
        await kafka.createTopic(spec.topic.name, 2);
        await reconcile(ch.client, spec, opts());
        await kafka.produce(spec.topic.name, batch(0, 20_000));
        await waitRows("rb", 20_000);

        const reordered = { ...spec, orderBy: ["order_time", "country"] };
        const during = kafka.produce(spec.topic.name, batch(20_000, 10_000));
        const { plan } = await reconcile(ch.client, reordered, opts(["rebuildTable"]));
        const sqls = plan.statements.map((s) => s.sql);
        const exchange = sqls.findIndex((s) => s.startsWith("EXCHANGE TABLES"));
        const stop = sqls.indexOf(`DROP TABLE IF EXISTS \`${DB}\`.\`rb_kafka\``);
        assert.ok(stop >= 0 && exchange > stop, describePlan(plan).join("\n"));
        const view = sqls.findIndex((s) =>
            /VIEW IF NOT EXISTS `rollcycle`.`rb_per_minute_mv`/.test(s),
        );
        assert.ok(view === -1 || view > exchange, "a recreated rollup view follows the swap");
        await during;
        await kafka.produce(spec.topic.name, batch(30_000, 10_000));
        assert.equal(await waitRows("rb", 40_000), 40_000);
        const n = await assertRollupEqualsRaw(reordered, "per_minute");
        t.diagnostic(
            `rebuild: ${n} orders in the rollup = rows in rb (20,000 before, 20,000 during/after)`,
        );
        const deps = await rows(
            `SELECT dependencies_table AS d FROM system.tables WHERE database = '${DB}' AND name = 'rb'`,
        );
        assert.deepEqual(deps[0]!["d"], ["rb_per_minute_mv"]);
    });

    it("renamedFrom carries the rollup tables with their rows and a pending backfill snapshot", async (t) => {
        const topic = "lc.rn";
        const first = streamSpec("rn", topic, [rollup("per_minute")]);
        await kafka.createTopic(topic, 2);
        await reconcile(ch.client, first, opts());
        await kafka.produce(topic, batch(0, 15_000));
        await waitRows("rn", 15_000);
        const withBackfill = streamSpec("rn", topic, [
            rollup("per_minute"),
            rollup("per_hour", { interval: "1 hour", backfill: true }),
        ]);
        await reconcile(ch.client, withBackfill, opts());
        await kafka.produce(topic, batch(15_000, 5_000));
        await waitRows("rn", 20_000);
        const pending = await count("rn_per_hour_backfill");
        assert.ok(pending >= 15_000 && pending < 20_000, `snapshot holds ${pending} rows`);

        const renamed = streamSpec("renamed", topic, withBackfill.rollups!, {
            renamedFrom: "rn",
        });
        // The provider rehearses the plan on a copy of the live objects first: it converges there.
        const live = await planFromServer(ch.client, renamed, opts());
        assert.deepEqual(await rehearse(renamed, opts(), live.plan, live, ch.client), {
            ok: true,
            engine: "embedded",
        });
        const { plan } = await reconcile(ch.client, renamed, opts());
        const sqls = plan.statements.map((s) => s.sql);
        for (const [from, to] of [
            ["rn_per_minute", "renamed_per_minute"],
            ["rn_per_minute_mv", "renamed_per_minute_mv"],
            ["rn_per_hour", "renamed_per_hour"],
            ["rn_per_hour_backfill", "renamed_per_hour_backfill"],
        ])
            assert.ok(
                sqls.includes(`RENAME TABLE \`${DB}\`.\`${from}\` TO \`${DB}\`.\`${to}\``),
                describePlan(plan).join("\n"),
            );
        assert.deepEqual(await tablesLike("rn_"), [], "nothing of the old name is left");
        assert.equal(await readStreamState(ch.client, DB, "rn"), undefined);
        assert.equal(await count("renamed_per_hour_backfill"), pending);

        await kafka.produce(topic, batch(20_000, 5_000));
        assert.equal(await waitRows("renamed", 25_000), 25_000);
        const n = await assertRollupEqualsRaw(renamed, "per_minute");
        await runBackfill(renamed, "per_hour");
        await assertRollupEqualsRaw(renamed, "per_hour");
        t.diagnostic(
            `rename: ${n} orders in renamed_per_minute and renamed_per_hour (15,000 before any rename)`,
        );
        assert.deepEqual((await planFromServer(ch.client, renamed, opts())).plan.statements, []);
    });

    it("a run that died part-way through creating a rollup converges on the next plan, every row counted once", async (t) => {
        const topic = "lc.ir";
        const rollups: RollupSpec[] = [];
        const spec = () => streamSpec("ir", topic, [...rollups]);
        await kafka.createTopic(topic, 2);
        await reconcile(ch.client, spec(), opts());
        let produced = 10_000;
        await kafka.produce(topic, batch(0, produced));
        await waitRows("ir", produced);
        // Cut after the statement matching each pattern: the run's process died there (the
        // Kafka table stays dropped, as no restore ran).
        const cuts: Array<[string, RegExp]> = [
            ["snapshot created (marked, empty)", /^CREATE TABLE IF NOT EXISTS .*_backfill` AS/],
            ["snapshot filled", /ATTACH PARTITION ALL FROM/],
            ["rollup table created, no view", /AggregatingMergeTree/],
        ];
        for (const [i, [what, pattern]] of cuts.entries()) {
            const name = `cut${i}`;
            rollups.push(rollup(name, { backfill: true }));
            const { plan } = await planFromServer(ch.client, spec(), opts());
            const at = plan.statements.findIndex((s) => pattern.test(s.sql));
            assert.ok(at >= 0, `${what}: ${describePlan(plan).join("\n")}`);
            for (const s of plan.statements.slice(0, at + 1))
                await ch.client.command({ query: s.sql });
            // Messages keep arriving while the stream's Kafka table is gone.
            await kafka.produce(topic, batch(produced, 3_000));
            produced += 3_000;
            const next = await reconcile(ch.client, spec(), opts());
            t.diagnostic(`${what}: next plan\n${describePlan(next.plan).join("\n")}`);
            assert.equal(await waitRows("ir", produced), produced);
            await runBackfill(spec(), name);
            for (const r of rollups) await assertRollupEqualsRaw(spec(), r.name);
        }
        // And with the restore a failed statement triggers (the Kafka table recreated while the
        // rollup table has no view): rows arriving meanwhile reach the target only.
        rollups.push(rollup("cut3", { backfill: true }));
        const { plan, actual } = await planFromServer(ch.client, spec(), opts());
        const at = plan.statements.findIndex((s) => /AggregatingMergeTree/.test(s.sql));
        const { applyPlan } = await import("../../components/ingestion/apply");
        await assert.rejects(
            applyPlan(
                ch.client,
                plan,
                {
                    afterStatement: (_s, index) => {
                        if (index === at) throw new Error("died after the rollup table");
                    },
                },
                actual,
            ),
        );
        await kafka.produce(topic, batch(produced, 3_000));
        produced += 3_000;
        assert.equal(await waitRows("ir", produced), produced);
        await reconcile(ch.client, spec(), opts());
        await kafka.produce(topic, batch(produced, 1_000));
        produced += 1_000;
        assert.equal(await waitRows("ir", produced), produced);
        await runBackfill(spec(), "cut3");
        for (const r of rollups) await assertRollupEqualsRaw(spec(), r.name);
        t.diagnostic(
            `interrupted runs: ${produced} rows, ${rollups.length} rollups equal to the raw GROUP BY`,
        );
    });

    it("detached rollup objects are attached first; observed state lists the rollup objects", async () => {
        const topic = "lc.dt";
        const spec = streamSpec("dt", topic, [rollup("per_minute")]);
        await kafka.createTopic(topic, 2);
        const created = await reconcile(ch.client, spec, opts());
        const observed = summarizeState(created.actual);
        assert.deepEqual(Object.keys(observed.rollups ?? {}), [
            "dt_per_minute",
            "dt_per_minute_mv",
        ]);
        assert.equal(observed.rollups!["dt_per_minute"]!.engine, "AggregatingMergeTree");
        assert.equal(observed.rollups!["dt_per_minute_mv"]!.writesTo, "<db>.dt_per_minute");
        await kafka.produce(topic, batch(0, 2_000));
        await waitRows("dt", 2_000);

        await ch.client.command({ query: `DETACH TABLE ${DB}.dt_per_minute_mv` });
        await ch.client.command({ query: `DETACH TABLE ${DB}.dt_per_minute` });
        const state = await readStreamState(ch.client, DB, "dt");
        assert.deepEqual(summarizeState(state).detached, ["dt_per_minute", "dt_per_minute_mv"]);
        const { plan } = await planFromServer(ch.client, spec, opts());
        const sqls = plan.statements.map((s) => s.sql);
        assert.ok(
            sqls.includes(`ATTACH TABLE IF NOT EXISTS \`${DB}\`.\`dt_per_minute\``) &&
                sqls.includes(`ATTACH TABLE IF NOT EXISTS \`${DB}\`.\`dt_per_minute_mv\``),
            describePlan(plan).join("\n"),
        );
        assert.ok(!sqls.some((s) => /^CREATE|^DROP/.test(s)), describePlan(plan).join("\n"));
        await untilAttachable(() => reconcile(ch.client, spec, opts()));
        await kafka.produce(topic, batch(2_000, 1_000));
        await waitRows("dt", 3_000);
        await assertRollupEqualsRaw(spec, "per_minute");

        // Removing the stream: a detached rollup object is attached, then dropped (its view) or
        // kept (its table, without dropTargetOnDelete).
        await ch.client.command({ query: `DETACH TABLE ${DB}.dt_per_minute_mv` });
        const drop1 = planDrop("dt", await readStreamState(ch.client, DB, "dt"), { database: DB });
        assert.ok(
            drop1.statements.some(
                (s) => s.sql === `ATTACH TABLE IF NOT EXISTS \`${DB}\`.\`dt_per_minute_mv\``,
            ),
            drop1.statements.map((s) => s.sql).join("\n"),
        );
        await untilAttachable(async () => {
            for (const s of drop1.statements) await ch.client.command({ query: s.sql });
        });
        const drop2 = planDrop("dt", await readStreamState(ch.client, DB, "dt"), { database: DB });
        for (const s of drop2.statements) await ch.client.command({ query: s.sql });
        assert.deepEqual(await tablesLike("dt"), ["dt", "dt_dlq", "dt_per_minute"]);
    });
});
