import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import {
    ENV,
    KAFKA_CA_DIR,
    KafkaClientSettings,
    LogLevel,
    PORTS,
    renderKafkaConfig,
    renderLoggingConfig,
    renderNetworkConfig,
    renderUsersConfig,
} from "./render";
import { SECRET_KEYS } from "../../schemas/naming";

export interface ClickHouseArgs {
    readonly namespace: pulumi.Input<string>;
    /** Image reference; pin a version. */
    readonly image: string;
    /** @default 1 */
    readonly replicas?: number;
    readonly storage:
        { ephemeral: true } | { ephemeral: false; size: string; storageClass: string };
    /**
     * What happens to the data PVCs when the StatefulSet is deleted or scaled down
     * (`persistentVolumeClaimRetentionPolicy`). Deleting the namespace deletes them regardless.
     * @default "Retain"
     */
    readonly volumeRetention?: "Retain" | "Delete";
    /** Pulumi `protect` on the StatefulSet, so destroy and replacement stop before the data. @default false */
    readonly protectData?: boolean;
    readonly cpu: string;
    readonly memory: string;
    /** @default "information" */
    readonly logLevel?: LogLevel;
    /** Admin password; generated with @pulumi/random when not given. */
    readonly adminPassword?: pulumi.Input<string>;
    /** @default "admin" */
    readonly adminUser?: string;
    /** @default "reader" */
    readonly readonlyUser?: string;
    /** How the Kafka engine reaches the brokers; the password comes from `kafka.passwordSecret`. */
    readonly kafka?: {
        readonly client: KafkaClientSettings;
        /** Secret with key `password` holding the SASL password. */
        readonly passwordSecret?: pulumi.Input<string>;
        /** Secret with the CA certificate (key = client.caFile) for TLS. */
        readonly caSecret?: pulumi.Input<string>;
    };
}

const LABEL_NAME = "app.kubernetes.io/name";
const LABEL_INSTANCE = "app.kubernetes.io/instance";

/**
 * ClickHouse as a StatefulSet: config.d/ and users.d/ from ConfigMaps rendered by pure functions,
 * passwords from a Secret through the environment (`from_env`), a headless Service for stable pod
 * names and a client Service, PVC templates (or emptyDir for throwaway stacks), /ping probes,
 * anti-affinity, a PodDisruptionBudget and a non-root security context.
 */
export class ClickHouse extends pulumi.ComponentResource {
    /** In-cluster HTTP endpoint of the client Service. */
    public readonly httpEndpoint: pulumi.Output<string>;
    public readonly serviceName: pulumi.Output<string>;
    public readonly headlessServiceName: pulumi.Output<string>;
    /** Secret holding `admin-password` and `readonly-password` (and user names). */
    public readonly credentialsSecretName: pulumi.Output<string>;
    public readonly adminUser: string;
    /** Admin password, as a secret Output, for the DDL provider. */
    public readonly adminPassword: pulumi.Output<string>;
    public readonly statefulSet: k8s.apps.v1.StatefulSet;

