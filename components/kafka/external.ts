import * as k8s from "@pulumi/kubernetes";
import * as kafka from "@pulumi/kafka";
import * as pulumi from "@pulumi/pulumi";
import type { StreamSpec } from "../../schemas/model";
import { SECRET_KEYS } from "../../schemas/naming";
import {
    KAFKA_USERNAME_KEY,
    securityProtocol,
    type KafkaEndpoint,
    type SaslMechanism,
    type SecretKeyRef,
} from "./endpoint";
import { producerTopics, topicConfig } from "./manifests";

export interface ExternalKafkaArgs {
    /** Namespace of the Secret that hands the SASL credentials to consumers. */
    readonly namespace: pulumi.Input<string>;
    /** host:port[,host:port] */
    readonly bootstrapServers: string;
    readonly saslMechanism: SaslMechanism | "none";
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

/**
 * Topics on an existing Kafka cluster (no Strimzi), managed with the Kafka provider, and the SASL
 * credentials in a Secret (`<name>-external-credentials`) for consumers in the cluster.
 */
export class ExternalKafkaTopics extends pulumi.ComponentResource {
    public readonly bootstrapServers: pulumi.Output<string>;
    public readonly topics: Record<string, kafka.Topic>;
    public readonly endpoint: KafkaEndpoint;
    /** Write and Describe for each declared producer (`topic.producers`) on exactly its topics. */
    public readonly producerAcls: kafka.Acl[];

    constructor(name: string, args: ExternalKafkaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:kafka:ExternalKafkaTopics", name, {}, opts);
        const sasl = args.saslMechanism !== "none";
        const tls = args.tls ?? true;
        const provider = new kafka.Provider(
            `${name}-provider`,
            {
                bootstrapServers: args.bootstrapServers.split(",").map((s) => s.trim()),
                tlsEnabled: tls,
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
        this.producerAcls = this.producers(name, args, provider);
        this.bootstrapServers = pulumi.output(args.bootstrapServers);
        const passwordSecret = this.credentials(name, args);
        this.endpoint = {
            bootstrapServers: this.bootstrapServers,
            topics: this.topics,
            client: {
                securityProtocol: securityProtocol(sasl, tls),
                ...(args.saslMechanism !== "none"
                    ? { saslMechanism: args.saslMechanism, saslUsername: args.username }
                    : {}),
            },
            ...(passwordSecret ? { passwordSecret } : {}),
        };
        this.registerOutputs({ bootstrapServers: this.bootstrapServers });
    }

    /**
     * ACLs for `User:<producer>` on the existing cluster; its credentials are the cluster's own
     * business (this stack cannot create users there). The consumer's own ACLs are not managed
     * in external mode.
     */
    private producers(
        name: string,
        args: ExternalKafkaArgs,
        provider: kafka.Provider,
    ): kafka.Acl[] {
        const acls: kafka.Acl[] = [];
        for (const [producer, topics] of producerTopics(args.streams, args.username ?? "")) {
            for (const topic of topics) {
                for (const operation of ["Write", "Describe"]) {
                    acls.push(
                        new kafka.Acl(
                            `${name}-acl-${producer}-${topic}-${operation.toLowerCase()}`,
                            {
                                aclPrincipal: `User:${producer}`,
                                aclHost: "*",
                                aclOperation: operation,
                                aclPermissionType: "Allow",
                                aclResourceType: "Topic",
                                aclResourceName: topic,
                                resourcePatternTypeFilter: "Literal",
                            },
                            { parent: this, provider },
                        ),
                    );
                }
            }
        }
        return acls;
    }

    /** The SASL user and password in a Secret, for consumers in the cluster; none without SASL. */
    private credentials(name: string, args: ExternalKafkaArgs): SecretKeyRef | undefined {
        if (args.saslMechanism === "none" || args.password === undefined) return undefined;
        const secretName = `${name}-external-credentials`;
        const secret = new k8s.core.v1.Secret(
            secretName,
            {
                metadata: { name: secretName, namespace: args.namespace },
                type: "Opaque",
                stringData: {
                    [KAFKA_USERNAME_KEY]: args.username ?? "",
                    [SECRET_KEYS.kafkaPassword]: args.password,
                },
            },
            // The stack program made this Secret itself, at its root, before this component
            // did: the alias keeps it (no delete and create) in stacks deployed then.
            { parent: this, aliases: [{ parent: pulumi.rootStackResource }] },
        );
        return {
            name: secret.metadata.name,
            key: SECRET_KEYS.kafkaPassword,
            value: pulumi.secret(args.password),
        };
    }
}
