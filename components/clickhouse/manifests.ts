/**
 * Pure builders for the Kubernetes objects of one ClickHouse instance. They return resource args
 * (values passed through may be Outputs), so tests call them without Pulumi; the `ClickHouse`
 * component only registers what they return.
 */
import { createHash, createHmac } from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { KafkaEndpoint } from "../kafka/endpoint";
import { SECRET_KEYS } from "../../schemas/naming";
import {
    ENV,
    KAFKA_CA_DIR,
    LogLevel,
    renderKafkaConfig,
    renderLoggingConfig,
    renderNetworkConfig,
    renderSystemLogConfig,
    renderTlsConfig,
    renderUsersConfig,
    TLS_DIR,
} from "./render";
import { ClickHouseTls, listeners, tlsSecretName } from "./tls";

/** How the Kafka engine reaches the brokers: the client part of a Kafka endpoint. */
export type KafkaAccess = Pick<KafkaEndpoint, "client" | "passwordSecret" | "caSecret">;

export type ClickHouseStorage =
    | { readonly ephemeral: true }
    | {
          readonly ephemeral: false;
          readonly size: pulumi.Input<string>;
          /** Empty: the cluster's default storage class. */
          readonly storageClass: string;
      };

/** One ClickHouse instance, with every default applied (see ClickHouseArgs for them). */
export interface ClickHouseSpec {
    /** Name of the StatefulSet and the client Service; prefixes the other objects. */
    readonly name: string;
    readonly namespace: pulumi.Input<string>;
    readonly image: pulumi.Input<string>;
    readonly replicas: pulumi.Input<number>;
    readonly storage: ClickHouseStorage;
    readonly volumeRetention: pulumi.Input<"Retain" | "Delete">;
    readonly cpu: pulumi.Input<string>;
    readonly memory: pulumi.Input<string>;
    readonly logLevel: LogLevel;
    /** Days the system log tables keep; 0 leaves the image's defaults (most keep everything). */
    readonly systemLogTtlDays: number;
    readonly adminUser: string;
    readonly readonlyUser: string;
    /** The ingestion database, the one the read-only user may read. */
    readonly database: string;
    readonly kafka?: KafkaAccess;
    /** TLS on the listeners (plain HTTP and native closed); none: plain listeners. */
    readonly tls?: ClickHouseTls;
}

/** Names of the objects the StatefulSet refers to (Outputs once registered). */
export interface ClickHouseRefs {
    readonly serviceAccount: pulumi.Input<string>;
    readonly credentialsSecret: pulumi.Input<string>;
    readonly configMap: pulumi.Input<string>;
    readonly usersConfigMap: pulumi.Input<string>;
    readonly headlessService: pulumi.Input<string>;
    /**
     * Changes whenever a Secret value the pods consume changes (see `credentialsChecksum`), so a
     * rotated password rolls the pods; it must reveal nothing about those values.
     */
    readonly credentialsChecksum: pulumi.Input<string>;
}

/** The users' passwords, and the SHA-256 (`passwordSha256Hex`) of each that the pods receive. */
export interface ClickHousePasswords {
    readonly admin: pulumi.Input<string>;
    readonly readonly: pulumi.Input<string>;
    readonly adminSha256: pulumi.Input<string>;
    readonly readonlySha256: pulumi.Input<string>;
}

export function clickhouseLabels(name: string): Record<string, string> {
    return { "app.kubernetes.io/name": "clickhouse", "app.kubernetes.io/instance": name };
}

function metadata(spec: ClickHouseSpec, name: string) {
    return { name, namespace: spec.namespace, labels: clickhouseLabels(spec.name) };
}

/**
 * The users and their passwords. The pods read only the SHA-256 keys (`from_env`); clients such
 * as the DDL provider read the passwords.
 */
export function credentialsSecret(
    spec: ClickHouseSpec,
    passwords: ClickHousePasswords,
): k8s.core.v1.SecretArgs {
    return {
        metadata: metadata(spec, `${spec.name}-credentials`),
        type: "Opaque",
        stringData: {
            [SECRET_KEYS.adminUser]: spec.adminUser,
            [SECRET_KEYS.adminPassword]: passwords.admin,
            [SECRET_KEYS.readonlyUser]: spec.readonlyUser,
            [SECRET_KEYS.readonlyPassword]: passwords.readonly,
            [SECRET_KEYS.adminPasswordSha256]: passwords.adminSha256,
            [SECRET_KEYS.readonlyPasswordSha256]: passwords.readonlySha256,
        },
    };
}

