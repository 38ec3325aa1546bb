/**
 * Acceptance 1 and 3 against the real ClickHouse engine (chdb through @clickhouse/client):
 * the generated DDL runs and the server reports exactly what the plan says; evolutions keep rows.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ClickHouseClient } from "@clickhouse/client";
import { loadStreams, validateStream } from "../../schemas/loader";
import { StreamInput, StreamSpec } from "../../schemas/model";
import { applyPlan, planFromServer, reconcile } from "../../components/ingestion/apply";
import { readStreamState, summarizeState } from "../../components/ingestion/introspect";
import {
    DestructiveChange,
    DestructiveChangeRefusedError,
    PlanOptions,
    expectedState,
} from "../../components/ingestion/planner";
import { EmbeddedClickHouse, openEmbedded, queryRows } from "../harness/clickhouse";
import { markerText } from "../../components/ingestion/ownership";
import { defaultConsumerGroup } from "../../schemas/naming";

const SASL_PASSWORD = "sasl-Pa55word-never-in-ddl";
// Server-side Kafka credentials, as the ClickHouse StatefulSet's config.d renders them.
const CONFIG = `<clickhouse>
  <kafka>
    <security_protocol>SASL_PLAINTEXT</security_protocol>
    <sasl_mechanism>SCRAM-SHA-512</sasl_mechanism>
    <sasl_username>clickhouse</sasl_username>
    <sasl_password from_env="KAFKA_SASL_PASSWORD"/>
  </kafka>
  <named_collections>
    <kafka_sasl>
      <kafka>
        <security_protocol>SASL_PLAINTEXT</security_protocol>
        <sasl_mechanism>SCRAM-SHA-512</sasl_mechanism>
        <sasl_username>clickhouse</sasl_username>
        <sasl_password from_env="KAFKA_SASL_PASSWORD"/>
      </kafka>
    </kafka_sasl>
  </named_collections>
</clickhouse>
`;

let ch: EmbeddedClickHouse;
let client: ClickHouseClient;
// No broker listens here: creating a Kafka table must not need one.
const BROKERS = "127.0.0.1:1";

before(async () => {
    process.env["KAFKA_SASL_PASSWORD"] = SASL_PASSWORD;
    ch = await openEmbedded(undefined, { configXml: CONFIG });
    client = ch.client;
});
after(async () => ch?.close());

/**
 * Replaces a stream's Kafka table by a Null table with the same columns plus the Kafka virtual
 * columns, so rows inserted into it run through the real materialized views.
 */
async function feedViews(
    db: string,
    stream: string,
    rows: Array<Record<string, unknown>>,
): Promise<void> {
    const cols = await queryRows<{ name: string; type: string }>(
        client,
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        { db, t: `${stream}_kafka` },
    );
    const defs = [
        ...cols.map((c) => `\`${c.name}\` ${c.type}`),
        "_topic LowCardinality(String)",
        "_key String",
        "_offset UInt64",
        "_partition UInt64",
        "_raw_message String",
        "_error String",
    ];
    await client.command({ query: `DROP TABLE IF EXISTS ${db}.${stream}_kafka` });
    // Marked as the planner marks its placeholder, as an interrupted run would leave it.
    await client.command({
        query: `CREATE TABLE ${db}.${stream}_kafka (${defs.join(", ")}) ENGINE = Null COMMENT '${markerText({ stream, role: "kafka" })}'`,
    });
    await client.insert({ table: `${db}.${stream}_kafka`, values: rows, format: "JSONEachRow" });
}

