/**
 * Another team's program: it imports the pipeline component and instantiates it with arguments
 * of its own, no stack config of the project's. test/e2e/component-program.test.ts runs it on
 * the real engine.
 *
 * `layout: root` registers the same building blocks at the stack's root instead, as the project's
 * stack program did before the component existed; switching a deployed stack to `component`
 * must then change no object (the component's aliases), which the test checks with a preview.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ClickHouse, clickhouseLabels, peer } from "../../../components/clickhouse";
import type { LogLevel } from "../../../components/clickhouse/render";
import { StreamIngestion } from "../../../components/ingestion";
import { KafkaCluster } from "../../../components/kafka";
import {
    KafkaClickHousePipeline,
    ingestionConnection,
    type PipelineArgs,
} from "../../../components/pipeline";
import { kafkaEgress } from "../../../components/pipeline/pipeline";
import { loadStreams } from "../../../schemas/loader";
import { VERSION_DEFAULTS } from "../../../schemas/naming";

const config = new pulumi.Config();
const namespace = config.require("namespace");
const streams = loadStreams(config.require("streamsDir"));
const kafkaCluster = {
    clusterName: "events",
    brokers: 1,
    storage: { ephemeral: true },
    brokerCpu: "100m",
    brokerMemory: "512Mi",
    // No operator runs in the test: the Kafka CRs are created, not waited for.
    waitForReady: false,
} as const;
const args: PipelineArgs = {
    namespace,
    streams,
    database: "consumer_db",
    kafka: { mode: "strimzi", cluster: kafkaCluster },
    clickhouse: {
        name: "clickhouse",
        image: VERSION_DEFAULTS.clickhouseImage,
        storage: { ephemeral: true },
        cpu: "100m",
        memory: "512Mi",
        logLevel: config.get<LogLevel>("clickhouseLogLevel") ?? "information",
    },
    ingestion: { connection: { kind: "embedded", path: config.require("embeddedPath") } },
};

/** The building blocks at the root, wired as infra/pipeline.ts wired them before the component. */
function rootLayout(): Record<string, pulumi.Output<unknown>> {
    const ns = new k8s.core.v1.Namespace("namespace", { metadata: { name: namespace } }).metadata
        .name;
    const kafka = new KafkaCluster("kafka", {
        ...kafkaCluster,
        namespace: ns,
        streams: streams.map((s) => s.spec),
        clickhouseDatabase: args.database,
        // The network access the component grants (NetworkPolicies came with it).
        listenerPeers: [peer({ podLabels: clickhouseLabels(args.clickhouse.name) })],
    });
    const endpoint = kafka.endpoint;
    const { name, ...chArgs } = args.clickhouse;
    const clickhouse = new ClickHouse(name, {
        ...chArgs,
        namespace: ns,
        database: args.database,
        kafkaEgress: kafkaEgress(args),
        kafka: {
            client: endpoint.client,
            ...(endpoint.passwordSecret ? { passwordSecret: endpoint.passwordSecret } : {}),
            ...(endpoint.caSecret ? { caSecret: endpoint.caSecret } : {}),
        },
    });
    const connection = ingestionConnection({ ...args.ingestion!, namespace }, clickhouse);
    for (const stream of streams) {
        new StreamIngestion(
            `ingestion-${stream.spec.name}`,
            {
                stream,
                database: args.database,
                kafkaBrokers: endpoint.bootstrapServers,
                connection,
            },
            { dependsOn: [endpoint.topics[stream.spec.name]!, clickhouse.statefulSet] },
        );
    }
    return { clickhouseEndpoint: clickhouse.httpEndpoint };
}

function componentLayout(): Record<string, pulumi.Output<unknown>> {
    const pipeline = new KafkaClickHousePipeline("pipeline", args);
    return {
        clickhouseEndpoint: pipeline.clickhouseEndpoint,
        ingestionPlans: pipeline.ingestionPlans,
    };
}

export const outputs = config.get("layout") === "root" ? rootLayout() : componentLayout();