/** The files of config.d/: listeners, logging, and the Kafka client settings when given. */
export function configFiles(spec: ClickHouseSpec): Record<string, string> {
    const files: Record<string, string> = {
        "network.xml": renderNetworkConfig(spec.tls !== undefined),
        "logging.xml": renderLoggingConfig(spec.logLevel),
    };
    if (spec.tls) files["tls.xml"] = renderTlsConfig();
    if (spec.systemLogTtlDays > 0)
        files["system-logs.xml"] = renderSystemLogConfig(spec.systemLogTtlDays);
    const kafka = spec.kafka;
    if (kafka) {
        // The CA Secret is mounted whole at KAFKA_CA_DIR: its key is the file name.
        const ca = kafka.caSecret ? { caFile: kafka.caSecret.key } : {};
        files["kafka.xml"] = renderKafkaConfig({ ...kafka.client, ...ca });
    }
    return files;
}

/**
 * config.d/ and users.d/ as ConfigMaps, named by Pulumi (`<name>-config-<suffix>`). The Kubernetes
 * provider replaces a ConfigMap whose data changes; under a fixed name that replacement must delete
 * first, and Pulumi then deletes and recreates the StatefulSet that mounts it (pods down, volumes
 * detached). Under a new name the new ConfigMap comes first and the StatefulSet rolls onto it.
 */
export function configMaps(spec: ClickHouseSpec): {
    config: k8s.core.v1.ConfigMapArgs;
    users: k8s.core.v1.ConfigMapArgs;
} {
    const generated = { namespace: spec.namespace, labels: clickhouseLabels(spec.name) };
    return {
        config: { metadata: generated, data: configFiles(spec) },
        users: { metadata: generated, data: usersFiles(spec) },
    };
}

/** The files of users.d/. */
export function usersFiles(spec: ClickHouseSpec): Record<string, string> {
    const users = {
        adminUser: spec.adminUser,
        readonlyUser: spec.readonlyUser,
        database: spec.database,
    };
    return { "users.xml": renderUsersConfig(users) };
}

/**
 * The pods' own identity, so no other workload's RBAC grants reach them. ClickHouse never calls
 * the Kubernetes API, so no token is mounted.
 */
export function serviceAccount(spec: ClickHouseSpec): k8s.core.v1.ServiceAccountArgs {
    return { metadata: metadata(spec, spec.name), automountServiceAccountToken: false };
}

/** The headless Service (stable pod names) and the client Service. */
export function services(spec: ClickHouseSpec): {
    headless: k8s.core.v1.ServiceArgs;
    client: k8s.core.v1.ServiceArgs;
} {
    const selector = clickhouseLabels(spec.name);
    const ports = listeners(spec.tls !== undefined);
    const http = { ...ports.http, targetPort: ports.http.name };
    const native = { ...ports.native, targetPort: ports.native.name };
    return {
        headless: {
            metadata: metadata(spec, `${spec.name}-headless`),
            spec: {
                clusterIP: "None",
                publishNotReadyAddresses: true,
                selector,
                ports: [http, native],
            },
        },
        client: {
            metadata: metadata(spec, spec.name),
            spec: { type: "ClusterIP", selector, ports: [http, native] },
        },
    };
}

/** One pod at a time: with a single replica a drain may still proceed. */
export function podDisruptionBudget(spec: ClickHouseSpec): k8s.policy.v1.PodDisruptionBudgetArgs {
    return {
        metadata: metadata(spec, spec.name),
        spec: { maxUnavailable: 1, selector: { matchLabels: clickhouseLabels(spec.name) } },
    };
}

/**
 * The StatefulSet: pods rolled when config.d/, users.d/ or a Secret value they consume changes
 * (two pod-template annotations), data on PVCs or emptyDir.
 */
export function statefulSet(
    spec: ClickHouseSpec,
    refs: ClickHouseRefs,
): k8s.apps.v1.StatefulSetArgs {
    const labels = clickhouseLabels(spec.name);
    const configHash = hash(JSON.stringify({ config: configFiles(spec), users: usersFiles(spec) }));
    return {
        metadata: metadata(spec, spec.name),
        spec: {
            serviceName: refs.headlessService,
            replicas: spec.replicas,
            podManagementPolicy: "Parallel",
            selector: { matchLabels: labels },
            template: {
                metadata: {
                    labels,
                    annotations: {
                        [POD_ANNOTATIONS.configHash]: configHash,
                        [POD_ANNOTATIONS.credentialsChecksum]: refs.credentialsChecksum,
                    },
                },
                spec: podSpec(spec, refs),
            },
            ...(spec.storage.ephemeral
                ? {}
                : {
                      persistentVolumeClaimRetentionPolicy: {
                          whenDeleted: spec.volumeRetention,
                          whenScaled: spec.volumeRetention,
                      },
                  }),
            volumeClaimTemplates: volumeClaimTemplates(spec),
        },
    };
}

