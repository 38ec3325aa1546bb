import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import {
    KafkaClickHousePipeline,
    type IngestionConnection,
    type PipelineArgs,
} from "../components/pipeline";
import type { ClickHouseTls } from "../components/clickhouse";
import type { LoadedStream } from "../schemas/model";
import type { LoadedQuery } from "../schemas/query-model";
import { destructiveAllowance, type StackConfig, type StackSecrets } from "./config";
import { externalCidrs } from "./config-network";
import { DestroyImpact, destroyImpact } from "./destroy";

/** What the stack exports: addresses and the names of Secrets, never their values. */
export interface PipelineOutputs {
    readonly namespace: pulumi.Output<string>;
    readonly kafkaBootstrapServers: pulumi.Output<string>;
    readonly kafkaCredentialsSecret: pulumi.Output<string | undefined>;
    readonly clickhouseEndpoint: pulumi.Output<string>;
    readonly clickhouseCredentialsSecret: pulumi.Output<string>;
    readonly streams: string[];
    /** What `pulumi destroy` deletes and keeps with this config (shown by every preview). */
    readonly onDestroy: DestroyImpact;
    /** Per stream: the SQL the next update runs (what `pulumi preview --diff` shows). */
    readonly ingestionPlans: pulumi.Output<Record<string, string[]>>;
    /** The declared queries: CronJob or Job name of each. */
    readonly queryJobs: Record<string, string>;
}

/** The project root: relative paths in config are resolved against it. */
const PROJECT_ROOT = path.resolve(__dirname, "..");

/**
 * Registers the pipeline component for one stack from validated config and loaded streams. All
 * validation happened before this is called, so a bad key or stream file never leaves a
 * half-registered program behind.
 */
export function createPipeline(
    config: StackConfig,
    secrets: StackSecrets,
    streams: readonly LoadedStream[],
    queries: readonly LoadedQuery[] = [],
): PipelineOutputs {
    const pipeline = new KafkaClickHousePipeline(
        "pipeline",
        pipelineArgs(config, secrets, streams, queries),
    );
    return {
        namespace: pipeline.namespace,
        kafkaBootstrapServers: pipeline.kafkaBootstrapServers,
        kafkaCredentialsSecret: pipeline.kafkaCredentialsSecret,
        clickhouseEndpoint: pipeline.clickhouseEndpoint,
        clickhouseCredentialsSecret: pipeline.clickhouseCredentialsSecret,
        streams: pipeline.streams,
        onDestroy: destroyImpact(config),
        ingestionPlans: pipeline.ingestionPlans,
        queryJobs: Object.fromEntries(
            queries.map((q) => [
                q.spec.name,
                `${q.spec.schedule === "once" ? "job" : "cronjob"}/${config.clickhouseName}-${q.spec.name}`,
            ]),
        ),
    };
}

/** The component's arguments for a stack's config: a mapping, no resources. */
export function pipelineArgs(
    config: StackConfig,
    secrets: StackSecrets,
    streams: readonly LoadedStream[],
    queries: readonly LoadedQuery[] = [],
): PipelineArgs {
    return {
        queries,
        queryImage: config.queryImage,
        namespace: config.namespace,
        createNamespace: config.createNamespace,
        protectData: config.protectData,
        streams,
        database: config.clickhouseDatabase,
        kafka: kafkaArgs(config, secrets),
        clickhouse: {
            name: config.clickhouseName,
            image: config.clickhouseImage,
            replicas: config.clickhouseReplicas,
            storage: config.clickhouseEphemeralStorage
                ? { ephemeral: true }
                : {
                      ephemeral: false,
                      size: config.clickhouseStorageSize,
                      storageClass: config.clickhouseStorageClass,
                  },
            volumeRetention: config.clickhouseVolumeRetention,
            cpu: config.clickhouseCpu,
            memory: config.clickhouseMemory,
            logLevel: config.clickhouseLogLevel,
            systemLogTtlDays: config.clickhouseSystemLogTtlDays,
            clients: config.clickhouseClients,
            ...clickhouseTls(config),
            ...(secrets.clickhouseAdminPassword
                ? { adminPassword: secrets.clickhouseAdminPassword }
                : {}),
        },
        ...(config.ingestionEnabled ? { ingestion: ingestionArgs(config) } : {}),
    };
}

