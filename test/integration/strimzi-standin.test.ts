/**
 * The Strimzi stand-in's reconcilers (runtime/strimzi-standin*.ts) against a real API server (the
 * project's control plane, no nodes: nothing here needs a pod) with the generated Strimzi CRDs and
 * a real broker (standard authorizer, SASL/SCRAM listener). The CRs are the ones the stack's own
 * builders make; every pass is run with reconcileNow(), so nothing waits on the resync timer.
 */
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import assert from "node:assert/strict";
import { X509Certificate, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
    kafkaCr,
    kafkaTopicCr,
    kafkaUserCr,
    kraftMetadataVersion,
    nodePools,
} from "../../components/kafka/manifests";
import { topicSchema } from "../../schemas/model";
import { SECRET_KEYS, VERSION_DEFAULTS } from "../../schemas/naming";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { Admin } from "../../runtime/kafka-client";
import { KubeCluster, startKube } from "../../runtime/kube";
import {
    STANDIN_BROKER_PROPERTIES,
    StrimziStandIn,
    startStrimziStandIn,
} from "../../runtime/strimzi-standin";
import { Kind, PLURALS } from "../../runtime/strimzi-standin-common";
import {
    CustomResource,
    STRIMZI_GROUP,
    STRIMZI_VERSION,
    TOPIC_FINALIZER,
} from "../../runtime/strimzi-status";

const NS = "strimzi-it";
const CLUSTER = "events";
const TOPIC = "orders.events";
const USER = "reader";
const GROUP = "reader-group";

/** The condition of `type`, for assertions whose message shows the whole status. */
const conditionOf = (cr: CustomResource, type: string) =>
    cr.status?.conditions?.find((c) => c.type === type);
const decode = (v: string | undefined) => Buffer.from(v ?? "", "base64").toString();

