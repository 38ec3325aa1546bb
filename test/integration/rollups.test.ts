// Rollups for real: messages produced to a real Kafka broker land in the target through the
// planner's DDL, the rollup's view aggregates them, and the rollup's finalised result equals the
// same GROUP BY over the raw rows, row for row; then the rollup evolves (a measure added in
// place, a key change and a removal refused), and a rollup created later with backfill counts the
// rows that were there before it exactly once while ingestion goes on.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyPlan, planFromServer, reconcile } from "../../components/ingestion/apply";
import {
    rawGroupBySql,
    rollupBackfillSql,
    rollupQuerySql,
} from "../../components/ingestion/plan/rollup";
import {
    DestructiveChangeRefusedError,
    PlanOptions,
    describePlan,
} from "../../components/ingestion/planner";
import type { RollupSpec, StreamSpec } from "../../schemas/model";
import { EmbeddedClickHouse, openEmbedded } from "../harness/clickhouse";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { FAST_REJOIN_CONFIG, orders, ordersStream, tableKit } from "../harness/rollups";

const DB = "rollups";
const PER_MINUTE: RollupSpec = {
    name: "per_minute",
    time: "order_time",
    interval: "1 minute",
    by: ["country"],
    measures: [
        { name: "orders", fn: "count" },
        { name: "revenue", fn: "sum", column: "amount" },
        { name: "customers", fn: "uniqExact", column: "customer_id" },
        { name: "avg_amount", fn: "avg", column: "amount" },
        { name: "min_amount", fn: "min", column: "amount" },
    ],
    backfill: false,
};

const streamSpec = (name: string, rollups: RollupSpec[] | undefined): StreamSpec =>
    ordersStream(name, { name: `rollups.${name}`, partitions: 3 }, rollups, {
        partitionBy: "toYYYYMMDD(order_time)",
    });
const batch = orders;
const JAN = Date.UTC(2026, 0, 1) / 1000;
const FEB = Date.UTC(2026, 1, 1) / 1000;
const MAR = Date.UTC(2026, 2, 1) / 1000;

