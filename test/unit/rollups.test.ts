import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StreamSchemaError, loadStreams, validateStream } from "../../schemas/loader";
import type { RollupSpec, StreamInput, StreamSpec } from "../../schemas/model";
import {
    ActualStreamState,
    PlanOptions,
    describePlan,
    expectedState,
    planDrop,
    planStream,
} from "../../components/ingestion/planner";
import {
    rawGroupBySql,
    rollupBackfillSql,
    rollupQuerySql,
} from "../../components/ingestion/plan/rollup";

const OPTIONS: PlanOptions = { database: "ingest", kafkaBrokers: "kafka-0.kafka:9092" };
const ROLLUP = {
    name: "per_minute",
    time: "order_time",
    interval: "1 minute",
    by: ["country"],
    measures: [
        { name: "orders", fn: "count" },
        { name: "revenue", fn: "sum", column: "amount" },
        { name: "customers", fn: "uniqExact", column: "customer_id" },
    ],
} as const;

function input(rollups?: unknown[]): StreamInput {
    return {
        name: "orders",
        topic: { name: "shop.orders" },
        columns: [
            { name: "order_id", type: "UInt64" },
            { name: "order_time", type: "DateTime64(3, 'UTC')" },
            { name: "country", type: "LowCardinality(String)" },
            { name: "customer_id", type: "UInt64" },
            { name: "amount", type: "UInt32" },
            { name: "note", type: "String" },
            { name: "day", type: "Date" },
        ],
        orderBy: ["order_id"],
        ...(rollups ? { rollups: rollups as StreamInput["rollups"] } : {}),
    } as StreamInput;
}
const spec = (rollups?: unknown[]): StreamSpec => validateStream(input(rollups), "o.yaml").spec;
const withMeasures = (measures: unknown[], extra: object = {}) => [
    { ...ROLLUP, measures, ...extra },
];

function problems(rollups: unknown[]): string[] {
    try {
        validateStream(input(rollups), "schemas/streams/orders.yaml");
    } catch (e) {
        assert.ok(e instanceof StreamSchemaError, String(e));
        return e.problems.map((p) => `${p.file}: ${p.path}: ${p.message}`);
    }
    return [];
}