/** Pod-template annotations whose change rolls the pods. */
export const POD_ANNOTATIONS = {
    /** Over config.d/ and users.d/ (nothing secret in them). */
    configHash: "kafka-clickhouse/config-hash",
    /** Over the Secret values the pods consume, keyed (see `credentialsChecksum`). */
    credentialsChecksum: "kafka-clickhouse/credentials-checksum",
} as const;

/**
 * A checksum of the Secret values the pods consume: HMAC-SHA-256 under `key`, a random value only
 * the (encrypted) stack state holds. Unlike a plain hash, it gives no way to test a guessed
 * password against it, so it may sit in the pod template, which more people may read than Secrets.
 */
export function credentialsChecksum(key: string, values: Readonly<Record<string, string>>): string {
    if (key.length < 32) throw new Error("the credentials checksum key must be >= 32 characters");
    const sorted = Object.keys(values)
        .sort()
        .map((k) => [k, values[k]]);
    return createHmac("sha256", key).update(JSON.stringify(sorted)).digest("hex").slice(0, 32);
}

/** The image's `clickhouse` user and group. */
const CLICKHOUSE_UID = 101;

/**
 * Pod Security "restricted": non-root as the image's own user (the data volume is made its
 * group's by fsGroup), the runtime's default seccomp filter.
 */
export const POD_SECURITY_CONTEXT: k8s.types.input.core.v1.PodSecurityContext = {
    runAsNonRoot: true,
    runAsUser: CLICKHOUSE_UID,
    runAsGroup: CLICKHOUSE_UID,
    fsGroup: CLICKHOUSE_UID,
    seccompProfile: { type: "RuntimeDefault" },
};

/** No privilege gain, no capabilities, nothing written outside the mounted volumes. */
export const CONTAINER_SECURITY_CONTEXT: k8s.types.input.core.v1.SecurityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    readOnlyRootFilesystem: true,
};

/**
 * Writable folders outside the data volume, as emptyDirs under a read-only root. /tmp: the
 * image's entrypoint copies users.xml there at every start (before it looks at
 * CLICKHOUSE_SKIP_USER_SETUP). /var/log/clickhouse-server: logs go to the console (logging.xml),
 * but the entrypoint creates the log folder the config names, so a config that logs to files
 * again does not stop the pod. Everything else ClickHouse writes (tmp_path, user_files,
 * preprocessed_configs, access) lies under /var/lib/clickhouse.
 */
export const SCRATCH_DIRS = [
    { name: "tmp", mountPath: "/tmp", sizeLimit: "256Mi" },
    { name: "logs", mountPath: "/var/log/clickhouse-server", sizeLimit: "256Mi" },
] as const;

function podSpec(spec: ClickHouseSpec, refs: ClickHouseRefs): k8s.types.input.core.v1.PodSpec {
    const labels = clickhouseLabels(spec.name);
    return {
        serviceAccountName: refs.serviceAccount,
        automountServiceAccountToken: false,
        securityContext: POD_SECURITY_CONTEXT,
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
        containers: [container(spec, refs)],
        volumes: volumes(spec, refs),
    };
}

/**
 * Node disk outside the volumes: the scratch emptyDirs (SCRATCH_DIRS, 512Mi together) and the
 * console log the kubelet rotates; the root filesystem is read-only.
 */
export const EPHEMERAL_STORAGE = { request: "512Mi", limit: "1Gi" } as const;

/**
 * CPU and memory limits equal to the requests (Guaranteed QoS; ClickHouse sizes its thread pools
 * from the CPU quota). An emptyDir data volume (`storage.ephemeral`) counts against the
 * ephemeral-storage limit, and its size is not known: no such limit then.
 */
function resources(spec: ClickHouseSpec): k8s.types.input.core.v1.ResourceRequirements {
    const disk = EPHEMERAL_STORAGE;
    return {
        requests: { cpu: spec.cpu, memory: spec.memory, "ephemeral-storage": disk.request },
        limits: {
            cpu: spec.cpu,
            memory: spec.memory,
            ...(spec.storage.ephemeral ? {} : { "ephemeral-storage": disk.limit }),
        },
    };
}

