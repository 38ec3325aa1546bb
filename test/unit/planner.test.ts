import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { validateStream } from "../../schemas/loader";
import { StreamInput, StreamSpec } from "../../schemas/model";
import {
    ActualStreamState,
    ActualTable,
    PlanOptions,
    StatementKind,
    StreamPlan,
    describePlan,
    expectedState,
    formatStatement,
    isLosslessWidening,
    normalizeSql,
    planDrop,
    planStream,
    splitTopLevel,
} from "../../components/ingestion/planner";
import {
    parseEngineFull,
    parseSettings,
    parseViewTarget,
} from "../../components/ingestion/introspect";

const OPTIONS: PlanOptions = {
    database: "ingest",
    kafkaBrokers: "kafka-0.kafka:9092,kafka-1.kafka:9092",
};

const BASE: StreamInput = {
    name: "events",
    description: "Test events.",
    topic: { name: "test.events", partitions: 3 },
    formatSettings: { input_format_skip_unknown_fields: 1 },
    columns: [
        { name: "id", type: "UInt64" },
        { name: "ts", type: "DateTime", source: "time" },
        { name: "kind", type: "LowCardinality(String)", default: "'none'" },
        { name: "value", type: "Float64" },
    ],
    orderBy: ["kind", "ts"],
    partitionBy: "toYYYYMM(ts)",
    ttl: "ts + INTERVAL 30 DAY",
};

function spec(change: (s: StreamInput) => StreamInput = (s) => s): StreamSpec {
    return validateStream(change(structuredClone(BASE)), "test").spec;
}

/** The state `from` leaves, optionally edited as if by hand. */
function stateOf(
    from: StreamSpec,
    edit?: (tables: Record<string, ActualTable>) => void,
    options: PlanOptions = OPTIONS,
): ActualStreamState {
    const s = expectedState(from, options);
    const tables = { ...(s.tables as Record<string, ActualTable>) };
    edit?.(tables);
    return { ...s, tables };
}

const kinds = (p: StreamPlan): StatementKind[] => p.statements.map((s) => s.kind);
const sqls = (p: StreamPlan): string[] => p.statements.map((s) => s.sql);
const has = (p: StreamPlan, re: RegExp): boolean => p.statements.some((s) => re.test(s.sql));

