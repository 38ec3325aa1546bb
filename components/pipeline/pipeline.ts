import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
    ClickHouse,
    ClickHouseArgs,
    type EgressTarget,
    type PeerSpec,
    bootstrapEgress,
    clickhouseLabels,
    peer,
    strimziBrokerPeer,
} from "../clickhouse";
import { StreamIngestion, type DestructiveChange } from "../ingestion";
import { ClickHouseJobs, backfillJobs, jobPodLabels, type JobsSpec } from "../jobs";
import { listeners, tlsServerName } from "../clickhouse/tls";
import type { LoadedQuery } from "../../schemas/query-model";
import {
    ExternalKafkaArgs,
    ExternalKafkaTopics,
    KafkaCluster,
    KafkaClusterArgs,
    KafkaEndpoint,
    LISTENERS,
    StrimziOperator,
    StrimziOperatorArgs,
} from "../kafka";
import type { LoadedStream } from "../../schemas/model";
import { ConnectionArgs, ingestionConnection } from "./connection";

/** Kafka run by Strimzi in the pipeline's namespace. */
export interface StrimziKafka {
    readonly mode: "strimzi";
    /** Install the Strimzi operator; omit where one already watches the namespace. */
    readonly operator?: Omit<StrimziOperatorArgs, "namespace">;
    readonly cluster: Omit<
        KafkaClusterArgs,
        "namespace" | "streams" | "clickhouseDatabase" | "protectData" | "listenerPeers"
    >;
    /**
     * Pods allowed to reach the listeners besides ClickHouse (`networkPolicyPeers`).
     * @default [] (ClickHouse only)
     */
    readonly producers?: readonly PeerSpec[];
}

/** An existing Kafka cluster: the pipeline creates the topics there. */
export interface ExternalKafka {
    readonly mode: "external";
    readonly cluster: Omit<ExternalKafkaArgs, "namespace" | "streams">;
    /**
     * The brokers' networks ClickHouse may reach on the bootstrap ports (NetworkPolicy egress).
     * @default the bootstrap's IPs, or any address when it names hosts
     */
    readonly brokerCidrs?: readonly string[];
}

export interface PipelineClickHouse extends Omit<
    ClickHouseArgs,
    "namespace" | "kafka" | "protectData" | "kafkaEgress" | "database"
> {
    /** Name of the StatefulSet and its Services; prefixes its other objects. */
    readonly name: string;
}

export interface PipelineIngestion extends Omit<ConnectionArgs, "namespace"> {
    /** The broker list written into the Kafka engine tables. @default the Kafka endpoint's */
    readonly kafkaBrokers?: pulumi.Input<string>;
    /** Changes that delete or rewrite rows allowed: all (`true`) or these kinds. @default false */
    readonly allowDestructiveChanges?: boolean | DestructiveChange[];
    /** Drop target tables (and their rows) when a stream is removed. @default false */
    readonly dropTargetOnDelete?: boolean;
    /** Take over stream objects that carry no ownership marker. @default false */
    readonly adoptUnmarked?: boolean;
}

export interface PipelineArgs {
    /** Namespace of every Kubernetes object. */
    readonly namespace: string;
    /** Create the namespace (false when it is managed elsewhere). @default true */
    readonly createNamespace?: boolean;
    /** Pulumi `protect` on what holds data (namespace, Kafka CRs, StatefulSet). @default false */
    readonly protectData?: boolean;
    /** The streams (`loadStreams()`): one topic and one set of ingestion tables each. */
    readonly streams: readonly LoadedStream[];
    /** ClickHouse database of the ingestion tables (also part of the consumer group names). */
    readonly database: string;
    readonly kafka: StrimziKafka | ExternalKafka;
    readonly clickhouse: PipelineClickHouse;
    /** The streams' ClickHouse DDL; omit to apply none. */
    readonly ingestion?: PipelineIngestion;
    /** Declared queries (`loadQueries()`): a CronJob or one-off Job each. @default none */
    readonly queries?: readonly LoadedQuery[];
    /** Image of the queries' Jobs (curl with /bin/sh). @default CURL_IMAGE */
    readonly queryImage?: string;
}

