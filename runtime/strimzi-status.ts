/**
 * Strimzi 1.2's status contract, as pure functions: what the cluster operator, the Topic Operator
 * and the User Operator write into `.status` of Kafka, KafkaNodePool, KafkaTopic and KafkaUser,
 * and nothing they do not. Read from the operator's source (strimzi-kafka-operator 1.2.0:
 * KafkaAssemblyOperator, KafkaReconciler, KafkaPool, BatchingTopicController, KubernetesHandler,
 * KafkaUserOperator, StatusUtils). The stand-in (strimzi-standin.ts) does the work and writes these.
 *
 * Facts this relies on:
 * - Kafka: `NotReady` (reason `Creating`) before the first reconciliation, then `Ready` True, or
 *   `NotReady` True with the exception's class as reason. Never `Ready` False.
 * - KafkaNodePool: `observedGeneration`, `nodeIds`, `clusterId`, `roles`, `replicas`,
 *   `labelSelector`, and only warning conditions: no `Ready`, ever (strimzi issue 11046).
 * - KafkaTopic: `Ready` True or `Ready` False (reasons KafkaError, NotSupported, ...),
 *   `topicName`, `topicId`, `observedGeneration`; finalizer `strimzi.io/topic-operator` while
 *   STRIMZI_USE_FINALIZERS is true (its default).
 * - KafkaUser: `Ready` True, or `NotReady` True on failure; `username`, `secret`,
 *   `observedGeneration`. No finalizer.
 */
import { VERSION_DEFAULTS } from "../schemas/naming";

export const STRIMZI_GROUP = "kafka.strimzi.io";
export const STRIMZI_VERSION = "v1";
/** Strimzi 1.2.0's kafka-versions.yaml: the KRaft metadata version of each Kafka version it runs. */
export const METADATA_VERSIONS: Readonly<Record<string, string>> = {
    "4.2.0": "4.2-IV1",
    "4.3.0": "4.3-IV0",
    "4.3.1": "4.3-IV0",
};
export const TOPIC_FINALIZER = "strimzi.io/topic-operator";

export interface Condition {
    type: string;
    status: "True" | "False" | "Unknown";
    lastTransitionTime: string;
    reason?: string;
    message?: string;
}

export interface Metadata {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
}

/** A listener of a Kafka CR, as far as its status reports it. */
export interface ListenerSpec {
    name: string;
    port: number;
    tls?: boolean;
}

/** A KafkaUser `simple` authorization rule. */
export interface AclRuleSpec {
    resource: { type: string; name?: string; patternType?: string };
    operations?: string[];
    operation?: string;
    host?: string;
    type?: string;
}

export interface UserAuthenticationSpec {
    type: string;
    password?: { valueFrom?: { secretKeyRef?: { name: string; key: string } } };
}

/**
 * The spec fields the stand-in reads, of all four kinds in one type: each CR has only those of its
 * kind, and what the API returns is not checked against them (the CRDs validated it).
 */
export interface CustomResourceSpec {
    /** Kafka */
    kafka?: { version?: string; listeners?: ListenerSpec[] };
    /** KafkaNodePool: its node count; KafkaTopic: the replication factor. */
    replicas?: number;
    /** KafkaNodePool */
    roles?: string[];
    /** KafkaTopic */
    topicName?: string;
    partitions?: number;
    config?: Record<string, unknown>;
    /** KafkaUser */
    authentication?: UserAuthenticationSpec;
    authorization?: { type: string; acls?: AclRuleSpec[] };
}

/** A status as the operators write it: the fields read back are typed, the rest passes through. */
export interface CustomResourceStatus {
    conditions?: Condition[];
    nodeIds?: number[];
    topicName?: string;
    [field: string]: unknown;
}

export interface CustomResource {
    apiVersion?: string;
    kind?: string;
    metadata: Metadata;
    spec?: CustomResourceSpec;
    status?: CustomResourceStatus;
}

function condition(
    type: string,
    status: Condition["status"],
    now: string,
    reason?: string,
    message?: string,
): Condition {
    return {
        type,
        status,
        lastTransitionTime: now,
        ...(reason !== undefined ? { reason } : {}),
        ...(message !== undefined ? { message } : {}),
    };
}