    constructor(name: string, args: ClickHouseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:clickhouse:ClickHouse", name, {}, opts);
        const parent = { parent: this };
        const replicas = args.replicas ?? 1;
        const adminUser = args.adminUser ?? "admin";
        const readonlyUser = args.readonlyUser ?? "reader";
        const labels = { [LABEL_NAME]: "clickhouse", [LABEL_INSTANCE]: name };

        const adminPassword = args.adminPassword
            ? pulumi.secret(args.adminPassword)
            : new random.RandomPassword(
                  `${name}-admin-password`,
                  { length: 32, special: false },
                  parent,
              ).result;
        const readonlyPassword = new random.RandomPassword(
            `${name}-readonly-password`,
            { length: 32, special: false },
            parent,
        ).result;

        const credentials = new k8s.core.v1.Secret(
            `${name}-credentials`,
            {
                metadata: { name: `${name}-credentials`, namespace: args.namespace, labels },
                type: "Opaque",
                stringData: {
                    [SECRET_KEYS.adminUser]: adminUser,
                    [SECRET_KEYS.adminPassword]: adminPassword,
                    [SECRET_KEYS.readonlyUser]: readonlyUser,
                    [SECRET_KEYS.readonlyPassword]: readonlyPassword,
                },
            },
            parent,
        );

        const configFiles: Record<string, string> = {
            "network.xml": renderNetworkConfig(),
            "logging.xml": renderLoggingConfig(args.logLevel ?? "information"),
        };
        if (args.kafka) configFiles["kafka.xml"] = renderKafkaConfig(args.kafka.client);
        const config = new k8s.core.v1.ConfigMap(
            `${name}-config`,
            {
                metadata: { name: `${name}-config`, namespace: args.namespace, labels },
                data: configFiles,
            },
            parent,
        );
        const users = new k8s.core.v1.ConfigMap(
            `${name}-users`,
            {
                metadata: { name: `${name}-users`, namespace: args.namespace, labels },
                data: { "users.xml": renderUsersConfig({ adminUser, readonlyUser }) },
            },
            parent,
        );

        const headless = new k8s.core.v1.Service(
            `${name}-headless`,
            {
                metadata: { name: `${name}-headless`, namespace: args.namespace, labels },
                spec: {
                    clusterIP: "None",
                    publishNotReadyAddresses: true,
                    selector: labels,
                    ports: [
                        { name: "http", port: PORTS.http, targetPort: "http" },
                        { name: "native", port: PORTS.native, targetPort: "native" },
                        { name: "interserver", port: PORTS.interserver, targetPort: "interserver" },
                    ],
                },
            },
            parent,
        );
        const client = new k8s.core.v1.Service(
            `${name}-client`,
            {
                metadata: { name, namespace: args.namespace, labels },
                spec: {
                    type: "ClusterIP",
                    selector: labels,
                    ports: [
                        { name: "http", port: PORTS.http, targetPort: "http" },
                        { name: "native", port: PORTS.native, targetPort: "native" },
                    ],
                },
            },
            parent,
        );

        const secretEnv = (envName: string, secret: pulumi.Input<string>, key: string) => ({
            name: envName,
            valueFrom: { secretKeyRef: { name: secret, key } },
        });
        const env = [
            secretEnv(ENV.adminPassword, credentials.metadata.name, SECRET_KEYS.adminPassword),
            secretEnv(
                ENV.readonlyPassword,
                credentials.metadata.name,
                SECRET_KEYS.readonlyPassword,
            ),
            // The image would otherwise write its own users.d file for the default user.
            { name: "CLICKHOUSE_SKIP_USER_SETUP", value: "1" },
        ];
        const volumes: k8s.types.input.core.v1.Volume[] = [
            { name: "config", configMap: { name: config.metadata.name } },
            { name: "users", configMap: { name: users.metadata.name } },
        ];
        const mounts: k8s.types.input.core.v1.VolumeMount[] = [
            { name: "data", mountPath: "/var/lib/clickhouse" },
            { name: "config", mountPath: "/etc/clickhouse-server/config.d", readOnly: true },
            { name: "users", mountPath: "/etc/clickhouse-server/users.d", readOnly: true },
        ];
        if (args.kafka?.passwordSecret) {
            env.push(
                secretEnv(
                    ENV.kafkaSaslPassword,
                    args.kafka.passwordSecret,
                    SECRET_KEYS.kafkaPassword,
                ),
            );
        }
        if (args.kafka?.caSecret) {
            volumes.push({ name: "kafka-ca", secret: { secretName: args.kafka.caSecret } });
            mounts.push({ name: "kafka-ca", mountPath: KAFKA_CA_DIR, readOnly: true });
        }
        if (args.storage.ephemeral) volumes.push({ name: "data", emptyDir: {} });

        const probe = (periodSeconds: number, failureThreshold: number) => ({
            httpGet: { path: "/ping", port: "http" },
            periodSeconds,
            timeoutSeconds: 3,
            failureThreshold,
        });

        this.statefulSet = new k8s.apps.v1.StatefulSet(
            `${name}-statefulset`,
            {
                metadata: { name, namespace: args.namespace, labels },
                spec: {
                    serviceName: headless.metadata.name,
                    replicas,
                    podManagementPolicy: "Parallel",
                    selector: { matchLabels: labels },
                    template: {
                        metadata: {
                            labels,
                            // Roll the pods when the rendered config changes.
                            annotations: {
                                "kafka-clickhouse/config-hash": hash(JSON.stringify(configFiles)),
                            },
                        },
                        spec: {
                            securityContext: {
                                runAsNonRoot: true,
                                runAsUser: 101,
                                runAsGroup: 101,
                                fsGroup: 101,
                            },
                            terminationGracePeriodSeconds: 60,
                            affinity: {
                                podAntiAffinity: {
                                    preferredDuringSchedulingIgnoredDuringExecution: [
                                        {
                                            weight: 100,
                                            podAffinityTerm: {
                                                labelSelector: { matchLabels: labels },
                                                topologyKey: "kubernetes.io/hostname",
                                            },
                                        },
                                    ],
                                },
                            },
                            containers: [
                                {
                                    name: "clickhouse",
                                    image: args.image,
                                    ports: [
                                        { name: "http", containerPort: PORTS.http },
                                        { name: "native", containerPort: PORTS.native },
                                        { name: "interserver", containerPort: PORTS.interserver },
                                    ],
                                    env,
                                    volumeMounts: mounts,
                                    resources: {
                                        requests: { cpu: args.cpu, memory: args.memory },
                                        limits: { memory: args.memory },
                                    },
                                    startupProbe: probe(5, 60),
                                    readinessProbe: probe(10, 3),
                                    livenessProbe: probe(20, 6),
                                    securityContext: {
                                        allowPrivilegeEscalation: false,
                                        capabilities: { drop: ["ALL"] },
                                    },
                                },
                            ],
                            volumes,
                        },
                    },
                    ...(args.storage.ephemeral
                        ? {}
                        : {
                              persistentVolumeClaimRetentionPolicy: {
                                  whenDeleted: args.volumeRetention ?? "Retain",
                                  whenScaled: args.volumeRetention ?? "Retain",
                              },
                          }),
                    volumeClaimTemplates: args.storage.ephemeral
                        ? []
                        : [
                              {
                                  metadata: { name: "data", labels },
                                  spec: {
                                      accessModes: ["ReadWriteOnce"],
                                      ...(args.storage.storageClass
                                          ? { storageClassName: args.storage.storageClass }
                                          : {}),
                                      resources: { requests: { storage: args.storage.size } },
                                  },
                              },
                          ],
                },
            },
            { parent: this, protect: args.protectData ?? false },
        );

        new k8s.policy.v1.PodDisruptionBudget(
            `${name}-pdb`,
            {
                metadata: { name, namespace: args.namespace, labels },
                // One pod at a time: with a single replica a drain may still proceed.
                spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
            },
            parent,
        );

        this.adminUser = adminUser;
        this.adminPassword = pulumi.secret(adminPassword);
        this.serviceName = client.metadata.name;
        this.headlessServiceName = headless.metadata.name;
        this.credentialsSecretName = credentials.metadata.name;
        this.httpEndpoint = pulumi.interpolate`http://${client.metadata.name}.${client.metadata.namespace}.svc:${PORTS.http}`;
        this.registerOutputs({
            httpEndpoint: this.httpEndpoint,
            credentialsSecretName: this.credentialsSecretName,
        });
    }
}

function hash(text: string): string {
    return createHash("sha256").update(text).digest("hex").slice(0, 16);
}
