/**
 * Ingestion health: what the Kafka engine is doing for each stream, read after the fact from
 * `system.kafka_consumers` and the row counts of the target and dead-letter tables.
 *
 * Kafka problems (wrong topic, wrong credentials, unreachable brokers) never fail the DDL that
 * creates a Kafka table: they only show up as consumer exceptions. This turns them into a report
 * per stream so the stack and the sandbox can show them instead of staying silent.
 *
 * Cost: two queries, whatever the number of streams; with a lag source (runtime/kafka-lag.ts),
 * also the broker's committed and log-end offsets of each stream's group and topic, per partition.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { queryRows } from "./introspect";
import { streamObjectNames } from "../../schemas/naming";

/** One consumer of a stream's Kafka table (`kafka_num_consumers` of them per table). */
export interface ConsumerHealth {
    readonly consumerId: string;
    /** Partitions currently assigned to this consumer. */
    readonly assignments: readonly {
        readonly topic: string;
        readonly partition: number;
        /** Next offset to read; negative when librdkafka has no position yet (-1001). */
        readonly currentOffset: number;
    }[];
    /** Most recent exception, without the stack trace. */
    readonly lastException?: string;
    readonly exceptionTime?: Date;
    /** The exceptions the engine still keeps for this consumer (the last few), newest first. */
    readonly exceptions: readonly { readonly time: Date; readonly text: string }[];
    readonly messagesRead: number;
    readonly lastPollTime?: Date;
    readonly lastCommitTime?: Date;
    /** The engine is using this consumer right now (it is idle between polls otherwise). */
    readonly isCurrentlyUsed: boolean;
}

/** A partition's consumer lag, read from the broker (see runtime/kafka-lag.ts). */
export interface PartitionLag {
    readonly topic: string;
    readonly partition: number;
    /** The group's committed offset; undefined when it has committed none for the partition. */
    readonly committed: number | undefined;
    /** The offset the next message produced to the partition will get. */
    readonly logEnd: number;
    /** Messages not yet committed: logEnd - committed (logEnd when nothing is committed). */
    readonly lag: number;
}

/** Reads a stream's lag from its broker (its consumer group on its topic). */
export type LagSource = (stream: string) => Promise<readonly PartitionLag[]>;

export interface StreamHealth {
    readonly stream: string;
    /** Partitions assigned over all consumers of the stream's Kafka table. */
    readonly assignedPartitions: number;
    /** The most recent exception of any consumer of the stream, without the stack trace. */
    readonly lastException?: string;
    readonly exceptionTime?: Date;
    /**
     * The distinct exceptions the engine still keeps for the stream's consumers, newest first.
     * A failure often ends in a generic one ("1/1 brokers are down") after the cause
     * ("Authentication failed"); both are here.
     */
    readonly recentExceptions: readonly string[];
    /**
     * Rows in the target table (for ReplacingMergeTree, after the merges so far). 0 when the
     * table does not exist.
     */
    readonly rowsIngested: number;
    /** Rows in the dead-letter table; 0 when the stream has none. */
    readonly rowsRejected: number;
    /** Empty when the Kafka table does not exist (or has not started its consumers yet). */
    readonly consumers: readonly ConsumerHealth[];
    /** Per partition, when a lag source was given and answered. */
    readonly partitionLag?: readonly PartitionLag[];
    /** Total lag over the partitions, when a lag source was given and answered. */
    readonly lag?: number;
    /** Why the lag source could not answer (the broker unreachable, the topic missing). */
    readonly lagError?: string;
}

interface ConsumerRow {
    table: string;
    consumer_id: string;
    topics: string[];
    partitions: number[];
    offsets: (string | number)[];
    exception_times: (string | number)[];
    exception_texts: string[];
    last_poll: string | number;
    last_commit: string | number;
    messages_read: string | number;
    is_currently_used: number | boolean;
}

interface TableRow {
    name: string;
    total_rows: string | number | null;
}

/**
 * Reports, for each stream named (in the same order), its consumers' assignments and exceptions
 * and the row counts of its target (`<stream>`) and dead-letter (`<stream>_dlq`) tables in
 * `database`. Streams whose tables do not exist are reported with zeros and no consumers. With
 * `lagSource`, each stream also gets its consumer lag per partition (or why it could not be read).
 */
