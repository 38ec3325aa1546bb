import * as kafka from "@pulumi/kafka";
import * as pulumi from "@pulumi/pulumi";
import type { StreamSpec } from "../../schemas/model";
import { topicConfig } from "./manifests";

export interface ExternalKafkaArgs {
    /** host:port[,host:port] */
    readonly bootstrapServers: string;
    readonly saslMechanism: "SCRAM-SHA-512" | "SCRAM-SHA-256" | "PLAIN" | "none";
    readonly username?: string;
    readonly password?: pulumi.Input<string>;
    /** @default true */
    readonly tls?: boolean;
    /** Replication factor for topics that do not set one. @default 3 */
    readonly defaultReplicas?: number;
    readonly streams: readonly StreamSpec[];
}

/** The Kafka provider spells the mechanisms its own way. */
const PROVIDER_SASL = {
    "SCRAM-SHA-512": "scram-sha512",
    "SCRAM-SHA-256": "scram-sha256",
    PLAIN: "plain",
    none: undefined,
} as const;

/** Topics on an existing Kafka cluster (no Strimzi), managed with the Kafka provider. */
export class ExternalKafkaTopics extends pulumi.ComponentResource {
    public readonly bootstrapServers: pulumi.Output<string>;
    public readonly topics: Record<string, kafka.Topic>;

    constructor(name: string, args: ExternalKafkaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:kafka:ExternalKafkaTopics", name, {}, opts);
        const sasl = args.saslMechanism !== "none";
        const provider = new kafka.Provider(
            `${name}-provider`,
            {
                bootstrapServers: args.bootstrapServers.split(",").map((s) => s.trim()),
                tlsEnabled: args.tls ?? true,
                ...(sasl
                    ? {
                          saslMechanism: PROVIDER_SASL[args.saslMechanism],
                          saslUsername: args.username,
                          saslPassword: args.password,
                      }
                    : {}),
            },
            { parent: this },
        );
        this.topics = {};
        for (const stream of args.streams) {
            const replicas = stream.topic.replicas ?? args.defaultReplicas ?? 3;
            const config = topicConfig(stream.topic, replicas);
            this.topics[stream.name] = new kafka.Topic(
                `${name}-topic-${stream.name}`,
                {
                    name: stream.topic.name,
                    partitions: stream.topic.partitions,
                    replicationFactor: replicas,
                    config: Object.fromEntries(
                        Object.entries(config).map(([k, v]) => [k, String(v)]),
                    ),
                },
                { parent: this, provider },
            );
        }
        this.bootstrapServers = pulumi.output(args.bootstrapServers);
        this.registerOutputs({ bootstrapServers: this.bootstrapServers });
    }
}