describe("rollups: loader", () => {
    it("accepts a valid rollup and defaults by and backfill", () => {
        const s = spec([{ ...ROLLUP, by: undefined }]);
        assert.deepEqual(s.rollups![0]!.by, []);
        assert.equal(s.rollups![0]!.backfill, false);
    });

    const cases: Array<[string, unknown[], RegExp]> = [
        [
            "unknown column",
            withMeasures([{ name: "x", fn: "sum", column: "nope" }]),
            /rollups\[0\]\.measures\[0\]\.column: unknown column 'nope'; use one of/,
        ],
        [
            "non-DateTime time",
            [{ ...ROLLUP, time: "day" }],
            /rollups\[0\]\.time: time column 'day' is Date; use a DateTime or DateTime64 column/,
        ],
        [
            "sum of a String",
            withMeasures([{ name: "x", fn: "sum", column: "note" }]),
            /rollups\[0\]\.measures\[0\]\.column: sum needs a numeric column .* not String/,
        ],
        [
            "avg of a String",
            withMeasures([{ name: "x", fn: "avg", column: "note" }]),
            /measures\[0\]\.column: avg needs a numeric column/,
        ],
        ["duplicate rollup", [ROLLUP, ROLLUP], /rollups\[1\]\.name: duplicate rollup 'per_minute'/],
        [
            "duplicate measure",
            withMeasures([
                { name: "x", fn: "count" },
                { name: "x", fn: "count" },
            ]),
            /measures\[1\]\.name: duplicate measure 'x'/,
        ],
        [
            "measure named like a key",
            withMeasures([{ name: "country", fn: "count" }]),
            /measures\[0\]\.name: measure 'country' has the name of a key column/,
        ],
        [
            "bad interval",
            [{ ...ROLLUP, interval: "1 week" }],
            /rollups\[0\]\.interval: interval is 'N second', 'N minute', 'N hour' or 'N day'/,
        ],
        [
            "count with a column",
            withMeasures([{ name: "x", fn: "count", column: "amount" }]),
            /measures\[0\]\.column: count counts rows and takes no column/,
        ],
        [
            "sum without a column",
            withMeasures([{ name: "x", fn: "sum" }]),
            /measures\[0\]\.column: sum needs a column/,
        ],
        [
            "name too long",
            [{ ...ROLLUP, name: "r".repeat(50) }],
            /rollups\[0\]\.name: .*longer than 63 characters; use a shorter rollup name/,
        ],
        [
            "clash with the stream's own objects",
            [{ ...ROLLUP, name: "dlq" }],
            /rollups\[0\]\.name: rollup 'dlq' makes the object name 'orders_dlq', which is one of stream 'orders''s own objects/,
        ],
        [
            "unknown fn",
            withMeasures([{ name: "x", fn: "median", column: "amount" }]),
            /rollups\[0\]\.measures\[0\]\.fn/,
        ],
    ];
    for (const [what, rollups, want] of cases) {
        it(`refuses ${what}, naming file and key`, () => {
            const got = problems(rollups);
            assert.ok(
                got.some(
                    (p) => p.startsWith("schemas/streams/orders.yaml: rollups[") && want.test(p),
                ),
                got.join("\n"),
            );
        });
    }

    it("refuses a rollup named like another stream's objects (across files)", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-rollups-"));
        try {
            fs.writeFileSync(path.join(dir, "a.json"), JSON.stringify(input([ROLLUP])));
            const other = { ...input(), name: "orders_per_minute", topic: { name: "other" } };
            fs.writeFileSync(path.join(dir, "b.json"), JSON.stringify(other));
            assert.throws(
                () => loadStreams(dir),
                (e: unknown) =>
                    e instanceof StreamSchemaError &&
                    e.problems.some(
                        (p) =>
                            p.path === "rollups[0].name" &&
                            /'orders_per_minute', which is an object of stream 'orders_per_minute'/.test(
                                p.message,
                            ),
                    ),
            );
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("the JSON Schema for editors describes rollups", () => {
        const schema = fs.readFileSync(
            path.join(__dirname, "../../schemas/stream.schema.json"),
            "utf8",
        );
        const props = (JSON.parse(schema) as { properties: Record<string, unknown> }).properties;
        assert.ok(JSON.stringify(props["rollups"]).includes("uniqExact"));
    });
});

/** The state a plan for `s` leaves (tables, views, rollups). */
const deployed = (s: StreamSpec): ActualStreamState => expectedState(s, OPTIONS);
const sqls = (s: StreamSpec, actual?: ActualStreamState, o: Partial<PlanOptions> = {}) =>
    planStream(s, actual, { ...OPTIONS, ...o });

describe("rollups: planner", () => {
    it("creates the table and its view after the target, and converges", () => {
        const s = spec([ROLLUP]);
        const plan = sqls(s);
        const list = plan.statements.map((st) => st.sql);
        const table = list.findIndex((q) =>
            q.startsWith("CREATE TABLE IF NOT EXISTS `ingest`.`orders_per_minute` ("),
        );
        const view = list.findIndex((q) =>
            q.startsWith(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS `ingest`.`orders_per_minute_mv` TO `ingest`.`orders_per_minute`",
            ),
        );
        const target = list.findIndex((q) =>
            q.startsWith("CREATE TABLE IF NOT EXISTS `ingest`.`orders` ("),
        );
        assert.ok(target >= 0 && target < table && table < view, list.join("\n"));
        assert.match(
            list[table]!,
            /`bucket` DateTime\('UTC'\), `country` LowCardinality\(String\), `orders` SimpleAggregateFunction\(sum, UInt64\) COMMENT 'count\(\)', `revenue` SimpleAggregateFunction\(sum, UInt64\) COMMENT 'sum\(amount\)', `customers` AggregateFunction\(uniqExact, UInt64\)/,
        );
        assert.match(
            list[table]!,
            /ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM\(bucket\) ORDER BY \(`bucket`, `country`\)/,
        );
        assert.match(
            list[table]!,
            /\[kafka-clickhouse-stack stream=orders role=rollup rollup=per_minute\]'$/,
        );
        assert.match(
            list[view]!,
            /AS SELECT toDateTime\(toStartOfInterval\(`order_time`, INTERVAL 1 MINUTE\)\) AS bucket, `country`, count\(\) AS `orders`, sum\(`amount`\) AS `revenue`, uniqExactState\(`customer_id`\) AS `customers` FROM `ingest`.`orders` GROUP BY `bucket`, `country`$/,
        );
        assert.deepEqual(sqls(s, deployed(s)).statements, []);
    });

    it("adds a measure in place, replacing the view while ingestion is stopped", () => {
        const before = spec([ROLLUP]);
        const after = spec(
            withMeasures([...ROLLUP.measures, { name: "top", fn: "max", column: "amount" }]),
        );
        const plan = sqls(after, deployed(before));
        assert.deepEqual(plan.refusals, []);
        const lines = plan.statements.map((st) => `${st.kind} ${st.sql}`);
        const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
        const stop = at(/^rebuild DROP TABLE IF EXISTS `ingest`.`orders_kafka`$/);
        const add = at(
            /^in-place ALTER TABLE `ingest`.`orders_per_minute` ADD COLUMN IF NOT EXISTS `top` SimpleAggregateFunction\(max, UInt32\) COMMENT 'max\(amount\)' AFTER `customers`$/,
        );
        const view = at(
            /^rebuild CREATE MATERIALIZED VIEW IF NOT EXISTS `ingest`.`orders_per_minute_mv`/,
        );
        const start = at(/^rebuild CREATE TABLE IF NOT EXISTS `ingest`.`orders_kafka`/);
        assert.ok(stop >= 0 && stop < add && add < view && view < start, lines.join("\n"));
        assert.ok(plan.statements.every((st) => st.kind !== "destructive"));
        assert.deepEqual(sqls(after, deployed(after)).statements, []);
    });

    it("refuses removing a measure unless dropColumn is allowed", () => {
        const before = spec([ROLLUP]);
        const after = spec(withMeasures(ROLLUP.measures.slice(0, 2)));
        const plan = sqls(after, deployed(before));
        assert.deepEqual(
            plan.refusals.map((r) => [r.change, r.object]),
            [["dropColumn", "orders_per_minute"]],
        );
        const allowed = sqls(after, deployed(before), { allowDestructiveChanges: ["dropColumn"] });
        assert.deepEqual(allowed.refusals, []);
        assert.ok(
            allowed.statements.some(
                (st) =>
                    st.kind === "destructive" && /DROP COLUMN IF EXISTS `customers`/.test(st.sql),
            ),
        );
    });

    for (const [what, change] of [
        ["the interval", { interval: "5 minute" }],
        ["the time column", { time: "order_time", interval: "1 hour" }],
        ["the keys", { by: ["country", "customer_id"] }],
        [
            "a measure's function",
            {
                measures: [
                    { name: "orders", fn: "count" },
                    { name: "revenue", fn: "max", column: "amount" },
                    ROLLUP.measures[2],
                ],
            },
        ],
    ] as const) {
        it(`refuses changing ${what} (rebuildTable), pointing at a new rollup with backfill`, () => {
            const plan = sqls(spec([{ ...ROLLUP, ...change }]), deployed(spec([ROLLUP])));
            assert.deepEqual(
                plan.refusals.map((r) => [r.change, r.object]),
                [["rebuildTable", "orders_per_minute"]],
            );
            assert.match(
                plan.refusals[0]!.message,
                /rollup per_minute changes .* declare a new rollup name with backfill: true/,
            );
        });
    }

    it("refuses removing a rollup unless dropTable is allowed; the view goes first", () => {
        const plan = sqls(spec(), deployed(spec([ROLLUP])));
        assert.deepEqual(
            plan.refusals.map((r) => [r.change, r.object]),
            [["dropTable", "orders_per_minute"]],
        );
        const allowed = sqls(spec(), deployed(spec([ROLLUP])), {
            allowDestructiveChanges: ["dropTable"],
        });
        assert.deepEqual(
            allowed.statements.map((st) => `${st.kind} ${st.sql}`),
            [
                "rebuild DROP TABLE IF EXISTS `ingest`.`orders_per_minute_mv`",
                "destructive DROP TABLE IF EXISTS `ingest`.`orders_per_minute`",
            ],
        );
    });

    it("refuses a foreign object under the rollup's name", () => {
        const s = spec([ROLLUP]);
        const state = deployed(spec());
        const foreign = { ...deployed(s).related!["orders_per_minute"]!, comment: "made by hand" };
        const plan = sqls(s, { ...state, related: { orders_per_minute: foreign } });
        assert.deepEqual(
            plan.refusals.map((r) => [r.change, r.object]),
            [["foreignObject", "ingest.orders_per_minute"]],
        );
        assert.match(
            plan.refusals[0]!.message,
            /carries no ownership marker; rollup 'per_minute' of stream 'orders' needs that name/,
        );
    });

    it("backfill: snapshots the target while ingestion is stopped, before the view exists", () => {
        const s = spec([{ ...ROLLUP, backfill: true }]);
        const plan = sqls(s, deployed(spec()));
        const list = plan.statements.map((st) => st.sql);
        const at = (q: string) => list.indexOf(q);
        const stop = at("DROP TABLE IF EXISTS `ingest`.`orders_kafka`");
        const snap = list.findIndex((q) =>
            q.startsWith(
                "CREATE TABLE IF NOT EXISTS `ingest`.`orders_per_minute_backfill` AS `ingest`.`orders` COMMENT 'rows of orders present before rollup per_minute existed, for its backfill [kafka-clickhouse-stack stream=orders role=rollupBackfill rollup=per_minute",
            ),
        );
        const attach = at(
            "ALTER TABLE `ingest`.`orders_per_minute_backfill` ATTACH PARTITION ALL FROM `ingest`.`orders`",
        );
        const view = list.findIndex((q) =>
            q.startsWith("CREATE MATERIALIZED VIEW IF NOT EXISTS `ingest`.`orders_per_minute_mv`"),
        );
        const start = list.findIndex((q) =>
            q.startsWith("CREATE TABLE IF NOT EXISTS `ingest`.`orders_kafka`"),
        );
        assert.ok(
            stop >= 0 && stop < snap && snap < attach && attach < view && view < start,
            list.join("\n"),
        );
        assert.ok(
            describePlan(plan).some((l) =>
                /^\[note\] rollup orders_per_minute is created with backfill/.test(l),
            ),
        );

        // Later: the snapshot is kept (noted) while the rollup exists, dropped once it is gone.
        const done = deployed(s);
        const snapshot = {
            ...done.related!["orders_per_minute"]!,
            name: "orders_per_minute_backfill",
            comment: "[kafka-clickhouse-stack stream=orders role=rollupBackfill rollup=per_minute]",
        };
        const later = {
            ...done,
            related: { ...done.related, orders_per_minute_backfill: snapshot },
        };
        const kept = sqls(s, later);
        assert.deepEqual(kept.statements, []);
        assert.ok(kept.notes.some((n) => /backfill of rollup orders_per_minute pending/.test(n)));
        const gone = sqls(spec(), later, { allowDestructiveChanges: ["dropTable"] });
        assert.ok(
            gone.statements.some(
                (st) => st.sql === "DROP TABLE IF EXISTS `ingest`.`orders_per_minute_backfill`",
            ),
        );
    });

    it("query helpers: the rollup finalised, the raw GROUP BY, the backfill", () => {
        const s = spec([ROLLUP]);
        assert.equal(
            rollupQuerySql("ingest", s, "per_minute"),
            "SELECT `bucket`, `country`, sum(`orders`) AS `orders`, sum(`revenue`) AS `revenue`, uniqExactMerge(`customers`) AS `customers` FROM `ingest`.`orders_per_minute` GROUP BY `bucket`, `country` ORDER BY `bucket`, `country`",
        );
        assert.equal(
            rawGroupBySql("ingest", s, s.rollups![0] as RollupSpec),
            "SELECT toDateTime(toStartOfInterval(`order_time`, INTERVAL 1 MINUTE)) AS bucket, `country`, count() AS `orders`, sum(`amount`) AS `revenue`, uniqExact(`customer_id`) AS `customers` FROM `ingest`.`orders` GROUP BY `bucket`, `country` ORDER BY `bucket`, `country`",
        );
        const job = rollupBackfillSql("ingest", s, "per_minute");
        assert.match(
            job.insert,
            /^INSERT INTO `ingest`.`orders_per_minute` \(`bucket`, `country`, `orders`, `revenue`, `customers`\) SELECT .* uniqExactState\(`customer_id`\) AS `customers` FROM `ingest`.`orders_per_minute_backfill` GROUP BY/,
        );
        assert.equal(job.cleanup, "DROP TABLE IF EXISTS `ingest`.`orders_per_minute_backfill`");
        assert.throws(() => rollupQuerySql("ingest", s, "nope"), /has no rollup 'nope'/);
    });

    it("removing the stream drops the rollup's view; its table only with dropTargetOnDelete", () => {
        const state = deployed(spec([ROLLUP]));
        const kept = planDrop("orders", state, { database: "ingest" });
        assert.ok(
            kept.statements.some(
                (st) => st.sql === "DROP TABLE IF EXISTS `ingest`.`orders_per_minute_mv`",
            ),
        );
        assert.ok(
            !kept.statements.some(
                (st) => st.sql === "DROP TABLE IF EXISTS `ingest`.`orders_per_minute`",
            ),
        );
        assert.ok(kept.notes.some((n) => /^orders_per_minute is kept with its rows/.test(n)));
        const dropped = planDrop("orders", state, { database: "ingest", dropTargetOnDelete: true });
        assert.ok(
            dropped.statements.some(
                (st) =>
                    st.kind === "destructive" &&
                    st.sql === "DROP TABLE IF EXISTS `ingest`.`orders_per_minute`",
            ),
        );
    });
});