describe("acceptance 1: every example schema runs and matches its plan", () => {
    const streams = loadStreams();

    it("ships at least the three example streams", () => {
        assert.deepEqual(streams.map((s) => s.spec.name).sort(), [
            "iot_readings",
            "orders",
            "web_events",
        ]);
    });

    for (const { spec } of streams) {
        describe(spec.name, () => {
            const options: PlanOptions = { database: `ddl_${spec.name}`, kafkaBrokers: BROKERS };
            let statements: string[] = [];

            it("creates every object on a fresh database, needing no broker", async () => {
                const { plan, applied, actual } = await reconcile(client, spec, options);
                statements = applied.map((s) => s.sql);
                assert.equal(applied.length, plan.statements.length);
                assert.deepEqual(Object.keys(actual!.tables).sort(), [
                    "dlq",
                    "dlqMv",
                    "kafka",
                    "mv",
                    "target",
                ]);
            });

            it("the server reports the tables, columns, engines and view queries the plan describes", async () => {
                const { canonicalForms } = await planFromServer(client, spec, options);
                const actual = await readStreamState(client, options.database, spec.name);
                assert.deepEqual(
                    summarizeState(actual),
                    summarizeState(expectedState(spec, { ...options, canonicalForms })),
                );
                const t = actual!.tables;
                assert.equal(t.target!.engine, spec.engine.type);
                assert.equal(t.kafka!.engine, "Kafka");
                assert.equal(t.mv!.engine, "MaterializedView");
                assert.equal(t.mv!.toTable, `${options.database}.${spec.name}`);
                assert.match(t.mv!.asSelect, /WHERE length\(_error\) = 0$/);
                assert.match(t.dlqMv!.asSelect, /WHERE length\(_error\) > 0$/);
                assert.deepEqual(
                    t.target!.columns.map((c) => `${c.name} ${c.type}`),
                    spec.columns.map((c) => `${c.name} ${c.type}`),
                );
                assert.deepEqual(t.dlq!.columns.map((c) => c.name).slice(0, 6), [
                    "topic",
                    "partition",
                    "offset",
                    "key",
                    "raw_message",
                    "error",
                ]);
                assert.equal(t.kafka!.settings["kafka_handle_error_mode"], "'stream'");
                assert.equal(
                    t.kafka!.settings["kafka_group_name"],
                    `'${spec.consumer.group ?? defaultConsumerGroup(options.database, spec.name)}'`,
                );
                assert.equal(t.kafka!.settings["kafka_topic_list"], `'${spec.topic.name}'`);
            });

            it("has nothing left to do", async () => {
                assert.deepEqual((await planFromServer(client, spec, options)).plan.statements, []);
            });

            it("carries no credentials in its DDL", () => {
                assert.ok(statements.length > 0);
                for (const s of statements) {
                    assert.ok(!s.includes(SASL_PASSWORD));
                    assert.doesNotMatch(s, /sasl|security_protocol|password/i);
                }
            });
        });
    }

    it("the engine loaded the server config with the SASL settings (secret hidden, from env)", async () => {
        const rows = await queryRows<{ name: string; collection: Record<string, string> }>(
            client,
            "SELECT name, collection FROM system.named_collections WHERE name = 'kafka_sasl'",
        );
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.collection["kafka.sasl_password"], "[HIDDEN]");
    });

    it("a Kafka table can take its connection settings from a named collection", async () => {
        const spec = streams.find((s) => s.spec.name === "orders")!.spec;
        const options: PlanOptions = {
            database: "ddl_named",
            kafkaBrokers: BROKERS,
            kafkaNamedCollection: "kafka_sasl",
        };
        const { applied, actual } = await reconcile(client, spec, options);
        assert.equal(actual!.tables.kafka!.engineArgs, "kafka_sasl");
        for (const s of applied) assert.ok(!s.sql.includes(SASL_PASSWORD));
    });
});