describe("planStream: creating", () => {
    const plan = planStream(spec(), undefined, OPTIONS);

    it("creates database, target, dead-letter table, views and finally the Kafka table", () => {
        assert.deepEqual(
            sqls(plan).map((s) => s.split(" (")[0]!.replace(/ COMMENT .*/, "")),
            [
                "CREATE DATABASE IF NOT EXISTS `ingest`",
                "CREATE TABLE IF NOT EXISTS `ingest`.`events`",
                "CREATE TABLE IF NOT EXISTS `ingest`.`events_dlq`",
                "CREATE TABLE IF NOT EXISTS `ingest`.`events_kafka`",
                "CREATE MATERIALIZED VIEW IF NOT EXISTS `ingest`.`events_mv` TO `ingest`.`events`",
                "CREATE MATERIALIZED VIEW IF NOT EXISTS `ingest`.`events_dlq_mv` TO `ingest`.`events_dlq`",
                "DROP TABLE IF EXISTS `ingest`.`events_kafka`",
                "CREATE TABLE IF NOT EXISTS `ingest`.`events_kafka`",
            ],
        );
        assert.deepEqual(kinds(plan), [
            "create",
            "create",
            "create",
            "create",
            "create",
            "create",
            "rebuild",
            "create",
        ]);
        assert.equal(plan.refusals.length, 0);
    });

    it("defines the views against a Null placeholder so consumption starts with both in place", () => {
        assert.match(
            sqls(plan)[3]!,
            /ENGINE = Null COMMENT '\[kafka-clickhouse-stack stream=events role=kafka\]'$/,
        );
        assert.match(sqls(plan)[3]!, /`_error` String/);
        assert.match(sqls(plan)[7]!, /ENGINE = Kafka SETTINGS/);
    });

    it("renders the target with ORDER BY, PARTITION BY, TTL and the description", () => {
        assert.equal(
            sqls(plan)[1],
            "CREATE TABLE IF NOT EXISTS `ingest`.`events` (`id` UInt64, `ts` DateTime, `kind` LowCardinality(String) DEFAULT 'none', `value` Float64) " +
                "ENGINE = MergeTree PARTITION BY toYYYYMM(`ts`) ORDER BY (`kind`, `ts`) TTL `ts` + INTERVAL 30 DAY " +
                "COMMENT 'Test events. [kafka-clickhouse-stack stream=events role=target group=clickhouse-ingest-events]'",
        );
    });

    it("renders the Kafka table with broker list, topic, group, format, consumers, error mode and format settings (no LowCardinality: the target keeps it)", () => {
        assert.equal(
            sqls(plan)[7],
            "CREATE TABLE IF NOT EXISTS `ingest`.`events_kafka` (`id` UInt64, `time` DateTime, `kind` Nullable(String), `value` Float64) " +
                "ENGINE = Kafka SETTINGS kafka_broker_list = 'kafka-0.kafka:9092,kafka-1.kafka:9092', kafka_topic_list = 'test.events', " +
                "kafka_group_name = 'clickhouse-ingest-events', kafka_format = 'JSONEachRow', kafka_num_consumers = 1, " +
                "kafka_flush_interval_ms = 500, kafka_handle_error_mode = 'stream', input_format_skip_unknown_fields = 1 " +
                "COMMENT '[kafka-clickhouse-stack stream=events role=kafka]'",
        );
    });

    it("maps sources to columns and applies defaults in the view, taking only rows without _error", () => {
        assert.equal(
            sqls(plan)[4],
            "CREATE MATERIALIZED VIEW IF NOT EXISTS `ingest`.`events_mv` TO `ingest`.`events` " +
                "COMMENT '[kafka-clickhouse-stack stream=events role=mv]' AS SELECT `id`, `time` AS `ts`, " +
                "ifNull(`kind`, CAST('none' AS LowCardinality(String))) AS `kind`, `value` FROM `ingest`.`events_kafka` WHERE length(_error) = 0",
        );
        assert.match(
            sqls(plan)[5]!,
            /SELECT _topic AS `topic`, _partition AS `partition`, _offset AS `offset`, _key AS `key`, _raw_message AS `raw_message`, _error AS `error`, now64\(3\) AS `received_at` FROM .* WHERE length\(_error\) > 0$/,
        );
    });

    it("uses a ReplacingMergeTree with its version column when the schema asks for deduplication", () => {
        const p = planStream(
            spec((s) => ({ ...s, engine: { type: "ReplacingMergeTree", version: "id" } })),
            undefined,
            OPTIONS,
        );
        assert.match(sqls(p)[1]!, /ENGINE = ReplacingMergeTree\(`id`\)/);
    });

    it("reads connection settings from a named collection when one is given, never credentials", () => {
        const p = planStream(spec(), undefined, { ...OPTIONS, kafkaNamedCollection: "kafka_sasl" });
        assert.match(sqls(p).at(-1)!, /ENGINE = Kafka\(`kafka_sasl`\) SETTINGS/);
        for (const s of sqls(p))
            assert.doesNotMatch(s, /sasl_password|sasl_username|security_protocol|password/i);
    });

    it("skips the dead-letter objects and the error mode when onError is 'fail'", () => {
        const p = planStream(
            spec((s) => ({ ...s, onError: "fail" })),
            undefined,
            OPTIONS,
        );
        assert.ok(!has(p, /_dlq/));
        assert.ok(!has(p, /kafka_handle_error_mode/));
        assert.ok(!has(p, /_error/));
    });

    it("derives consumers from the partitions up to maxDefaultConsumers, one thread each", () => {
        const p = planStream(spec(), undefined, { ...OPTIONS, maxDefaultConsumers: 8 });
        assert.match(sqls(p).at(-1)!, /kafka_num_consumers = 3, kafka_thread_per_consumer = 1/);
    });
});

interface Case {
    readonly name: string;
    readonly from?: (s: StreamInput) => StreamInput;
    readonly to?: (s: StreamInput) => StreamInput;
    /** Edits the actual state (drift made by hand). */
    readonly drift?: (t: Record<string, ActualTable>) => void;
    readonly options?: Partial<PlanOptions>;
    readonly kinds: StatementKind[];
    readonly sql?: RegExp[];
    readonly refused?: string[];
}