/**
 * Pod Security admission on the namespace the pipeline creates: pods that fail "restricted" are
 * refused, and warned about and audited against the same level, whatever the cluster's version.
 */
export const POD_SECURITY_LABELS: Readonly<Record<string, string>> = Object.fromEntries(
    ["enforce", "audit", "warn"].flatMap((mode) => [
        [`pod-security.kubernetes.io/${mode}`, "restricted"],
        [`pod-security.kubernetes.io/${mode}-version`, "latest"],
    ]),
);

/**
 * The children were registered at the stack's root before this component existed: the alias
 * keeps them, and through them their own children, in stacks deployed then (no delete and
 * create of the Kafka cluster, the StatefulSet or its volumes).
 */
const ROOT_ALIAS: pulumi.Alias = { parent: pulumi.rootStackResource };

/**
 * The whole Kafka -> ClickHouse pipeline: the namespace, Kafka (Strimzi-managed or external) with
 * a topic per stream, ClickHouse reading from it, and each stream's ingestion DDL. The children
 * keep the names the stack program gave them (`namespace`, `strimzi`, `kafka`, the ClickHouse
 * name, `ingestion-<stream>`), so one program holds one pipeline.
 */
export class KafkaClickHousePipeline extends pulumi.ComponentResource {
    public readonly namespace: pulumi.Output<string>;
    public readonly kafka: KafkaEndpoint;
    public readonly clickhouse: ClickHouse;
    /** The ingestion resource of each stream, by stream name. */
    public readonly ingestion: Readonly<Record<string, StreamIngestion>>;
    public readonly kafkaBootstrapServers: pulumi.Output<string>;
    /** Secret with the password ClickHouse reads Kafka with; none without SASL. */
    public readonly kafkaCredentialsSecret: pulumi.Output<string | undefined>;
    public readonly clickhouseEndpoint: pulumi.Output<string>;
    public readonly clickhouseCredentialsSecret: pulumi.Output<string>;
    public readonly streams: string[];
    /** Per stream: the SQL the next update runs (what `pulumi preview --diff` shows). */
    public readonly ingestionPlans: pulumi.Output<Record<string, string[]>>;
    /** The declared queries' CronJobs and Jobs; none without queries. */
    public readonly jobs?: ClickHouseJobs;

    constructor(name: string, args: PipelineArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:pipeline:Pipeline", name, {}, opts);
        this.namespace = this.createNamespace(args);
        this.kafka = this.createKafka(args);
        this.clickhouse = this.createClickHouse(args);
        this.ingestion = args.ingestion ? this.createIngestion(args, args.ingestion) : {};
        if (needsJobs(args)) this.jobs = this.createJobs(args);

        this.kafkaBootstrapServers = this.kafka.bootstrapServers;
        this.kafkaCredentialsSecret = pulumi.output(this.kafka.passwordSecret?.name);
        this.clickhouseEndpoint = this.clickhouse.httpEndpoint;
        this.clickhouseCredentialsSecret = this.clickhouse.credentialsSecretName;
        this.streams = args.streams.map((s) => s.spec.name);
        this.ingestionPlans = pulumi
            .all(
                Object.entries(this.ingestion).map(([stream, r]) =>
                    r.plannedStatements.apply((p) => [stream, p ?? []] as const),
                ),
            )
            .apply((entries) => Object.fromEntries(entries));
        this.registerOutputs({
            namespace: this.namespace,
            kafkaBootstrapServers: this.kafkaBootstrapServers,
            clickhouseEndpoint: this.clickhouseEndpoint,
            ingestionPlans: this.ingestionPlans,
        });
    }

