/**
 * Pure builders of the Kubernetes objects that run declared queries: a CronJob per scheduled
 * query, a Job per one-off (`schedule: once`) query or rollup backfill. Each pod runs the one
 * request `requestArgs` generates (http.ts) in a pinned curl image, as the ClickHouse pods run:
 * non-root, no privilege gain, no capabilities, read-only root, no service account token.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { QuerySpec } from "../../schemas/query-model";
import { SECRET_KEYS, VERSION_DEFAULTS } from "../../schemas/naming";
import { CONTAINER_SECURITY_CONTEXT, clickhouseLabels } from "../clickhouse/manifests";
import { DNS_PEER, DNS_PORTS } from "../clickhouse/network-policy";
import { TLS_SECRET_KEYS } from "../clickhouse/tls";
import {
    CLIENT_GRACE_SECONDS,
    CREDENTIALS_ENV,
    CREDENTIAL_FILES,
    JOB_PATHS,
    JOB_SCRIPT,
    JOB_SCRIPT_NAME,
    RequestStep,
    queryStep,
    requestArgs,
} from "./http";

/** curl's official image (curl 8.16.0 on Alpine): small, maintained by the curl project, pinned. */
export const CURL_IMAGE = VERSION_DEFAULTS.queryImage;

/** Where the Jobs find ClickHouse and its credentials. */
export interface JobsSpec {
    /** The ClickHouse instance's name: prefixes the objects' names, labels them. */
    readonly clickhouseName: string;
    readonly namespace: pulumi.Input<string>;
    /** The HTTP(S) interface, e.g. `http://clickhouse.ns.svc:8123`. */
    readonly url: string;
    readonly database: string;
    /** The ClickHouse credentials Secret (user names and passwords, see SECRET_KEYS). */
    readonly credentialsSecret: pulumi.Input<string>;
    /** TLS: the Secret whose ca.crt signs ClickHouse's certificate. */
    readonly caSecret?: pulumi.Input<string>;
    /** @default CURL_IMAGE */
    readonly image?: string;
}

/** An unprivileged user of no image (kube-score and checkov ask for a UID above 10000). */
const JOB_UID = 10001;

/**
 * Pod Security "restricted", as the ClickHouse pods: non-root, the runtime's default seccomp
 * filter; a declared volume is made the pod's group's (fsGroup) so an export can write it.
 */
export const JOB_POD_SECURITY_CONTEXT: k8s.types.input.core.v1.PodSecurityContext = {
    runAsNonRoot: true,
    runAsUser: JOB_UID,
    runAsGroup: JOB_UID,
    fsGroup: JOB_UID,
    seccompProfile: { type: "RuntimeDefault" },
};

/** Labels of every query pod (ClickHouse's NetworkPolicy admits pods with these). */
export function jobPodLabels(clickhouseName: string): Record<string, string> {
    return {
        "app.kubernetes.io/name": "clickhouse-query",
        "app.kubernetes.io/instance": clickhouseName,
        "app.kubernetes.io/part-of": "kafka-clickhouse-stack",
    };
}

/**
 * The query pods' NetworkPolicy: nothing may connect to them; they reach DNS and ClickHouse's
 * HTTP(S) port only (object storage and URLs are reached by ClickHouse itself, not by them).
 */
export function jobsNetworkPolicy(spec: JobsSpec): k8s.networking.v1.NetworkPolicyArgs {
    const url = new URL(spec.url);
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    return {
        metadata: {
            name: `${spec.clickhouseName}-queries`,
            namespace: spec.namespace,
            labels: jobPodLabels(spec.clickhouseName),
        },
        spec: {
            podSelector: { matchLabels: jobPodLabels(spec.clickhouseName) },
            policyTypes: ["Ingress", "Egress"],
            ingress: [],
            egress: [
                { to: [DNS_PEER], ports: DNS_PORTS },
                {
                    to: [{ podSelector: { matchLabels: clickhouseLabels(spec.clickhouseName) } }],
                    ports: [{ protocol: "TCP", port }],
                },
            ],
        },
    };
}

/** `<clickhouse>-<query>`: the CronJob's or Job's name. */
export function jobName(spec: JobsSpec, name: string): string {
    return `${spec.clickhouseName}-${name}`;
}

/** Longest a whole Job may run: every attempt at its limit, with the client's grace and a start. */
export function activeDeadlineSeconds(timeoutSeconds: number, retries: number): number {
    return (timeoutSeconds + CLIENT_GRACE_SECONDS + 60) * (retries + 1);
}

/** The CronJob of a scheduled query, or the Job of a one-off one. */
export type QueryObject =
    | { readonly kind: "CronJob"; readonly args: k8s.batch.v1.CronJobArgs }
    | { readonly kind: "Job"; readonly args: k8s.batch.v1.JobArgs };

export function queryObject(spec: JobsSpec, q: QuerySpec): QueryObject {
    const name = jobName(spec, q.name);
    const labels = { ...jobPodLabels(spec.clickhouseName), "app.kubernetes.io/component": q.name };
    const jobSpec = jobSpecOf(spec, labels, {
        steps: [queryStep(q, spec.database)],
        user: q.user,
        retries: q.retries,
        resources: q.resources,
        volumes: queryVolumes(q),
    });
    const metadata = { name, namespace: spec.namespace, labels, annotations: annotations(q) };
    if (q.schedule === "once") {
        return {
            kind: "Job",
            // The Kubernetes provider would wait for the Job to finish; it runs on its own.
            args: {
                metadata: {
                    ...metadata,
                    annotations: { ...metadata.annotations, "pulumi.com/skipAwait": "true" },
                },
                spec: jobSpec,
            },
        };
    }
    return {
        kind: "CronJob",
        args: {
            metadata,
            spec: {
                schedule: q.schedule.cron,
                timeZone: q.schedule.timeZone,
                concurrencyPolicy: "Forbid",
                // A run missed by more than this (controller down, cluster busy) is skipped.
                startingDeadlineSeconds: 300,
                successfulJobsHistoryLimit: 3,
                failedJobsHistoryLimit: 3,
                jobTemplate: { metadata: { labels }, spec: jobSpec },
            },
        },
    };
}

