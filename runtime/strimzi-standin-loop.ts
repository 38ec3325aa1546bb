/**
 * When the stand-in reconciles: one pass over every CR, triggered by watches on the four kinds and
 * by a periodic resync, never two passes at once, none while paused or stopped.
 */
import { type KubeConfig, Watch } from "@kubernetes/client-node";
import type { ClusterOperator } from "./strimzi-standin-kafka";
import { KINDS, Kind, PLURALS, StandInContext, errorText } from "./strimzi-standin-common";
import type { TopicOperator } from "./strimzi-standin-topic";
import type { UserOperator } from "./strimzi-standin-user";
import { CustomResource, STRIMZI_GROUP, STRIMZI_VERSION } from "./strimzi-status";

const RESYNC_MS = 5_000;

export interface Operators {
    readonly cluster: ClusterOperator;
    readonly topics: TopicOperator;
    readonly users: UserOperator;
}

/**
 * One reconciliation pass. Topics and users are handled only while their cluster's Kafka CR is
 * Ready, because the entity operator that handles them exists only then.
 */
async function reconcileAll(ctx: StandInContext, ops: Operators): Promise<void> {
    const [kafkas, pools, topics, users] = await Promise.all(KINDS.map((k) => ctx.kube.list(k)));
    const guard = (what: string, fn: () => Promise<unknown>) => guarded(ctx, what, fn);
    for (const kafka of kafkas!)
        await guard(`Kafka ${kafka.metadata.name}`, () => ops.cluster.reconcile(kafka, pools!));
    const ready = new Set(
        kafkas!
            .filter(
                (k) =>
                    !k.metadata.deletionTimestamp &&
                    k.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
            )
            .map((k) => `${k.metadata.namespace}/${k.metadata.name}`),
    );
    const served = (cr: CustomResource) =>
        ready.has(`${cr.metadata.namespace}/${cr.metadata.labels?.["strimzi.io/cluster"] ?? ""}`);
    for (const topic of topics!.filter(served)) {
        await guard(`KafkaTopic ${topic.metadata.name}`, () => ops.topics.reconcile(topic));
    }
    for (const user of users!.filter((u) => served(u) && !u.metadata.deletionTimestamp)) {
        await guard(`KafkaUser ${user.metadata.name}`, () => ops.users.reconcile(user));
    }
    const present = new Set(users!.map((u) => `${u.metadata.namespace}/${u.metadata.name}`));
    for (const [key, name] of ops.users.knownUsers()) {
        if (!present.has(key))
            await guard(`deleted KafkaUser ${key}`, () => ops.users.forget(key, name));
    }
}

async function guarded(ctx: StandInContext, what: string, fn: () => Promise<unknown>) {
    try {
        await fn();
    } catch (e) {
        // A conflict means someone changed the object meanwhile: the next pass sees the new one.
        if ((e as { code?: number }).code !== 409) ctx.log(`${what}: ${errorText(e)}`);
    }
}

/** Runs passes on demand: a trigger during a pass runs one more after it. */
export class ReconcileLoop {
    private paused = false;
    private stopped = false;
    private running: Promise<void> | undefined;
    private again = false;
    private readonly aborts: AbortController[] = [];
    private resync: NodeJS.Timeout | undefined;

    constructor(
        private readonly ctx: StandInContext,
        private readonly ops: Operators,
    ) {}

    /** No pass starts until resume(); a pass under way finishes. */
    pause(): void {
        this.paused = true;
    }

    resume(): void {
        this.paused = false;
        void this.trigger();
    }

    trigger(): Promise<void> {
        if (this.stopped || this.paused) return Promise.resolve();
        if (this.running) {
            this.again = true;
            return this.running;
        }
        this.running = (async () => {
            do {
                this.again = false;
                await reconcileAll(this.ctx, this.ops).catch((e: unknown) => {
                    // 429 "storage is (re)initializing": a fresh API server; the next pass retries.
                    if ((e as { code?: number }).code === 429) return;
                    this.ctx.log(`reconciliation pass failed: ${errorText(e).split("\n")[0]}`);
                });
            } while (this.again && !this.stopped && !this.paused);
            this.running = undefined;
        })();
        return this.running;
    }

    /** Watches trigger a pass on every change; a periodic resync catches anything a watch missed. */
    watch(kc: KubeConfig, namespace: string | undefined): void {
        const watch = new Watch(kc);
        const start = (kind: Kind) => {
            if (this.stopped) return;
            const base = `/apis/${STRIMZI_GROUP}/${STRIMZI_VERSION}`;
            const url = namespace
                ? `${base}/namespaces/${namespace}/${PLURALS[kind]}`
                : `${base}/${PLURALS[kind]}`;
            watch
                .watch(
                    url,
                    { allowWatchBookmarks: false },
                    () => void this.trigger(),
                    () => setTimeout(() => start(kind), 1000).unref(),
                )
                .then((a) => this.aborts.push(a))
                .catch(() => setTimeout(() => start(kind), 1000).unref());
        };
        KINDS.forEach(start);
        this.resync = setInterval(() => void this.trigger(), RESYNC_MS);
        this.resync.unref();
    }

    /** Ends the watches and the resync, and waits for a pass under way. */
    async stop(): Promise<void> {
        this.stopped = true;
        clearInterval(this.resync);
        for (const a of this.aborts) a.abort();
        await this.running;
    }
}
