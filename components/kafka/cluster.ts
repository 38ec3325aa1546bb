import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { StreamSpec } from "../../schemas/model";
import { SECRET_KEYS, VERSION_DEFAULTS, consumerGroupsToAuthorize } from "../../schemas/naming";
import {
    JMX_EXPORTER_RULES,
    LISTENERS,
    kafkaCr,
    kafkaTopicCr,
    kafkaUserCr,
    nodePools,
    replicationFor,
    topicResourceName,
} from "./manifests";

export interface KafkaClusterArgs {
    readonly namespace: pulumi.Input<string>;
    /** Name of the Kafka CR; also prefixes the Strimzi-made Services and Secrets. */
    readonly clusterName: string;
    /** Kafka version. @default VERSION_DEFAULTS.kafka (schemas/naming.ts) */
    readonly version?: string;
    readonly brokers: number;
    /** Dedicated controllers; 0 runs dual-role nodes. @default 0 */
    readonly controllers?: number;
    readonly storage:
        { ephemeral: true } | { ephemeral: false; size: string; storageClass: string };
    readonly brokerCpu: string;
    readonly brokerMemory: string;
    /** Add a plain (SCRAM, no TLS) internal listener. @default false */
    readonly plainListener?: boolean;
    /** Prometheus JMX exporter. @default false */
    readonly metrics?: boolean;
    /**
     * Gate on what the operator reports: Kafka Ready with listeners, topics Ready, the user Ready
     * with its Secret (see READINESS_GATES; node pools are never gated). @default true
     */
    readonly waitForReady?: boolean;
    /** One KafkaTopic per stream. */
    readonly streams: readonly StreamSpec[];
    /** ClickHouse database of the ingestion tables: part of the default consumer group names. */
    readonly clickhouseDatabase: string;
    /** Kafka user for ClickHouse. @default "clickhouse" */
    readonly consumerUser?: string;
    /**
     * Pulumi `protect` on what holds data: the Kafka CR, its node pools and the topics (the Topic
     * Operator deletes a topic with its KafkaTopic). @default false
     */
    readonly protectData?: boolean;
}

/**
 * A Strimzi-managed Kafka cluster in KRaft mode: the Kafka CR, its node pools, one KafkaTopic per
 * stream and a SCRAM KafkaUser for ClickHouse that may only read the stream topics and join
 * `clickhouse-*` consumer groups. The user's password is generated here and kept in a Secret;
 * Strimzi reads it from there (`valueFrom.secretKeyRef`).
 */
export class KafkaCluster extends pulumi.ComponentResource {
    /** TLS listener bootstrap address (host:port) inside the cluster. */
    public readonly bootstrapServers: pulumi.Output<string>;
    /** Plain listener bootstrap address, when enabled. */
    public readonly plainBootstrapServers: pulumi.Output<string | undefined>;
    /** Secret with the cluster CA certificate (`ca.crt`), made by Strimzi. */
    public readonly clusterCaSecretName: pulumi.Output<string>;
    /** Secret holding the ClickHouse Kafka user's password (key `password`). */
    public readonly consumerSecretName: pulumi.Output<string>;
    public readonly consumerUserName: pulumi.Output<string>;
    public readonly topics: Record<string, k8s.apiextensions.CustomResource>;

