import type { StreamSpec, TopicSpec } from "../../schemas/model";
import { kafkaExporterSpec } from "./metrics";

/**
 * Pure builders for the Strimzi `kafka.strimzi.io/v1` resources the stack emits. They return
 * plain objects (no Outputs), so unit tests validate them against the real CRD schemas.
 */

export const STRIMZI_API = "kafka.strimzi.io/v1";
export const CLUSTER_LABEL = "strimzi.io/cluster";

/** A Strimzi custom resource as the builders return it. */
export type StrimziManifest = {
    apiVersion: string;
    kind: string;
    metadata: {
        name: string;
        namespace: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
    };
    spec: Record<string, unknown>;
};

/** Listener ports Strimzi reserves nothing on; 9092/9093 are the conventional internal ones. */
export const LISTENERS = {
    plain: { name: "plain", port: 9092 },
    tls: { name: "tls", port: 9093 },
} as const;

export interface ClusterSizing {
    readonly brokers: number;
    /** 0: brokers are dual-role (broker + controller). */
    readonly controllers: number;
}

/** Replication settings derived from the broker count: RF min(3, brokers); min ISR RF-1 (at least 1). */
export function replicationFor(brokers: number): {
    replicationFactor: number;
    minInsyncReplicas: number;
} {
    const replicationFactor = Math.min(3, brokers);
    return { replicationFactor, minInsyncReplicas: Math.max(1, replicationFactor - 1) };
}

/**
 * The KRaft metadata version of each Kafka release line, as Strimzi's kafka-versions.yaml sets
 * it for the versions Strimzi 1.2 runs. Pinned in the Kafka CR: left unset, Strimzi raises it
 * with every version bump, and a raised metadata version cannot be lowered again, so a Kafka
 * upgrade could no longer be rolled back.
 */
export const KRAFT_METADATA_VERSIONS: Readonly<Record<string, string>> = {
    "4.2": "4.2-IV1",
    "4.3": "4.3-IV0",
};

/** The metadata version a Kafka version starts with; undefined for a release line not listed. */
export function kraftMetadataVersion(kafkaVersion: string): string | undefined {
    const line = /^(\d+\.\d+)\./.exec(kafkaVersion)?.[1];
    return line === undefined ? undefined : KRAFT_METADATA_VERSIONS[line];
}

