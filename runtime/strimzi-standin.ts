/**
 * A stand-in for the Strimzi 1.2 operators against a local API server and a real broker. The real
 * operator cannot run here (its artifacts are not on Maven Central), so this one watches Kafka,
 * KafkaNodePool, KafkaTopic and KafkaUser CRs, writes exactly the status Strimzi 1.2 writes
 * (strimzi-status.ts), and does the operators' work where it can on the real broker:
 * - KafkaTopic: creates the topic, adds partitions, alters its config, deletes it; holds the
 *   `strimzi.io/topic-operator` finalizer while the topic exists, as the Topic Operator does;
 * - KafkaUser: SCRAM-SHA-512 credentials and ACLs through Kafka's admin API, and the user's
 *   Secret (`password`, `sasl.jaas.config`);
 * - Kafka: the clusterId of the real broker, a cluster CA Secret, listener addresses in status.
 * It runs no broker pods: the cluster it reports on is the one local broker.
 *
 * Topics and users are handled only while their cluster's Kafka CR is Ready, because the entity
 * operator that handles them exists only then. So teardown must delete them before the Kafka CR,
 * exactly as with the real operator.
 *
 *   const strimzi = await startStrimziStandIn({ kubeconfig, kafkaBootstrap: broker.bootstrap });
 *   ...
 *   await strimzi.stop();
 */
import { Admin, Connection, alterUserScramCredentialsV0 } from "./kafka-client";
import type { KubeConfig as KubeConfigType } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { pbkdf2Sync, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    AclBinding,
    CustomResource,
    STRIMZI_GROUP,
    STRIMZI_VERSION,
    TOPIC_FINALIZER,
    aclKey,
    assignNodeIds,
    desiredAcls,
    isManaged,
    kafkaCreatingStatus,
    kafkaFailedStatus,
    kafkaReadyStatus,
    keepTransitionTimes,
    nodePoolStatus,
    sameStatus,
    saslJaasConfig,
    topicFailedStatus,
    topicName,
    topicReadyStatus,
    userFailedStatus,
    userReadyStatus,
    userSecretLabels,
} from "./strimzi-status";

// @kubernetes/client-node 1.x is ESM-only; Node 20.19+ loads it through require().
const k8s = require("@kubernetes/client-node") as typeof import("@kubernetes/client-node");

/** The broker settings the stand-in needs: the standard authorizer, ANONYMOUS (PLAINTEXT) as super user. */
export const STANDIN_BROKER_PROPERTIES: Readonly<Record<string, string>> = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    // The PLAINTEXT and controller listeners carry the harness's tools, the stand-in and the
    // broker's own traffic; SASL clients (the KafkaUsers) are subject to their ACLs.
    "super.users": "User:ANONYMOUS",
};

export interface StrimziStandInOptions {
    /** Path of a kubeconfig for the API server. */
    readonly kubeconfig: string;
    /** host:port of the broker's PLAINTEXT listener (a super user there). */
    readonly kafkaBootstrap: string;
    /** Namespace to watch; every namespace when unset (`watchNamespaces: []`). */
    readonly namespace?: string;
    /** STRIMZI_USE_FINALIZERS of the Topic Operator. @default true */
    readonly useFinalizers?: boolean;
    /** Progress lines. @default stderr with a [strimzi] prefix */
    readonly log?: (line: string) => void;
}

export interface StrimziStandIn {
    /** Stops reconciling (statuses stay as they are) until resume(); to test what waits on them. */
    pause(): void;
    resume(): void;
    /** Runs one reconciliation pass now and resolves when it is done. */
    reconcileNow(): Promise<void>;
    stop(): Promise<void>;
}

const PLURALS = {
    Kafka: "kafkas",
    KafkaNodePool: "kafkanodepools",
    KafkaTopic: "kafkatopics",
    KafkaUser: "kafkausers",
} as const;
type Kind = keyof typeof PLURALS;

const SCRAM_SHA_512 = 2;
/** How Kafka and the client word UNKNOWN_TOPIC_OR_PARTITION. */
const UNKNOWN_TOPIC =
    /UNKNOWN_TOPIC_OR_PARTITION|does not exist|unknown topic|does not host this topic-partition/i;
const SCRAM_ITERATIONS = 4096;
const RESYNC_MS = 5_000;