/** A one-off Job of several requests in order (each an init container, the last the main one). */
export function stepsJob(
    spec: JobsSpec,
    name: string,
    component: string,
    steps: readonly RequestStep[],
    description: string,
): k8s.batch.v1.JobArgs {
    const labels = {
        ...jobPodLabels(spec.clickhouseName),
        "app.kubernetes.io/component": component,
    };
    return {
        metadata: {
            name: jobName(spec, name),
            namespace: spec.namespace,
            labels,
            annotations: {
                "pulumi.com/skipAwait": "true",
                "kafka-clickhouse-stack/description": description,
            },
        },
        spec: jobSpecOf(spec, labels, {
            steps,
            user: "admin",
            retries: 0,
            resources: { cpu: "50m", memory: "64Mi" },
            volumes: [],
        }),
    };
}

function annotations(q: QuerySpec): Record<string, string> {
    return q.description ? { "kafka-clickhouse-stack/description": q.description } : {};
}

interface Volume {
    readonly volume: k8s.types.input.core.v1.Volume;
    readonly mount: k8s.types.input.core.v1.VolumeMount;
}

/** The declared volume (exports write to it, imports read it) and the object-storage Secret. */
function queryVolumes(q: QuerySpec): Volume[] {
    const out: Volume[] = [];
    const where = q.export?.to ?? q.import?.from;
    if (where && "volume" in where) {
        out.push({
            volume: { name: "data", persistentVolumeClaim: { claimName: where.volume.claim } },
            mount: { name: "data", mountPath: JOB_PATHS.dataDir, readOnly: q.import !== undefined },
        });
    }
    if (where && "s3" in where) {
        out.push({
            volume: { name: "s3", secret: { secretName: where.s3.secret, defaultMode: 0o440 } },
            mount: { name: "s3", mountPath: JOB_PATHS.s3SecretDir, readOnly: true },
        });
    }
    return out;
}

interface PodPlan {
    readonly steps: readonly RequestStep[];
    readonly user: "readonly" | "admin";
    readonly retries: number;
    readonly resources: { readonly cpu: string; readonly memory: string };
    readonly volumes: readonly Volume[];
}

function jobSpecOf(
    spec: JobsSpec,
    labels: Record<string, string>,
    plan: PodPlan,
): k8s.types.input.batch.v1.JobSpec {
    const tls = spec.caSecret !== undefined;
    const volumes = [credentialsVolume(spec, plan.user), ...plan.volumes];
    if (spec.caSecret !== undefined) {
        volumes.push({
            volume: {
                name: "ca",
                secret: {
                    secretName: spec.caSecret,
                    items: [{ key: TLS_SECRET_KEYS.ca, path: "ca.crt" }],
                    defaultMode: 0o440,
                },
            },
            mount: {
                name: "ca",
                mountPath: JOB_PATHS.caFile.replace(/\/[^/]+$/, ""),
                readOnly: true,
            },
        });
    }
    const target = { url: spec.url, database: spec.database, verifyWithCa: tls };
    const timeout = Math.max(...plan.steps.map((s) => s.timeoutSeconds));
    const containers = plan.steps.map((step, i) => ({
        name: plan.steps.length === 1 ? "query" : `step-${i + 1}`,
        image: spec.image ?? CURL_IMAGE,
        imagePullPolicy: "Always",
        command: ["/bin/sh", "-c", JOB_SCRIPT, JOB_SCRIPT_NAME],
        args: requestArgs(step, target),
        env: [{ name: CREDENTIALS_ENV, value: JOB_PATHS.credentialsDir }],
        resources: {
            requests: { ...plan.resources, "ephemeral-storage": "16Mi" },
            limits: { ...plan.resources, "ephemeral-storage": "64Mi" },
        },
        securityContext: CONTAINER_SECURITY_CONTEXT,
        volumeMounts: volumes.map((v) => v.mount),
    }));
    return {
        backoffLimit: plan.retries,
        activeDeadlineSeconds: activeDeadlineSeconds(timeout, plan.retries),
        template: {
            metadata: { labels },
            spec: {
                restartPolicy: "Never",
                automountServiceAccountToken: false,
                securityContext: JOB_POD_SECURITY_CONTEXT,
                initContainers: containers.slice(0, -1),
                containers: containers.slice(-1),
                volumes: volumes.map((v) => v.volume),
            },
        },
    };
}

/** The user and password of `user`, files from the ClickHouse credentials Secret. */
function credentialsVolume(spec: JobsSpec, user: "readonly" | "admin"): Volume {
    const keys =
        user === "admin"
            ? { user: SECRET_KEYS.adminUser, password: SECRET_KEYS.adminPassword }
            : { user: SECRET_KEYS.readonlyUser, password: SECRET_KEYS.readonlyPassword };
    return {
        volume: {
            name: "credentials",
            secret: {
                secretName: spec.credentialsSecret,
                items: [
                    { key: keys.user, path: CREDENTIAL_FILES.user },
                    { key: keys.password, path: CREDENTIAL_FILES.password },
                ],
                defaultMode: 0o440,
            },
        },
        mount: { name: "credentials", mountPath: JOB_PATHS.credentialsDir, readOnly: true },
    };
}
