import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ClickHouse } from "../components/clickhouse";
import { ConnectionSpec, StreamIngestion } from "../components/ingestion";
import { ExternalKafkaTopics, KafkaCluster, StrimziOperator } from "../components/kafka";
import * as path from "node:path";
import type { LoadedStream } from "../schemas/model";
import { destructiveAllowance, type StackConfig, type StackSecrets } from "./config";
import { DestroyImpact, destroyImpact } from "./destroy";
import { SECRET_KEYS } from "../schemas/naming";

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
}

/** The project root: relative paths in config are resolved against it. */
const PROJECT_ROOT = path.resolve(__dirname, "..");

/**
 * Wires the components for one stack from validated config and loaded streams. All validation
 * happened before this is called, so a bad key or stream file never leaves a half-registered
 * program behind.
 */
export function createPipeline(
    config: StackConfig,
    secrets: StackSecrets,
    streams: readonly LoadedStream[],
): PipelineOutputs {
    const specs = streams.map((s) => s.spec);
    const ns = config.createNamespace
        ? new k8s.core.v1.Namespace(
              "namespace",
              { metadata: { name: config.namespace } },
              // Deleting the namespace deletes every PVC in it.
              { protect: config.protectData },
          ).metadata.name
        : pulumi.output(config.namespace);

    let kafkaBootstrapServers: pulumi.Output<string>;
    let kafkaCredentialsSecret: pulumi.Output<string | undefined>;
    let clickhouseKafka: ConstructorParameters<typeof ClickHouse>[1]["kafka"];
    let topics: Record<string, pulumi.Resource>;

    if (config.kafkaMode === "strimzi") {
        const operator = config.strimziInstall
            ? new StrimziOperator("strimzi", {
                  namespace: ns,
                  chartVersion: config.strimziChartVersion,
                  crdSource: config.strimziCrdSource,
                  crdPath: config.strimziCrdPath,
              })
            : undefined;
        const cluster = new KafkaCluster(
            "kafka",
            {
                namespace: ns,
                clusterName: config.kafkaClusterName,
                version: config.kafkaVersion,
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
                plainListener: config.kafkaPlainListener,
                metrics: config.kafkaMetrics,
                waitForReady: config.kafkaWaitForReady,
                protectData: config.protectData,
                streams: specs,
                clickhouseDatabase: config.clickhouseDatabase,
            },
            operator ? { dependsOn: operator.ready } : undefined,
        );
        kafkaBootstrapServers = cluster.bootstrapServers;
        kafkaCredentialsSecret = cluster.consumerSecretName;
        topics = cluster.topics;
        clickhouseKafka = {
            client: {
                securityProtocol: "SASL_SSL",
                saslMechanism: "SCRAM-SHA-512",
                saslUsername: "clickhouse",
                caFile: SECRET_KEYS.caCertificate,
            },
            passwordSecret: cluster.consumerSecretName,
            caSecret: cluster.clusterCaSecretName,
        };
    } else {
        const external = new ExternalKafkaTopics("kafka", {
            bootstrapServers: config.kafkaExternalBootstrap,
            saslMechanism: config.kafkaExternalSaslMechanism,
            username: config.kafkaExternalUsername,
            password: secrets.kafkaExternalPassword,
            tls: config.kafkaExternalTls,
            defaultReplicas: config.kafkaExternalReplicas,
            streams: specs,
        });
        kafkaBootstrapServers = external.bootstrapServers;
        topics = external.topics;
        let passwordSecret: pulumi.Output<string> | undefined;
        if (config.kafkaExternalSaslMechanism !== "none" && secrets.kafkaExternalPassword) {
            passwordSecret = new k8s.core.v1.Secret("kafka-external-credentials", {
                metadata: { name: "kafka-external-credentials", namespace: ns },
                type: "Opaque",
                stringData: {
                    username: config.kafkaExternalUsername,
                    password: secrets.kafkaExternalPassword,
                },
            }).metadata.name;
        }
        kafkaCredentialsSecret = pulumi.output(passwordSecret);
        const sasl = config.kafkaExternalSaslMechanism !== "none";
        clickhouseKafka = {
            client: {
                securityProtocol:
                    `${sasl ? "SASL_" : ""}${config.kafkaExternalTls ? "SSL" : "PLAINTEXT"}` as
                        "SASL_SSL" | "SASL_PLAINTEXT" | "SSL" | "PLAINTEXT",
                ...(sasl
                    ? {
                          saslMechanism: config.kafkaExternalSaslMechanism as "SCRAM-SHA-512",
                          saslUsername: config.kafkaExternalUsername,
                      }
                    : {}),
            },
            ...(passwordSecret ? { passwordSecret } : {}),
        };
    }

    const clickhouse = new ClickHouse(config.clickhouseName, {
        namespace: ns,
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
        protectData: config.protectData,
        cpu: config.clickhouseCpu,
        memory: config.clickhouseMemory,
        logLevel: config.clickhouseLogLevel,
        ...(secrets.clickhouseAdminPassword
            ? { adminPassword: secrets.clickhouseAdminPassword }
            : {}),
        kafka: clickhouseKafka,
    });

    const ingestion: Record<string, StreamIngestion> = {};
    if (config.ingestionEnabled) {
        const connection = ingestionConnection(config, clickhouse);
        const brokers =
            config.ingestionKafkaBrokers !== ""
                ? pulumi.output(config.ingestionKafkaBrokers)
                : kafkaBootstrapServers;
        for (const stream of streams) {
            ingestion[stream.spec.name] = new StreamIngestion(
                `ingestion-${stream.spec.name}`,
                {
                    stream,
                    database: config.clickhouseDatabase,
                    kafkaBrokers: brokers,
                    connection,
                    allowDestructiveChanges: destructiveAllowance(config),
                    dropTargetOnDelete: config.dropTargetOnDelete,
                    adoptUnmarked: config.ingestionAdoptExisting,
                },
                {
                    // The topic first (the consumer must find it), and ClickHouse up to take the DDL.
                    dependsOn: [topics[stream.spec.name]!, clickhouse.statefulSet],
                    // A declared rename updates the same resource (tables renamed, group kept).
                    ...(stream.spec.renamedFrom !== undefined
                        ? { aliases: [{ name: `ingestion-${stream.spec.renamedFrom}` }] }
                        : {}),
                },
            );
        }
    }

    return {
        namespace: ns,
        kafkaBootstrapServers,
        kafkaCredentialsSecret,
        clickhouseEndpoint: clickhouse.httpEndpoint,
        clickhouseCredentialsSecret: clickhouse.credentialsSecretName,
        streams: specs.map((s) => s.name),
        onDestroy: destroyImpact(config),
        ingestionPlans: pulumi
            .all(
                Object.entries(ingestion).map(([n, r]) =>
                    r.plannedStatements.apply((p) => [n, p ?? []] as const),
                ),
            )
            .apply((entries) => Object.fromEntries(entries)),
    };
}