const cols = (s: StreamInput) => s.columns;
const CASES: Case[] = [
    { name: "no change", kinds: [] },
    {
        name: "add a column with a default: stop, alter, re-define the view on a placeholder, recreate the Kafka table",
        to: (s) => ({
            ...s,
            columns: [...cols(s), { name: "region", type: "String", default: "'eu'" }],
        }),
        kinds: ["rebuild", "in-place", "create", "in-place", "rebuild", "rebuild"],
        sql: [
            /^DROP TABLE IF EXISTS `ingest`.`events_kafka`$/,
            /^ALTER TABLE `ingest`.`events` ADD COLUMN IF NOT EXISTS `region` String DEFAULT 'eu' AFTER `value`$/,
            /ENGINE = Null COMMENT '\[kafka-clickhouse-stack stream=events role=kafka\]'$/,
            /^ALTER TABLE `ingest`.`events_mv` MODIFY QUERY SELECT .*ifNull\(`region`, CAST\('eu' AS String\)\) AS `region`/,
            /^DROP TABLE IF EXISTS `ingest`.`events_kafka`$/,
            /`region` Nullable\(String\)\) ENGINE = Kafka/,
        ],
    },
    {
        name: "add a column in the middle: placed AFTER its predecessor",
        to: (s) => ({
            ...s,
            columns: [cols(s)[0]!, { name: "source_id", type: "UInt32" }, ...cols(s).slice(1)],
        }),
        kinds: ["rebuild", "in-place", "create", "in-place", "rebuild", "rebuild"],
        sql: [/./, /ADD COLUMN IF NOT EXISTS `source_id` UInt32 AFTER `id`$/],
    },
    {
        name: "change the TTL: destructive (rows past it are deleted), refused by default",
        to: (s) => ({ ...s, ttl: "ts + INTERVAL 90 DAY" }),
        kinds: ["destructive"],
        sql: [/^ALTER TABLE `ingest`.`events` MODIFY TTL `ts` \+ INTERVAL 90 DAY$/],
        refused: ["ttl"],
    },
    {
        name: "change the TTL: allowed as 'ttl', ingestion untouched",
        to: (s) => ({ ...s, ttl: "ts + INTERVAL 90 DAY" }),
        options: { allowDestructiveChanges: ["ttl"] },
        kinds: ["destructive"],
        sql: [/^ALTER TABLE `ingest`.`events` MODIFY TTL `ts` \+ INTERVAL 90 DAY$/],
    },
    {
        name: "remove the TTL",
        to: (s) => ({ ...s, ttl: undefined }),
        kinds: ["in-place"],
        sql: [/REMOVE TTL$/],
    },
    {
        name: "change consumer settings: recreate only the Kafka table (views keep their definitions)",
        to: (s) => ({
            ...s,
            consumer: { consumers: 2, flushIntervalMs: 250, maxBlockSize: 10000 },
        }),
        kinds: ["rebuild", "rebuild"],
        sql: [
            /^DROP TABLE IF EXISTS `ingest`.`events_kafka`$/,
            /kafka_num_consumers = 2, kafka_thread_per_consumer = 1, kafka_max_block_size = 10000, kafka_flush_interval_ms = 250/,
        ],
    },
    {
        name: "change format settings: recreate only the Kafka table",
        to: (s) => ({
            ...s,
            formatSettings: {
                input_format_skip_unknown_fields: 0,
                date_time_input_format: "best_effort",
            },
        }),
        kinds: ["rebuild", "rebuild"],
        sql: [
            /./,
            /date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 0 COMMENT/,
        ],
    },
    {
        name: "change the consumer group",
        to: (s) => ({ ...s, consumer: { group: "ch-events-v2" } }),
        kinds: ["rebuild", "in-place", "rebuild"],
        sql: [/./, /MODIFY COMMENT '.*group=ch-events-v2\]'$/, /kafka_group_name = 'ch-events-v2'/],
    },
    {
        name: "drop a column: refused by default",
        to: (s) => ({ ...s, columns: cols(s).filter((c) => c.name !== "value") }),
        kinds: ["rebuild", "destructive", "create", "in-place", "rebuild", "rebuild"],
        refused: ["dropColumn"],
    },
    {
        name: "drop a column: allowed",
        to: (s) => ({ ...s, columns: cols(s).filter((c) => c.name !== "value") }),
        options: { allowDestructiveChanges: true },
        kinds: ["rebuild", "destructive", "create", "in-place", "rebuild", "rebuild"],
        sql: [/./, /^ALTER TABLE `ingest`.`events` DROP COLUMN IF EXISTS `value`$/],
    },
    {
        name: "narrow a column type: refused",
        to: (s) => ({
            ...s,
            columns: cols(s).map((c) => (c.name === "value" ? { ...c, type: "Float32" } : c)),
        }),
        kinds: ["rebuild", "destructive", "create", "in-place", "rebuild", "rebuild"],
        refused: ["retypeColumn"],
    },
    {
        name: "widen a column type: in place",
        from: (s) => ({
            ...s,
            columns: cols(s).map((c) => (c.name === "id" ? { ...c, type: "UInt32" } : c)),
        }),
        kinds: ["rebuild", "in-place", "create", "in-place", "rebuild", "rebuild"],
        sql: [/./, /MODIFY COLUMN IF EXISTS `id` UInt64$/],
    },
    {
        name: "change ORDER BY: a rebuild, refused by default",
        to: (s) => ({ ...s, orderBy: ["ts", "kind"] }),
        kinds: [
            "rebuild",
            "rebuild",
            "destructive",
            "destructive",
            "destructive",
            "destructive",
            "rebuild",
        ],
        refused: ["rebuildTable"],
    },
    {
        name: "change ORDER BY: allowed rebuild copies, swaps and drops the old version",
        to: (s) => ({ ...s, orderBy: ["ts", "kind"] }),
        options: { allowDestructiveChanges: ["rebuildTable"] },
        kinds: [
            "rebuild",
            "rebuild",
            "destructive",
            "destructive",
            "destructive",
            "destructive",
            "rebuild",
        ],
        sql: [
            /^DROP TABLE IF EXISTS `ingest`.`events_kafka`$/,
            /^DROP TABLE IF EXISTS `ingest`.`events__rebuild`$/,
            /^CREATE TABLE IF NOT EXISTS `ingest`.`events__rebuild` .* ORDER BY \(`ts`, `kind`\)/,
            /^INSERT INTO `ingest`.`events__rebuild` \(`id`, `ts`, `kind`, `value`\) SELECT `id`, `ts`, `kind`, `value` FROM `ingest`.`events` SETTINGS max_partitions_per_insert_block = 0$/,
            /^EXCHANGE TABLES `ingest`.`events` AND `ingest`.`events__rebuild`$/,
            /^DROP TABLE IF EXISTS `ingest`.`events__rebuild`$/,
            /ENGINE = Kafka/,
        ],
    },
    {
        name: "extend ORDER BY with a new column (no default): in place, in the ALTER adding it",
        to: (s) => ({
            ...s,
            columns: [...cols(s), { name: "seq", type: "UInt32" }],
            orderBy: ["kind", "ts", "seq"],
        }),
        kinds: ["rebuild", "in-place", "create", "in-place", "rebuild", "rebuild"],
        sql: [
            /./,
            /ADD COLUMN IF NOT EXISTS `seq` UInt32 AFTER `value`, MODIFY ORDER BY \(`kind`, `ts`, `seq`\)$/,
        ],
    },
    {
        name: "switch to ReplacingMergeTree: a rebuild",
        to: (s) => ({ ...s, engine: { type: "ReplacingMergeTree", version: "id" } }),
        options: { allowDestructiveChanges: true },
        kinds: [
            "rebuild",
            "rebuild",
            "destructive",
            "destructive",
            "destructive",
            "destructive",
            "rebuild",
        ],
        sql: [/./, /./, /ENGINE = ReplacingMergeTree\(`id`\)/],
    },
    {
        name: "change PARTITION BY: a rebuild, refused",
        to: (s) => ({ ...s, partitionBy: "toYYYYMMDD(ts)" }),
        kinds: [
            "rebuild",
            "rebuild",
            "destructive",
            "destructive",
            "destructive",
            "destructive",
            "rebuild",
        ],
        refused: ["rebuildTable"],
    },
    {
        name: "change a column comment and the description: metadata only",
        to: (s) => ({
            ...s,
            description: "New text.",
            columns: cols(s).map((c) => (c.name === "id" ? { ...c, comment: "event id" } : c)),
        }),
        kinds: ["in-place", "in-place"],
        sql: [
            /COMMENT COLUMN `id` 'event id'$/,
            /MODIFY COMMENT 'New text. \[kafka-clickhouse-stack stream=events role=target group=clickhouse-ingest-events\]'$/,
        ],
    },
    {
        name: "change a default's value: target metadata and the view query, Kafka table untouched",
        to: (s) => ({
            ...s,
            columns: cols(s).map((c) => (c.name === "kind" ? { ...c, default: "'other'" } : c)),
        }),
        kinds: ["in-place", "in-place", "in-place"],
        sql: [
            /^ALTER TABLE `ingest`.`events` MATERIALIZE COLUMN `kind`$/,
            /MODIFY COLUMN `kind` DEFAULT 'other'$/,
            /MODIFY QUERY .*ifNull\(`kind`, CAST\('other'/,
        ],
    },
    {
        name: "reorder columns: MODIFY COLUMN ... AFTER, and a new view and Kafka table",
        to: (s) => ({ ...s, columns: [cols(s)[0]!, cols(s)[3]!, cols(s)[1]!, cols(s)[2]!] }),
        kinds: ["rebuild", "in-place", "create", "in-place", "rebuild", "rebuild"],
        sql: [/./, /MODIFY COLUMN `value` Float64 AFTER `id`$/],
    },
    {
        name: "onError deadLetter -> fail: drop the dead-letter view, keep its table",
        to: (s) => ({ ...s, onError: "fail" }),
        kinds: ["rebuild", "create", "in-place", "rebuild", "rebuild", "rebuild"],
        sql: [
            /./,
            /ENGINE = Null COMMENT '\[kafka-clickhouse-stack stream=events role=kafka\]'$/,
            /MODIFY QUERY SELECT .* FROM `ingest`.`events_kafka`$/,
            /DROP VIEW IF EXISTS `ingest`.`events_dlq_mv`$/,
        ],
    },
    {
        name: "drift: Kafka table dropped by hand; views intact, so just recreate it",
        drift: (t) => delete t["kafka"],
        kinds: ["create"],
        sql: [/ENGINE = Kafka/],
    },
    {
        name: "drift: view dropped by hand while consuming: create it directly",
        drift: (t) => delete t["mv"],
        kinds: ["create"],
        sql: [/^CREATE MATERIALIZED VIEW IF NOT EXISTS `ingest`.`events_mv`/],
    },
    {
        name: "drift: view query edited by hand: MODIFY QUERY",
        drift: (t) =>
            (t["mv"] = { ...t["mv"]!, asSelect: "SELECT 1 AS id FROM ingest.events_kafka" }),
        kinds: ["in-place"],
        sql: [/^ALTER TABLE `ingest`.`events_mv` MODIFY QUERY SELECT/],
    },
    {
        name: "drift: view writing elsewhere: stop, replace it on a placeholder, recreate the Kafka table",
        drift: (t) => (t["mv"] = { ...t["mv"]!, toTable: "ingest.other" }),
        kinds: ["rebuild", "create", "rebuild", "rebuild", "rebuild", "rebuild"],
        sql: [
            /DROP TABLE IF EXISTS `ingest`.`events_kafka`/,
            /ENGINE = Null/,
            /DROP TABLE IF EXISTS `ingest`.`events_mv`/,
            /CREATE MATERIALIZED VIEW/,
        ],
    },
    {
        name: "drift: a column added by hand is a drop, refused",
        drift: (t) =>
            (t["target"] = {
                ...t["target"]!,
                columns: [...t["target"]!.columns, { ...t["target"]!.columns[0]!, name: "extra" }],
            }),
        kinds: ["destructive"],
        refused: ["dropColumn"],
    },
    {
        name: "interrupted run: placeholder left where the Kafka table belongs",
        drift: (t) => (t["kafka"] = { ...t["kafka"]!, engine: "Null", settings: {} }),
        kinds: ["rebuild", "rebuild"],
        sql: [/^DROP TABLE IF EXISTS `ingest`.`events_kafka`$/, /ENGINE = Kafka/],
    },
    {
        name: "interrupted rebuild: scratch table left behind is dropped",
        drift: (t) => (t["rebuild"] = { ...t["target"]!, name: "events__rebuild" }),
        kinds: ["rebuild"],
        sql: [/^DROP TABLE IF EXISTS `ingest`.`events__rebuild`$/],
    },
    {
        name: "a table holding rows where the Kafka table belongs: refused",
        drift: (t) => (t["kafka"] = { ...t["target"]!, name: "events_kafka" }),
        kinds: [],
        refused: ["foreignObject"],
    },
];

describe("planStream: evolving (table-driven)", () => {
    for (const c of CASES) {
        it(c.name, () => {
            const options = { ...OPTIONS, ...c.options };
            const plan = planStream(spec(c.to), stateOf(spec(c.from), c.drift, options), options);
            assert.deepEqual(kinds(plan), c.kinds, describePlan(plan).join("\n"));
            (c.sql ?? []).forEach((re, i) => assert.match(sqls(plan)[i]!, re));
            assert.deepEqual(
                plan.refusals.map((r) => r.change),
                c.refused ?? [],
            );
            for (const r of plan.refusals)
                assert.match(
                    r.message,
                    r.change === "foreignObject"
                        ? /the plan leaves it untouched\. Rename or drop it by hand/
                        : new RegExp(
                              `allowDestructiveChanges: true \\(or a list including "${r.change}"\\)`,
                          ),
                );
        });
    }

    it("a fine-grained allow list allows only the kinds it names", () => {
        const to = spec((s) => ({
            ...s,
            orderBy: ["ts"],
            columns: cols(s).filter((c) => c.name !== "value"),
        }));
        const plan = planStream(to, stateOf(spec()), {
            ...OPTIONS,
            allowDestructiveChanges: ["dropColumn"],
        });
        assert.deepEqual(
            plan.refusals.map((r) => r.change),
            ["rebuildTable"],
        );
    });

    it("a detached Kafka table is attached, dropped and recreated", () => {
        const s = stateOf(spec(), (t) => delete t["kafka"]);
        const plan = planStream(spec(), { ...s, detached: ["kafka"] }, OPTIONS);
        assert.deepEqual(sqls(plan).slice(0, 2), [
            "ATTACH TABLE IF NOT EXISTS `ingest`.`events_kafka`",
            "DROP TABLE IF EXISTS `ingest`.`events_kafka`",
        ]);
        assert.match(sqls(plan).at(-1)!, /ENGINE = Kafka/);
    });

    it("keeps the dead-letter table when onError becomes 'fail', with a note", () => {
        const plan = planStream(
            spec((s) => ({ ...s, onError: "fail" })),
            stateOf(spec()),
            OPTIONS,
        );
        assert.ok(plan.notes.some((n) => /events_dlq is kept/.test(n)));
        assert.ok(!has(plan, /DROP TABLE IF EXISTS `ingest`.`events_dlq`/));
    });

    it("formats statements with their kind for previews", () => {
        const plan = planStream(
            spec((s) => ({ ...s, ttl: undefined })),
            stateOf(spec()),
            OPTIONS,
        );
        assert.deepEqual(plan.statements.map(formatStatement), [
            "[in-place] ALTER TABLE `ingest`.`events` REMOVE TTL",
        ]);
    });
});

describe("a dotted source that becomes a nested path", () => {
    it("is named in a plan note with the escaped spelling that keeps the literal key", () => {
        const flat = spec((s) => ({
            ...s,
            columns: [...s.columns, { name: "user_id", type: "UInt64", source: "user\\.id" }],
        }));
        const nested = spec((s) => ({
            ...s,
            columns: [...s.columns, { name: "user_id", type: "UInt64", source: "user.id" }],
        }));
        const plan = planStream(nested, stateOf(flat), OPTIONS);
        assert.ok(
            plan.notes.some(
                (n) =>
                    n.includes("read a top-level field named 'user.id'") &&
                    n.includes("write source: user\\.id"),
            ),
            plan.notes.join("\n"),
        );
        assert.deepEqual(planStream(flat, stateOf(flat), OPTIONS).notes, []);
    });
});

describe("planDrop", () => {
    it("drops the Kafka table first, then the views, and keeps tables holding rows", () => {
        const plan = planDrop("events", stateOf(spec()), { database: "ingest" });
        assert.deepEqual(sqls(plan), [
            "DROP TABLE IF EXISTS `ingest`.`events_kafka`",
            "DROP TABLE IF EXISTS `ingest`.`events_mv`",
            "DROP TABLE IF EXISTS `ingest`.`events_dlq_mv`",
        ]);
        assert.ok(plan.notes.some((n) => /events is kept/.test(n)));
    });

    it("drops target and dead-letter tables with dropTargetOnDelete, marked destructive", () => {
        const plan = planDrop("events", stateOf(spec()), {
            database: "ingest",
            dropTargetOnDelete: true,
        });
        assert.deepEqual(kinds(plan), [
            "rebuild",
            "rebuild",
            "rebuild",
            "destructive",
            "destructive",
        ]);
        assert.equal(sqls(plan)[3], "DROP TABLE IF EXISTS `ingest`.`events`");
    });

    it("with no known state drops nothing (no object is known to be the stream's)", () => {
        assert.equal(planDrop("events", undefined, { database: "ingest" }).statements.length, 0);
    });

    it("a detached object is only attached, to read its marker in the next round", () => {
        const s = stateOf(spec(), (t) => delete t["mv"]);
        const plan = planDrop("events", { ...s, detached: ["mv"] }, { database: "ingest" });
        assert.deepEqual(sqls(plan), [
            "DROP TABLE IF EXISTS `ingest`.`events_kafka`",
            "ATTACH TABLE IF NOT EXISTS `ingest`.`events_mv`",
            "DROP TABLE IF EXISTS `ingest`.`events_dlq_mv`",
        ]);
        assert.equal(plan.statements[1]!.kind, "in-place");
    });

    it("leaves another stream's or an unmarked object in place, and adopts unmarked ones only when asked", () => {
        const s = stateOf(spec(), (t) => {
            t["kafka"] = { ...t["kafka"]!, comment: "" };
        });
        const plan = planDrop("events", s, { database: "ingest" });
        assert.ok(!sqls(plan).some((q) => q.includes("events_kafka")), sqls(plan).join("\n"));
        assert.ok(
            plan.notes.some((n) =>
                /events_kafka \(Kafka\) is not stream events's \(no ownership marker\); left in place/.test(
                    n,
                ),
            ),
            plan.notes.join("\n"),
        );
        const adopted = planDrop("events", s, { database: "ingest", adoptUnmarked: true });
        assert.equal(sqls(adopted)[0], "DROP TABLE IF EXISTS `ingest`.`events_kafka`");
    });

    it("a view's name holding a table with rows is not dropped", () => {
        const s = stateOf(spec(), (t) => {
            t["mv"] = { ...t["mv"]!, engine: "MergeTree" };
        });
        const plan = planDrop("events", s, { database: "ingest" });
        assert.ok(
            !sqls(plan).includes("DROP TABLE IF EXISTS `ingest`.`events_mv`"),
            sqls(plan).join("\n"),
        );
        assert.ok(
            plan.notes.some(
                (n) =>
                    n ===
                    "events_mv is a MergeTree table holding rows, not a stream object; left in place",
            ),
            plan.notes.join("\n"),
        );
    });

    it("refuses names that are not identifiers", () => {
        assert.throws(
            () => planDrop("events", undefined, { database: "in-gest" }),
            /database "in-gest" is not a valid name/,
        );
        assert.throws(
            () => planDrop("ev;ents", undefined, { database: "ingest" }),
            /stream name "ev;ents" is not a valid name/,
        );
    });
});