export async function startStrimziStandIn(opts: StrimziStandInOptions): Promise<StrimziStandIn> {
    const log = opts.log ?? ((line: string) => process.stderr.write(`[strimzi] ${line}\n`));
    const useFinalizers = opts.useFinalizers ?? true;
    const kc: KubeConfigType = new k8s.KubeConfig();
    kc.loadFromFile(opts.kubeconfig);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const admin = new Admin({
        clientId: "strimzi-stand-in",
        bootstrapBrokers: opts.kafkaBootstrap.split(","),
        retries: 3,
    });
    const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
    // What the User Operator has put into Kafka per user, to clean up after a KafkaUser is deleted.
    const knownUsers = new Map<string, { name: string; cluster: string }>();
    const scramApplied = new Map<string, string>();
    const caDir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-strimzi-ca-"));
    const caCerts = new Map<string, string>();

    // ---- API helpers --------------------------------------------------------------------------

    const list = async (kind: Kind): Promise<CustomResource[]> => {
        const params = { group: STRIMZI_GROUP, version: STRIMZI_VERSION, plural: PLURALS[kind] };
        const res = (
            opts.namespace
                ? await custom.listNamespacedCustomObject({ ...params, namespace: opts.namespace })
                : await custom.listClusterCustomObject(params)
        ) as { items: CustomResource[] };
        return res.items;
    };

    const writeStatus = async (kind: Kind, cr: CustomResource, status: Record<string, any>) => {
        if (Array.isArray(status.conditions)) {
            status.conditions = keepTransitionTimes(status.conditions, cr.status?.conditions);
        }
        if (sameStatus(cr.status, status)) return;
        await custom.replaceNamespacedCustomObjectStatus({
            group: STRIMZI_GROUP,
            version: STRIMZI_VERSION,
            plural: PLURALS[kind],
            namespace: cr.metadata.namespace,
            name: cr.metadata.name,
            body: { ...cr, status },
        });
        cr.status = status;
    };

    const setFinalizers = async (kind: Kind, cr: CustomResource, finalizers: string[]) => {
        const updated = (await custom.replaceNamespacedCustomObject({
            group: STRIMZI_GROUP,
            version: STRIMZI_VERSION,
            plural: PLURALS[kind],
            namespace: cr.metadata.namespace,
            name: cr.metadata.name,
            body: { ...cr, metadata: { ...cr.metadata, finalizers } },
        })) as CustomResource;
        cr.metadata = updated.metadata;
    };

    const readSecret = async (namespace: string, name: string) => {
        try {
            return await core.readNamespacedSecret({ name, namespace });
        } catch (e) {
            if ((e as { code?: number }).code === 404) return undefined;
            throw e;
        }
    };

    const upsertSecret = async (namespace: string, body: any) => {
        const existing = await readSecret(namespace, body.metadata.name);
        if (!existing) {
            await core.createNamespacedSecret({ namespace, body });
        } else if (
            JSON.stringify(existing.data ?? {}) !== JSON.stringify(body.data) ||
            JSON.stringify(existing.metadata?.labels ?? {}) !== JSON.stringify(body.metadata.labels)
        ) {
            await core.replaceNamespacedSecret({
                name: body.metadata.name,
                namespace,
                body: {
                    ...body,
                    metadata: {
                        ...body.metadata,
                        resourceVersion: existing.metadata?.resourceVersion,
                    },
                },
            });
        }
    };

    const ownerReference = (cr: CustomResource, kind: Kind) => ({
        apiVersion: `${STRIMZI_GROUP}/${STRIMZI_VERSION}`,
        kind,
        name: cr.metadata.name,
        uid: cr.metadata.uid!,
        blockOwnerDeletion: true,
        controller: false,
    });

    // ---- Kafka and node pools (cluster operator) ----------------------------------------------

    const clusterCa = async (kafka: CustomResource): Promise<string> => {
        const key = `${kafka.metadata.namespace}/${kafka.metadata.name}/${kafka.metadata.uid}`;
        let pem = caCerts.get(key);
        if (!pem) {
            const existing = await readSecret(
                kafka.metadata.namespace,
                `${kafka.metadata.name}-cluster-ca-cert`,
            );
            const stored = existing?.data?.["ca.crt"];
            pem = stored ? Buffer.from(stored, "base64").toString() : await newCaCertificate(caDir);
            caCerts.set(key, pem);
        }
        await upsertSecret(kafka.metadata.namespace, {
            metadata: {
                name: `${kafka.metadata.name}-cluster-ca-cert`,
                namespace: kafka.metadata.namespace,
                labels: {
                    "strimzi.io/cluster": kafka.metadata.name,
                    "strimzi.io/kind": "Kafka",
                    "strimzi.io/component-type": "certificate-authority",
                },
                ownerReferences: [ownerReference(kafka, "Kafka")],
            },
            type: "Opaque",
            data: { "ca.crt": Buffer.from(pem).toString("base64") },
        });
        return pem;
    };

    const reconcileKafka = async (kafka: CustomResource, allPools: CustomResource[]) => {
        if (kafka.metadata.deletionTimestamp) return;
        if (!kafka.status) await writeStatus("Kafka", kafka, kafkaCreatingStatus(now()));
        const pools = allPools.filter(
            (p) =>
                p.metadata.namespace === kafka.metadata.namespace &&
                p.metadata.labels?.["strimzi.io/cluster"] === kafka.metadata.name &&
                !p.metadata.deletionTimestamp,
        );
        if (pools.length === 0) {
            await writeStatus(
                "Kafka",
                kafka,
                kafkaFailedStatus(
                    kafka,
                    "InvalidConfigurationException",
                    `No KafkaNodePools found for Kafka cluster ${kafka.metadata.name}`,
                    now(),
                ),
            );
            return;
        }
        const clusterId = (await admin.metadata({ topics: [] })).id;
        const ids = assignNodeIds(pools);
        for (const pool of pools) {
            await writeStatus(
                "KafkaNodePool",
                pool,
                nodePoolStatus({
                    pool,
                    cluster: kafka.metadata.name,
                    nodeIds: ids.get(pool.metadata.name)!,
                    clusterId,
                }),
            );
        }
        const caCertificate = await clusterCa(kafka);
        await writeStatus(
            "Kafka",
            kafka,
            kafkaReadyStatus({ kafka, pools, clusterId, caCertificate, now: now() }),
        );
    };

    // ---- KafkaTopic (Topic Operator) ----------------------------------------------------------

    const describeTopic = async (name: string) => {
        const meta = await admin
            .metadata({ topics: [name], forceUpdate: true })
            .catch((e: Error) => {
                if (UNKNOWN_TOPIC.test(errorText(e))) return undefined;
                throw e;
            });
        const t = meta?.topics.get(name);
        if (!t) return undefined;
        return {
            id: kafkaUuid(t.id),
            partitions: t.partitionsCount,
            replicas: Math.min(...t.partitions.map((p) => p.replicas.length)),
        };
    };

    const reconcileTopic = async (topic: CustomResource) => {
        const name = topicName(topic);
        if (topic.metadata.deletionTimestamp) {
            if (!topic.metadata.finalizers?.includes(TOPIC_FINALIZER)) return;
            // Idempotent, as the Topic Operator's delete is: a topic already gone (deleted by an
            // earlier attempt whose answer was lost, or by hand) only releases the finalizer.
            if (isManaged(topic) && (await describeTopic(name)) !== undefined) {
                await admin.deleteTopics({ topics: [name] }).catch((e: Error) => {
                    if (!UNKNOWN_TOPIC.test(errorText(e))) throw e;
                });
                log(
                    `deleted topic ${name} (KafkaTopic ${topic.metadata.namespace}/${topic.metadata.name})`,
                );
            }
            await setFinalizers(
                "KafkaTopic",
                topic,
                (topic.metadata.finalizers ?? []).filter((f) => f !== TOPIC_FINALIZER),
            );
            return;
        }
        const finalizers = topic.metadata.finalizers ?? [];
        if (useFinalizers && !finalizers.includes(TOPIC_FINALIZER)) {
            await setFinalizers("KafkaTopic", topic, [...finalizers, TOPIC_FINALIZER]);
        } else if (!useFinalizers && finalizers.includes(TOPIC_FINALIZER)) {
            await setFinalizers(
                "KafkaTopic",
                topic,
                finalizers.filter((f) => f !== TOPIC_FINALIZER),
            );
        }
        if (!isManaged(topic)) return;
        const current = await describeTopic(name);
        const fail = (reason: string, message: string) =>
            writeStatus(
                "KafkaTopic",
                topic,
                topicFailedStatus(topic, reason, message, current?.id, now()),
            );
        if (topic.status?.topicName && topic.status.topicName !== name) {
            return fail("NotSupported", "Changing spec.topicName is not supported");
        }
        const spec = topic.spec ?? {};
        const config = Object.fromEntries(
            Object.entries((spec.config ?? {}) as Record<string, unknown>).map(([k, v]) => [
                k,
                String(v),
            ]),
        );
        try {
            if (!current) {
                await admin.createTopics({
                    topics: [name],
                    partitions: spec.partitions ?? -1,
                    replicas: spec.replicas ?? -1,
                    configs: Object.entries(config).map(([k, v]) => ({ name: k, value: v })),
                });
                log(`created topic ${name} (${spec.partitions ?? "default"} partitions)`);
            } else {
                if (spec.partitions !== undefined && spec.partitions < current.partitions) {
                    return fail("NotSupported", "Decreasing partitions not supported");
                }
                if (spec.replicas !== undefined && spec.replicas !== current.replicas) {
                    return fail(
                        "NotSupported",
                        `Replication factor change not supported, but required for partitions ${JSON.stringify(
                            Array.from({ length: current.partitions }, (_, i) => i),
                        )}`,
                    );
                }
                if (spec.partitions !== undefined && spec.partitions > current.partitions) {
                    await admin.createPartitions({ topics: [{ name, count: spec.partitions }] });
                    log(`topic ${name}: ${current.partitions} -> ${spec.partitions} partitions`);
                }
                await alignTopicConfig(admin, name, config, log);
            }
        } catch (e) {
            return fail("KafkaError", errorText(e));
        }
        const after = await describeTopic(name);
        await writeStatus("KafkaTopic", topic, topicReadyStatus(topic, after?.id, now()));
    };

    // ---- KafkaUser (User Operator) -------------------------------------------------------------

    const scramUpsert = (user: string, password: string) =>
        upsertScramCredential(opts.kafkaBootstrap, user, password);
    const scramDelete = (user: string) => deleteScramCredential(opts.kafkaBootstrap, user);

    const reconcileUser = async (user: CustomResource) => {
        const ns = user.metadata.namespace;
        const name = user.metadata.name;
        const key = `${ns}/${name}`;
        knownUsers.set(key, { name, cluster: user.metadata.labels?.["strimzi.io/cluster"] ?? "" });
        try {
            const authn = user.spec?.authentication as
                | {
                      type: string;
                      password?: { valueFrom?: { secretKeyRef?: { name: string; key: string } } };
                  }
                | undefined;
            let password: string | undefined;
            if (authn?.type === "scram-sha-512") {
                const ref = authn.password?.valueFrom?.secretKeyRef;
                if (ref) {
                    const secret = await readSecret(ns, ref.name);
                    const value = secret?.data?.[ref.key];
                    if (!value) {
                        throw new NamedError(
                            "InvalidResourceException",
                            `Secret ${ref.name} in namespace ${ns} with requested user password does not exist or has no key ${ref.key}`,
                        );
                    }
                    password = Buffer.from(value, "base64").toString();
                } else {
                    const own = (await readSecret(ns, name))?.data?.password;
                    password = own
                        ? Buffer.from(own, "base64").toString()
                        : randomBytes(24).toString("base64url").slice(0, 32);
                }
                const fingerprint = `${user.metadata.generation}:${pbkdf2Sync(password, "fp", 1, 16, "sha256").toString("hex")}`;
                if (scramApplied.get(key) !== fingerprint) {
                    await scramUpsert(name, password);
                    scramApplied.set(key, fingerprint);
                    log(`SCRAM-SHA-512 credentials set for ${name}`);
                }
            } else if (authn !== undefined) {
                throw new NamedError(
                    "InvalidResourceException",
                    `authentication type ${authn.type} is not handled by the stand-in`,
                );
            }
            await alignAcls(admin, name, desiredAcls(user), log);
            if (password !== undefined) {
                await upsertSecret(ns, {
                    metadata: {
                        name,
                        namespace: ns,
                        labels: userSecretLabels(user),
                        ownerReferences: [ownerReference(user, "KafkaUser")],
                    },
                    type: "Opaque",
                    data: {
                        password: Buffer.from(password).toString("base64"),
                        "sasl.jaas.config": Buffer.from(saslJaasConfig(name, password)).toString(
                            "base64",
                        ),
                    },
                });
            }
            await writeStatus("KafkaUser", user, userReadyStatus(user, now()));
        } catch (e) {
            const reason = e instanceof NamedError ? e.reason : "KafkaError";
            await writeStatus(
                "KafkaUser",
                user,
                userFailedStatus(user, reason, errorText(e), now()),
            );
        }
    };

    /** A KafkaUser that is gone: its credentials and ACLs go too (its Secret goes by owner reference). */
    const forgetUser = async (key: string, name: string) => {
        await scramDelete(name).catch(() => undefined);
        await alignAcls(admin, name, [], log);
        knownUsers.delete(key);
        scramApplied.delete(key);
        log(`removed credentials and ACLs of deleted KafkaUser ${key}`);
    };

    // ---- The loop -------------------------------------------------------------------------------

    let paused = false;
    let stopped = false;
    let running: Promise<void> | undefined;
    let again = false;

    const pass = async () => {
        const [kafkas, pools, topics, users] = await Promise.all(
            (Object.keys(PLURALS) as Kind[]).map((k) => list(k)),
        );
        for (const kafka of kafkas!)
            await guard(`Kafka ${kafka.metadata.name}`, () => reconcileKafka(kafka, pools!));
        const ready = new Set(
            kafkas!
                .filter(
                    (k) =>
                        !k.metadata.deletionTimestamp &&
                        k.status?.conditions?.some(
                            (c: any) => c.type === "Ready" && c.status === "True",
                        ),
                )
                .map((k) => `${k.metadata.namespace}/${k.metadata.name}`),
        );
        const served = (cr: CustomResource) =>
            ready.has(
                `${cr.metadata.namespace}/${cr.metadata.labels?.["strimzi.io/cluster"] ?? ""}`,
            );
        for (const topic of topics!.filter(served)) {
            await guard(`KafkaTopic ${topic.metadata.name}`, () => reconcileTopic(topic));
        }
        for (const user of users!.filter((u) => served(u) && !u.metadata.deletionTimestamp)) {
            await guard(`KafkaUser ${user.metadata.name}`, () => reconcileUser(user));
        }
        const present = new Set(users!.map((u) => `${u.metadata.namespace}/${u.metadata.name}`));
        for (const [key, u] of [...knownUsers]) {
            if (!present.has(key))
                await guard(`deleted KafkaUser ${key}`, () => forgetUser(key, u.name));
        }
    };

    const guard = async (what: string, fn: () => Promise<unknown>) => {
        try {
            await fn();
        } catch (e) {
            // A conflict means someone changed the object meanwhile: the next pass sees the new one.
            if ((e as { code?: number }).code !== 409) log(`${what}: ${errorText(e)}`);
        }
    };

    const trigger = (): Promise<void> => {
        if (stopped || paused) return Promise.resolve();
        if (running) {
            again = true;
            return running;
        }
        running = (async () => {
            do {
                again = false;
                await pass().catch((e: unknown) => {
                    // 429 "storage is (re)initializing": a fresh API server; the next pass retries.
                    if ((e as { code?: number }).code === 429) return;
                    log(`reconciliation pass failed: ${errorText(e).split("\n")[0]}`);
                });
            } while (again && !stopped && !paused);
            running = undefined;
        })();
        return running;
    };

    // Watches trigger a pass on every change; a periodic resync catches anything a watch missed.
    const watch = new k8s.Watch(kc);
    const aborts: AbortController[] = [];
    const startWatch = (kind: Kind) => {
        if (stopped) return;
        const base = `/apis/${STRIMZI_GROUP}/${STRIMZI_VERSION}`;
        const url = opts.namespace
            ? `${base}/namespaces/${opts.namespace}/${PLURALS[kind]}`
            : `${base}/${PLURALS[kind]}`;
        watch
            .watch(
                url,
                { allowWatchBookmarks: false },
                () => void trigger(),
                () => setTimeout(() => startWatch(kind), 1000).unref(),
            )
            .then((a) => aborts.push(a))
            .catch(() => setTimeout(() => startWatch(kind), 1000).unref());
    };
    (Object.keys(PLURALS) as Kind[]).forEach(startWatch);
    const resync = setInterval(() => void trigger(), RESYNC_MS);
    resync.unref();
    log(
        `watching Kafka, KafkaNodePool, KafkaTopic, KafkaUser in ${opts.namespace ?? "all namespaces"}; broker ${opts.kafkaBootstrap}`,
    );
    await trigger();

    return {
        pause() {
            paused = true;
            log("paused");
        },
        resume() {
            paused = false;
            log("resumed");
            void trigger();
        },
        reconcileNow: () => trigger(),
        async stop() {
            stopped = true;
            clearInterval(resync);
            for (const a of aborts) a.abort();
            await running;
            await admin.close().catch(() => undefined);
            fs.rmSync(caDir, { recursive: true, force: true });
        },
    };
}

