// Ingestion health against a real broker and the real ClickHouse engine: a healthy stream, a wrong
// topic and wrong credentials, each reported from system.kafka_consumers and the table counts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ClickHouseClient } from "@clickhouse/client";
import { applyPlan } from "../../components/ingestion/apply";
import {
    StreamHealth,
    readIngestionHealth,
    withoutStackTrace,
} from "../../components/ingestion/health";
import { planStream } from "../../components/ingestion/planner";
import { loadStreams } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import { EmbeddedClickHouse, openEmbedded } from "../harness/clickhouse";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { pollUntil } from "../../runtime/process";
import { lagReader } from "../../runtime/kafka-lag";
import { defaultConsumerGroup } from "../../schemas/naming";

const DB = "health";
const PASSWORD_ENV = "KCS_TEST_HEALTH_KAFKA_PASSWORD";
const WRONG_PASSWORD_ENV = "KCS_TEST_HEALTH_KAFKA_WRONG_PASSWORD";

/**
 * A valid web_events message. Event times are recent: the stream's TTL (180 days) would drop
 * older rows on insert, and they would count neither as ingested nor as rejected.
 */
function event(i: number): string {
    return JSON.stringify({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
        ts: new Date(Date.now() - i * 1000).toISOString(),
        type: "page_view",
        user_id: i,
        session_id: `s${i}`,
        url: `https://example.test/${i}`,
    });
}

/** A config-file named collection with SASL/PLAIN settings whose password comes from the env. */
function saslCollection(name: string, username: string, passwordEnv: string): string {
    return [
        `<${name}>`,
        "<kafka_security_protocol>sasl_plaintext</kafka_security_protocol>",
        "<kafka_sasl_mechanism>PLAIN</kafka_sasl_mechanism>",
        `<kafka_sasl_username>${username}</kafka_sasl_username>`,
        `<kafka_sasl_password from_env="${passwordEnv}"/>`,
        `</${name}>`,
    ].join("");
}