describe("normalisation helpers", () => {
    const cases: Array<[string, string]> = [
        ["a  +  INTERVAL 30 day", "a + toIntervalDay(30)"],
        ["f( `a` ,`b` )", "f(a, b)"],
        ["`user.id`", "`user.id`"],
        ["'a  ,b' ", "'a  ,b'"],
        ["x IN ( 1,2 )", "x IN (1, 2)"],
    ];
    for (const [input, want] of cases) {
        it(`normalizeSql(${JSON.stringify(input)})`, () => {
            assert.equal(normalizeSql(input), want);
            assert.equal(normalizeSql(want), want, "idempotent");
        });
    }

    it("splitTopLevel ignores separators in brackets and quotes", () => {
        assert.deepEqual(splitTopLevel("a, f(b, c), 'd, e', `f, g`", ","), [
            "a",
            "f(b, c)",
            "'d, e'",
            "`f, g`",
        ]);
    });

    it("parses engine_full into engine, arguments and clauses", () => {
        const e = parseEngineFull(
            "ReplacingMergeTree(version) PARTITION BY (toYYYYMM(d)) ORDER BY (a, toDate(d)) TTL d + toIntervalDay(30), d + toIntervalDay(1) TO DISK 'x SETTINGS y' SETTINGS index_granularity = 8192",
        );
        assert.equal(e.name, "ReplacingMergeTree");
        assert.equal(e.args, "version");
        assert.equal(
            e.clauses["TTL"],
            "d + toIntervalDay(30), d + toIntervalDay(1) TO DISK 'x SETTINGS y'",
        );
        assert.equal(e.clauses["ORDER BY"], "(a, toDate(d))");
        assert.deepEqual(parseSettings(e.clauses["SETTINGS"]!), { index_granularity: "8192" });
        assert.deepEqual(parseSettings("kafka_topic_list = 'a,b', kafka_num_consumers = 2"), {
            kafka_topic_list: "'a,b'",
            kafka_num_consumers: "2",
        });
    });

    it("parses the target of a materialized view", () => {
        assert.equal(
            parseViewTarget(
                "CREATE MATERIALIZED VIEW d.v TO d.t (`a` UInt64) AS SELECT a FROM d.k",
            ),
            "d.t",
        );
        assert.equal(
            parseViewTarget(
                "CREATE MATERIALIZED VIEW `d`.`v` TO `d`.`t-x` (`a` UInt64) AS SELECT 1",
            ),
            "d.`t-x`",
        );
    });

    it("classifies lossless widenings", () => {
        const yes: Array<[string, string]> = [
            ["UInt32", "UInt64"],
            ["UInt32", "Int64"],
            ["Int8", "Int16"],
            ["Float32", "Float64"],
            ["String", "Nullable(String)"],
            ["String", "LowCardinality(String)"],
            ["LowCardinality(String)", "String"],
        ];
        const no: Array<[string, string]> = [
            ["UInt64", "UInt32"],
            ["Int32", "UInt64"],
            ["UInt64", "Int64"],
            ["Float64", "Float32"],
            ["String", "UInt64"],
            ["Nullable(String)", "String"],
        ];
        for (const [a, b] of yes) assert.ok(isLosslessWidening(a, b), `${a} -> ${b}`);
        for (const [a, b] of no) assert.ok(!isLosslessWidening(a, b), `${a} -> ${b}`);
    });
});