describe("the views do what the plan says", () => {
    const spec = loadStreams().find((s) => s.spec.name === "iot_readings")!.spec;
    const options: PlanOptions = { database: "ddl_views", kafkaBrokers: BROKERS };

    it("maps fields, applies defaults for absent ones, and routes unparsable messages to the dead-letter table", async () => {
        await reconcile(client, spec, options);
        const now = new Date().toISOString().slice(0, 19).replace("T", " ");
        await feedViews(options.database, spec.name, [
            {
                device: "d-1",
                time: now,
                temp: 21.5,
                humidity: 40,
                battery: 3.1,
                firmware: "1.2",
                tags: { site: "a" },
            },
            { device: "d-2", time: now, temp: 19, humidity: 55 },
            {
                _topic: "iot.readings",
                _partition: 2,
                _offset: 41,
                _raw_message: "{not json",
                _error: "Cannot parse input",
            },
        ]);
        const rows = await queryRows(
            client,
            "SELECT device_id, temperature_c, battery_v, firmware, tags FROM ddl_views.iot_readings ORDER BY device_id",
        );
        assert.deepEqual(rows, [
            {
                device_id: "d-1",
                temperature_c: 21.5,
                battery_v: 3.1,
                firmware: "1.2",
                tags: { site: "a" },
            },
            { device_id: "d-2", temperature_c: 19, battery_v: null, firmware: "unknown", tags: {} },
        ]);
        const dlq = await queryRows(
            client,
            "SELECT topic, toString(partition) AS partition, toString(offset) AS offset, raw_message, error, received_at > now() - INTERVAL 1 HOUR AS recent FROM ddl_views.iot_readings_dlq",
        );
        assert.deepEqual(dlq, [
            {
                topic: "iot.readings",
                partition: "2",
                offset: "41",
                raw_message: "{not json",
                error: "Cannot parse input",
                recent: 1,
            },
        ]);
    });

    it("the next run replaces the stand-in with the real Kafka table and keeps the rows", async () => {
        const { applied } = await reconcile(client, spec, options);
        assert.ok(applied.length > 0 && applied.every((s) => s.kind !== "destructive"));
        assert.match(applied.at(-1)!.sql, /ENGINE = Kafka/);
        assert.equal(
            (await readStreamState(client, options.database, spec.name))!.tables.kafka!.engine,
            "Kafka",
        );
        assert.equal(
            (
                await queryRows<{ n: string }>(
                    client,
                    "SELECT toString(count()) AS n FROM ddl_views.iot_readings",
                )
            )[0]!.n,
            "2",
        );
    });
});

