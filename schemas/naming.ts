import type { StreamSpec } from "./model";

/**
 * Names derived from a stream, in one place: the Kafka side (consumer group, ACLs) and the
 * ClickHouse side (tables, views) must agree on them.
 */
export function streamTables(stream: string): {
    target: string;
    kafka: string;
    view: string;
    deadLetter: string;
    deadLetterView: string;
} {
    return {
        target: stream,
        kafka: `${stream}_kafka`,
        view: `${stream}_mv`,
        deadLetter: `${stream}_dlq`,
        deadLetterView: `${stream}_dlq_mv`,
    };
}

/** The consumer group ClickHouse joins for a stream: `clickhouse-<name>` unless the file sets one. */
export function consumerGroup(spec: Pick<StreamSpec, "name" | "consumer">): string {
    return spec.consumer.group ?? `clickhouse-${spec.name}`;
}