describe("rollups: Kafka -> target -> rollup view, equal to the GROUP BY over the raw rows", () => {
    let kafka: KafkaBroker;
    let ch: EmbeddedClickHouse;
    const opts = (allow: PlanOptions["allowDestructiveChanges"] = false): PlanOptions => ({
        database: DB,
        kafkaBrokers: kafka.bootstrap,
        allowDestructiveChanges: allow,
    });
    const { rows, count, waitRows } = tableKit(() => ch.client, DB);
    /** Both result sets, whole; with `where`, only their rows matching it. */
    async function assertRollupEqualsRaw(spec: StreamSpec, rollup: string, where = "1") {
        const wrap = (sql: string) => `SELECT * FROM (${sql}) WHERE ${where}`;
        const got = await rows(wrap(rollupQuerySql(DB, spec, rollup)));
        const want = await rows(wrap(rawGroupBySql(DB, spec, rollup)));
        assert.ok(want.length > 0, "the raw GROUP BY is empty");
        assert.deepEqual(got, want);
        return got.length;
    }

    before(async () => {
        kafka = await startKafka();
        ch = await openEmbedded(undefined, { configXml: FAST_REJOIN_CONFIG });
    });
    after(async () => {
        await ch?.close();
        await kafka?.stop();
    });

    it("100,000 events through Kafka: the rollup equals the raw GROUP BY; then it evolves safely", async (t) => {
        const spec = streamSpec("ro", [PER_MINUTE]);
        await kafka.createTopic(spec.topic.name, 3);
        const created = await reconcile(ch.client, spec, opts());
        assert.ok(created.applied.some((s) => /AggregatingMergeTree/.test(s.sql)));
        await kafka.produce(spec.topic.name, batch(0, 100_000, JAN));
        assert.equal(await waitRows("ro", 100_000), 100_000);
        const buckets = await assertRollupEqualsRaw(spec, "per_minute");
        t.diagnostic(`100,000 rows -> ${buckets} rollup rows, equal to the raw GROUP BY`);

        // A measure added: in place, while ingestion is stopped, no row lost.
        const added: RollupSpec = {
            ...PER_MINUTE,
            measures: [...PER_MINUTE.measures, { name: "max_amount", fn: "max", column: "amount" }],
        };
        const withMax = streamSpec("ro", [added]);
        const { plan } = await planFromServer(ch.client, withMax, opts());
        assert.deepEqual(plan.refusals, []);
        assert.ok(
            plan.statements.every((s) => s.kind !== "destructive"),
            describePlan(plan).join("\n"),
        );
        assert.ok(plan.statements.some((s) => /ADD COLUMN IF NOT EXISTS `max_amount`/.test(s.sql)));
        const order = plan.statements.map((s) => s.sql);
        const stop = order.findIndex((s) => s === `DROP TABLE IF EXISTS \`${DB}\`.\`ro_kafka\``);
        const view = order.findIndex((s) =>
            s.startsWith(`CREATE MATERIALIZED VIEW IF NOT EXISTS \`${DB}\`.\`ro_per_minute_mv\``),
        );
        assert.ok(stop >= 0 && view > stop, "ingestion stops before the rollup's view is replaced");
        const producing = kafka.produce(spec.topic.name, batch(100_000, 20_000, FEB));
        await reconcile(ch.client, withMax, opts());
        await producing;
        assert.equal(await waitRows("ro", 120_000), 120_000);
        // The old measures over every row, the new one over the rows after it was added.
        const old = `SELECT * EXCEPT (max_amount) FROM (${rollupQuerySql(DB, withMax, "per_minute")})`;
        assert.deepEqual(await rows(old), await rows(rawGroupBySql(DB, spec, "per_minute")));
        await assertRollupEqualsRaw(withMax, "per_minute", `bucket >= toDateTime(${FEB}, 'UTC')`);

        // A key change: refused, naming the rollup and the way out.
        const rekeyed = streamSpec("ro", [{ ...added, by: ["country", "customer_id"] }]);
        const refused = (await planFromServer(ch.client, rekeyed, opts())).plan;
        await assert.rejects(applyPlan(ch.client, refused), (e: unknown) => {
            assert.ok(e instanceof DestructiveChangeRefusedError);
            assert.deepEqual(
                e.refusals.map((r) => [r.change, r.object]),
                [["rebuildTable", "ro_per_minute"]],
            );
            assert.match(e.message, /rollup per_minute .*declare a new rollup name with backfill/s);
            return true;
        });

        // Removal: refused unless allowed; allowed, the view and the table go.
        const kept = await rows(rollupQuerySql(DB, withMax, "per_minute"));
        const none = streamSpec("ro", undefined);
        const removal = (await planFromServer(ch.client, none, opts())).plan;
        assert.deepEqual(
            removal.refusals.map((r) => [r.change, r.object]),
            [["dropTable", "ro_per_minute"]],
        );
        await assert.rejects(applyPlan(ch.client, removal), DestructiveChangeRefusedError);
        assert.deepEqual(await rows(rollupQuerySql(DB, withMax, "per_minute")), kept);
        await reconcile(ch.client, none, opts(["dropTable"]));
        const left = await rows(
            `SELECT name FROM system.tables WHERE database = '${DB}' AND name LIKE 'ro\\_per\\_minute%'`,
        );
        assert.deepEqual(left, []);
    });

    it("backfill: rows before the rollup plus rows during and after it, each counted once", async (t) => {
        const plain = streamSpec("bf", undefined);
        await kafka.createTopic(plain.topic.name, 3);
        await reconcile(ch.client, plain, opts());
        await kafka.produce(plain.topic.name, batch(0, 30_000, JAN));
        await waitRows("bf", 30_000);

        const spec = streamSpec("bf", [{ ...PER_MINUTE, backfill: true }]);
        // Ingestion goes on while the rollup is created: rows during, then after.
        const during = kafka.produce(plain.topic.name, batch(30_000, 20_000, JAN + 30_000 - 600));
        const created = await reconcile(ch.client, spec, opts());
        const sqls = created.applied.map((s) => s.sql);
        const snap = sqls.findIndex((s) => /ATTACH PARTITION ALL FROM/.test(s));
        const view = sqls.findIndex((s) =>
            /MATERIALIZED VIEW IF NOT EXISTS `rollups`.`bf_per_minute_mv`/.test(s),
        );
        const stop = sqls.indexOf(`DROP TABLE IF EXISTS \`${DB}\`.\`bf_kafka\``);
        assert.ok(stop >= 0 && stop < snap && snap < view, sqls.join("\n"));
        assert.ok(describePlan(created.plan).some((l) => /backfill/.test(l)));
        await during;
        await kafka.produce(plain.topic.name, batch(50_000, 10_000, MAR));
        assert.equal(await waitRows("bf", 60_000), 60_000);
        const snapshotRows = await count("bf_per_minute_backfill");
        t.diagnostic(
            `snapshot: ${snapshotRows} rows; the view saw the other ${60_000 - snapshotRows}`,
        );
        assert.ok(snapshotRows >= 30_000 && snapshotRows < 60_000);

        // A later plan keeps the snapshot and says why.
        const pending = (await planFromServer(ch.client, spec, opts())).plan;
        assert.deepEqual(pending.statements, []);
        assert.ok(pending.notes.some((n) => /backfill of rollup bf_per_minute pending/.test(n)));

        const job = rollupBackfillSql(DB, spec, "per_minute");
        await ch.client.command({ query: job.insert });
        await ch.client.command({ query: job.cleanup });
        await assertRollupEqualsRaw(spec, "per_minute");
        assert.deepEqual(
            await rows(
                `SELECT name FROM system.tables WHERE database = '${DB}' AND name = 'bf_per_minute_backfill'`,
            ),
            [],
        );
    });
});