function container(spec: ClickHouseSpec, refs: ClickHouseRefs): k8s.types.input.core.v1.Container {
    const ports = listeners(spec.tls !== undefined);
    const probe = (periodSeconds: number, failureThreshold: number) => ({
        httpGet: { path: "/ping", port: ports.http.name, ...(spec.tls ? { scheme: "HTTPS" } : {}) },
        periodSeconds,
        timeoutSeconds: 3,
        failureThreshold,
    });
    return {
        name: "clickhouse",
        image: spec.image,
        ports: [
            { name: ports.http.name, containerPort: ports.http.port },
            { name: ports.native.name, containerPort: ports.native.port },
        ],
        env: env(spec, refs),
        volumeMounts: volumeMounts(spec),
        // A registry lookup at each start: a re-pushed tag or revoked pull credentials show.
        imagePullPolicy: "Always",
        resources: resources(spec),
        startupProbe: probe(5, 60),
        readinessProbe: probe(10, 3),
        livenessProbe: probe(20, 6),
        securityContext: CONTAINER_SECURITY_CONTEXT,
    };
}

/**
 * Secret values: the SHA-256 of the ClickHouse passwords (never the passwords) and the Kafka SASL
 * password, which librdkafka needs itself. The rendered XML names these variables.
 */
function env(spec: ClickHouseSpec, refs: ClickHouseRefs): k8s.types.input.core.v1.EnvVar[] {
    const fromSecret = (name: string, secret: pulumi.Input<string>, key: string) => ({
        name,
        valueFrom: { secretKeyRef: { name: secret, key } },
    });
    const vars = [
        fromSecret(
            ENV.adminPasswordSha256,
            refs.credentialsSecret,
            SECRET_KEYS.adminPasswordSha256,
        ),
        fromSecret(
            ENV.readonlyPasswordSha256,
            refs.credentialsSecret,
            SECRET_KEYS.readonlyPasswordSha256,
        ),
        // The image would otherwise write its own users.d file for the default user.
        { name: "CLICKHOUSE_SKIP_USER_SETUP", value: "1" },
    ];
    const password = spec.kafka?.passwordSecret;
    if (password) vars.push(fromSecret(ENV.kafkaSaslPassword, password.name, password.key));
    return vars;
}

function volumes(spec: ClickHouseSpec, refs: ClickHouseRefs): k8s.types.input.core.v1.Volume[] {
    const list: k8s.types.input.core.v1.Volume[] = [
        { name: "config", configMap: { name: refs.configMap } },
        { name: "users", configMap: { name: refs.usersConfigMap } },
    ];
    const ca = spec.kafka?.caSecret;
    if (ca) list.push({ name: "kafka-ca", secret: { secretName: ca.name } });
    // Readable by the clickhouse group only (fsGroup), not by every user of the container.
    if (spec.tls)
        list.push({
            name: "tls",
            secret: { secretName: tlsSecretName(spec.name, spec.tls), defaultMode: 0o440 },
        });
    if (spec.storage.ephemeral) list.push({ name: "data", emptyDir: {} });
    for (const dir of SCRATCH_DIRS)
        list.push({ name: dir.name, emptyDir: { sizeLimit: dir.sizeLimit } });
    return list;
}

function volumeMounts(spec: ClickHouseSpec): k8s.types.input.core.v1.VolumeMount[] {
    const mounts: k8s.types.input.core.v1.VolumeMount[] = [
        { name: "data", mountPath: "/var/lib/clickhouse" },
        { name: "config", mountPath: "/etc/clickhouse-server/config.d", readOnly: true },
        { name: "users", mountPath: "/etc/clickhouse-server/users.d", readOnly: true },
    ];
    if (spec.kafka?.caSecret)
        mounts.push({ name: "kafka-ca", mountPath: KAFKA_CA_DIR, readOnly: true });
    // The whole Secret, not subPaths: a renewed certificate then reaches the running pod.
    if (spec.tls) mounts.push({ name: "tls", mountPath: TLS_DIR, readOnly: true });
    for (const dir of SCRATCH_DIRS) mounts.push({ name: dir.name, mountPath: dir.mountPath });
    return mounts;
}

function volumeClaimTemplates(
    spec: ClickHouseSpec,
): k8s.types.input.core.v1.PersistentVolumeClaim[] {
    if (spec.storage.ephemeral) return [];
    const storageClass = spec.storage.storageClass;
    return [
        {
            metadata: { name: "data", labels: clickhouseLabels(spec.name) },
            spec: {
                accessModes: ["ReadWriteOnce"],
                ...(storageClass ? { storageClassName: storageClass } : {}),
                resources: { requests: { storage: spec.storage.size } },
            },
        },
    ];
}

function hash(text: string): string {
    return createHash("sha256").update(text).digest("hex").slice(0, 16);
}
