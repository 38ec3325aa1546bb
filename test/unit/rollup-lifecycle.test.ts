// The rollup planner through a stream's life, plan by plan (the engine runs the same cases in
// test/integration/rollup-lifecycle.test.ts): a rename carries the rollup objects and keeps their
// definition, an interrupted creation starts again from a new snapshot, detached rollup objects
// are attached first, and the observed state lists the rollup objects.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { validateStream } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import {
    ActualStreamState,
    PlanOptions,
    describePlan,
    expectedState,
    planDrop,
    planStream,
} from "../../components/ingestion/planner";
import { summarizeState } from "../../components/ingestion/introspect";

const OPTIONS: PlanOptions = { database: "ingest", kafkaBrokers: "kafka-0.kafka:9092" };
const ROLLUP = {
    name: "per_minute",
    time: "order_time",
    interval: "1 minute",
    by: ["country"],
    measures: [
        { name: "orders", fn: "count" },
        { name: "revenue", fn: "sum", column: "amount" },
    ],
};

function spec(name: string, rollup: object = ROLLUP, extra: object = {}): StreamSpec {
    return validateStream(
        {
            name,
            topic: { name: "shop.orders" },
            columns: [
                { name: "order_id", type: "UInt64" },
                { name: "order_time", type: "DateTime('UTC')" },
                { name: "country", type: "LowCardinality(String)" },
                { name: "amount", type: "UInt32" },
            ],
            orderBy: ["order_id"],
            rollups: [rollup],
            ...extra,
        },
        `${name}.yaml`,
    ).spec;
}
const deployed = (s: StreamSpec): ActualStreamState => expectedState(s, OPTIONS);
const q = (name: string) => `\`ingest\`.\`${name}\``;