// ---------------------------------------------------------------------------------------------
// Kafka-side helpers

class NamedError extends Error {
    constructor(
        readonly reason: string,
        message: string,
    ) {
        super(message);
    }
}

function errorText(e: unknown): string {
    if (e instanceof Error) {
        const nested = (e as { errors?: unknown[] }).errors;
        const inner =
            Array.isArray(nested) && nested.length > 0
                ? ` (${nested.map(errorText).join("; ")})`
                : "";
        return `${e.message}${inner}`;
    }
    return String(e);
}

/** Kafka prints topic ids as base64url of the 16 bytes; the client gives them as a UUID string. */
function kafkaUuid(id: string): string {
    const hex = id.replace(/-/g, "");
    return /^[0-9a-f]{32}$/i.test(hex) ? Buffer.from(hex, "hex").toString("base64url") : id;
}

/** Sets a SCRAM-SHA-512 credential (4096 iterations, as Strimzi does) through AlterUserScramCredentials. */
export async function upsertScramCredential(
    bootstrap: string,
    user: string,
    password: string,
): Promise<void> {
    const salt = Buffer.from(randomBytes(24).toString("base64url"));
    const saltedPassword = pbkdf2Sync(password, salt, SCRAM_ITERATIONS, 64, "sha512");
    await withConnection(bootstrap, async (conn) => {
        const res = await alterUserScramCredentialsV0.api.async(
            conn,
            [],
            [
                {
                    name: user,
                    mechanism: SCRAM_SHA_512,
                    iterations: SCRAM_ITERATIONS,
                    salt,
                    saltedPassword,
                },
            ],
        );
        const failed = res.results.find((r) => r.errorCode !== 0);
        if (failed) {
            throw new Error(
                `setting the SCRAM credentials of ${user} failed: ${failed.errorMessage ?? `error code ${failed.errorCode}`}`,
            );
        }
    });
}

