/**
 * The stand-in's Topic Operator: creates the topic of a KafkaTopic, adds partitions, aligns its
 * config, deletes it, and holds the `strimzi.io/topic-operator` finalizer while the topic exists.
 */
import type { Admin } from "./kafka-client";
import { StandInContext, errorText, now } from "./strimzi-standin-common";
import {
    CustomResource,
    TOPIC_FINALIZER,
    isManaged,
    topicFailedStatus,
    topicName,
    topicReadyStatus,
} from "./strimzi-status";

/** How Kafka and the client word UNKNOWN_TOPIC_OR_PARTITION. */
const UNKNOWN_TOPIC =
    /UNKNOWN_TOPIC_OR_PARTITION|does not exist|unknown topic|does not host this topic-partition/i;

interface TopicState {
    readonly id: string;
    readonly partitions: number;
    readonly replicas: number;
}

export class TopicOperator {
    constructor(
        private readonly ctx: StandInContext,
        /** STRIMZI_USE_FINALIZERS of the Topic Operator. */
        private readonly useFinalizers: boolean,
    ) {}

    async reconcile(topic: CustomResource): Promise<void> {
        if (topic.metadata.deletionTimestamp) return this.release(topic);
        await this.alignFinalizer(topic);
        if (!isManaged(topic)) return;
        const name = topicName(topic);
        const current = await this.describe(name);
        const fail = (reason: string, message: string) =>
            this.ctx.kube.writeStatus(
                "KafkaTopic",
                topic,
                topicFailedStatus(topic, reason, message, current?.id, now()),
            );
        if (topic.status?.topicName && topic.status.topicName !== name) {
            return fail("NotSupported", "Changing spec.topicName is not supported");
        }
        try {
            const refused = await this.apply(topic, name, current);
            if (refused !== undefined) return fail("NotSupported", refused);
        } catch (e) {
            return fail("KafkaError", errorText(e));
        }
        const after = await this.describe(name);
        await this.ctx.kube.writeStatus(
            "KafkaTopic",
            topic,
            topicReadyStatus(topic, after?.id, now()),
        );
    }

    /** A deleted KafkaTopic: its topic goes, then the finalizer. */
    private async release(topic: CustomResource): Promise<void> {
        if (!topic.metadata.finalizers?.includes(TOPIC_FINALIZER)) return;
        const name = topicName(topic);
        // Idempotent, as the Topic Operator's delete is: a topic already gone (deleted by an
        // earlier attempt whose answer was lost, or by hand) only releases the finalizer.
        if (isManaged(topic) && (await this.describe(name)) !== undefined) {
            await this.ctx.admin.deleteTopics({ topics: [name] }).catch((e: Error) => {
                if (!UNKNOWN_TOPIC.test(errorText(e))) throw e;
            });
            this.ctx.log(
                `deleted topic ${name} (KafkaTopic ${topic.metadata.namespace}/${topic.metadata.name})`,
            );
        }
        await this.ctx.kube.setFinalizers(
            "KafkaTopic",
            topic,
            (topic.metadata.finalizers ?? []).filter((f) => f !== TOPIC_FINALIZER),
        );
    }

    private async alignFinalizer(topic: CustomResource): Promise<void> {
        const finalizers = topic.metadata.finalizers ?? [];
        if (this.useFinalizers && !finalizers.includes(TOPIC_FINALIZER)) {
            await this.ctx.kube.setFinalizers("KafkaTopic", topic, [
                ...finalizers,
                TOPIC_FINALIZER,
            ]);
        } else if (!this.useFinalizers && finalizers.includes(TOPIC_FINALIZER)) {
            await this.ctx.kube.setFinalizers(
                "KafkaTopic",
                topic,
                finalizers.filter((f) => f !== TOPIC_FINALIZER),
            );
        }
    }

    /**
     * Makes the topic what the spec says; resolves to the message of a change the Topic Operator
     * refuses, or undefined when done.
     */
    private async apply(
        topic: CustomResource,
        name: string,
        current: TopicState | undefined,
    ): Promise<string | undefined> {
        const { admin, log } = this.ctx;
        const spec = topic.spec ?? {};
        const config = Object.fromEntries(
            Object.entries(spec.config ?? {}).map(([k, v]) => [k, String(v)]),
        );
        if (!current) {
            await admin.createTopics({
                topics: [name],
                partitions: spec.partitions ?? -1,
                replicas: spec.replicas ?? -1,
                configs: Object.entries(config).map(([k, v]) => ({ name: k, value: v })),
            });
            log(`created topic ${name} (${spec.partitions ?? "default"} partitions)`);
            return undefined;
        }
        if (spec.partitions !== undefined && spec.partitions < current.partitions) {
            return "Decreasing partitions not supported";
        }
        if (spec.replicas !== undefined && spec.replicas !== current.replicas) {
            return `Replication factor change not supported, but required for partitions ${JSON.stringify(
                Array.from({ length: current.partitions }, (_, i) => i),
            )}`;
        }
        if (spec.partitions !== undefined && spec.partitions > current.partitions) {
            await admin.createPartitions({ topics: [{ name, count: spec.partitions }] });
            log(`topic ${name}: ${current.partitions} -> ${spec.partitions} partitions`);
        }
        await alignTopicConfig(admin, name, config, log);
        return undefined;
    }

    private async describe(name: string): Promise<TopicState | undefined> {
        const meta = await this.ctx.admin
            .metadata({ topics: [name], forceUpdate: true })
            .catch((e: Error) => {
                if (UNKNOWN_TOPIC.test(errorText(e))) return undefined;
                throw e;
            });
        const t = meta?.topics.get(name);
        if (!t) return undefined;
        return {
            id: kafkaUuid(t.id),
            partitions: t.partitionsCount,
            replicas: Math.min(...t.partitions.map((p) => p.replicas.length)),
        };
    }
}

/** Kafka prints topic ids as base64url of the 16 bytes; the client gives them as a UUID string. */
function kafkaUuid(id: string): string {
    const hex = id.replace(/-/g, "");
    return /^[0-9a-f]{32}$/i.test(hex) ? Buffer.from(hex, "hex").toString("base64url") : id;
}

/** Sets the topic configs of the spec and removes topic-level overrides the spec no longer has. */
async function alignTopicConfig(
    admin: Admin,
    topic: string,
    desired: Record<string, string>,
    log: (line: string) => void,
): Promise<void> {
    const [described] = await admin.describeConfigs({
        resources: [{ resourceType: 2, resourceName: topic }],
    });
    const overrides = new Map(
        (described?.configs ?? [])
            .filter((c) => c.configSource === 1)
            .map((c) => [c.name, c.value ?? ""] as const),
    );
    const changes: Array<
        { name: string; configOperation: 0; value: string } | { name: string; configOperation: 1 }
    > = [];
    for (const [k, v] of Object.entries(desired)) {
        if (overrides.get(k) !== v) changes.push({ name: k, configOperation: 0, value: v });
    }
    for (const k of overrides.keys()) {
        if (!(k in desired)) changes.push({ name: k, configOperation: 1 });
    }
    if (changes.length === 0) return;
    await admin.incrementalAlterConfigs({
        resources: [{ resourceType: 2, resourceName: topic, configs: changes }],
    });
    log(`topic ${topic}: config ${changes.map((c) => c.name).join(", ")} updated`);
}