function kafkaArgs(config: StackConfig, secrets: StackSecrets): PipelineArgs["kafka"] {
    if (config.kafkaMode === "external") {
        return {
            mode: "external",
            cluster: {
                bootstrapServers: config.kafkaExternalBootstrap,
                saslMechanism: config.kafkaExternalSaslMechanism,
                username: config.kafkaExternalUsername,
                ...(secrets.kafkaExternalPassword
                    ? { password: secrets.kafkaExternalPassword }
                    : {}),
                tls: config.kafkaExternalTls,
                defaultReplicas: config.kafkaExternalReplicas,
            },
            brokerCidrs: externalCidrs(config.kafkaExternalCidrs),
        };
    }
    return {
        mode: "strimzi",
        producers: config.kafkaProducers,
        ...(config.strimziInstall
            ? {
                  operator: {
                      chartVersion: config.strimziChartVersion,
                      crdSource: config.strimziCrdSource,
                      crdPath: config.strimziCrdPath,
                  },
              }
            : {}),
        cluster: {
            clusterName: config.kafkaClusterName,
            version: config.kafkaVersion,
            metadataVersion: config.kafkaMetadataVersion,
            brokers: config.kafkaBrokers,
            controllers: config.kafkaControllers,
            storage: config.kafkaEphemeralStorage
                ? { ephemeral: true }
                : {
                      ephemeral: false,
                      size: config.kafkaStorageSize,
                      storageClass: config.kafkaStorageClass,
                  },
            brokerCpu: config.kafkaBrokerCpu,
            brokerMemory: config.kafkaBrokerMemory,
            controllerSizing: {
                cpu: config.kafkaControllerCpu,
                memory: config.kafkaControllerMemory,
                storageSize: config.kafkaControllerStorageSize,
            },
            plainListener: config.kafkaPlainListener,
            metrics: config.kafkaMetrics,
            waitForReady: config.kafkaWaitForReady,
        },
    };
}

/** TLS on ClickHouse's listeners, from the clickhouseTls* keys. */
function clickhouseTls(config: StackConfig): { tls?: ClickHouseTls } {
    const secretName = config.clickhouseTlsSecret;
    switch (config.clickhouseTls) {
        case "secret":
            return { tls: { source: "secret", secretName } };
        case "cert-manager":
            return {
                tls: {
                    source: "cert-manager",
                    ...(secretName !== "" ? { secretName } : {}),
                    issuer: {
                        name: config.clickhouseTlsIssuer,
                        kind: config.clickhouseTlsIssuerKind,
                    },
                },
            };
        default:
            return {};
    }
}

function ingestionArgs(config: StackConfig): NonNullable<PipelineArgs["ingestion"]> {
    const kubeconfigFile = providerKubeconfigFile();
    return {
        connection: ingestionConnection(config),
        // The Secret the ClickHouse pods read is the one source of the admin password; a stack
        // may name another user and its Secret instead (a read-only identity for previews).
        ...(config.ingestionUser !== ""
            ? {
                  user: {
                      name: config.ingestionUser,
                      passwordSecret: config.ingestionPasswordSecret,
                  },
              }
            : {}),
        // The Secret is read through the kubeconfig the stack's Kubernetes provider is given, so
        // a stack that names one (`kubernetes:kubeconfig`, as the sandbox does) needs no KUBECONFIG.
        ...(kubeconfigFile ? { kubeconfigFile } : {}),
        ...(config.ingestionKafkaBrokers !== ""
            ? { kafkaBrokers: config.ingestionKafkaBrokers }
            : {}),
        allowDestructiveChanges: destructiveAllowance(config),
        dropTargetOnDelete: config.dropTargetOnDelete,
        adoptUnmarked: config.ingestionAdoptExisting,
    };
}

function ingestionConnection(config: StackConfig): IngestionConnection {
    switch (config.ingestionConnection) {
        case "embedded":
            return {
                kind: "embedded",
                path: path.resolve(PROJECT_ROOT, config.ingestionEmbeddedPath),
            };
        case "url":
            return {
                kind: "url",
                url: config.ingestionUrl,
                allowInsecureHttp: config.ingestionAllowInsecureHttp,
            };
        default:
            return { kind: "port-forward" };
    }
}

/** The `kubernetes:kubeconfig` stack config when it names a file (it may also hold the text). */
function providerKubeconfigFile(): string | undefined {
    const value = new pulumi.Config("kubernetes").get("kubeconfig") ?? "";
    return value === "" || value.includes("\n") ? undefined : path.resolve(PROJECT_ROOT, value);
}
