/**
 * Producer principals declared in stream files (`topic.producers`): validated with the file and
 * key named, turned into KafkaUsers with Write and Describe on exactly their topics (Strimzi
 * mode) or into `kafka.Acl`s for `User:<name>` (external mode). The broker enforcing these ACLs
 * is test/integration/strimzi-kafka.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kafkaUserCr, producerTopics } from "../../components/kafka/manifests";
import { StreamSchemaError, parseStream } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import { ofType, runStack, strimzi } from "./mocks";

const stream = (producers: unknown) => `
name: clicks
topic: { name: web.clicks, producers: ${JSON.stringify(producers)} }
columns: [{ name: id, type: UInt64 }]
orderBy: [id]
`;

function problems(text: string): string[] {
    try {
        parseStream(text, "streams/clicks.yaml");
    } catch (e) {
        assert.ok(e instanceof StreamSchemaError, String(e));
        return e.problems.map((p) => `${p.file} ${p.path}: ${p.message}`);
    }
    return [];
}

describe("topic.producers", () => {
    it("accepts Kafka user names, and defaults to none", () => {
        assert.deepEqual(problems(stream(["web-collector", "edge.proxy-2"])), []);
        const spec = parseStream(
            stream(["a"]).replace(', producers: ["a"]', ""),
            "streams/clicks.yaml",
        );
        assert.deepEqual(spec.spec.topic.producers, []);
    });

    it("refuses a bad name, a duplicate and the consumer's name, naming file and key", () => {
        for (const [producers, want] of [
            [["Web_Collector"], /lower-case letters, digits, '-' and '.'/],
            [["-x"], /starting and ending with a letter or digit/],
            [["a".repeat(64)], /at most 63/],
            [["a", "a"], /listed twice/],
            [["clickhouse"], /the user ClickHouse consumes as/],
            ["web-collector", /expected array/i],
        ] as const) {
            const got = problems(stream(producers));
            assert.equal(got.length, 1, `${JSON.stringify(producers)}: ${got.join("; ")}`);
            assert.match(got[0]!, /^streams\/clicks\.yaml topic\.producers/);
            assert.match(got[0]!, want);
        }
    });

    it("groups topics by producer, once each, in a stable order", () => {
        const streams = [
            { name: "b", topic: { name: "t.b", producers: ["zeta", "alpha"] } },
            { name: "a", topic: { name: "t.a", producers: ["alpha"] } },
            { name: "c", topic: { name: "t.c", producers: [] } },
        ] as unknown as StreamSpec[];
        assert.deepEqual(
            [...producerTopics(streams, "clickhouse")],
            [
                ["alpha", ["t.b", "t.a"]],
                ["zeta", ["t.b"]],
            ],
        );
        assert.throws(
            () => producerTopics(streams, "alpha"),
            /stream 'b'.*'alpha'.*name of its own/,
        );
    });

    it("a producer's KafkaUser may write and describe its topics, nothing else", () => {
        const cr = kafkaUserCr({
            name: "web-collector",
            namespace: "ns",
            cluster: "events",
            passwordSecret: { name: "events-web-collector-scram", key: "password" },
            readTopics: [],
            readGroups: [],
            writeTopics: ["web.clicks"],
            waitForReady: false,
        }) as unknown as { spec: { authorization: { acls: unknown[] } } };
        assert.deepEqual(cr.spec.authorization.acls, [
            {
                type: "allow",
                resource: { type: "topic", name: "web.clicks", patternType: "literal" },
                operations: ["Write", "Describe"],
            },
        ]);
    });

    it("dev stack: the sample's producer is a KafkaUser with its own Secret, writing only its topic", async () => {
        const { resources } = await runStack("dev");
        const users = strimzi(resources, "KafkaUser");
        const producer = users.find((u) => u.inputs.metadata.name === "shop-backend");
        assert.ok(producer, `no KafkaUser shop-backend among ${users.map((u) => u.name)}`);
        const acls = producer.inputs.spec.authorization.acls as Array<Record<string, any>>;
        assert.deepEqual(
            acls.map((a) => [a.resource.type, a.resource.name, a.operations.join("+")]),
            [["topic", "shop.orders", "Write+Describe"]],
        );
        assert.equal(
            producer.inputs.spec.authentication.password.valueFrom.secretKeyRef.name,
            "events-shop-backend-scram",
        );
        const secret = ofType(resources, "kubernetes:core/v1:Secret").find(
            (s) => s.inputs.metadata.name === "events-shop-backend-scram",
        );
        assert.ok(secret, "the producer's password Secret");
        // The consumer gained nothing: no Write anywhere.
        const consumer = users.find((u) => u.inputs.metadata.name === "clickhouse")!;
        for (const a of consumer.inputs.spec.authorization.acls as Array<Record<string, any>>)
            assert.ok(!a.operations.includes("Write"), JSON.stringify(a));
    });

    it("external mode: Write and Describe ACLs for User:<producer> on exactly its topics", async () => {
        const { resources } = await runStack(
            "dev",
            {
                kafkaMode: "external",
                kafkaExternalBootstrap: "kafka-1:9093",
                kafkaExternalUsername: "ingest",
            },
            { kafkaExternalPassword: require("@pulumi/pulumi").secret("external-secret-pw") },
        );
        const acls = ofType(resources, "kafka:index/acl:Acl").map((a) =>
            [
                a.inputs.aclPrincipal,
                a.inputs.aclResourceType,
                a.inputs.aclResourceName,
                a.inputs.aclOperation,
                a.inputs.aclPermissionType,
                a.inputs.resourcePatternTypeFilter,
            ].join(" "),
        );
        assert.deepEqual(acls.sort(), [
            "User:shop-backend Topic shop.orders Describe Allow Literal",
            "User:shop-backend Topic shop.orders Write Allow Literal",
        ]);
    });
});