describe("readIngestionHealth", () => {
    let kafka: KafkaBroker;
    let ch: EmbeddedClickHouse;
    let base: StreamSpec;
    const user = { username: "ingest", password: `pw-${process.pid}-${Date.now()}` };

    function stream(name: string, topic: string, partitions = 3): StreamSpec {
        return { ...base, name, topic: { ...base.topic, name: topic, partitions } };
    }
    async function create(spec: StreamSpec, brokers: string, namedCollection?: string) {
        const plan = planStream(spec, undefined, {
            database: DB,
            kafkaBrokers: brokers,
            ...(namedCollection ? { kafkaNamedCollection: namedCollection } : {}),
        });
        await applyPlan(ch.client, plan);
    }
    const health = (streams: string[]) => readIngestionHealth(ch.client, DB, streams);
    const one = async (s: string): Promise<StreamHealth> => (await health([s]))[0]!;

    before(async () => {
        // A consumer of a missing topic must not create it.
        kafka = await startKafka({
            scram: user,
            alsoPlain: true,
            serverProperties: { "auto.create.topics.enable": false },
        });
        process.env[PASSWORD_ENV] = user.password;
        process.env[WRONG_PASSWORD_ENV] = "not-the-password";
        ch = await openEmbedded(undefined, {
            configXml:
                "<clickhouse><named_collections>" +
                saslCollection("kafka_ok", user.username, PASSWORD_ENV) +
                saslCollection("kafka_wrong_password", user.username, WRONG_PASSWORD_ENV) +
                "</named_collections></clickhouse>\n",
        });
        // After the engine: the loader asks the process's one engine (schemas/engine.ts).
        base = loadStreams().find((s) => s.spec.name === "web_events")!.spec;
    });
    after(async () => {
        await ch?.close();
        await kafka?.stop();
    });

    it("reports partitions, ingested and rejected rows of a healthy stream", async () => {
        await kafka.createTopic("health.ok", 3);
        await create(stream("hs_ok", "health.ok"), kafka.bootstrap);
        const valid = Array.from({ length: 90 }, (_, i) => event(i));
        const malformed = Array.from({ length: 10 }, (_, i) => `not json ${i}`);
        await kafka.produce("health.ok", [...valid, ...malformed]);

        const h = await pollUntil(
            "hs_ok counts",
            () => one("hs_ok"),
            (v) => v.rowsIngested === 90 && v.rowsRejected === 10,
        );
        assert.equal(h.stream, "hs_ok");
        assert.equal(h.assignedPartitions, 3);
        assert.equal(h.lastException, undefined);
        assert.equal(h.consumers.length, 1);
        const c = h.consumers[0]!;
        assert.deepEqual(c.assignments.map((a) => `${a.topic}/${a.partition}`).sort(), [
            "health.ok/0",
            "health.ok/1",
            "health.ok/2",
        ]);
        assert.equal(c.messagesRead, 100);
        assert.ok(c.lastPollTime instanceof Date);
    });

    it("reads the consumer lag per partition from the broker: all of it before the stream consumes, none after", async () => {
        await kafka.createTopic("health.lag", 3);
        await kafka.produce(
            "health.lag",
            Array.from({ length: 60 }, (_, i) => event(i)),
        );
        const reader = lagReader(kafka.bootstrap);
        // The planner's default group for the stream (no `consumer.group` in the spec).
        const group = defaultConsumerGroup(DB, "hs_lag");
        const lagOf = () => reader.lag(group, "health.lag");
        const read = async () => (await readIngestionHealth(ch.client, DB, ["hs_lag"], lagOf))[0]!;
        try {
            const before = await read();
            assert.equal(before.lag, 60);
            assert.equal(before.partitionLag?.length, 3);
            for (const p of before.partitionLag ?? []) {
                assert.equal(p.committed, undefined, `partition ${p.partition}`);
                assert.equal(p.lag, p.logEnd);
            }
            assert.equal(
                (before.partitionLag ?? []).reduce((sum, p) => sum + p.logEnd, 0),
                60,
            );

            await create(stream("hs_lag", "health.lag"), kafka.bootstrap);
            const after = await pollUntil(
                "hs_lag caught up",
                read,
                (h) => h.rowsIngested === 60 && h.lag === 0,
            );
            // A partition that got no message has nothing to commit (and no lag).
            for (const p of after.partitionLag ?? []) assert.equal(p.committed ?? 0, p.logEnd);
            assert.equal(
                (after.partitionLag ?? []).reduce((sum, p) => sum + (p.committed ?? 0), 0),
                60,
            );

            const broken = (
                await readIngestionHealth(ch.client, DB, ["hs_lag"], () =>
                    reader.lag(group, "health.no-such-topic"),
                )
            )[0]!;
            assert.equal(broken.lag, undefined);
            assert.match(broken.lagError ?? "", /health\.no-such-topic/);
            assert.equal(broken.rowsIngested, 60, "the engine's part of the report is still there");
        } finally {
            await reader.close();
        }
    });

    it("reports a topic that does not exist as an exception", async () => {
        await create(stream("hs_topic", "health.no-such-topic"), kafka.bootstrap);
        const h = await pollUntil(
            "wrong-topic exception",
            () => one("hs_topic"),
            (v) => v.lastException !== undefined,
        );
        assert.match(h.lastException!, /Unknown topic or partition/);
        assert.ok(h.exceptionTime instanceof Date);
        assert.doesNotMatch(h.lastException!, /0x[0-9a-f]{8}/, "stack trace removed");
        assert.equal(h.assignedPartitions, 0);
        assert.equal(h.rowsIngested, 0);
    });

    it("reports wrong credentials as an exception", async () => {
        await kafka.createTopic("health.auth", 1);
        await kafka.produce("health.auth", [event(1)]);
        await create(
            stream("hs_auth", "health.auth", 1),
            kafka.sasl!.bootstrap,
            "kafka_wrong_password",
        );
        const h = await pollUntil(
            "authentication exception",
            () => one("hs_auth"),
            (v) => v.lastException !== undefined,
        );
        // The cause, then librdkafka's generic "1/1 brokers are down": both are kept.
        assert.ok(
            h.recentExceptions.some((e) =>
                /SASL authentication error: Authentication failed/.test(e),
            ),
            h.recentExceptions.join("\n"),
        );
        assert.equal(h.assignedPartitions, 0);
        assert.equal(h.rowsIngested, 0);
    });

    it("accepts the right credentials from the config file (control for the test above)", async () => {
        await create(stream("hs_auth_ok", "health.auth", 1), kafka.sasl!.bootstrap, "kafka_ok");
        const h = await pollUntil(
            "authenticated ingestion",
            () => one("hs_auth_ok"),
            (v) => v.rowsIngested === 1,
        );
        assert.equal(h.lastException, undefined);
        assert.equal(h.assignedPartitions, 1);
    });

    it("answers for every stream asked, in order, with zeros for a stream that has no tables", async () => {
        const all = await health(["hs_topic", "nothing_here", "hs_ok"]);
        assert.deepEqual(
            all.map((h) => h.stream),
            ["hs_topic", "nothing_here", "hs_ok"],
        );
        assert.deepEqual(all[1], {
            stream: "nothing_here",
            assignedPartitions: 0,
            rowsIngested: 0,
            rowsRejected: 0,
            recentExceptions: [],
            consumers: [],
        });
        assert.equal(all[2]!.rowsIngested, 90);
        assert.match(all[0]!.lastException ?? "", /Unknown topic/);
    });

    it("runs the same number of queries for one stream as for many", async () => {
        let queries = 0;
        const counting = new Proxy(ch.client, {
            get(target, prop, receiver) {
                const v = Reflect.get(target, prop, receiver);
                if (prop === "query" || prop === "command" || prop === "exec") {
                    return (...args: unknown[]) => {
                        queries++;
                        return (v as (...a: unknown[]) => unknown).apply(target, args);
                    };
                }
                return v;
            },
        }) as ClickHouseClient;
        await readIngestionHealth(counting, DB, ["hs_ok"]);
        const forOne = queries;
        queries = 0;
        await readIngestionHealth(counting, DB, [
            "hs_ok",
            "hs_topic",
            "hs_auth",
            "hs_auth_ok",
            "x",
        ]);
        assert.equal(queries, forOne);
        assert.equal(forOne, 2);
        queries = 0;
        assert.deepEqual(await readIngestionHealth(counting, DB, []), []);
        assert.equal(queries, 0);
    });
});

describe("withoutStackTrace", () => {
    it("keeps the message and drops ClickHouse's stack frames", () => {
        assert.equal(
            withoutStackTrace(
                "Broker: Unknown topic or partition\n0. ? @ 0x000000000f03c72c\n1. ? @ 0x1",
            ),
            "Broker: Unknown topic or partition",
        );
        assert.equal(
            withoutStackTrace(
                "std::exception. Code: 1001, e.what() = No provider for SASL mechanism SCRAM-SHA-512, Stack trace (when copying this message, always include the lines below):\n\n0. ? @ 0x1",
            ),
            "std::exception. Code: 1001, e.what() = No provider for SASL mechanism SCRAM-SHA-512",
        );
        assert.equal(withoutStackTrace("plain message"), "plain message");
    });
});
