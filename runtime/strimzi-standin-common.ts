/**
 * What every part of the Strimzi stand-in shares: the custom resources it reads and the status,
 * finalizers and Secrets it writes through the API server, the broker's admin client, and the
 * errors it reports in statuses.
 */
import {
    CoreV1Api,
    CustomObjectsApi,
    type KubeConfig,
    type V1OwnerReference,
} from "@kubernetes/client-node";
import type { Admin } from "./kafka-client";
import {
    CustomResource,
    CustomResourceStatus,
    STRIMZI_GROUP,
    STRIMZI_VERSION,
    keepTransitionTimes,
    sameStatus,
} from "./strimzi-status";

export const PLURALS = {
    Kafka: "kafkas",
    KafkaNodePool: "kafkanodepools",
    KafkaTopic: "kafkatopics",
    KafkaUser: "kafkausers",
} as const;
export type Kind = keyof typeof PLURALS;
export const KINDS = Object.keys(PLURALS) as Kind[];

/** What the reconcilers of every kind are given. */
export interface StandInContext {
    readonly kube: StrimziApi;
    readonly admin: Admin;
    /** host:port of the broker's PLAINTEXT listener (a super user there). */
    readonly kafkaBootstrap: string;
    readonly log: (line: string) => void;
}

/** Timestamps as the operators write them: seconds, no fraction. */
export const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

/** A Secret the operators write: always named, labelled, owned and opaque. */
export interface SecretBody {
    metadata: {
        name: string;
        namespace: string;
        labels: Record<string, string>;
        ownerReferences: V1OwnerReference[];
    };
    type: "Opaque";
    data: Record<string, string>;
}

/** The Strimzi custom resources and the Secrets of one API server, as the operators use them. */
export class StrimziApi {
    private readonly custom: CustomObjectsApi;
    private readonly core: CoreV1Api;

    constructor(
        kc: KubeConfig,
        private readonly namespace: string | undefined,
    ) {
        this.custom = kc.makeApiClient(CustomObjectsApi);
        this.core = kc.makeApiClient(CoreV1Api);
    }

    async list(kind: Kind): Promise<CustomResource[]> {
        const params = { group: STRIMZI_GROUP, version: STRIMZI_VERSION, plural: PLURALS[kind] };
        const res = (
            this.namespace
                ? await this.custom.listNamespacedCustomObject({
                      ...params,
                      namespace: this.namespace,
                  })
                : await this.custom.listClusterCustomObject(params)
        ) as { items: CustomResource[] };
        return res.items;
    }

    /** Writes the status unless only transition times would change; keeps unchanged ones. */
    async writeStatus(kind: Kind, cr: CustomResource, status: CustomResourceStatus): Promise<void> {
        if (Array.isArray(status.conditions)) {
            status.conditions = keepTransitionTimes(status.conditions, cr.status?.conditions);
        }
        if (sameStatus(cr.status, status)) return;
        const updated = (await this.custom.replaceNamespacedCustomObjectStatus({
            group: STRIMZI_GROUP,
            version: STRIMZI_VERSION,
            plural: PLURALS[kind],
            namespace: cr.metadata.namespace,
            name: cr.metadata.name,
            body: { ...cr, status },
        })) as CustomResource;
        // The new resourceVersion: a second write in the same pass (a new Kafka CR's Creating,
        // then its Ready) would otherwise conflict and wait for the next pass.
        cr.metadata = updated.metadata;
        cr.status = status;
    }

    async setFinalizers(kind: Kind, cr: CustomResource, finalizers: string[]): Promise<void> {
        const updated = (await this.custom.replaceNamespacedCustomObject({
            group: STRIMZI_GROUP,
            version: STRIMZI_VERSION,
            plural: PLURALS[kind],
            namespace: cr.metadata.namespace,
            name: cr.metadata.name,
            body: { ...cr, metadata: { ...cr.metadata, finalizers } },
        })) as CustomResource;
        cr.metadata = updated.metadata;
    }

    async readSecret(namespace: string, name: string) {
        try {
            return await this.core.readNamespacedSecret({ name, namespace });
        } catch (e) {
            if ((e as { code?: number }).code === 404) return undefined;
            throw e;
        }
    }

    /** Creates the Secret, or replaces it when its data or labels differ. */
    async upsertSecret(namespace: string, body: SecretBody): Promise<void> {
        const existing = await this.readSecret(namespace, body.metadata.name);
        if (!existing) {
            await this.core.createNamespacedSecret({ namespace, body });
        } else if (
            JSON.stringify(existing.data ?? {}) !== JSON.stringify(body.data) ||
            JSON.stringify(existing.metadata?.labels ?? {}) !== JSON.stringify(body.metadata.labels)
        ) {
            await this.core.replaceNamespacedSecret({
                name: body.metadata.name,
                namespace,
                body: {
                    ...body,
                    metadata: {
                        ...body.metadata,
                        resourceVersion: existing.metadata?.resourceVersion,
                    },
                },
            });
        }
    }
}

/** The reference that makes a Secret go with the CR that made it. */
export function ownerReference(cr: CustomResource, kind: Kind): V1OwnerReference {
    return {
        apiVersion: `${STRIMZI_GROUP}/${STRIMZI_VERSION}`,
        kind,
        name: cr.metadata.name,
        uid: cr.metadata.uid!,
        blockOwnerDeletion: true,
        controller: false,
    };
}

/** A failure whose status reason is not the default `KafkaError`. */
export class NamedError extends Error {
    constructor(
        readonly reason: string,
        message: string,
    ) {
        super(message);
    }
}

/** The message of an error and of the errors it aggregates (the Kafka client nests them). */
export function errorText(e: unknown): string {
    if (e instanceof Error) {
        const nested = (e as { errors?: unknown[] }).errors;
        const inner =
            Array.isArray(nested) && nested.length > 0
                ? ` (${nested.map(errorText).join("; ")})`
                : "";
        return `${e.message}${inner}`;
    }
    return String(e);
}
