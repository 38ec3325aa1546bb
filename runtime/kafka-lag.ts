/**
 * Consumer lag per partition, from the broker: the group's committed offset next to the
 * partition's log-end offset (the high watermark). What ClickHouse's `system.kafka_consumers`
 * cannot tell: it knows where its consumers are, not how far the topic has gone.
 */
import type { PartitionLag } from "../components/ingestion/health";
import { Admin } from "./kafka-client";

export type { PartitionLag };

/** A broker connection for lag readings; close it when done. */
export interface LagReader {
    lag(group: string, topic: string): Promise<PartitionLag[]>;
    close(): Promise<void>;
}

export function lagReader(bootstrap: string): LagReader {
    const admin = new Admin({
        clientId: "kcs-lag",
        bootstrapBrokers: bootstrap.split(","),
        retries: 2,
    });
    // A topic's partitions, asked once per reader: the latency benchmark polls lag every 50 ms.
    const known = new Map<string, Promise<number[]>>();
    const partitionsOf = (topic: string): Promise<number[]> => {
        let found = known.get(topic);
        if (!found) {
            found = admin.metadata({ topics: [topic] }).then((meta) => {
                const count = meta.topics.get(topic)?.partitionsCount ?? 0;
                if (count === 0)
                    throw new Error(`topic ${topic} has no partitions (or does not exist)`);
                return [...Array(count).keys()];
            });
            // A failed lookup (the topic not there yet) is asked again next time.
            found.catch(() => known.delete(topic));
            known.set(topic, found);
        }
        return found;
    };
    return {
        async lag(group, topic) {
            const partitions = await partitionsOf(topic);
            const [ends, groups] = await Promise.all([
                admin.listOffsets({
                    topics: [
                        {
                            name: topic,
                            partitions: partitions.map((p) => ({
                                partitionIndex: p,
                                timestamp: -1n,
                            })),
                        },
                    ],
                }),
                admin.listConsumerGroupOffsets({
                    groups: [
                        { groupId: group, topics: [{ name: topic, partitionIndexes: partitions }] },
                    ],
                }),
            ]);
            const end = new Map(
                (ends.find((t) => t.name === topic)?.partitions ?? []).map((p) => [
                    p.partitionIndex,
                    Number(p.offset),
                ]),
            );
            const committed = new Map(
                (groups[0]?.topics.find((t) => t.name === topic)?.partitions ?? [])
                    .filter((p) => p.committedOffset >= 0n)
                    .map((p) => [p.partitionIndex, Number(p.committedOffset)]),
            );
            return partitions.map((partition) => {
                const logEnd = end.get(partition) ?? 0;
                const c = committed.get(partition);
                return { topic, partition, committed: c, logEnd, lag: logEnd - (c ?? 0) };
            });
        },
        close: () => admin.close(),
    };
}
