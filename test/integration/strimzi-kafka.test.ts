/**
 * The Strimzi stand-in's User Operator work on a real broker (standard authorizer, SASL/SCRAM
 * listener): the credentials and ACLs it writes for the ClickHouse KafkaUser the stack emits are
 * what the broker enforces, checked with a real client (Kafka's console consumer).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { kafkaUserCr, producerTopics } from "../../components/kafka/manifests";
import type { StreamSpec } from "../../schemas/model";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { Admin } from "../../runtime/kafka-client";
import {
    STANDIN_BROKER_PROPERTIES,
    alignAcls,
    deleteScramCredential,
    upsertScramCredential,
} from "../../runtime/strimzi-standin";
import { CustomResource, desiredAcls } from "../../runtime/strimzi-status";

const USER = "clickhouse";
const ALLOWED_TOPIC = "allowed.events";
const OTHER_TOPIC = "other.events";
const ALLOWED_GROUP = "clickhouse-allowed_events";

describe(
    "Strimzi stand-in: SCRAM credentials and ACLs on a real broker",
    { timeout: 10 * 60_000 },
    () => {
        let broker: KafkaBroker;
        let admin: Admin;
        const password = randomBytes(16).toString("hex");
        const auth = { username: USER, password };
        const quiet = () => undefined;

        before(async () => {
            broker = await startKafka({
                scram: { username: "kcs-harness", password: randomBytes(12).toString("hex") },
                serverProperties: STANDIN_BROKER_PROPERTIES,
            });
            admin = new Admin({
                clientId: "strimzi-kafka-test",
                bootstrapBrokers: [broker.bootstrap],
            });
            for (const t of [ALLOWED_TOPIC, OTHER_TOPIC]) {
                await broker.createTopic(t, 1);
                await broker.produce(t, [`{"topic":"${t}"}`]);
            }
            // The user exactly as the stack emits it, with the ACLs the stand-in derives from it.
            const cr = kafkaUserCr({
                name: USER,
                namespace: "ns",
                cluster: "events",
                passwordSecret: { name: "events-clickhouse-scram", key: "password" },
                readTopics: [ALLOWED_TOPIC],
                readGroups: [ALLOWED_GROUP],
                waitForReady: true,
            }) as unknown as CustomResource;
            await upsertScramCredential(broker.bootstrap, USER, password);
            await alignAcls(admin, USER, desiredAcls(cr), quiet);
        });

        after(async () => {
            await admin?.close();
            await broker?.stop();
        });

        it("the user reads its topic in its group", async () => {
            const got = await broker.consume(ALLOWED_TOPIC, 1, { auth, group: ALLOWED_GROUP });
            assert.deepEqual(got, [`{"topic":"${ALLOWED_TOPIC}"}`]);
        });

        it("a topic outside its ACLs is denied (after authenticating: TopicAuthorizationException)", async () => {
            await assert.rejects(
                broker.consume(OTHER_TOPIC, 1, { auth, group: ALLOWED_GROUP, timeoutMs: 10_000 }),
                /TopicAuthorizationException|Not authorized to access topics/,
            );
        });

        it("a consumer group outside its ACLs is denied", async () => {
            await assert.rejects(
                broker.consume(ALLOWED_TOPIC, 1, {
                    auth,
                    group: "someone-else",
                    timeoutMs: 10_000,
                }),
                /GroupAuthorizationException|Not authorized to access group/,
            );
        });

        it("a wrong password is refused", async () => {
            await assert.rejects(
                broker.consume(ALLOWED_TOPIC, 1, {
                    auth: { username: USER, password: "wrong" },
                    group: ALLOWED_GROUP,
                    timeoutMs: 10_000,
                }),
                /SaslAuthenticationException|Authentication failed/,
            );
        });

        it("a declared producer writes its topic, and is denied another stream's topic and reads", async () => {
            const producer = "orders-service";
            const pauth = { username: producer, password: randomBytes(16).toString("hex") };
            // As the stack emits it for `topic.producers: [orders-service]` on ALLOWED_TOPIC.
            const [[name, topics]] = [
                ...producerTopics(
                    [
                        { name: "allowed", topic: { name: ALLOWED_TOPIC, producers: [producer] } },
                        { name: "other", topic: { name: OTHER_TOPIC, producers: [] } },
                    ] as unknown as StreamSpec[],
                    USER,
                ),
            ];
            assert.equal(name, producer);
            const cr = kafkaUserCr({
                name: producer,
                namespace: "ns",
                cluster: "events",
                passwordSecret: { name: `events-${producer}-scram`, key: "password" },
                readTopics: [],
                readGroups: [],
                writeTopics: topics!,
                waitForReady: true,
            }) as unknown as CustomResource;
            await upsertScramCredential(broker.bootstrap, producer, pauth.password);
            await alignAcls(admin, producer, desiredAcls(cr), quiet);

            const before = (await broker.endOffsets(ALLOWED_TOPIC)).reduce((a, b) => a + b, 0);
            assert.equal(
                await broker.produce(ALLOWED_TOPIC, ['{"by":"producer"}'], { auth: pauth }),
                1,
            );
            const after = (await broker.endOffsets(ALLOWED_TOPIC)).reduce((a, b) => a + b, 0);
            assert.equal(after, before + 1, "the message landed");
            await assert.rejects(
                broker.produce(OTHER_TOPIC, ['{"by":"producer"}'], { auth: pauth }),
                /TopicAuthorizationException|Not authorized to access topics/,
            );
            await assert.rejects(
                broker.consume(ALLOWED_TOPIC, 1, { auth: pauth, group: "p", timeoutMs: 10_000 }),
                /AuthorizationException|Not authorized/,
            );
            assert.equal(
                (await broker.endOffsets(OTHER_TOPIC)).reduce((a, b) => a + b, 0),
                1,
                "nothing was written to the other topic",
            );
            await alignAcls(admin, producer, [], quiet);
            await deleteScramCredential(broker.bootstrap, producer);
        });

        it("once the KafkaUser is gone, its ACLs and credentials are removed", async () => {
            await alignAcls(admin, USER, [], quiet);
            const left = await admin.describeAcls({
                filter: {
                    resourceType: 1,
                    resourceName: null,
                    resourcePatternType: 1,
                    principal: `User:${USER}`,
                    host: null,
                    operation: 1,
                    permissionType: 1,
                },
            });
            assert.deepEqual(left, []);
            await deleteScramCredential(broker.bootstrap, USER);
            await assert.rejects(
                broker.consume(ALLOWED_TOPIC, 1, { auth, group: ALLOWED_GROUP, timeoutMs: 10_000 }),
                /SaslAuthenticationException|Authentication failed/,
            );
        });
    },
);
