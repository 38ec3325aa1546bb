/**
 * A stand-in for the Strimzi 1.2 operators against a local API server and a real broker. The real
 * operator cannot run here (its artifacts are not on Maven Central), so this one watches Kafka,
 * KafkaNodePool, KafkaTopic and KafkaUser CRs, writes exactly the status Strimzi 1.2 writes
 * (strimzi-status.ts), and does the operators' work where it can on the real broker:
 * - KafkaTopic: creates the topic, adds partitions, alters its config, deletes it; holds the
 *   `strimzi.io/topic-operator` finalizer while the topic exists, as the Topic Operator does;
 * - KafkaUser: SCRAM-SHA-512 credentials and ACLs through Kafka's admin API, and the user's
 *   Secret (`password`, `sasl.jaas.config`);
 * - Kafka: the clusterId of the real broker, a cluster CA Secret, listener addresses in status.
 * It runs no broker pods: the cluster it reports on is the one local broker.
 *
 * Topics and users are handled only while their cluster's Kafka CR is Ready, because the entity
 * operator that handles them exists only then. So teardown must delete them before the Kafka CR,
 * exactly as with the real operator.
 *
 *   const strimzi = await startStrimziStandIn({ kubeconfig, kafkaBootstrap: broker.bootstrap });
 *   ...
 *   await strimzi.stop();
 */
import { KubeConfig } from "@kubernetes/client-node";
import { Admin } from "./kafka-client";
import { StandInContext, StrimziApi } from "./strimzi-standin-common";
import { ClusterOperator } from "./strimzi-standin-kafka";
import { ReconcileLoop } from "./strimzi-standin-loop";
import { TopicOperator } from "./strimzi-standin-topic";
import { UserOperator } from "./strimzi-standin-user";

export {
    alignAcls,
    deleteScramCredential,
    upsertScramCredential,
} from "./strimzi-standin-kafka-auth";

/** The broker settings the stand-in needs: the standard authorizer, ANONYMOUS (PLAINTEXT) as super user. */
export const STANDIN_BROKER_PROPERTIES: Readonly<Record<string, string>> = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    // The PLAINTEXT and controller listeners carry the harness's tools, the stand-in and the
    // broker's own traffic; SASL clients (the KafkaUsers) are subject to their ACLs.
    "super.users": "User:ANONYMOUS",
};

export interface StrimziStandInOptions {
    /** Path of a kubeconfig for the API server. */
    readonly kubeconfig: string;
    /** host:port of the broker's PLAINTEXT listener (a super user there). */
    readonly kafkaBootstrap: string;
    /** Namespace to watch; every namespace when unset (`watchNamespaces: []`). */
    readonly namespace?: string;
    /** STRIMZI_USE_FINALIZERS of the Topic Operator. @default true */
    readonly useFinalizers?: boolean;
    /** Progress lines. @default stderr with a [strimzi] prefix */
    readonly log?: (line: string) => void;
}

export interface StrimziStandIn {
    /** Stops reconciling (statuses stay as they are) until resume(); to test what waits on them. */
    pause(): void;
    resume(): void;
    /** Runs one reconciliation pass now and resolves when it is done. */
    reconcileNow(): Promise<void>;
    stop(): Promise<void>;
}

export async function startStrimziStandIn(opts: StrimziStandInOptions): Promise<StrimziStandIn> {
    const log = opts.log ?? ((line: string) => process.stderr.write(`[strimzi] ${line}\n`));
    const kc = new KubeConfig();
    kc.loadFromFile(opts.kubeconfig);
    const ctx: StandInContext = {
        kube: new StrimziApi(kc, opts.namespace),
        admin: new Admin({
            clientId: "strimzi-stand-in",
            bootstrapBrokers: opts.kafkaBootstrap.split(","),
            retries: 3,
        }),
        kafkaBootstrap: opts.kafkaBootstrap,
        log,
    };
    const cluster = new ClusterOperator(ctx);
    const loop = new ReconcileLoop(ctx, {
        cluster,
        topics: new TopicOperator(ctx, opts.useFinalizers ?? true),
        users: new UserOperator(ctx),
    });
    loop.watch(kc, opts.namespace);
    log(
        `watching Kafka, KafkaNodePool, KafkaTopic, KafkaUser in ${opts.namespace ?? "all namespaces"}; broker ${opts.kafkaBootstrap}`,
    );
    await loop.trigger();

    return {
        pause() {
            loop.pause();
            log("paused");
        },
        resume() {
            log("resumed");
            loop.resume();
        },
        reconcileNow: () => loop.trigger(),
        async stop() {
            await loop.stop();
            await ctx.admin.close().catch(() => undefined);
            cluster.close();
        },
    };
}