// ---------------------------------------------------------------------------------------------
// Properties (pure): the expected state of a spec is a fixed point, and any change is planned
// without errors; refusals appear exactly when the change is destructive and not allowed.
// ---------------------------------------------------------------------------------------------

const TYPES = [
    "UInt32",
    "UInt64",
    "Int64",
    "Float64",
    "String",
    "LowCardinality(String)",
    "DateTime",
    "Nullable(UInt64)",
];
const NAMES = ["a", "b", "c", "d", "e", "f"];

const streamArbitrary: fc.Arbitrary<StreamSpec> = fc
    .record({
        names: fc.shuffledSubarray(NAMES, { minLength: 1, maxLength: 5 }),
        types: fc.array(fc.constantFrom(...TYPES), { minLength: 6, maxLength: 6 }),
        defaults: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        orderLen: fc.integer({ min: 1, max: 2 }),
        ttlDays: fc.option(fc.constantFrom(30, 90), { nil: undefined }),
        consumers: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
        flush: fc.option(fc.constantFrom(250, 1000), { nil: undefined }),
        skipUnknown: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
        onError: fc.constantFrom("deadLetter" as const, "fail" as const),
        replacing: fc.boolean(),
    })
    .map((r) => {
        const columns = r.names.map((name, i) => {
            const type = r.types[i]!;
            const def =
                r.defaults[i] && !type.startsWith("Nullable")
                    ? type.includes("String")
                        ? "'x'"
                        : type === "DateTime"
                          ? "now()"
                          : "0"
                    : undefined;
            return { name, type, ...(def !== undefined ? { default: def } : {}) };
        });
        columns.push({ name: "ts", type: "DateTime" });
        const keyable = columns.filter((c) => !c.type.startsWith("Nullable"));
        const input: StreamInput = {
            name: "prop",
            topic: { name: "prop.topic", partitions: 3 },
            columns,
            orderBy: keyable.slice(0, r.orderLen).map((c) => c.name),
            ...(r.ttlDays !== undefined ? { ttl: `ts + INTERVAL ${r.ttlDays} DAY` } : {}),
            consumer: {
                ...(r.consumers !== undefined ? { consumers: r.consumers } : {}),
                ...(r.flush !== undefined ? { flushIntervalMs: r.flush } : {}),
            },
            formatSettings:
                r.skipUnknown !== undefined
                    ? { input_format_skip_unknown_fields: r.skipUnknown }
                    : {},
            onError: r.onError,
            ...(r.replacing ? { engine: { type: "ReplacingMergeTree" as const } } : {}),
        };
        return validateStream(input, "property").spec;
    });