describe("rollups: rename, interrupted creation, detached objects", () => {
    it("renamedFrom renames the rollup table and view, marks them, and defines the view again", () => {
        const previous = deployed(spec("orders"));
        const plan = planStream(
            spec("sales", ROLLUP, { renamedFrom: "orders" }),
            undefined,
            OPTIONS,
            previous,
        );
        const list = plan.statements.map((s) => s.sql);
        const at = (sql: string) => list.indexOf(sql);
        const renameTable = at(
            `RENAME TABLE ${q("orders_per_minute")} TO ${q("sales_per_minute")}`,
        );
        const renameView = at(
            `RENAME TABLE ${q("orders_per_minute_mv")} TO ${q("sales_per_minute_mv")}`,
        );
        const dropView = at(`DROP TABLE IF EXISTS ${q("sales_per_minute_mv")}`);
        const view = list.findIndex((s) =>
            s.startsWith(
                `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q("sales_per_minute_mv")} TO ${q("sales_per_minute")}`,
            ),
        );
        const start = list.findIndex((s) =>
            s.startsWith(`CREATE TABLE IF NOT EXISTS ${q("sales_kafka")}`),
        );
        assert.deepEqual(plan.refusals, []);
        assert.ok(
            renameTable >= 0 &&
                renameView > renameTable &&
                dropView > renameView &&
                view > dropView &&
                start > view,
            describePlan(plan).join("\n"),
        );
        assert.ok(
            !list.some((s) =>
                s.startsWith(`CREATE TABLE IF NOT EXISTS ${q("sales_per_minute")} (`),
            ),
        );
        assert.ok(
            list.includes(
                `ALTER TABLE ${q("sales_per_minute")} MODIFY COMMENT 'rollup per_minute of stream sales: bucket = toStartOfInterval(order_time, INTERVAL 1 MINUTE) [kafka-clickhouse-stack stream=sales role=rollup rollup=per_minute]'`,
            ),
            list.join("\n"),
        );
    });

    it("a rename keeps the old table's definition: an interval changed with it still needs the rebuild", () => {
        const previous = deployed(spec("orders"));
        const plan = planStream(
            spec("sales", { ...ROLLUP, interval: "5 minutes" }, { renamedFrom: "orders" }),
            undefined,
            OPTIONS,
            previous,
        );
        assert.deepEqual(
            plan.refusals.map((r) => [r.change, r.object]),
            [["rebuildTable", "sales_per_minute"]],
        );
    });

    it("table and snapshot without the view (an interrupted creation): dropped and made again with ingestion stopped", () => {
        const s = spec("orders", { ...ROLLUP, backfill: true });
        const done = deployed(s);
        const { orders_per_minute_mv: _view, ...related } = done.related!;
        void _view;
        const snapshot = {
            ...done.tables.target!,
            name: "orders_per_minute_backfill",
            comment:
                "x [kafka-clickhouse-stack stream=orders role=rollupBackfill rollup=per_minute]",
        };
        const plan = planStream(
            s,
            { ...done, related: { ...related, orders_per_minute_backfill: snapshot } },
            OPTIONS,
        );
        const list = plan.statements.map((st) => st.sql);
        const stop = list.indexOf(`DROP TABLE IF EXISTS ${q("orders_kafka")}`);
        const dropTable = list.indexOf(`DROP TABLE IF EXISTS ${q("orders_per_minute")}`);
        const dropSnap = list.indexOf(`DROP TABLE IF EXISTS ${q("orders_per_minute_backfill")}`);
        const snap = list.findIndex((x) =>
            x.startsWith(`CREATE TABLE IF NOT EXISTS ${q("orders_per_minute_backfill")} AS`),
        );
        const table = list.findIndex((x) =>
            x.startsWith(`CREATE TABLE IF NOT EXISTS ${q("orders_per_minute")} (`),
        );
        const view = list.findIndex((x) =>
            x.startsWith(`CREATE MATERIALIZED VIEW IF NOT EXISTS ${q("orders_per_minute_mv")}`),
        );
        assert.ok(
            stop >= 0 &&
                dropTable > stop &&
                dropSnap > dropTable &&
                snap > dropSnap &&
                table > snap &&
                view > table,
            describePlan(plan).join("\n"),
        );
        assert.ok(plan.statements.every((st) => st.kind !== "destructive"));
    });

    it("detached rollup objects are attached (and nothing else planned for that rollup), also when the stream is removed", () => {
        const s = spec("orders");
        const done = deployed(s);
        const { orders_per_minute: _t, orders_per_minute_mv: _v, ...related } = done.related!;
        void _t;
        void _v;
        const state = {
            ...done,
            related,
            detachedRelated: ["orders_per_minute", "orders_per_minute_mv"],
        };
        const plan = planStream(s, state, OPTIONS);
        assert.deepEqual(
            plan.statements.map((st) => st.sql),
            [
                `ATTACH TABLE IF NOT EXISTS ${q("orders_per_minute")}`,
                `ATTACH TABLE IF NOT EXISTS ${q("orders_per_minute_mv")}`,
            ],
        );
        const drop = planDrop("orders", state, { database: "ingest" });
        assert.ok(
            drop.statements.some(
                (st) => st.sql === `ATTACH TABLE IF NOT EXISTS ${q("orders_per_minute_mv")}`,
            ),
        );
        assert.deepEqual(summarizeState(state).detached, [
            "orders_per_minute",
            "orders_per_minute_mv",
        ]);
    });

    it("the observed state lists the stream's rollup objects, not another stream's tables under its prefix", () => {
        const done = deployed(spec("orders"));
        const foreign = {
            ...done.tables.target!,
            name: "orders_eu",
            comment: "[kafka-clickhouse-stack stream=orders_eu role=target]",
        };
        const summary = summarizeState({
            ...done,
            related: { ...done.related, orders_eu: foreign },
        });
        assert.deepEqual(Object.keys(summary.rollups ?? {}), [
            "orders_per_minute",
            "orders_per_minute_mv",
        ]);
        assert.equal(summary.rollups!["orders_per_minute"]!.engine, "AggregatingMergeTree");
        assert.equal(summary.rollups!["orders_per_minute_mv"]!.writesTo, "<db>.orders_per_minute");
    });
});
