import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { CONSUMER_KAFKA_USER, type StreamSpec } from "../../schemas/model";
import { SECRET_KEYS, VERSION_DEFAULTS, consumerGroupsToAuthorize } from "../../schemas/naming";
import { KAFKA_USERNAME_KEY, type KafkaEndpoint } from "./endpoint";
import {
    type ControllerSizing,
    type ListenerPeer,
    type StrimziManifest,
    LISTENERS,
    kafkaCr,
    kraftMetadataVersion,
    kafkaTopicCr,
    type KafkaUserArgs,
    kafkaUserCr,
    nodePools,
    producerTopics,
    replicationFor,
    topicResourceName,
} from "./manifests";
import { JMX_EXPORTER_RULES } from "./metrics";

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
    /** Dedicated controllers' CPU, memory and volume size. @default the brokers' */
    readonly controllerSizing?: ControllerSizing;
    /**
     * KRaft metadata version, pinned so a version bump never raises it unasked.
     * @default the one `version` starts with (KRAFT_METADATA_VERSIONS)
     */
    readonly metadataVersion?: string;
    /** Add a plain (SCRAM, no TLS) internal listener. @default false */
    readonly plainListener?: boolean;
    /**
     * Pods allowed to reach the listeners (`networkPolicyPeers` on each); Strimzi writes them into
     * the brokers' NetworkPolicy. @default [] (Strimzi opens the listeners to every pod)
     */
    readonly listenerPeers?: readonly ListenerPeer[];
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
    /** Secret with the cluster CA certificate (`ca.crt`), made by Strimzi. */
    public readonly clusterCaSecretName: pulumi.Output<string>;
    /** Secret holding the ClickHouse Kafka user's password (key `password`). */
    public readonly consumerSecretName: pulumi.Output<string>;
    public readonly topics: Record<string, k8s.apiextensions.CustomResource>;
    /**
     * Per producer the stream files declare (`topic.producers`): the Secret with its SCRAM
     * password (key `password`, plus `username`), once its KafkaUser exists.
     */
    public readonly producerSecretNames: Record<string, pulumi.Output<string>>;
    /** The cluster as the consumer user reaches it: the TLS listener, SCRAM-SHA-512. */
    public readonly endpoint: KafkaEndpoint;

    constructor(name: string, args: KafkaClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:kafka:KafkaCluster", name, {}, opts);
        const waitForReady = args.waitForReady ?? true;
        const userName = args.consumerUser ?? CONSUMER_KAFKA_USER;
        const kafka = this.kafka(name, args, waitForReady);
        this.topics = this.topicCrs(name, args, kafka, waitForReady);
        const user = this.scramUser(name, args, userName, kafka, waitForReady, {
            readTopics: args.streams.map((s) => s.topic.name),
            readGroups: args.streams.flatMap((s) =>
                consumerGroupsToAuthorize(s, args.clickhouseDatabase),
            ),
        });
        this.producerSecretNames = {};
        for (const [producer, topics] of producerTopics(args.streams, userName)) {
            const p = this.scramUser(name, args, producer, kafka, waitForReady, {
                readTopics: [],
                readGroups: [],
                writeTopics: topics,
            });
            this.producerSecretNames[producer] = pulumi
                .all([p.secret.metadata.name, p.user.id])
                .apply(([n]) => n);
        }

        const cluster = args.clusterName;
        this.bootstrapServers = pulumi
            .output(args.namespace)
            .apply((n) => `${cluster}-kafka-bootstrap.${n}.svc:${LISTENERS.tls.port}`);
        this.clusterCaSecretName = pulumi.output(`${cluster}-cluster-ca-cert`);
        // Handed out once the user exists: a consumer started earlier would be refused.
        this.consumerSecretName = pulumi
            .all([user.secret.metadata.name, user.user.id])
            .apply(([n]) => n);
        this.endpoint = {
            bootstrapServers: this.bootstrapServers,
            topics: this.topics,
            client: {
                securityProtocol: "SASL_SSL",
                saslMechanism: "SCRAM-SHA-512",
                saslUsername: userName,
            },
            passwordSecret: {
                name: this.consumerSecretName,
                key: SECRET_KEYS.kafkaPassword,
                value: user.password,
            },
            caSecret: { name: this.clusterCaSecretName, key: SECRET_KEYS.caCertificate },
        };
        this.registerOutputs({
            bootstrapServers: this.bootstrapServers,
            clusterCaSecretName: this.clusterCaSecretName,
            consumerSecretName: this.consumerSecretName,
            producerSecretNames: this.producerSecretNames,
        });
    }

    /** The Kafka CR, after its node pools (and the metrics ConfigMap) so the operator finds them. */
    private kafka(
        name: string,
        args: KafkaClusterArgs,
        waitForReady: boolean,
    ): k8s.apiextensions.CustomResource {
        const data = { parent: this, protect: args.protectData ?? false };
        const cluster = args.clusterName;
        let metricsConfigMap: { name: string; key: string } | undefined;
        const dependsOn: pulumi.Resource[] = [];
        if (args.metrics) {
            metricsConfigMap = { name: `${cluster}-kafka-metrics`, key: "metrics-config.yml" };
            const metadata = { name: metricsConfigMap.name, namespace: args.namespace };
            const rules = { [metricsConfigMap.key]: JMX_EXPORTER_RULES };
            dependsOn.push(
                new k8s.core.v1.ConfigMap(
                    `${name}-metrics`,
                    { metadata, data: rules },
                    { parent: this },
                ),
            );
        }
        const sizing = { brokers: args.brokers, controllers: args.controllers ?? 0 };
        const poolBase = {
            namespace: "",
            cluster,
            storage: args.storage,
            cpu: args.brokerCpu,
            memory: args.brokerMemory,
        };
        for (const manifest of nodePools(poolBase, sizing, args.controllerSizing)) {
            const pool = `${name}-pool-${manifest.metadata.name}`;
            dependsOn.push(
                new k8s.apiextensions.CustomResource(
                    pool,
                    withNamespace(manifest, args.namespace),
                    data,
                ),
            );
        }
        // The pools carry no readiness gate, so the Kafka CR is never held back by them.
        const version = args.version ?? VERSION_DEFAULTS.kafka;
        const metadataVersion = args.metadataVersion ?? kraftMetadataVersion(version);
        if (metadataVersion === undefined) {
            throw new pulumi.ResourceError(
                `no KRaft metadata version is known for Kafka ${version}; set metadataVersion (e.g. ${kraftMetadataVersion(VERSION_DEFAULTS.kafka)})`,
                this,
            );
        }
        const manifest = kafkaCr({
            name: cluster,
            namespace: "",
            version,
            metadataVersion,
            brokers: args.brokers,
            plainListener: args.plainListener ?? false,
            listenerPeers: args.listenerPeers ?? [],
            metricsConfigMap,
            waitForReady,
        });
        return new k8s.apiextensions.CustomResource(
            `${name}-kafka`,
            withNamespace(manifest, args.namespace),
            { ...data, dependsOn },
        );
    }

    /** One KafkaTopic per stream, by stream name. */
    private topicCrs(
        name: string,
        args: KafkaClusterArgs,
        kafka: pulumi.Resource,
        waitForReady: boolean,
    ): Record<string, k8s.apiextensions.CustomResource> {
        const { replicationFactor } = replicationFor(args.brokers);
        const opts = { parent: this, protect: args.protectData ?? false, dependsOn: [kafka] };
        const topics: Record<string, k8s.apiextensions.CustomResource> = {};
        for (const stream of args.streams) {
            const manifest = kafkaTopicCr({
                namespace: "",
                cluster: args.clusterName,
                topic: stream.topic,
                defaultReplicas: replicationFactor,
                waitForReady,
            });
            topics[stream.name] = new k8s.apiextensions.CustomResource(
                `${name}-topic-${stream.name}`,
                withNamespace(manifest, args.namespace),
                opts,
            );
        }
        return topics;
    }

    /** A SCRAM KafkaUser with exactly `access`, its generated password in a Secret Strimzi reads. */
    private scramUser(
        name: string,
        args: KafkaClusterArgs,
        userName: string,
        kafka: pulumi.Resource,
        waitForReady: boolean,
        access: Pick<KafkaUserArgs, "readTopics" | "readGroups" | "writeTopics">,
    ): {
        secret: k8s.core.v1.Secret;
        user: k8s.apiextensions.CustomResource;
        password: pulumi.Output<string>;
    } {
        const parent = { parent: this };
        const password = new random.RandomPassword(
            `${name}-${userName}-password`,
            { length: 32, special: false },
            parent,
        );
        const secretName = `${args.clusterName}-${userName}-scram`;
        const secret = new k8s.core.v1.Secret(
            `${name}-${userName}-secret`,
            {
                metadata: {
                    name: secretName,
                    namespace: args.namespace,
                    labels: { "app.kubernetes.io/managed-by": "pulumi" },
                },
                type: "Opaque",
                stringData: {
                    [KAFKA_USERNAME_KEY]: userName,
                    [SECRET_KEYS.kafkaPassword]: password.result,
                },
            },
            parent,
        );
        const manifest = kafkaUserCr({
            name: userName,
            namespace: "",
            cluster: args.clusterName,
            passwordSecret: { name: secretName, key: SECRET_KEYS.kafkaPassword },
            ...access,
            waitForReady,
        });
        const user = new k8s.apiextensions.CustomResource(
            `${name}-user-${userName}`,
            withNamespace(manifest, args.namespace),
            { parent: this, dependsOn: [kafka, secret] },
        );
        return { secret, user, password: password.result };
    }
}

/** The pure builders leave the namespace blank; the component fills in the (possibly Output) value. */
function withNamespace(
    manifest: StrimziManifest,
    namespace: pulumi.Input<string>,
): k8s.apiextensions.CustomResourceArgs {
    return { ...manifest, metadata: { ...manifest.metadata, namespace } };
}

export { topicResourceName };