/** Removes a user's SCRAM-SHA-512 credential; absent ones are fine. */
export async function deleteScramCredential(bootstrap: string, user: string): Promise<void> {
    await withConnection(bootstrap, async (conn) => {
        await alterUserScramCredentialsV0.api.async(
            conn,
            [{ name: user, mechanism: SCRAM_SHA_512 }],
            [],
        );
    });
}

async function withConnection<T>(bootstrap: string, fn: (c: Connection) => Promise<T>): Promise<T> {
    const [host, port] = bootstrap.split(",")[0]!.split(":");
    const conn = new Connection("strimzi-stand-in");
    await conn.connect(host!, Number(port));
    try {
        return await fn(conn);
    } finally {
        await conn.close().catch(() => undefined);
    }
}

/** Sets the topic configs of the spec and removes topic-level overrides the spec no longer has. */
async function alignTopicConfig(
    admin: Admin,
    topic: string,
    desired: Record<string, string>,
    log: (line: string) => void,
): Promise<void> {
    const [described] = await admin.describeConfigs({
        resources: [{ resourceType: 2, resourceName: topic }],
    });
    const overrides = new Map(
        (described?.configs ?? [])
            .filter((c) => c.configSource === 1)
            .map((c) => [c.name, c.value ?? ""] as const),
    );
    const changes: Array<
        { name: string; configOperation: 0; value: string } | { name: string; configOperation: 1 }
    > = [];
    for (const [k, v] of Object.entries(desired)) {
        if (overrides.get(k) !== v) changes.push({ name: k, configOperation: 0, value: v });
    }
    for (const k of overrides.keys()) {
        if (!(k in desired)) changes.push({ name: k, configOperation: 1 });
    }
    if (changes.length === 0) return;
    await admin.incrementalAlterConfigs({
        resources: [{ resourceType: 2, resourceName: topic, configs: changes }],
    });
    log(`topic ${topic}: config ${changes.map((c) => c.name).join(", ")} updated`);
}