    /** Options of a direct child: parented here, aliased to where the stack program put it. */
    private child(
        extra: pulumi.CustomResourceOptions = {},
        aliases: pulumi.Alias[] = [],
    ): pulumi.CustomResourceOptions {
        return { ...extra, parent: this, aliases: [ROOT_ALIAS, ...aliases] };
    }

    private createNamespace(args: PipelineArgs): pulumi.Output<string> {
        if (!(args.createNamespace ?? true)) return pulumi.output(args.namespace);
        return new k8s.core.v1.Namespace(
            "namespace",
            { metadata: { name: args.namespace, labels: POD_SECURITY_LABELS } },
            // Deleting the namespace deletes every PVC in it.
            this.child({ protect: args.protectData ?? false }),
        ).metadata.name;
    }

    private createKafka(args: PipelineArgs): KafkaEndpoint {
        const namespace = this.namespace;
        const streams = args.streams.map((s) => s.spec);
        const kafka = args.kafka;
        if (kafka.mode === "external") {
            const external = { ...kafka.cluster, namespace, streams };
            return new ExternalKafkaTopics("kafka", external, this.child()).endpoint;
        }
        const operator = kafka.operator
            ? new StrimziOperator("strimzi", { ...kafka.operator, namespace }, this.child())
            : undefined;
        const cluster: KafkaClusterArgs = {
            ...kafka.cluster,
            // ClickHouse's pods (same namespace) and the declared producers.
            listenerPeers: [
                peer({ podLabels: clickhouseLabels(args.clickhouse.name) }),
                ...(kafka.producers ?? []).map(peer),
            ],
            namespace,
            streams,
            clickhouseDatabase: args.database,
            protectData: args.protectData ?? false,
        };
        const after = operator ? { dependsOn: operator.ready } : {};
        return new KafkaCluster("kafka", cluster, this.child(after)).endpoint;
    }

    private createClickHouse(args: PipelineArgs): ClickHouse {
        const { name, ...clickhouse } = args.clickhouse;
        const kafka = {
            client: this.kafka.client,
            ...(this.kafka.passwordSecret ? { passwordSecret: this.kafka.passwordSecret } : {}),
            ...(this.kafka.caSecret ? { caSecret: this.kafka.caSecret } : {}),
        };
        const jobClients =
            (args.queries ?? []).length > 0 ? [{ podLabels: jobPodLabels(name) }] : [];
        return new ClickHouse(
            name,
            {
                ...clickhouse,
                namespace: this.namespace,
                database: args.database,
                protectData: args.protectData ?? false,
                kafka,
                kafkaEgress: [...kafkaEgress(args), ...queryEgress(args.queries ?? [])],
                clients: [...(clickhouse.clients ?? []), ...jobClients],
            },
            this.child(),
        );
    }

    private createJobs(args: PipelineArgs): ClickHouseJobs {
        const name = args.clickhouse.name;
        const tls = this.clickhouse.tls !== undefined;
        const host = tlsServerName(name, args.namespace);
        const spec: JobsSpec = {
            clickhouseName: name,
            namespace: this.namespace,
            url: `${tls ? "https" : "http"}://${host}:${listeners(tls).http.port}`,
            database: args.database,
            credentialsSecret: this.clickhouse.credentialsSecretName,
            ...(args.queryImage ? { image: args.queryImage } : {}),
            ...(this.clickhouse.tls ? { caSecret: this.clickhouse.tls.secretName } : {}),
        };
        const streams = args.ingestion ? args.streams.map((s) => s.spec) : [];
        return new ClickHouseJobs(
            `${name}-jobs`,
            { ...spec, queries: args.queries ?? [], extraJobs: backfillJobs(spec, streams) },
            // The tables the queries read (and the backfill snapshots) exist before a Job runs.
            this.child({
                dependsOn: [this.clickhouse.statefulSet, ...Object.values(this.ingestion)],
            }),
        );
    }