describe("planner properties", () => {
    it("planning a spec against its own expected state yields nothing", () => {
        fc.assert(
            fc.property(streamArbitrary, (s) => {
                const plan = planStream(s, expectedState(s, OPTIONS), OPTIONS);
                assert.deepEqual(plan.statements, []);
            }),
            { numRuns: 200 },
        );
    });

    it("every change plans; refusals appear iff destructive statements exist and nothing is allowed", () => {
        fc.assert(
            fc.property(streamArbitrary, streamArbitrary, (from, to) => {
                const refused = planStream(to, expectedState(from, OPTIONS), OPTIONS);
                const allowed = planStream(to, expectedState(from, OPTIONS), {
                    ...OPTIONS,
                    allowDestructiveChanges: true,
                });
                assert.deepEqual(allowed.refusals, []);
                assert.deepEqual(refused.statements, allowed.statements);
                const destructive = allowed.statements.some((st) => st.kind === "destructive");
                assert.equal(refused.refusals.length > 0, destructive);
                // The last statement that touches the Kafka table (if any) re-creates the Kafka engine.
                const kafkaStatements = allowed.statements.filter(
                    (st) =>
                        st.sql.includes("`prop_kafka`") &&
                        !st.sql.includes("MATERIALIZED VIEW") &&
                        !st.sql.includes("MODIFY QUERY"),
                );
                if (kafkaStatements.length)
                    assert.match(kafkaStatements.at(-1)!.sql, /ENGINE = Kafka/);
            }),
            { numRuns: 300 },
        );
    });
});
