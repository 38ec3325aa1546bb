import type { StreamSpec } from "./model";

/**
 * Names and defaults in one place: names derived from a stream (the Kafka side's consumer group and
 * ACLs, the loader's collision checks and the ClickHouse side's tables, views and ownership markers
 * must agree), the keys of the Secrets the components hand each other, and the version defaults.
 */

/** Keys inside the Secrets the stack creates or reads. */
export const SECRET_KEYS = {
    /** ClickHouse admin user and password (the stack's own ClickHouse Secret). */
    adminUser: "admin-user",
    adminPassword: "admin-password",
    /** ClickHouse read-only user and password (the same Secret). */
    readonlyUser: "readonly-user",
    readonlyPassword: "readonly-password",
    /**
     * The SHA-256 (hex) of those passwords, the only form the ClickHouse pods receive; the
     * plaintext keys stay for clients (the DDL provider).
     */
    adminPasswordSha256: "admin-password-sha256",
    readonlyPasswordSha256: "readonly-password-sha256",
    /** A Kafka user's password (Strimzi's KafkaUser Secret, or the external mode's Secret). */
    kafkaPassword: "password",
    /** The JAAS line Strimzi's User Operator writes beside the password. */
    kafkaSaslJaasConfig: "sasl.jaas.config",
    /** A CA certificate (Strimzi's cluster CA Secret, a service account's CA). */
    caCertificate: "ca.crt",
} as const;

/** Version defaults: what the stack deploys when config does not say. */
export const VERSION_DEFAULTS = {
    /** Apache Kafka, as Strimzi 1.2 supports it (tools/kafka/pom.xml fetches the same for tests). */
    kafka: "4.3.1",
    /** The Strimzi operator (Helm chart and CRDs). */
    strimzi: "1.2.0",
    /** The ClickHouse server image (26.3 LTS). */
    clickhouseImage: "clickhouse/clickhouse-server:26.3.9",
    /** The declared queries' Jobs: curl's official image (curl 8.16.0 on Alpine). */
    queryImage: "curlimages/curl:8.16.0",
} as const;

/**
 * The read-only user's profile: \`readonly = 1\` (no writes, no setting changes) and this limit on
 * every query's run time; its queries cannot raise it.
 */
export const READONLY_MAX_EXECUTION_SECONDS = 60;

/** The roles of a stream's ClickHouse objects. */
export type StreamObjectRole = "target" | "kafka" | "mv" | "dlq" | "dlqMv" | "rebuild";
export const STREAM_OBJECT_ROLES: readonly StreamObjectRole[] = [
    "target",
    "kafka",
    "mv",
    "dlq",
    "dlqMv",
    "rebuild",
];
export type StreamObjectNames = Readonly<Record<StreamObjectRole, string>>;

/** The names a stream's objects get. Deployed tables rely on them: keep them stable. */
export function streamObjectNames(stream: string): StreamObjectNames {
    return {
        target: stream,
        kafka: `${stream}_kafka`,
        mv: `${stream}_mv`,
        dlq: `${stream}_dlq`,
        dlqMv: `${stream}_dlq_mv`,
        // Scratch table of a target rebuild (copy, then EXCHANGE).
        rebuild: `${stream}__rebuild`,
    };
}

/**
 * Consumer group of a stream created from now on: unique per database, so two stacks (or two
 * databases) reading one Kafka cluster never share a group and steal each other's partitions.
 */
export function defaultConsumerGroup(database: string, stream: string): string {
    return `clickhouse-${database}-${stream}`;
}

/**
 * The default of the first release (`clickhouse-<name>`). Streams deployed with it keep it (their
 * committed offsets live in it); the planner reads which one a deployed stream uses.
 */
export function legacyConsumerGroup(stream: string): string {
    return `clickhouse-${stream}`;
}

/**
 * Every group the ClickHouse Kafka user may join for a stream: the explicit one, or both defaults
 * (which one a stream uses depends on when it was first deployed).
 */
export function consumerGroupsToAuthorize(
    spec: Pick<StreamSpec, "name" | "consumer">,
    database: string,
): string[] {
    if (spec.consumer.group !== undefined) return [spec.consumer.group];
    return [defaultConsumerGroup(database, spec.name), legacyConsumerGroup(spec.name)];
}
