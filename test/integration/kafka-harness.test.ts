// The Kafka test harness itself: a real broker from Maven Central, started, used, restarted and
// stopped, with nothing left running afterwards.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { KAFKA_VERSION, KafkaBroker, parseGroupOffsets, startKafka } from "../../runtime/kafka";

function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

async function waitGone(pid: number, ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (!isAlive(pid)) return true;
        await new Promise((r) => setTimeout(r, 100));
    }
    return !isAlive(pid);
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("Kafka harness (PLAINTEXT)", () => {
    let kafka: KafkaBroker;
    const topic = "harness.check";
    const messages = Array.from({ length: 2_000 }, (_, i) => JSON.stringify({ n: i, s: `m${i}` }));

    before(async () => {
        kafka = await startKafka({ defaultPartitions: 3 });
    });
    after(async () => {
        await kafka?.stop();
    });

    it("runs a KRaft broker on a free loopback port", () => {
        assert.match(kafka.bootstrap, /^127\.0\.0\.1:\d+$/);
        assert.equal(kafka.running, true);
        assert.ok(kafka.pid !== undefined && isAlive(kafka.pid));
        // The version Strimzi 1.2.0 deploys, pinned in tools/kafka/pom.xml.
        assert.equal(KAFKA_VERSION, "4.3.1");
        assert.ok(
            fs.readFileSync(kafka.logFile, "utf8").includes(`Kafka version: ${KAFKA_VERSION}`),
        );
    });

    it("produces messages and consumes them back", async () => {
        await kafka.createTopic(topic, 3);
        assert.equal(await kafka.produce(topic, messages), messages.length);
        const offsets = await kafka.endOffsets(topic);
        assert.equal(offsets.length, 3);
        assert.equal(sum(offsets), messages.length);
        const back = await kafka.consume(topic, messages.length);
        assert.deepEqual([...back].sort(), [...messages].sort());
    });

    it("refuses a message with a line break instead of splitting it", async () => {
        await assert.rejects(kafka.produce(topic, ["ok", "two\nlines"]), /line break/);
        assert.equal(sum(await kafka.endOffsets(topic)), messages.length);
    });

    it("keeps topics, messages and committed offsets across a graceful restart", async () => {
        const group = "harness-restart";
        // A consumer group with committed offsets, read back after the restart.
        const before = await kafka.consume(topic, 500, { group });
        assert.equal(before.length, 500);
        const committed = await kafka.consumerGroupOffsets(group);
        const oldPid = kafka.pid!;

        await kafka.restart();

        assert.equal(await waitGone(oldPid), true, "the old broker JVM is gone");
        assert.notEqual(kafka.pid, oldPid);
        assert.equal(sum(await kafka.endOffsets(topic)), messages.length);
        assert.deepEqual(
            (await kafka.consumerGroupOffsets(group)).map((p) => p.committed),
            committed.map((p) => p.committed),
        );
        const back = await kafka.consume(topic, messages.length);
        assert.deepEqual([...back].sort(), [...messages].sort());
    });

    it("keeps acknowledged messages across a SIGKILL restart", async () => {
        await kafka.produce(topic, ["after-graceful-restart"]);
        await kafka.restart({ hard: true });
        assert.equal(sum(await kafka.endOffsets(topic)), messages.length + 1);
    });

    it("stop() leaves no broker process and removes its directory", async () => {
        const pid = kafka.pid!;
        const dir = kafka.dataDir;
        await kafka.stop();
        assert.equal(await waitGone(pid), true, `broker pid ${pid} still running`);
        assert.equal(kafka.running, false);
        assert.equal(fs.existsSync(dir), false);
    });
});

describe("Kafka harness (SASL/SCRAM-SHA-512)", () => {
    let kafka: KafkaBroker;
    const user = { username: "ingest", password: "s3cret-" + process.pid };

    before(async () => {
        kafka = await startKafka({ scram: user, alsoPlain: true });
    });
    after(async () => {
        await kafka?.stop();
    });

    it("offers a SASL_PLAINTEXT listener beside PLAINTEXT", () => {
        assert.ok(kafka.sasl);
        assert.notEqual(kafka.sasl.bootstrap, kafka.bootstrap);
        assert.deepEqual(kafka.sasl.mechanisms, ["SCRAM-SHA-512", "PLAIN"]);
    });

    it("accepts the SCRAM user created at format time, and PLAIN for the same user", async () => {
        await kafka.createTopic("sasl.check", 1);
        await kafka.produce("sasl.check", ["scram-1", "scram-2"], { auth: user });
        await kafka.produce("sasl.check", ["plain-1"], { auth: { ...user, mechanism: "PLAIN" } });
        const back = await kafka.consume("sasl.check", 3, { auth: user });
        assert.deepEqual(back.sort(), ["plain-1", "scram-1", "scram-2"]);
    });

    it("rejects a wrong SCRAM password", async () => {
        await assert.rejects(
            kafka.produce("sasl.check", ["nope"], { auth: { ...user, password: "wrong" } }),
            /Authentication failed|SaslAuthenticationException/,
        );
        assert.deepEqual(await kafka.endOffsets("sasl.check"), [3]);
    });
});

describe("parseGroupOffsets", () => {
    it("reads the consumer-groups table, with '-' for missing values", () => {
        const text = [
            "",
            "GROUP   TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID",
            "g       t      1          5               9               4    -            -     -",
            "g       t      0          -               3               -    -            -     -",
        ].join("\n");
        assert.deepEqual(parseGroupOffsets(text), [
            { topic: "t", partition: 0, committed: undefined, logEnd: 3, lag: undefined },
            { topic: "t", partition: 1, committed: 5, logEnd: 9, lag: 4 },
        ]);
    });
});
