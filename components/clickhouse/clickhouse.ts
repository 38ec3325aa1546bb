import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import {
    ClickHouseSpec,
    ClickHouseStorage,
    KafkaAccess,
    clickhouseLabels,
    configMaps,
    ClickHousePasswords,
    credentialsChecksum,
    credentialsSecret,
    podDisruptionBudget,
    serviceAccount,
    services,
    statefulSet,
} from "./manifests";
import { type EgressTarget, type PeerSpec, egressPolicy, ingressPolicy } from "./network-policy";
import { LogLevel, listenerPorts, passwordSha256Hex } from "./render";
import { ClickHouseTls, certificate, listeners, tlsSecretName, tlsServerName } from "./tls";

export interface ClickHouseArgs {
    readonly namespace: pulumi.Input<string>;
    /** Image reference; pin a version. */
    readonly image: pulumi.Input<string>;
    /** @default 1 */
    readonly replicas?: pulumi.Input<number>;
    readonly storage: ClickHouseStorage;
    /**
     * What happens to the data PVCs when the StatefulSet is deleted or scaled down
     * (`persistentVolumeClaimRetentionPolicy`). Deleting the namespace deletes them regardless.
     * @default "Retain"
     */
    readonly volumeRetention?: pulumi.Input<"Retain" | "Delete">;
    /** Pulumi `protect` on the StatefulSet, so destroy and replacement stop before the data. @default false */
    readonly protectData?: boolean;
    readonly cpu: pulumi.Input<string>;
    readonly memory: pulumi.Input<string>;
    /** @default "information" */
    readonly logLevel?: LogLevel;
    /** Days the system log tables (query_log, trace_log, ...) keep; 0: the image's defaults. @default 7 */
    readonly systemLogTtlDays?: number;
    /** Admin password; generated with @pulumi/random when not given. */
    readonly adminPassword?: pulumi.Input<string>;
    /** @default "admin" */
    readonly adminUser?: string;
    /** @default "reader" */
    readonly readonlyUser?: string;
    /** The ingestion database: the read-only user may read it and no other. */
    readonly database: string;
    /** How the Kafka engine reaches the brokers (a Kafka component's `endpoint` fits). */
    readonly kafka?: KafkaAccess;
    /**
     * TLS on HTTPS (8443) and secure native (9440), plain HTTP and native closed; the certificate
     * from a Secret, or from a cert-manager Certificate made here. @default none (plain listeners)
     */
    readonly tls?: ClickHouseTls;
    /**
     * Pods allowed to connect on the listener ports (NetworkPolicy ingress). Port-forward (the DDL
     * provider's default path) and the kubelet need no entry. @default [] (no pod)
     */
    readonly clients?: readonly PeerSpec[];
    /** Where the Kafka engine connects (NetworkPolicy egress, besides DNS). @default [] (DNS only) */
    readonly kafkaEgress?: readonly EgressTarget[];
}

/** The spec the builders take: the args with every default applied. */
export function clickhouseSpec(name: string, args: ClickHouseArgs): ClickHouseSpec {
    return {
        name,
        namespace: args.namespace,
        image: args.image,
        replicas: args.replicas ?? 1,
        storage: args.storage,
        volumeRetention: args.volumeRetention ?? "Retain",
        cpu: args.cpu,
        memory: args.memory,
        logLevel: args.logLevel ?? "information",
        systemLogTtlDays: args.systemLogTtlDays ?? 7,
        adminUser: args.adminUser ?? "admin",
        readonlyUser: args.readonlyUser ?? "reader",
        database: args.database,
        ...(args.kafka ? { kafka: args.kafka } : {}),
        ...(args.tls ? { tls: args.tls } : {}),
    };
}

/**
 * The users' passwords (generated unless given) with the SHA-256 of each, and the pods'
 * credentials checksum: a keyed hash (HMAC, under a generated key only the state holds) of every
 * Secret value the pods read, the Kafka SASL password included when the stack writes its Secret.
 * It reveals nothing about them, so it is no Pulumi secret and the StatefulSet's diff stays
 * readable.
 */
function passwordsAndChecksum(
    name: string,
    args: ClickHouseArgs,
    parent: pulumi.CustomResourceOptions,
): { passwords: ClickHousePasswords; checksum: pulumi.Output<string> } {
    const password = (role: string, length = 32) =>
        new random.RandomPassword(`${name}-${role}`, { length, special: false }, parent).result;
    const admin = args.adminPassword
        ? pulumi.secret(args.adminPassword)
        : password("admin-password");
    const readonly = password("readonly-password");
    const sha256 = (p: pulumi.Input<string>) => pulumi.secret(p).apply(passwordSha256Hex);
    const passwords = {
        admin,
        readonly,
        adminSha256: sha256(admin),
        readonlySha256: sha256(readonly),
    };
    const values = {
        adminSha256: passwords.adminSha256,
        readonlySha256: passwords.readonlySha256,
        kafka: args.kafka?.passwordSecret?.value ?? "",
    };
    const checksum = pulumi
        .all([password("credentials-checksum-key", 64), pulumi.all(values)])
        .apply(([key, v]) => credentialsChecksum(key, v));
    return { passwords, checksum: pulumi.unsecret(checksum) };
}