    private createIngestion(
        args: PipelineArgs,
        ingestion: PipelineIngestion,
    ): Record<string, StreamIngestion> {
        const connection = ingestionConnection(
            { ...ingestion, namespace: args.namespace },
            this.clickhouse,
        );
        const kafkaBrokers = ingestion.kafkaBrokers ?? this.kafka.bootstrapServers;
        const created: Record<string, StreamIngestion> = {};
        for (const stream of args.streams) {
            const name = stream.spec.name;
            const renamedFrom = stream.spec.renamedFrom;
            // A declared rename updates the same resource (tables renamed, group kept).
            const renamed =
                renamedFrom === undefined
                    ? []
                    : [
                          { name: `ingestion-${renamedFrom}` },
                          { ...ROOT_ALIAS, name: `ingestion-${renamedFrom}` },
                      ];
            created[name] = new StreamIngestion(
                `ingestion-${name}`,
                {
                    stream,
                    database: args.database,
                    kafkaBrokers,
                    connection,
                    allowDestructiveChanges: ingestion.allowDestructiveChanges ?? false,
                    dropTargetOnDelete: ingestion.dropTargetOnDelete ?? false,
                    adoptUnmarked: ingestion.adoptUnmarked ?? false,
                },
                // The topic first (the consumer must find it), and ClickHouse up to take the DDL.
                this.child(
                    { dependsOn: [this.kafka.topics[name]!, this.clickhouse.statefulSet] },
                    renamed,
                ),
            );
        }
        return created;
    }
}

/**
 * Where ClickHouse's Kafka engine connects (its NetworkPolicy egress besides DNS): the Strimzi
 * brokers' listener ports, or the external bootstrap. A broker list given to the ingestion tables
 * instead (`ingestion.kafkaBrokers`) is allowed too, unless it names the Strimzi cluster's own
 * Services or pods (`<cluster>-kafka-...`), which the broker rule covers.
 */
export function kafkaEgress(args: PipelineArgs): EgressTarget[] {
    const kafka = args.kafka;
    const override = args.ingestion?.kafkaBrokers;
    const brokers = typeof override === "string" ? override : "";
    if (kafka.mode === "external") {
        const cidrs = kafka.brokerCidrs ?? [];
        return [kafka.cluster.bootstrapServers, brokers]
            .filter((b) => b !== "")
            .flatMap((b) => bootstrapEgress(b, cidrs));
    }
    const cluster = kafka.cluster.clusterName;
    const ports = [
        LISTENERS.tls.port,
        ...(kafka.cluster.plainListener ? [LISTENERS.plain.port] : []),
    ];
    const elsewhere = brokers
        .split(",")
        .map((b) => b.trim())
        .filter((b) => b !== "" && !b.replace(/^\[/, "").startsWith(`${cluster}-kafka-`));
    return [
        { to: [strimziBrokerPeer(cluster)], ports },
        ...(elsewhere.length > 0 ? bootstrapEgress(elsewhere.join(",")) : []),
    ];
}

/**
 * Where ClickHouse itself connects for the declared imports and exports (`s3()` and `url()` run in
 * the ClickHouse pods): each object or URL's host and port.
 */
export function queryEgress(queries: readonly LoadedQuery[]): EgressTarget[] {
    const urls = queries.flatMap(({ spec: q }) => {
        const where = q.export?.to ?? q.import?.from;
        if (!where) return [];
        if ("s3" in where) return [where.s3.url];
        return "url" in where ? [where.url] : [];
    });
    return urls.flatMap((u) => {
        const url = new URL(u);
        const port = url.port || (url.protocol === "https:" ? "443" : "80");
        return bootstrapEgress(`${url.hostname}:${port}`);
    });
}

/** Declared queries, or a rollup to backfill (with the ingestion DDL applied). */
function needsJobs(args: PipelineArgs): boolean {
    const backfill =
        args.ingestion !== undefined &&
        args.streams.some((s) => (s.spec.rollups ?? []).some((r) => r.backfill));
    return (args.queries ?? []).length > 0 || backfill;
}