/** The release line (`major.minor`) of a Kafka or metadata version, for ordering them. */
export function releaseLine(version: string): [number, number] | undefined {
    const m = /^(\d+)\.(\d+)/.exec(version);
    return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * What Pod Security "restricted" asks of every Strimzi container, set in the CRs' templates
 * rather than left to the operator's pod security provider (by default "baseline"): the
 * namespace enforces "restricted", whichever operator reconciles the cluster.
 */
export const RESTRICTED_CONTAINER_SECURITY = {
    allowPrivilegeEscalation: false,
    runAsNonRoot: true,
    seccompProfile: { type: "RuntimeDefault" },
    capabilities: { drop: ["ALL"] },
};

export interface KafkaCrArgs {
    readonly name: string;
    readonly namespace: string;
    readonly version: string;
    /** KRaft metadata version (`spec.kafka.metadataVersion`). */
    readonly metadataVersion: string;
    readonly brokers: number;
    readonly plainListener: boolean;
    readonly metricsConfigMap?: { name: string; key: string };
    readonly waitForReady: boolean;
    /**
     * Who may connect to the listeners (Kubernetes NetworkPolicyPeers), set on every listener;
     * Strimzi turns them into the ingress rules of the brokers' NetworkPolicy. Empty: Strimzi
     * opens the listeners to every pod.
     */
    readonly listenerPeers?: readonly ListenerPeer[];
}

/** A NetworkPolicy peer (Kubernetes' NetworkPolicyPeer) as a listener's `networkPolicyPeers` take it. */
export type ListenerPeer = Readonly<Record<string, unknown>>;

/**
 * What Pulumi waits for on each Strimzi kind (`pulumi.com/waitFor`; a JSON array means all of
 * them), from what Strimzi 1.2 really reports. `condition=Ready` also compares the status's
 * `observedGeneration` with `metadata.generation`, so an update waits for the operator to
 * reconcile the new generation, not for the Ready left over from the old one.
 * - Kafka: Ready, and the listeners' addresses in status (what clients are given).
 * - KafkaTopic: Ready (the topic exists in Kafka with the spec's partitions and config).
 * - KafkaUser: Ready, and the Secret the User Operator wrote (`status.secret`).
 * - KafkaNodePool: nothing. Strimzi never sets a Ready condition on node pools (strimzi issue
 *   11046), and a pool's status is written by the Kafka CR's reconciliation, which the Kafka CR
 *   waits for: any wait here would hold the Kafka CR back for ever.
 */
export const READINESS_GATES = {
    Kafka: ["condition=Ready", "jsonpath={.status.listeners[*].bootstrapServers}"],
    KafkaTopic: ["condition=Ready"],
    KafkaUser: ["condition=Ready", "jsonpath={.status.secret}"],
} as const;

export type GatedKind = keyof typeof READINESS_GATES;

/**
 * Metadata that gates Pulumi on what the operator reports for `kind`. Nothing at all when off:
 * an empty `annotations: {}` would show as a change on every preview, since the API server drops it.
 */
export function readinessAnnotations(
    kind: GatedKind,
    waitForReady: boolean,
): {
    annotations?: Record<string, string>;
} {
    if (!waitForReady) return {};
    const gates: readonly string[] = READINESS_GATES[kind];
    return {
        annotations: {
            "pulumi.com/waitFor": gates.length === 1 ? gates[0]! : JSON.stringify(gates),
        },
    };
}

export function kafkaCr(args: KafkaCrArgs): StrimziManifest {
    const { replicationFactor, minInsyncReplicas } = replicationFor(args.brokers);
    const listeners: Array<Record<string, unknown>> = [
        {
            name: LISTENERS.tls.name,
            port: LISTENERS.tls.port,
            type: "internal",
            tls: true,
            authentication: { type: "scram-sha-512" },
        },
    ];
    if (args.plainListener) {
        listeners.unshift({
            name: LISTENERS.plain.name,
            port: LISTENERS.plain.port,
            type: "internal",
            tls: false,
            authentication: { type: "scram-sha-512" },
        });
    }
    const peers = args.listenerPeers ?? [];
    if (peers.length > 0) for (const l of listeners) l.networkPolicyPeers = [...peers];
    const kafka: Record<string, unknown> = {
        version: args.version,
        metadataVersion: args.metadataVersion,
        listeners,
        authorization: { type: "simple" },
        config: {
            "default.replication.factor": replicationFactor,
            "min.insync.replicas": minInsyncReplicas,
            "offsets.topic.replication.factor": replicationFactor,
            "transaction.state.log.replication.factor": replicationFactor,
            "transaction.state.log.min.isr": minInsyncReplicas,
            "auto.create.topics.enable": false,
        },
    };
    if (args.metricsConfigMap) {
        kafka.metricsConfig = {
            type: "jmxPrometheusExporter",
            valueFrom: {
                configMapKeyRef: {
                    name: args.metricsConfigMap.name,
                    key: args.metricsConfigMap.key,
                },
            },
        };
    }
    return {
        apiVersion: STRIMZI_API,
        kind: "Kafka",
        metadata: {
            name: args.name,
            namespace: args.namespace,
            ...readinessAnnotations("Kafka", args.waitForReady),
        },
        spec: {
            kafka: { ...kafka, template: KAFKA_POD_TEMPLATE },
            ...(args.metricsConfigMap
                ? { kafkaExporter: kafkaExporterSpec(RESTRICTED_CONTAINER_SECURITY) }
                : {}),
            entityOperator: {
                topicOperator: {},
                userOperator: {},
                template: {
                    topicOperatorContainer: { securityContext: RESTRICTED_CONTAINER_SECURITY },
                    userOperatorContainer: { securityContext: RESTRICTED_CONTAINER_SECURITY },
                },
            },
        },
    };
}

/**
 * The Kafka pods' template. A pod security context given here replaces the one Strimzi would
 * make, so it keeps Strimzi's `fsGroup: 0`: the Kafka image's user writes its volumes through
 * group 0.
 */
const KAFKA_POD_TEMPLATE = {
    pod: { securityContext: { fsGroup: 0 } },
    kafkaContainer: { securityContext: RESTRICTED_CONTAINER_SECURITY },
};

export interface NodePoolArgs {
    readonly name: string;
    readonly namespace: string;
    readonly cluster: string;
    readonly replicas: number;
    readonly roles: ReadonlyArray<"broker" | "controller">;
    readonly storage:
        { ephemeral: true } | { ephemeral: false; size: string; storageClass: string };
    readonly cpu: string;
    readonly memory: string;
}

/** A node pool. No readiness gate: see {@link READINESS_GATES}. */
export function nodePoolCr(args: NodePoolArgs): StrimziManifest {
    const volume: Record<string, unknown> = args.storage.ephemeral
        ? { id: 0, type: "ephemeral", kraftMetadata: "shared" }
        : {
              id: 0,
              type: "persistent-claim",
              size: args.storage.size,
              deleteClaim: false,
              kraftMetadata: "shared",
              ...(args.storage.storageClass ? { class: args.storage.storageClass } : {}),
          };
    return {
        apiVersion: STRIMZI_API,
        kind: "KafkaNodePool",
        metadata: {
            name: args.name,
            namespace: args.namespace,
            labels: { [CLUSTER_LABEL]: args.cluster },
        },
        spec: {
            replicas: args.replicas,
            roles: [...args.roles],
            storage: { type: "jbod", volumes: [volume] },
            resources: {
                requests: { cpu: args.cpu, memory: args.memory },
                limits: { memory: args.memory },
            },
        },
    };
}

/** What a dedicated controller gets instead of the brokers' CPU, memory and volume size. */
export interface ControllerSizing {
    readonly cpu: string;
    readonly memory: string;
    /** Volume size; ignored with ephemeral storage. */
    readonly storageSize: string;
}

/**
 * Node pools for a sizing: dual-role nodes when there are no dedicated controllers. Dedicated
 * controllers hold only the metadata log, so they take `controller` sizing when given.
 */
export function nodePools(
    base: Omit<NodePoolArgs, "name" | "replicas" | "roles">,
    sizing: ClusterSizing,
    controller?: ControllerSizing,
): StrimziManifest[] {
    if (sizing.controllers === 0) {
        return [
            nodePoolCr({
                ...base,
                name: "dual-role",
                replicas: sizing.brokers,
                roles: ["controller", "broker"],
            }),
        ];
    }
    const controllerBase = controller
        ? {
              ...base,
              cpu: controller.cpu,
              memory: controller.memory,
              storage: base.storage.ephemeral
                  ? base.storage
                  : { ...base.storage, size: controller.storageSize },
          }
        : base;
    return [
        nodePoolCr({
            ...controllerBase,
            name: "controllers",
            replicas: sizing.controllers,
            roles: ["controller"],
        }),
        nodePoolCr({ ...base, name: "brokers", replicas: sizing.brokers, roles: ["broker"] }),
    ];
}

/** Kubernetes object name for a topic: Kafka allows '_' and capitals, Kubernetes names do not. */
export function topicResourceName(topic: string): string {
    const base = topic
        .toLowerCase()
        .replace(/[^a-z0-9.-]/g, "-")
        .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
    if (base === topic) return base;
    // Mapping lost information: add a short stable hash so two topics never collide.
    let h = 0;
    for (const ch of topic) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return `${base.slice(0, 240)}-${h.toString(16).padStart(8, "0")}`;
}

/** Topic config from a stream's topic spec; min.insync.replicas follows the replication factor. */
export function topicConfig(
    topic: TopicSpec,
    replicas: number,
): Record<string, string | number | boolean> {
    return {
        "retention.ms": topic.retentionMs,
        "cleanup.policy": topic.cleanupPolicy,
        "min.insync.replicas": Math.max(1, Math.min(replicas - 1, 2)),
        ...topic.config,
    };
}

export function kafkaTopicCr(args: {
    namespace: string;
    cluster: string;
    topic: TopicSpec;
    defaultReplicas: number;
    waitForReady: boolean;
}): StrimziManifest {
    const replicas = args.topic.replicas ?? args.defaultReplicas;
    return {
        apiVersion: STRIMZI_API,
        kind: "KafkaTopic",
        metadata: {
            name: topicResourceName(args.topic.name),
            namespace: args.namespace,
            labels: { [CLUSTER_LABEL]: args.cluster },
            ...readinessAnnotations("KafkaTopic", args.waitForReady),
        },
        spec: {
            topicName: args.topic.name,
            partitions: args.topic.partitions,
            replicas,
            config: topicConfig(args.topic, replicas),
        },
    };
}

export interface KafkaUserArgs {
    readonly name: string;
    readonly namespace: string;
    readonly cluster: string;
    /** Secret (and key) holding the SCRAM password; Strimzi reads it, never the CR. */
    readonly passwordSecret: { name: string; key: string };
    readonly readTopics: readonly string[];
    /** Consumer groups the user may join (exact names). */
    readonly readGroups: readonly string[];
    /** Topics the user may write (a producer). @default none */
    readonly writeTopics?: readonly string[];
    readonly waitForReady: boolean;
}

/**
 * A SCRAM user allowed only to read the given topics and join the given consumer groups, and to
 * write the given topics. An idempotent producer (the default of Kafka clients) needs nothing
 * more than Write on its topics since Kafka 2.8; transactional ids are not granted.
 */
export function kafkaUserCr(args: KafkaUserArgs): StrimziManifest {
    const acls = [
        ...(args.writeTopics ?? []).map((t) => ({
            type: "allow",
            resource: { type: "topic", name: t, patternType: "literal" },
            operations: ["Write", "Describe"],
        })),
        ...args.readTopics.map((t) => ({
            type: "allow",
            resource: { type: "topic", name: t, patternType: "literal" },
            operations: ["Read", "Describe", "DescribeConfigs"],
        })),
        ...args.readGroups.map((g) => ({
            type: "allow",
            resource: { type: "group", name: g, patternType: "literal" },
            operations: ["Read", "Describe"],
        })),
    ];
    return {
        apiVersion: STRIMZI_API,
        kind: "KafkaUser",
        metadata: {
            name: args.name,
            namespace: args.namespace,
            labels: { [CLUSTER_LABEL]: args.cluster },
            ...readinessAnnotations("KafkaUser", args.waitForReady),
        },
        spec: {
            authentication: {
                type: "scram-sha-512",
                password: {
                    valueFrom: {
                        secretKeyRef: {
                            name: args.passwordSecret.name,
                            key: args.passwordSecret.key,
                        },
                    },
                },
            },
            authorization: { type: "simple", acls },
        },
    };
}

/**
 * The producers the stream files declare (`topic.producers`), each with the topics it may write,
 * in a stable order. A producer may not share the consumer's user name: one KafkaUser cannot be
 * both, and the consumer must not write.
 */
export function producerTopics(
    streams: readonly Pick<StreamSpec, "name" | "topic">[],
    consumerUser: string,
): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const s of streams) {
        for (const p of s.topic.producers ?? []) {
            if (p === consumerUser)
                throw new Error(
                    `stream '${s.name}': topic.producers lists '${p}', the user ClickHouse consumes as; give the producer a name of its own`,
                );
            const topics = out.get(p) ?? [];
            if (!topics.includes(s.topic.name)) topics.push(s.topic.name);
            out.set(p, topics);
        }
    }
    return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