describe(
    "Strimzi stand-in: its reconcilers on a real API server and a real broker",
    { timeout: 10 * 60_000 },
    () => {
        let kube: KubeCluster;
        let broker: KafkaBroker;
        let admin: Admin;
        let strimzi: StrimziStandIn;
        let custom: CustomObjectsApi;
        let core: CoreV1Api;
        const logs: string[] = [];
        const seen = () => `\nstand-in log:\n${logs.join("\n")}`;
        const password = randomBytes(16).toString("hex");

        const params = (kind: Kind) => ({
            group: STRIMZI_GROUP,
            version: STRIMZI_VERSION,
            namespace: NS,
            plural: PLURALS[kind],
        });
        const create = (kind: Kind, body: object) =>
            custom.createNamespacedCustomObject({ ...params(kind), body });
        const get = async (kind: Kind, name: string) =>
            (await custom.getNamespacedCustomObject({
                ...params(kind),
                name,
            })) as CustomResource;
        const remove = (kind: Kind, name: string) =>
            custom.deleteNamespacedCustomObject({ ...params(kind), name });
        /** Changes a CR's spec; retries when a status write of the stand-in came in between. */
        async function update(kind: Kind, name: string, change: (cr: CustomResource) => void) {
            for (let attempt = 1; ; attempt++) {
                const cr = await get(kind, name);
                change(cr);
                try {
                    return await custom.replaceNamespacedCustomObject({
                        ...params(kind),
                        name,
                        body: cr,
                    });
                } catch (e) {
                    if ((e as { code?: number }).code !== 409 || attempt === 5) throw e;
                }
            }
        }
        const secret = (name: string) => core.readNamespacedSecret({ name, namespace: NS });
        /** The ACLs of the user on the broker, as `type:name:operation` with Kafka's codes. */
        const aclsOf = async (user: string) =>
            (
                await admin.describeAcls({
                    filter: {
                        resourceType: 1,
                        resourceName: null,
                        resourcePatternType: 1,
                        principal: `User:${user}`,
                        host: null,
                        operation: 1,
                        permissionType: 1,
                    },
                })
            )
                .flatMap((r) =>
                    r.acls.map((a) => `${r.resourceType}:${r.resourceName}:${a.operation}`),
                )
                .sort();

        before(async () => {
            [kube, broker] = await Promise.all([
                startKube({ nodes: 0 }),
                startKafka({
                    scram: { username: "kcs-harness", password: randomBytes(12).toString("hex") },
                    serverProperties: STANDIN_BROKER_PROPERTIES,
                }),
            ]);
            await kube.applyCrds();
            const kc = new KubeConfig();
            kc.loadFromFile(kube.kubeconfig);
            custom = kc.makeApiClient(CustomObjectsApi);
            core = kc.makeApiClient(CoreV1Api);
            await core.createNamespace({ body: { metadata: { name: NS } } });
            admin = new Admin({
                clientId: "strimzi-standin-test",
                bootstrapBrokers: [broker.bootstrap],
            });
            strimzi = await startStrimziStandIn({
                kubeconfig: kube.kubeconfig,
                kafkaBootstrap: broker.bootstrap,
                namespace: NS,
                log: (line) => logs.push(line),
            });
        });

        after(async () => {
            await strimzi?.stop();
            await admin?.close();
            await Promise.allSettled([kube?.stop(), broker?.stop()]);
        });

        it("a Kafka CR without node pools is NotReady (InvalidConfigurationException); its topics wait", async () => {
            const kafka = kafkaCr({
                name: CLUSTER,
                namespace: NS,
                version: VERSION_DEFAULTS.kafka,
                metadataVersion: kraftMetadataVersion(VERSION_DEFAULTS.kafka)!,
                brokers: 1,
                plainListener: true,
                waitForReady: false,
            });
            const topic = kafkaTopicCr({
                namespace: NS,
                cluster: CLUSTER,
                topic: topicSchema.parse({
                    name: TOPIC,
                    partitions: 2,
                    retentionMs: 3_600_000,
                    config: { "segment.bytes": 1_048_576 },
                }),
                defaultReplicas: 1,
                waitForReady: false,
            });
            await create("Kafka", kafka);
            await create("KafkaTopic", topic);
            await strimzi.reconcileNow();

            const k = await get("Kafka", CLUSTER);
            assert.deepEqual(
                k.status?.conditions?.map(({ type, status, reason }) => ({ type, status, reason })),
                [{ type: "NotReady", status: "True", reason: "InvalidConfigurationException" }],
                JSON.stringify(k.status) + seen(),
            );
            assert.match(
                conditionOf(k, "NotReady")!.message!,
                /No KafkaNodePools found for Kafka cluster events/,
            );
            // The entity operator does not exist yet: the KafkaTopic is left alone.
            const t = await get("KafkaTopic", TOPIC);
            assert.equal(t.status, undefined, JSON.stringify(t.status));
            assert.equal(t.metadata.finalizers, undefined);
            assert.equal(await broker.describeTopic(TOPIC), undefined);
        });

        it("with its node pool the Kafka CR is Ready: the broker's clusterId, listener addresses, the cluster CA", async () => {
            const [pool] = nodePools(
                {
                    namespace: NS,
                    cluster: CLUSTER,
                    storage: { ephemeral: true },
                    cpu: "1",
                    memory: "2Gi",
                },
                { brokers: 1, controllers: 0 },
            );
            await create("KafkaNodePool", pool!);
            await strimzi.reconcileNow();

            // The id the broker's storage was formatted with.
            const meta = fs.readFileSync(
                path.join(broker.dataDir, "kraft-logs", "meta.properties"),
                "utf8",
            );
            const clusterId = /^cluster\.id=(.+)$/m.exec(meta)![1];
            const k = await get("Kafka", CLUSTER);
            assert.equal(
                conditionOf(k, "Ready")?.status,
                "True",
                JSON.stringify(k.status) + seen(),
            );
            assert.equal(conditionOf(k, "NotReady"), undefined);
            assert.equal(k.status!.observedGeneration, k.metadata.generation);
            assert.equal(k.status!.clusterId, clusterId);
            assert.deepEqual(k.status!.kafkaNodePools, [{ name: "dual-role" }]);
            const listeners = k.status!.listeners as Array<Record<string, unknown>>;
            const host = `${CLUSTER}-kafka-bootstrap.${NS}.svc`;
            assert.deepEqual(
                listeners.map((l) => [l.name, l.bootstrapServers, l.addresses]),
                [
                    ["plain", `${host}:9092`, [{ host, port: 9092 }]],
                    ["tls", `${host}:9093`, [{ host, port: 9093 }]],
                ],
            );
            assert.equal(
                listeners[0]!.certificates,
                undefined,
                "no certificate on a plain listener",
            );

            const p = await get("KafkaNodePool", "dual-role");
            assert.deepEqual(p.status?.nodeIds, [0]);
            assert.equal(p.status?.clusterId, clusterId);

            const ca = await secret(`${CLUSTER}-cluster-ca-cert`);
            const pem = decode(ca.data?.[SECRET_KEYS.caCertificate]);
            const cert = new X509Certificate(pem);
            assert.ok(cert.ca, "the cluster CA certificate is a CA");
            assert.match(cert.subject, /O=io\.strimzi/);
            assert.deepEqual(listeners[1]!.certificates, [pem], "the TLS listener reports the CA");
            assert.deepEqual(
                ca.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid]),
                [["Kafka", CLUSTER, k.metadata.uid]],
            );
        });

        it("the waiting KafkaTopic is now handled: the topic on the broker, Ready, the finalizer", async () => {
            const t = await get("KafkaTopic", TOPIC);
            assert.equal(
                conditionOf(t, "Ready")?.status,
                "True",
                JSON.stringify(t.status) + seen(),
            );
            assert.equal(t.status!.topicName, TOPIC);
            assert.match(String(t.status!.topicId), /^[A-Za-z0-9_-]{22}$/);
            assert.deepEqual(t.metadata.finalizers, [TOPIC_FINALIZER]);
            const onBroker = await broker.describeTopic(TOPIC);
            assert.equal(onBroker?.partitions, 2);
            assert.equal(onBroker?.config["retention.ms"], "3600000");
            assert.equal(onBroker?.config["segment.bytes"], "1048576");
            assert.equal(onBroker?.config["cleanup.policy"], "delete");
        });

        it("more partitions and a config change are applied; fewer partitions are refused (NotSupported)", async () => {
            await update("KafkaTopic", TOPIC, (cr) => {
                cr.spec!.partitions = 4;
                cr.spec!.config = { ...cr.spec!.config, "retention.ms": 7_200_000 };
                delete cr.spec!.config["segment.bytes"];
            });
            await strimzi.reconcileNow();
            let t = await get("KafkaTopic", TOPIC);
            assert.equal(
                conditionOf(t, "Ready")?.status,
                "True",
                JSON.stringify(t.status) + seen(),
            );
            assert.equal(t.status!.observedGeneration, t.metadata.generation);
            const onBroker = await broker.describeTopic(TOPIC);
            assert.equal(onBroker?.partitions, 4);
            assert.equal(onBroker?.config["retention.ms"], "7200000");
            assert.equal(onBroker?.config["segment.bytes"], undefined, "a removed config is reset");

            await update("KafkaTopic", TOPIC, (cr) => void (cr.spec!.partitions = 3));
            await strimzi.reconcileNow();
            t = await get("KafkaTopic", TOPIC);
            assert.deepEqual(
                [conditionOf(t, "Ready")?.status, conditionOf(t, "Ready")?.reason],
                ["False", "NotSupported"],
                JSON.stringify(t.status),
            );
            assert.equal(conditionOf(t, "Ready")?.message, "Decreasing partitions not supported");
            await update("KafkaTopic", TOPIC, (cr) => void (cr.spec!.partitions = 4));
            await strimzi.reconcileNow();
            assert.equal(conditionOf(await get("KafkaTopic", TOPIC), "Ready")?.status, "True");
        });

        it("a KafkaUser gets its Secret, a SCRAM login that reads its topic, exactly its ACLs; a missing password Secret is NotReady", async () => {
            await core.createNamespacedSecret({
                namespace: NS,
                body: { metadata: { name: `${USER}-scram` }, stringData: { password } },
            });
            const user = (name: string, passwordSecret: string) =>
                kafkaUserCr({
                    name,
                    namespace: NS,
                    cluster: CLUSTER,
                    passwordSecret: { name: passwordSecret, key: "password" },
                    readTopics: [TOPIC],
                    readGroups: [GROUP],
                    waitForReady: false,
                });
            await create("KafkaUser", user(USER, `${USER}-scram`));
            await create("KafkaUser", user("nobody", "nobody-scram"));
            await strimzi.reconcileNow();

            const u = await get("KafkaUser", USER);
            assert.equal(
                conditionOf(u, "Ready")?.status,
                "True",
                JSON.stringify(u.status) + seen(),
            );
            assert.equal(u.status!.secret, USER);
            const s = await secret(USER);
            assert.equal(decode(s.data?.[SECRET_KEYS.kafkaPassword]), password);
            assert.equal(
                decode(s.data?.[SECRET_KEYS.kafkaSaslJaasConfig]),
                `org.apache.kafka.common.security.scram.ScramLoginModule required username="${USER}" password="${password}";`,
            );
            assert.deepEqual(
                s.metadata?.ownerReferences?.map((o) => o.uid),
                [u.metadata.uid],
            );
            // topic 2 / group 3; Read 3, Describe 8, DescribeConfigs 10.
            assert.deepEqual(await aclsOf(USER), [
                `2:${TOPIC}:10`,
                `2:${TOPIC}:3`,
                `2:${TOPIC}:8`,
                `3:${GROUP}:3`,
                `3:${GROUP}:8`,
            ]);
            await broker.produce(TOPIC, ['{"order":1}']);
            const fromSecret = decode(s.data?.[SECRET_KEYS.kafkaPassword]);
            assert.deepEqual(
                await broker.consume(TOPIC, 1, {
                    auth: { username: USER, password: fromSecret },
                    group: GROUP,
                    timeoutMs: 20_000,
                }),
                ['{"order":1}'],
            );

            const bad = await get("KafkaUser", "nobody");
            assert.deepEqual(
                [conditionOf(bad, "NotReady")?.status, conditionOf(bad, "NotReady")?.reason],
                ["True", "InvalidResourceException"],
                JSON.stringify(bad.status),
            );
            assert.match(
                conditionOf(bad, "NotReady")!.message!,
                /Secret nobody-scram .* does not exist/,
            );
        });

        it("pause() holds changes, reconcileNow() while paused does nothing, resume() applies them", async () => {
            // No pass is under way once pause() is called right after one ended.
            await strimzi.reconcileNow();
            strimzi.pause();
            try {
                await update("KafkaTopic", TOPIC, (cr) => void (cr.spec!.partitions = 5));
                await strimzi.reconcileNow();
                const t = await get("KafkaTopic", TOPIC);
                assert.ok(Number(t.status!.observedGeneration) < t.metadata.generation!);
                assert.equal((await broker.describeTopic(TOPIC))?.partitions, 4);
            } finally {
                strimzi.resume();
            }
            await strimzi.reconcileNow();
            const t = await get("KafkaTopic", TOPIC);
            assert.equal(t.status!.observedGeneration, t.metadata.generation, seen());
            assert.equal((await broker.describeTopic(TOPIC))?.partitions, 5);
        });

        it("a deleted KafkaTopic is held by the finalizer until its topic is deleted on the broker", async () => {
            await strimzi.reconcileNow();
            strimzi.pause();
            try {
                await remove("KafkaTopic", TOPIC);
                const held = await get("KafkaTopic", TOPIC);
                assert.ok(held.metadata.deletionTimestamp, "deletion is under way");
                assert.deepEqual(held.metadata.finalizers, [TOPIC_FINALIZER]);
            } finally {
                strimzi.resume();
            }
            await strimzi.reconcileNow();
            await assert.rejects(
                get("KafkaTopic", TOPIC),
                (e: { code?: number }) => e.code === 404,
            );
            assert.equal(await broker.describeTopic(TOPIC), undefined, seen());
        });

        it("a deleted KafkaUser loses its ACLs and its SCRAM credential on the broker", async () => {
            await remove("KafkaUser", USER);
            await strimzi.reconcileNow();
            assert.deepEqual(await aclsOf(USER), [], seen());
            await broker.createTopic("after.delete", 1);
            await assert.rejects(
                broker.consume("after.delete", 1, {
                    auth: { username: USER, password },
                    timeoutMs: 15_000,
                }),
                /SaslAuthenticationException|Authentication failed/,
            );
        });
    },
);