describe("acceptance 3: evolution keeps rows", () => {
    const db = "ddl_evolve";
    const base: StreamInput = {
        name: "clicks",
        topic: { name: "web.clicks", partitions: 3 },
        columns: [
            { name: "id", type: "UInt64" },
            { name: "at", type: "DateTime" },
            { name: "page", type: "String" },
            { name: "score", type: "Float64" },
        ],
        orderBy: ["page", "at"],
        partitionBy: "toYYYYMM(at)",
        ttl: "at + INTERVAL 30 DAY",
    };
    const make = (change: (s: StreamInput) => StreamInput = (s) => s): StreamSpec =>
        validateStream(change(structuredClone(base)), "test").spec;
    const options: PlanOptions = { database: db, kafkaBrokers: BROKERS };
    const ROWS = 500;
    const fingerprint = async (columns = "id, at, page, score") =>
        (
            await queryRows<{ n: string; h: string }>(
                client,
                `SELECT toString(count()) AS n, toString(sum(cityHash64(${columns}))) AS h FROM ${db}.clicks`,
            )
        )[0]!;
    let before: { n: string; h: string };
    let current = make();

    it("starts with rows", async () => {
        await reconcile(client, current, options);
        await client.command({
            query: `INSERT INTO ${db}.clicks SELECT number, now() - number, concat('/p/', toString(number % 7)), number / 3 FROM numbers(${ROWS})`,
        });
        before = await fingerprint();
        assert.equal(before.n, String(ROWS));
    });

    const steps: Array<
        [string, (s: StreamInput) => StreamInput, (db: string) => Promise<void>, DestructiveChange?]
    > = [
        [
            "add a column",
            (s) => ({
                ...s,
                columns: [...s.columns, { name: "referrer", type: "String", default: "'direct'" }],
            }),
            async () => {
                const r = await queryRows<{ v: string }>(
                    client,
                    `SELECT DISTINCT referrer AS v FROM ${db}.clicks`,
                );
                assert.deepEqual(
                    r,
                    [{ v: "direct" }],
                    "existing rows read the new column's default",
                );
            },
        ],
        [
            "change the TTL",
            (s) => ({ ...s, ttl: "at + INTERVAL 400 DAY" }),
            async () => {
                const t = (await readStreamState(client, db, "clicks"))!.tables.target!;
                assert.equal(t.ttl, "at + toIntervalDay(400)");
            },
            // A TTL deletes stored rows past it: refused unless allowed (none are past 400 days).
            "ttl",
        ],
        [
            "change consumer settings",
            (s) => ({ ...s, consumer: { consumers: 2, flushIntervalMs: 300, maxBlockSize: 5000 } }),
            async () => {
                const k = (await readStreamState(client, db, "clicks"))!.tables.kafka!;
                assert.equal(k.settings["kafka_num_consumers"], "2");
                assert.equal(k.settings["kafka_flush_interval_ms"], "300");
            },
        ],
        [
            "change format settings",
            (s) => ({
                ...s,
                formatSettings: {
                    input_format_skip_unknown_fields: 1,
                    date_time_input_format: "best_effort",
                },
            }),
            async () => {
                const k = (await readStreamState(client, db, "clicks"))!.tables.kafka!;
                assert.equal(k.settings["date_time_input_format"], "'best_effort'");
            },
        ],
    ];
    let input = structuredClone(base);
    for (const [name, change, check, allow] of steps) {
        it(`${name}: every row is still there`, async () => {
            input = change(input);
            current = validateStream(structuredClone(input), "test").spec;
            if (allow) {
                const { plan } = await planFromServer(client, current, options);
                assert.deepEqual(
                    plan.refusals.map((r) => r.change),
                    [allow],
                );
            }
            const { applied } = await reconcile(client, current, {
                ...options,
                ...(allow ? { allowDestructiveChanges: [allow] } : {}),
            });
            assert.ok(applied.length > 0);
            assert.ok(applied.every((s) => s.kind !== "destructive" || s.change === allow));
            assert.deepEqual(await fingerprint(), before);
            await check(db);
        });
    }

    it("dropping a column is refused, and nothing changes", async () => {
        const target = validateStream(
            { ...structuredClone(input), columns: input.columns.filter((c) => c.name !== "score") },
            "test",
        ).spec;
        const stateBefore = summarizeState(await readStreamState(client, db, "clicks"));
        const { plan } = await planFromServer(client, target, options);
        assert.deepEqual(
            plan.refusals.map((r) => r.change),
            ["dropColumn"],
        );
        assert.match(plan.refusals[0]!.message, /allowDestructiveChanges/);
        await assert.rejects(
            applyPlan(client, plan),
            (e: unknown) =>
                e instanceof DestructiveChangeRefusedError && /column 'score'/.test(e.message),
        );
        assert.deepEqual(summarizeState(await readStreamState(client, db, "clicks")), stateBefore);
    });

    it("dropping a column when allowed drops it and keeps every row", async () => {
        input = { ...input, columns: input.columns.filter((c) => c.name !== "score") };
        const { applied } = await reconcile(
            client,
            validateStream(structuredClone(input), "test").spec,
            { ...options, allowDestructiveChanges: ["dropColumn"] },
        );
        assert.deepEqual(
            applied.filter((s) => s.kind === "destructive").map((s) => s.change),
            ["dropColumn"],
        );
        const cols = (await readStreamState(client, db, "clicks"))!.tables.target!.columns.map(
            (c) => c.name,
        );
        assert.ok(!cols.includes("score"));
        assert.equal((await fingerprint("id, at, page")).n, before.n);
    });

    it("changing ORDER BY when allowed rebuilds the table with every row and leaves no scratch table", async () => {
        const rowsBefore = await fingerprint("id, at, page");
        input = { ...input, orderBy: ["id"] };
        const { applied, actual } = await reconcile(
            client,
            validateStream(structuredClone(input), "test").spec,
            { ...options, allowDestructiveChanges: ["rebuildTable"] },
        );
        assert.ok(applied.some((s) => s.sql.startsWith("EXCHANGE TABLES")));
        assert.equal(actual!.tables.target!.sortingKey, "id");
        assert.equal(actual!.tables.rebuild, undefined);
        assert.deepEqual(await fingerprint("id, at, page"), rowsBefore);
    });

    it("narrowing a type when allowed converts the values", async () => {
        input = {
            ...input,
            columns: input.columns.map((c) => (c.name === "id" ? { ...c, type: "UInt32" } : c)),
        };
        const rowsBefore = await fingerprint("id, at, page");
        await assert.rejects(
            reconcile(client, validateStream(structuredClone(input), "test").spec, options),
            DestructiveChangeRefusedError,
        );
        await reconcile(client, validateStream(structuredClone(input), "test").spec, {
            ...options,
            allowDestructiveChanges: true,
        });
        const t = (await readStreamState(client, db, "clicks"))!.tables.target!;
        assert.equal(t.columns.find((c) => c.name === "id")!.type, "UInt32");
        assert.deepEqual(await fingerprint("toUInt64(id), at, page"), rowsBefore);
    });
});

