/**
 * Kafka tables without LowCardinality (issue 14): the Kafka engine parses every message into the
 * Kafka table's columns, and dictionary-encoding them there cost about as much CPU per row as the
 * rest of the pipeline; the target keeps LowCardinality. A stream deployed before (its Kafka table
 * with the target's LowCardinality types) is upgraded by replacing the Kafka table alone, no
 * destructive change, and every message lands exactly once across the switch (the consumer group
 * and its committed offsets are kept). Real broker, real engine.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyPlan, planFromServer } from "../../components/ingestion/apply";
import { planStream } from "../../components/ingestion/planner";
import { loadStreams } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import { sampleMessages } from "../../schemas/sample";
import { withoutLowCardinality } from "../../schemas/sources";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { pollUntil } from "../../runtime/process";
import { EmbeddedClickHouse, openEmbedded, queryRows } from "../harness/clickhouse";

const DB = "kt";
// The recreated Kafka table's consumer rejoins once the dropped one's membership times out.
const CONFIG =
    "<clickhouse><kafka><session_timeout_ms>6000</session_timeout_ms><heartbeat_interval_ms>1000</heartbeat_interval_ms></kafka></clickhouse>\n";

let ch: EmbeddedClickHouse;
let kafka: KafkaBroker;

before(async () => {
    [ch, kafka] = await Promise.all([openEmbedded(undefined, { configXml: CONFIG }), startKafka()]);
});
after(async () => {
    await Promise.allSettled([ch?.close(), kafka?.stop()]);
});

async function kafkaColumnTypes(table: string): Promise<Record<string, string>> {
    const rows = await queryRows<{ name: string; type: string }>(
        ch.client,
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        { db: DB, t: table },
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.type]));
}

async function distinctEvents(spec: StreamSpec): Promise<{ rows: number; ids: number }> {
    const [r] = await queryRows<{ rows: string; ids: string }>(
        ch.client,
        `SELECT count() AS rows, uniqExact(event_id) AS ids FROM ${DB}.${spec.name}`,
    );
    return { rows: Number(r?.rows), ids: Number(r?.ids) };
}

describe("Kafka tables without LowCardinality", () => {
    it("upgrades a stream deployed with LowCardinality Kafka columns by replacing the Kafka table alone; no message lost or doubled", async () => {
        const shipped = loadStreams().find((s) => s.spec.name === "web_events")!.spec;
        const spec: StreamSpec = {
            ...shipped,
            topic: { ...shipped.topic, name: "kt.events", partitions: 3 },
        };
        await kafka.createTopic(spec.topic.name, 3);
        const options = { database: DB, kafkaBrokers: kafka.bootstrap };
        // The Kafka table names a column by its message field (`source`), the target by `name`.
        const lowCard = spec.columns
            .filter((c) => c.type.startsWith("LowCardinality("))
            .map((c) => ({ ...c, field: c.source ?? c.name }));
        assert.ok(lowCard.length >= 3, "web_events has LowCardinality columns");

        // The stream as the planner deployed it before: the Kafka table with the target's types.
        const current = planStream(spec, undefined, options);
        const old = {
            ...current,
            statements: current.statements.map((st) => {
                if (!/ENGINE = Kafka/.test(st.sql)) return st;
                let sql = st.sql;
                for (const c of lowCard) {
                    const base = withoutLowCardinality(c.type);
                    // A defaulted field's Kafka column is Nullable (absence shows as NULL).
                    const nullable = `\`${c.field}\` Nullable(${base})`;
                    sql = sql.includes(nullable)
                        ? sql.replace(nullable, `\`${c.field}\` LowCardinality(Nullable(${base}))`)
                        : sql.replace(`\`${c.field}\` ${base}`, `\`${c.field}\` ${c.type}`);
                }
                return { ...st, sql };
            }),
        };
        await applyPlan(ch.client, old);
        const before = await kafkaColumnTypes(`${spec.name}_kafka`);
        for (const c of lowCard) assert.match(before[c.field] ?? "", /^LowCardinality\(/, c.field);

        await kafka.produce(spec.topic.name, sampleMessages(spec, 1_000, { seed: 1 }));
        await pollUntil(
            "1,000 rows",
            () => distinctEvents(spec),
            (n) => n.rows === 1_000,
        );

        const { plan } = await planFromServer(ch.client, spec, options);
        assert.deepEqual(plan.refusals, []);
        assert.ok(plan.statements.length > 0, "the Kafka table differs, so there is a plan");
        assert.ok(
            plan.statements.every((st) => st.kind !== "destructive"),
            plan.statements.map((st) => `[${st.kind}] ${st.sql}`).join("\n"),
        );
        const touched = plan.statements.map((st) => st.sql).join("\n");
        assert.doesNotMatch(
            touched,
            /ALTER TABLE `kt`\.`web_events` |DROP TABLE[^\n]*`kt`\.`web_events`(?!_)/,
        );
        await applyPlan(ch.client, plan);
        const after = await kafkaColumnTypes(`${spec.name}_kafka`);
        for (const c of lowCard)
            assert.doesNotMatch(after[c.field] ?? "", /LowCardinality/, c.field);
        const target = await kafkaColumnTypes(spec.name);
        for (const c of lowCard) assert.equal(target[c.name], c.type, `target keeps ${c.name}`);

        await kafka.produce(spec.topic.name, sampleMessages(spec, 1_000, { seed: 2 }));
        const landed = await pollUntil(
            "2,000 rows",
            () => distinctEvents(spec),
            (n) => n.rows >= 2_000,
            120_000,
        );
        assert.deepEqual(landed, { rows: 2_000, ids: 2_000 });
        const again = await planFromServer(ch.client, spec, options);
        assert.deepEqual(
            again.plan.statements.map((st) => st.sql),
            [],
            "the upgraded stream plans to nothing",
        );
    });
});
