import type * as pulumi from "@pulumi/pulumi";

/** librdkafka `security.protocol`. */
export type SecurityProtocol = "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL";
export type SaslMechanism = "SCRAM-SHA-512" | "SCRAM-SHA-256" | "PLAIN";

/** How a client talks to the brokers; the password and the CA are in Secrets (see KafkaEndpoint). */
export interface KafkaClientSettings {
    readonly securityProtocol: SecurityProtocol;
    /** Set exactly when the protocol is SASL_*. */
    readonly saslMechanism?: SaslMechanism;
    readonly saslUsername?: string;
}

/** One key of a Kubernetes Secret. */
export interface SecretKeyRef {
    readonly name: pulumi.Input<string>;
    readonly key: string;
    /**
     * The value, when the stack writes the Secret itself (a secret Output): consumers that read
     * it at start roll when it changes. Absent for Secrets others write (Strimzi's cluster CA).
     */
    readonly value?: pulumi.Input<string>;
}

/** The key of the user name in the Kafka credentials Secrets the stack writes. */
export const KAFKA_USERNAME_KEY = "username";

/**
 * What a Kafka consumer needs, whichever way the cluster is run (Strimzi-managed or external):
 * both `KafkaCluster` and `ExternalKafkaTopics` expose one of these as `endpoint`.
 */
export interface KafkaEndpoint {
    /** host:port[,host:port] */
    readonly bootstrapServers: pulumi.Output<string>;
    /** The topic resource of each stream, by stream name: consumers depend on it. */
    readonly topics: Readonly<Record<string, pulumi.Resource>>;
    readonly client: KafkaClientSettings;
    /** The SASL password; absent without SASL. */
    readonly passwordSecret?: SecretKeyRef;
    /** The CA certificate to trust; absent when the system's trust store does. */
    readonly caSecret?: SecretKeyRef;
}

/** The security protocol for a SASL and a TLS choice. */
export function securityProtocol(sasl: boolean, tls: boolean): SecurityProtocol {
    if (sasl) return tls ? "SASL_SSL" : "SASL_PLAINTEXT";
    return tls ? "SSL" : "PLAINTEXT";
}