describe("acceptance 7: escaped names and values arrive exactly as written", () => {
    const input: StreamInput = {
        name: "odd",
        description: `it's a "test" \\ (with) ; -- chars`,
        topic: { name: "odd.topic-1_x" },
        consumer: { group: "grp.odd-1" },
        formatSettings: { format_csv_delimiter: "'", date_time_input_format: "best_effort" },
        columns: [
            { name: "id", type: "UInt64", source: `user's "id"` },
            {
                name: "note",
                type: "String",
                source: "semi;colon -- x",
                default: "'it''s'",
                comment: "50% 'off' \\ here",
            },
            // A dot inside a key is escaped: `dot.ted` would be the path dot -> ted.
            { name: "at", type: "DateTime", source: "dot\\.ted" },
        ],
        orderBy: ["id"],
    };
    const spec = validateStream(input, "odd").spec;
    const options: PlanOptions = { database: "ddl_odd", kafkaBrokers: BROKERS };

    it("round-trips through the server", async () => {
        const { actual } = await reconcile(client, spec, options);
        const t = actual!.tables;
        assert.deepEqual(
            t.kafka!.columns.map((c) => c.name),
            [`user's "id"`, "semi;colon -- x", "dot.ted"],
        );
        assert.equal(
            t.target!.comment,
            `${input.description} [kafka-clickhouse-stack stream=odd role=target group=grp.odd-1]`,
        );
        assert.equal(t.target!.columns[1]!.comment, "50% 'off' \\ here");
        assert.equal(t.kafka!.settings["format_csv_delimiter"], "'\\''");
        assert.equal(t.kafka!.settings["kafka_group_name"], "'grp.odd-1'");
        assert.deepEqual((await planFromServer(client, spec, options)).plan.statements, []);
    });

    it("the view maps the oddly named fields and applies the quoted default", async () => {
        await feedViews(options.database, "odd", [
            { [`user's "id"`]: 7, "dot.ted": "2026-01-02 03:04:05" },
        ]);
        const rows = await queryRows(
            client,
            "SELECT toString(id) AS id, note, toString(at) AS at FROM ddl_odd.odd",
        );
        assert.deepEqual(rows, [{ id: "7", note: "it's", at: "2026-01-02 03:04:05" }]);
    });
});