/**
 * ClickHouse as a StatefulSet: config.d/ and users.d/ from ConfigMaps rendered by pure functions,
 * passwords from a Secret through the environment (`from_env`), a headless Service for stable pod
 * names and a client Service, PVC templates (or emptyDir for throwaway stacks), /ping probes,
 * anti-affinity, a PodDisruptionBudget, and a pod that meets Pod Security "restricted" under its
 * own ServiceAccount with no API token. What each object holds is built in `manifests.ts`; this
 * registers them.
 */
export class ClickHouse extends pulumi.ComponentResource {
    /** In-cluster HTTP endpoint of the client Service (HTTPS with TLS). */
    public readonly httpEndpoint: pulumi.Output<string>;
    /** With TLS: the Secret with the certificate and `ca.crt`, and the name clients verify. */
    public readonly tls?: {
        readonly secretName: string;
        readonly serverName: pulumi.Output<string>;
    };
    public readonly serviceName: pulumi.Output<string>;
    /** Secret holding `admin-password` and `readonly-password` (and user names). */
    public readonly credentialsSecretName: pulumi.Output<string>;
    public readonly adminUser: string;
    public readonly statefulSet: k8s.apps.v1.StatefulSet;

    constructor(name: string, args: ClickHouseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:clickhouse:ClickHouse", name, {}, opts);
        const parent = { parent: this };
        const spec = clickhouseSpec(name, args);
        const { passwords, checksum } = passwordsAndChecksum(name, args, parent);

        const credentials = new k8s.core.v1.Secret(
            `${name}-credentials`,
            credentialsSecret(spec, passwords),
            parent,
        );
        const maps = configMaps(spec);
        const config = new k8s.core.v1.ConfigMap(`${name}-config`, maps.config, parent);
        const users = new k8s.core.v1.ConfigMap(`${name}-users`, maps.users, parent);
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-serviceaccount`,
            serviceAccount(spec),
            parent,
        );
        const svc = services(spec);
        const headless = new k8s.core.v1.Service(`${name}-headless`, svc.headless, parent);
        const client = new k8s.core.v1.Service(`${name}-client`, svc.client, parent);
        const refs = {
            serviceAccount: account.metadata.name,
            credentialsSecret: credentials.metadata.name,
            configMap: config.metadata.name,
            usersConfigMap: users.metadata.name,
            headlessService: headless.metadata.name,
            credentialsChecksum: checksum,
        };
        this.statefulSet = new k8s.apps.v1.StatefulSet(
            `${name}-statefulset`,
            statefulSet(spec, refs),
            { parent: this, protect: args.protectData ?? false, dependsOn: this.certificate(spec) },
        );
        new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, podDisruptionBudget(spec), parent);
        this.networkPolicies(name, spec, args);

        this.adminUser = spec.adminUser;
        this.serviceName = client.metadata.name;
        this.credentialsSecretName = credentials.metadata.name;
        const scheme = spec.tls ? "https" : "http";
        this.httpEndpoint = pulumi.interpolate`${scheme}://${client.metadata.name}.${client.metadata.namespace}.svc:${listeners(spec.tls !== undefined).http.port}`;
        if (spec.tls) {
            const serverName = pulumi.output(spec.namespace).apply((ns) => tlsServerName(name, ns));
            this.tls = { secretName: tlsSecretName(name, spec.tls), serverName };
        }
        this.registerOutputs({
            httpEndpoint: this.httpEndpoint,
            credentialsSecretName: this.credentialsSecretName,
        });
    }

    /** The cert-manager Certificate whose Secret the pods mount, when cert-manager issues it. */
    private certificate(spec: ClickHouseSpec): k8s.apiextensions.CustomResource[] {
        const tls = spec.tls;
        if (tls?.source !== "cert-manager") return [];
        const args = pulumi
            .output(spec.namespace)
            .apply((namespace) =>
                certificate(
                    { name: `${spec.name}-tls`, namespace, labels: clickhouseLabels(spec.name) },
                    tls,
                    spec.name,
                ),
            );
        return [
            new k8s.apiextensions.CustomResource(
                `${spec.name}-certificate`,
                {
                    apiVersion: "cert-manager.io/v1",
                    kind: "Certificate",
                    metadata: args.metadata,
                    spec: args.apply((a) => a["spec"] as Record<string, unknown>),
                },
                { parent: this },
            ),
        ];
    }

    /** Ingress only from the clients on the listener ports; egress only to DNS and Kafka. */
    private networkPolicies(name: string, spec: ClickHouseSpec, args: ClickHouseArgs): void {
        const network = {
            name,
            namespace: spec.namespace,
            podLabels: clickhouseLabels(name),
            ports: [...listenerPorts(spec.tls !== undefined)],
            clients: args.clients ?? [],
            kafka: args.kafkaEgress ?? [],
        };
        const parent = { parent: this };
        new k8s.networking.v1.NetworkPolicy(`${name}-ingress`, ingressPolicy(network), parent);
        new k8s.networking.v1.NetworkPolicy(`${name}-egress`, egressPolicy(network), parent);
    }
}
