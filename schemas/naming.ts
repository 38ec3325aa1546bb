import type { StreamSpec } from "./model";

/**
 * Names derived from a stream, in one place: the Kafka side (consumer group, ACLs), the loader
 * (collision checks) and the ClickHouse side (tables, views, ownership markers) must agree.
 */

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