const RESOURCE_TYPES = { topic: 2, group: 3, cluster: 4, transactionalId: 5 } as const;
const PATTERN_TYPES = { literal: 3, prefix: 4 } as const;
const OPERATIONS: Record<string, number> = {
    All: 2,
    Read: 3,
    Write: 4,
    Create: 5,
    Delete: 6,
    Alter: 7,
    Describe: 8,
    ClusterAction: 9,
    DescribeConfigs: 10,
    AlterConfigs: 11,
    IdempotentWrite: 12,
};
const PERMISSIONS = { deny: 2, allow: 3 } as const;

function toKafkaAcl(user: string, a: AclBinding) {
    const operation = OPERATIONS[a.operation];
    if (operation === undefined) throw new Error(`unknown ACL operation '${a.operation}'`);
    return {
        resourceType: RESOURCE_TYPES[a.resourceType],
        resourceName: a.resourceName,
        resourcePatternType: PATTERN_TYPES[a.patternType],
        principal: `User:${user}`,
        host: a.host,
        operation,
        permissionType: PERMISSIONS[a.permission],
    } as const;
}

/** Makes the ACLs of `User:<user>` exactly `desired`: adds what is missing, deletes the rest. */
export async function alignAcls(
    admin: Admin,
    user: string,
    desired: readonly AclBinding[],
    log: (line: string) => void,
): Promise<void> {
    const principal = `User:${user}`;
    const existing = await admin.describeAcls({
        filter: {
            resourceType: 1,
            resourceName: null,
            resourcePatternType: 1,
            principal,
            host: null,
            operation: 1,
            permissionType: 1,
        },
    });
    const want = new Map(desired.map((a) => [keyOf(toKafkaAcl(user, a)), toKafkaAcl(user, a)]));
    const have = new Map<string, ReturnType<typeof toKafkaAcl>>();
    for (const r of existing) {
        for (const p of r.acls) {
            const acl = {
                resourceType: r.resourceType,
                resourceName: r.resourceName,
                resourcePatternType: r.resourcePatternType,
                principal: p.principal,
                host: p.host,
                operation: p.operation,
                permissionType: p.permissionType,
            } as ReturnType<typeof toKafkaAcl>;
            have.set(keyOf(acl), acl);
        }
    }
    const add = [...want].filter(([k]) => !have.has(k)).map(([, a]) => a);
    const remove = [...have].filter(([k]) => !want.has(k)).map(([, a]) => a);
    if (add.length > 0) await admin.createAcls({ creations: add as any });
    if (remove.length > 0) await admin.deleteAcls({ filters: remove as any });
    if (add.length + remove.length > 0) {
        log(
            `ACLs of ${principal}: +${add.length} -${remove.length} (${desired.map(aclKey).length} wanted)`,
        );
    }
}

function keyOf(a: {
    resourceType: number;
    resourceName: string;
    resourcePatternType: number;
    host: string;
    operation: number;
    permissionType: number;
}): string {
    return [
        a.resourceType,
        a.resourceName,
        a.resourcePatternType,
        a.host,
        a.operation,
        a.permissionType,
    ].join("|");
}

/** A self-signed cluster CA certificate (PEM), as the operator makes one per cluster. */
function newCaCertificate(dir: string): Promise<string> {
    const key = path.join(dir, `${randomBytes(4).toString("hex")}.key`);
    const crt = `${key}.crt`;
    return new Promise((resolve, reject) => {
        execFile(
            "openssl",
            [
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                crt,
                "-days",
                "365",
                "-subj",
                "/O=io.strimzi/CN=cluster-ca v0",
            ],
            { timeout: 30_000 },
            (err) => {
                if (err)
                    reject(
                        new Error(
                            `openssl could not make the cluster CA (install openssl): ${err.message}`,
                        ),
                    );
                else resolve(fs.readFileSync(crt, "utf8"));
            },
        );
    });
}