export async function readIngestionHealth(
    client: ClickHouseClient,
    database: string,
    streams: readonly string[],
    lagSource?: LagSource,
): Promise<StreamHealth[]> {
    const health = await readEngineHealth(client, database, streams);
    if (!lagSource) return health;
    return Promise.all(
        health.map(async (h) => {
            try {
                const partitionLag = await lagSource(h.stream);
                const lag = partitionLag.reduce((sum, p) => sum + p.lag, 0);
                return { ...h, partitionLag, lag };
            } catch (e) {
                return { ...h, lagError: e instanceof Error ? e.message : String(e) };
            }
        }),
    );
}

async function readEngineHealth(
    client: ClickHouseClient,
    database: string,
    streams: readonly string[],
): Promise<StreamHealth[]> {
    if (streams.length === 0) return [];
    const names = streams.map((s) => streamObjectNames(s));
    const kafkaTables = names.map((n) => n.kafka);
    const countedTables = names.flatMap((n) => [n.target, n.dlq]);

    const [consumerRows, tableRows] = await Promise.all([
        queryRows<ConsumerRow>(
            client,
            `SELECT
                table,
                consumer_id,
                assignments.topic AS topics,
                assignments.partition_id AS partitions,
                assignments.current_offset AS offsets,
                arrayMap(t -> toUnixTimestamp(t), exceptions.time) AS exception_times,
                exceptions.text AS exception_texts,
                toUnixTimestamp(last_poll_time) AS last_poll,
                toUnixTimestamp(last_commit_time) AS last_commit,
                num_messages_read AS messages_read,
                is_currently_used
            FROM system.kafka_consumers
            WHERE database = {database:String} AND table IN {tables:Array(String)}
            ORDER BY table, consumer_id`,
            { database, tables: kafkaTables },
        ),
        queryRows<TableRow>(
            client,
            `SELECT name, total_rows
            FROM system.tables
            WHERE database = {database:String} AND name IN {tables:Array(String)}`,
            { database, tables: countedTables },
        ),
    ]);

    const totals = new Map(tableRows.map((r) => [r.name, Number(r.total_rows ?? 0)]));
    return streams.map((stream, i): StreamHealth => {
        const n = names[i]!;
        const consumers = consumerRows.filter((r) => r.table === n.kafka).map(toConsumerHealth);
        const exceptions = consumers
            .flatMap((c) => c.exceptions)
            .sort((a, b) => b.time.getTime() - a.time.getTime());
        const latest = exceptions[0];
        return {
            stream,
            assignedPartitions: consumers.reduce((sum, c) => sum + c.assignments.length, 0),
            ...(latest ? { lastException: latest.text, exceptionTime: latest.time } : {}),
            recentExceptions: [...new Set(exceptions.map((e) => e.text))],
            rowsIngested: totals.get(n.target) ?? 0,
            rowsRejected: totals.get(n.dlq) ?? 0,
            consumers,
        };
    });
}

function toConsumerHealth(r: ConsumerRow): ConsumerHealth {
    // The engine appends exceptions oldest first; times have a resolution of one second, so the
    // position breaks ties.
    const exceptions = r.exception_texts
        .map((text, i) => ({
            time: new Date(Number(r.exception_times[i]) * 1000),
            text: withoutStackTrace(text),
            i,
        }))
        .sort((a, b) => b.time.getTime() - a.time.getTime() || b.i - a.i)
        .map(({ time, text }) => ({ time, text }));
    const newest = exceptions[0];
    const lastPoll = Number(r.last_poll);
    const lastCommit = Number(r.last_commit);
    return {
        consumerId: r.consumer_id,
        assignments: r.topics.map((topic, i) => ({
            topic,
            partition: Number(r.partitions[i]),
            currentOffset: Number(r.offsets[i]),
        })),
        ...(newest ? { lastException: newest.text, exceptionTime: newest.time } : {}),
        exceptions,
        messagesRead: Number(r.messages_read),
        ...(lastPoll > 0 ? { lastPollTime: new Date(lastPoll * 1000) } : {}),
        ...(lastCommit > 0 ? { lastCommitTime: new Date(lastCommit * 1000) } : {}),
        isCurrentlyUsed: Boolean(Number(r.is_currently_used)),
    };
}

/**
 * ClickHouse appends a stack trace to exception texts (`Stack trace (when copying...)` and/or
 * numbered frames `0. ? @ 0x...`); a health report wants the message.
 */
export function withoutStackTrace(text: string): string {
    let cut = text.length;
    const marker = text.indexOf("Stack trace (when copying");
    if (marker >= 0) cut = marker;
    const frames = /\n\s*0\. /.exec(text);
    if (frames && frames.index < cut) cut = frames.index;
    return text
        .slice(0, cut)
        .replace(/[\s,]+$/, "")
        .trim();
}