    constructor(name: string, args: KafkaClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:kafka:KafkaCluster", name, {}, opts);
        const parent = { parent: this };
        const data = { parent: this, protect: args.protectData ?? false };
        const waitForReady = args.waitForReady ?? true;
        const sizing = { brokers: args.brokers, controllers: args.controllers ?? 0 };
        const cluster = args.clusterName;
        const userName = args.consumerUser ?? "clickhouse";
        const ns = pulumi.output(args.namespace);

        let metricsConfigMap: { name: string; key: string } | undefined;
        const dependsOn: pulumi.Resource[] = [];
        if (args.metrics) {
            metricsConfigMap = { name: `${cluster}-kafka-metrics`, key: "metrics-config.yml" };
            dependsOn.push(
                new k8s.core.v1.ConfigMap(
                    `${name}-metrics`,
                    {
                        metadata: { name: metricsConfigMap.name, namespace: args.namespace },
                        data: { [metricsConfigMap.key]: JMX_EXPORTER_RULES },
                    },
                    parent,
                ),
            );
        }

        const pools = nodePools(
            {
                namespace: "",
                cluster,
                storage: args.storage,
                cpu: args.brokerCpu,
                memory: args.brokerMemory,
            },
            sizing,
        ).map((manifest) => {
            const meta = manifest.metadata as { name: string };
            return new k8s.apiextensions.CustomResource(
                `${name}-pool-${meta.name}`,
                withNamespace(manifest, args.namespace) as k8s.apiextensions.CustomResourceArgs,
                data,
            );
        });

        // The pools are created first so the operator finds them; they carry no readiness gate,
        // so the Kafka CR is never held back by them.
        const kafka = new k8s.apiextensions.CustomResource(
            `${name}-kafka`,
            withNamespace(
                kafkaCr({
                    name: cluster,
                    namespace: "",
                    version: args.version ?? VERSION_DEFAULTS.kafka,
                    brokers: args.brokers,
                    plainListener: args.plainListener ?? false,
                    metricsConfigMap,
                    waitForReady,
                }),
                args.namespace,
            ) as k8s.apiextensions.CustomResourceArgs,
            { ...data, dependsOn: [...dependsOn, ...pools] },
        );

        const { replicationFactor } = replicationFor(args.brokers);
        this.topics = {};
        for (const stream of args.streams) {
            this.topics[stream.name] = new k8s.apiextensions.CustomResource(
                `${name}-topic-${stream.name}`,
                withNamespace(
                    kafkaTopicCr({
                        namespace: "",
                        cluster,
                        topic: stream.topic,
                        defaultReplicas: replicationFactor,
                        waitForReady,
                    }),
                    args.namespace,
                ) as k8s.apiextensions.CustomResourceArgs,
                { ...data, dependsOn: [kafka] },
            );
        }

        const password = new random.RandomPassword(
            `${name}-${userName}-password`,
            { length: 32, special: false },
            parent,
        );
        const secretName = `${cluster}-${userName}-scram`;
        const secret = new k8s.core.v1.Secret(
            `${name}-${userName}-secret`,
            {
                metadata: {
                    name: secretName,
                    namespace: args.namespace,
                    labels: { "app.kubernetes.io/managed-by": "pulumi" },
                },
                type: "Opaque",
                stringData: { username: userName, password: password.result },
            },
            parent,
        );
        const user = new k8s.apiextensions.CustomResource(
            `${name}-user-${userName}`,
            withNamespace(
                kafkaUserCr({
                    name: userName,
                    namespace: "",
                    cluster,
                    passwordSecret: { name: secretName, key: SECRET_KEYS.kafkaPassword },
                    readTopics: args.streams.map((s) => s.topic.name),
                    readGroups: args.streams.flatMap((s) =>
                        consumerGroupsToAuthorize(s, args.clickhouseDatabase),
                    ),
                    waitForReady,
                }),
                args.namespace,
            ) as k8s.apiextensions.CustomResourceArgs,
            { parent: this, dependsOn: [kafka, secret] },
        );

        this.bootstrapServers = ns.apply(
            (n) => `${cluster}-kafka-bootstrap.${n}.svc:${LISTENERS.tls.port}`,
        );
        this.plainBootstrapServers = ns.apply((n) =>
            args.plainListener
                ? `${cluster}-kafka-bootstrap.${n}.svc:${LISTENERS.plain.port}`
                : undefined,
        );
        this.clusterCaSecretName = pulumi.output(`${cluster}-cluster-ca-cert`);
        this.consumerSecretName = pulumi.all([secret.metadata.name, user.id]).apply(([n]) => n);
        this.consumerUserName = pulumi.output(userName);
        this.registerOutputs({
            bootstrapServers: this.bootstrapServers,
            clusterCaSecretName: this.clusterCaSecretName,
            consumerSecretName: this.consumerSecretName,
        });
    }
}

/** The pure builders leave the namespace blank; the component fills in the (possibly Output) value. */
function withNamespace(
    manifest: Record<string, unknown>,
    namespace: pulumi.Input<string>,
): Record<string, unknown> {
    return { ...manifest, metadata: { ...(manifest.metadata as object), namespace } };
}

export { topicResourceName };