/** Strimzi's StatusDiff ignores lastTransitionTime: so does this, to write only real changes. */
export function sameStatus(a: unknown, b: unknown): boolean {
    const strip = (v: unknown): unknown =>
        JSON.parse(JSON.stringify(v ?? null), (k, x) =>
            k === "lastTransitionTime" ? undefined : x,
        );
    return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

/** Keeps a condition's lastTransitionTime when its type and status did not change. */
export function keepTransitionTimes(
    next: Condition[],
    previous: Condition[] | undefined,
): Condition[] {
    return next.map((c) => {
        const old = previous?.find((p) => p.type === c.type && p.status === c.status);
        return old ? { ...c, lastTransitionTime: old.lastTransitionTime } : c;
    });
}

// ---------------------------------------------------------------------------------------------
// Kafka and KafkaNodePool (cluster operator)

/** The status a new Kafka CR gets before anything is deployed. */
export function kafkaCreatingStatus(now: string): CustomResourceStatus {
    return {
        conditions: [
            condition("NotReady", "True", now, "Creating", "Kafka cluster is being deployed"),
        ],
    };
}

export function kafkaFailedStatus(
    kafka: CustomResource,
    reason: string,
    message: string,
    now: string,
): CustomResourceStatus {
    return {
        // Fields of the previous status survive a failed reconciliation.
        ...(kafka.status ?? {}),
        conditions: [condition("NotReady", "True", now, reason, message)],
        observedGeneration: kafka.metadata.generation,
    };
}

/** The bootstrap Service the operator creates for a cluster; internal listeners report it. */
export function bootstrapHost(cluster: string, namespace: string): string {
    return `${cluster}-kafka-bootstrap.${namespace}.svc`;
}

export function listenerStatuses(
    kafka: CustomResource,
    caCertificate: string | undefined,
): Array<Record<string, unknown>> {
    const listeners = kafka.spec?.kafka?.listeners ?? [];
    const host = bootstrapHost(kafka.metadata.name, kafka.metadata.namespace);
    return listeners.map((l) => ({
        name: l.name,
        addresses: [{ host, port: l.port }],
        bootstrapServers: `${host}:${l.port}`,
        ...(l.tls && caCertificate ? { certificates: [caCertificate] } : {}),
    }));
}

export function kafkaReadyStatus(args: {
    kafka: CustomResource;
    pools: readonly CustomResource[];
    clusterId: string;
    caCertificate: string | undefined;
    now: string;
}): CustomResourceStatus {
    const version = args.kafka.spec?.kafka?.version ?? VERSION_DEFAULTS.kafka;
    return {
        conditions: [condition("Ready", "True", args.now)],
        observedGeneration: args.kafka.metadata.generation,
        listeners: listenerStatuses(args.kafka, args.caCertificate),
        kafkaNodePools: args.pools
            .map((p) => ({ name: p.metadata.name }))
            .sort((a, b) => a.name.localeCompare(b.name)),
        clusterId: args.clusterId,
        // The operator version a successful reconciliation records.
        operatorLastSuccessfulVersion: VERSION_DEFAULTS.strimzi,
        kafkaVersion: version,
        kafkaMetadataVersion:
            METADATA_VERSIONS[version] ?? version.split(".").slice(0, 2).join(".") + "-IV0",
        clusterSecurity: {
            encryption: { type: "strimzi-tls" },
            authentication: { type: "strimzi-mtls" },
        },
    };
}

/**
 * Node ids per pool: a pool keeps the ids it has while its size does not change; new nodes get
 * the lowest free ids, removed nodes give up their highest ones (the operator's default).
 */
export function assignNodeIds(pools: readonly CustomResource[]): Map<string, number[]> {
    const result = new Map<string, number[]>();
    const used = new Set<number>();
    for (const p of pools) {
        const replicas = Number(p.spec?.replicas ?? 0);
        const kept = (p.status?.nodeIds ?? [])
            .slice()
            .sort((a, b) => a - b)
            .slice(0, replicas);
        result.set(p.metadata.name, kept);
        kept.forEach((id) => used.add(id));
    }
    for (const p of pools) {
        const ids = result.get(p.metadata.name)!;
        const replicas = Number(p.spec?.replicas ?? 0);
        for (let next = 0; ids.length < replicas; next++) {
            if (!used.has(next)) {
                ids.push(next);
                used.add(next);
            }
        }
        ids.sort((a, b) => a - b);
    }
    return result;
}

/** A node pool's status: what the cluster operator writes. Deliberately no `Ready` condition. */
export function nodePoolStatus(args: {
    pool: CustomResource;
    cluster: string;
    nodeIds: number[];
    clusterId: string;
}): CustomResourceStatus {
    const order = ["controller", "broker"];
    const roles = (args.pool.spec?.roles ?? [])
        .slice()
        .sort((a, b) => order.indexOf(a) - order.indexOf(b));
    return {
        observedGeneration: args.pool.metadata.generation,
        nodeIds: args.nodeIds,
        clusterId: args.clusterId,
        roles,
        replicas: args.nodeIds.length,
        labelSelector: [
            `strimzi.io/cluster=${args.cluster}`,
            `strimzi.io/name=${args.cluster}-kafka`,
            "strimzi.io/kind=Kafka",
            `strimzi.io/pool-name=${args.pool.metadata.name}`,
        ].join(","),
    };
}

// ---------------------------------------------------------------------------------------------
// KafkaTopic (Topic Operator)

/** The Kafka topic a KafkaTopic manages. */
export function topicName(topic: CustomResource): string {
    return topic.spec?.topicName ?? topic.metadata.name;
}

export function isManaged(cr: CustomResource): boolean {
    return cr.metadata.annotations?.["strimzi.io/managed"] !== "false";
}

export function topicReadyStatus(
    topic: CustomResource,
    topicId: string | undefined,
    now: string,
): CustomResourceStatus {
    return {
        conditions: [condition("Ready", "True", now)],
        observedGeneration: topic.metadata.generation,
        topicName: topicName(topic),
        ...(topicId ? { topicId } : {}),
    };
}

export function topicFailedStatus(
    topic: CustomResource,
    reason: string,
    message: string,
    topicId: string | undefined,
    now: string,
): CustomResourceStatus {
    return {
        conditions: [condition("Ready", "False", now, reason, message)],
        observedGeneration: topic.metadata.generation,
        // A rejected spec.topicName change keeps reporting the topic it still manages.
        topicName: topic.status?.topicName ?? topicName(topic),
        ...(topicId ? { topicId } : {}),
    };
}

// ---------------------------------------------------------------------------------------------
// KafkaUser (User Operator)

export function userReadyStatus(user: CustomResource, now: string): CustomResourceStatus {
    return {
        conditions: [condition("Ready", "True", now)],
        observedGeneration: user.metadata.generation,
        username: user.metadata.name,
        secret: user.metadata.name,
    };
}

export function userFailedStatus(
    user: CustomResource,
    reason: string,
    message: string,
    now: string,
): CustomResourceStatus {
    return {
        conditions: [condition("NotReady", "True", now, reason, message)],
        observedGeneration: user.metadata.generation,
    };
}

/** The `sasl.jaas.config` value the User Operator puts in a SCRAM user's Secret. */
export function saslJaasConfig(username: string, password: string): string {
    return `org.apache.kafka.common.security.scram.ScramLoginModule required username="${username}" password="${password}";`;
}

/** Labels of the Secret the User Operator writes for a KafkaUser. */
export function userSecretLabels(user: CustomResource): Record<string, string> {
    return {
        ...(user.metadata.labels ?? {}),
        "strimzi.io/kind": "KafkaUser",
        "app.kubernetes.io/name": "strimzi-user-operator",
        "app.kubernetes.io/instance": user.metadata.name,
        "app.kubernetes.io/part-of": user.metadata.name,
        "app.kubernetes.io/managed-by": "strimzi-user-operator",
    };
}

/** One ACL binding in Kafka's terms, from a KafkaUser `simple` authorization rule. */
export interface AclBinding {
    readonly resourceType: "topic" | "group" | "cluster" | "transactionalId";
    readonly resourceName: string;
    readonly patternType: "literal" | "prefix";
    readonly operation: string;
    readonly host: string;
    readonly permission: "allow" | "deny";
}

/** The ACL bindings a KafkaUser asks for, one per operation, as the User Operator expands them. */
export function desiredAcls(user: CustomResource): AclBinding[] {
    const auth = user.spec?.authorization;
    if (!auth || auth.type !== "simple") return [];
    const out: AclBinding[] = [];
    for (const rule of auth.acls ?? []) {
        const resource = rule.resource;
        const operations = rule.operations ?? (rule.operation ? [rule.operation] : []);
        for (const operation of operations) {
            out.push({
                resourceType: resource.type as AclBinding["resourceType"],
                resourceName: resource.type === "cluster" ? "kafka-cluster" : (resource.name ?? ""),
                patternType: (resource.patternType ?? "literal") as AclBinding["patternType"],
                operation,
                host: rule.host ?? "*",
                permission: (rule.type ?? "allow") as AclBinding["permission"],
            });
        }
    }
    return out;
}

export function aclKey(a: AclBinding): string {
    return [a.resourceType, a.resourceName, a.patternType, a.operation, a.host, a.permission].join(
        "|",
    );
}