/** The `kubernetes:kubeconfig` stack config when it names a file (it may also hold the text). */
function providerKubeconfigFile(): string | undefined {
    const value = new pulumi.Config("kubernetes").get("kubeconfig") ?? "";
    return value === "" || value.includes("\n") ? undefined : path.resolve(PROJECT_ROOT, value);
}

/**
 * How the DDL provider reaches ClickHouse. Passwords travel as references (a Kubernetes Secret
 * or a stack secret), resolved by the provider when it runs, so no input holds one.
 */
function ingestionConnection(
    config: StackConfig,
    clickhouse: ClickHouse,
): pulumi.Input<ConnectionSpec> {
    if (config.ingestionConnection === "embedded") {
        return { kind: "embedded", path: path.resolve(PROJECT_ROOT, config.ingestionEmbeddedPath) };
    }
    // The Secret the ClickHouse pods read is the one source of the admin password; a stack may
    // name another user and its Secret instead (a read-only identity for previews).
    const ownUser = config.ingestionUser !== "";
    // The Secret is read through the kubeconfig the stack's Kubernetes provider is given, so a
    // stack that names one (`kubernetes:kubeconfig`, as the sandbox does) needs no KUBECONFIG.
    const kubeconfigFile = providerKubeconfigFile();
    const kubeconfig = kubeconfigFile ? { kubeconfig: { fromFile: kubeconfigFile } } : {};
    return pulumi
        .all([clickhouse.serviceName, clickhouse.credentialsSecretName])
        .apply(([service, secretName]) => {
            const username = ownUser ? config.ingestionUser : clickhouse.adminUser;
            const password = {
                fromKubernetesSecret: {
                    namespace: config.namespace,
                    name: ownUser ? config.ingestionPasswordSecret : secretName,
                    key: ownUser ? SECRET_KEYS.kafkaPassword : SECRET_KEYS.adminPassword,
                },
            };
            return config.ingestionConnection === "url"
                ? {
                      kind: "http" as const,
                      url: config.ingestionUrl,
                      username,
                      password,
                      ...kubeconfig,
                  }
                : {
                      kind: "port-forward" as const,
                      namespace: config.namespace,
                      service,
                      port: 8123,
                      username,
                      password,
                      ...kubeconfig,
                  };
        });
}
