/**
 * Pure builders for the NetworkPolicies around ClickHouse, and the peer selectors the Kafka CR's
 * listeners take (`networkPolicyPeers`). They return plain resource args, so tests render them
 * without Pulumi and hand them to a real policy analyser (test/unit/network-policy.test.ts).
 *
 * What they allow, and what no NetworkPolicy can see:
 * - Ingress to ClickHouse: only the configured clients, only on the listener ports.
 * - The DDL provider's `port-forward` connection needs no rule: the API server hands it to the
 *   kubelet, and the container runtime dials the port on the pod's own loopback, inside the pod's
 *   network namespace. Pods cannot block loopback or their own node (Kubernetes documents both
 *   under "what you can't do" with NetworkPolicies), so this path, and the kubelet's probes, are
 *   governed by RBAC (`pods/portforward` in the namespace), not by these policies. A provider that
 *   connects in `url` mode from a pod is a client like any other and must be listed.
 * - Egress from ClickHouse: DNS (kube-dns in kube-system, 53 UDP and TCP) and the Kafka brokers'
 *   listener ports; nothing else.
 */
import { isIP } from "node:net";
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

type Port = k8s.types.input.networking.v1.NetworkPolicyPort;
type Selector = { readonly matchLabels: Readonly<Record<string, string>> };

/**
 * A NetworkPolicy peer as plain data (Kubernetes' NetworkPolicyPeer, the subset used here), so the
 * same value goes into a NetworkPolicy and into a Kafka CR listener's `networkPolicyPeers`.
 */
export type Peer = {
    readonly namespaceSelector?: Selector;
    readonly podSelector?: Selector;
    readonly ipBlock?: { readonly cidr: string };
};

/** The label Kubernetes puts on every namespace, holding its name (since 1.22). */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/**
 * Pods allowed to connect: those with `podLabels` in `namespace`. Without `namespace`, the pods of
 * the policy's own namespace; without `podLabels`, every pod of `namespace`. One of the two must be
 * given: an empty peer would admit every pod of the namespace, which is what a config mistake looks
 * like, so it is refused.
 */
export interface PeerSpec {
    readonly namespace?: string;
    readonly podLabels?: Readonly<Record<string, string>>;
}

/** Where the Kafka engine connects: the destinations and the TCP ports on them. */
export interface EgressTarget {
    readonly to: readonly Peer[];
    readonly ports: readonly number[];
}

/** The NetworkPolicy peer a spec stands for. */
export function peer(spec: PeerSpec): Peer {
    const labels = spec.podLabels ?? {};
    if (spec.namespace === undefined && Object.keys(labels).length === 0) {
        throw new Error(
            "a network peer needs a namespace, pod labels or both: an empty one would admit every pod of the namespace",
        );
    }
    return {
        ...(spec.namespace !== undefined
            ? { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: spec.namespace } } }
            : {}),
        ...(Object.keys(labels).length > 0 ? { podSelector: { matchLabels: { ...labels } } } : {}),
    };
}

/** The cluster DNS: CoreDNS (or kube-dns) pods in kube-system, labelled `k8s-app: kube-dns`. */
export const DNS_PEER: Peer = {
    namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: "kube-system" } },
    podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
};

export const DNS_PORTS: Port[] = [
    { protocol: "UDP", port: 53 },
    { protocol: "TCP", port: 53 },
];

/**
 * The broker pods of a Strimzi cluster, by the labels Strimzi gives them: its selector labels
 * (cluster, kind, name `<cluster>-kafka`) and the broker role, so controller-only nodes (no client
 * listeners) are left out.
 */
export function strimziBrokerPeer(cluster: string): Peer {
    return {
        podSelector: {
            matchLabels: {
                "strimzi.io/cluster": cluster,
                "strimzi.io/kind": "Kafka",
                "strimzi.io/name": `${cluster}-kafka`,
                "strimzi.io/broker-role": "true",
            },
        },
    };
}

/** `host:port` entries of a bootstrap list; `[v6]:port` for IPv6 literals. */
export function parseBootstrap(bootstrap: string): { host: string; port: number }[] {
    return bootstrap
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== "")
        .map((entry) => {
            const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(entry);
            const port = Number(m?.[3]);
            if (!m || port < 1 || port > 65535)
                throw new Error(`bootstrap entry '${entry}' is not host:port (or [ipv6]:port)`);
            return { host: (m[1] ?? m[2])!, port };
        });
}

/**
 * Egress to brokers outside the stack. A NetworkPolicy selects addresses, never names: IP literals
 * become /32 (/128) blocks; a host name cannot be resolved here, so its port is allowed to any
 * address unless `cidrs` (the brokers' networks) are given, which then replace the addresses of
 * every entry. The brokers a client is sent on to (their advertised addresses) must fall in the
 * same blocks: list them all in the bootstrap, or give `cidrs`.
 */
export function bootstrapEgress(bootstrap: string, cidrs: readonly string[] = []): EgressTarget[] {
    const entries = parseBootstrap(bootstrap);
    if (entries.length === 0) return [];
    const ports = [...new Set(entries.map((e) => e.port))];
    const block = (cidr: string): Peer => ({ ipBlock: { cidr } });
    if (cidrs.length > 0) return [{ to: cidrs.map(block), ports }];
    if (entries.some((e) => isIP(e.host) === 0))
        return [{ to: [block("0.0.0.0/0"), block("::/0")], ports }];
    const hosts = [...new Set(entries.map((e) => e.host))];
    return [{ to: hosts.map((h) => block(isIP(h) === 6 ? `${h}/128` : `${h}/32`)), ports }];
}

export interface ClickHouseNetworkSpec {
    /** The ClickHouse instance's name: prefixes the policies' names. */
    readonly name: string;
    readonly namespace: pulumi.Input<string>;
    /** The ClickHouse pods' labels (the StatefulSet's selector). */
    readonly podLabels: Readonly<Record<string, string>>;
    /** The ports ClickHouse listens on. */
    readonly ports: readonly number[];
    /** Pods allowed to connect; none: only port-forward and the kubelet reach ClickHouse. */
    readonly clients: readonly PeerSpec[];
    /** Where the Kafka engine connects; none: DNS only. */
    readonly kafka: readonly EgressTarget[];
}

const tcp = (ports: readonly number[]): Port[] => ports.map((port) => ({ protocol: "TCP", port }));

function metadata(spec: ClickHouseNetworkSpec, suffix: string) {
    return {
        name: `${spec.name}-${suffix}`,
        namespace: spec.namespace,
        labels: { ...spec.podLabels },
    };
}

/** Ingress to the ClickHouse pods: the clients on the listener ports, nobody else. */
export function ingressPolicy(spec: ClickHouseNetworkSpec): k8s.networking.v1.NetworkPolicyArgs {
    const ingress =
        spec.clients.length === 0 ? [] : [{ from: spec.clients.map(peer), ports: tcp(spec.ports) }];
    return {
        metadata: metadata(spec, "ingress"),
        spec: {
            podSelector: { matchLabels: { ...spec.podLabels } },
            policyTypes: ["Ingress"],
            ingress,
        },
    };
}

/** Egress from the ClickHouse pods: DNS and the Kafka brokers, nothing else. */
export function egressPolicy(spec: ClickHouseNetworkSpec): k8s.networking.v1.NetworkPolicyArgs {
    for (const target of spec.kafka) {
        // A rule without `to` would allow every destination.
        if (target.to.length === 0 || target.ports.length === 0)
            throw new Error(`${spec.name}: a Kafka egress target needs destinations and ports`);
    }
    return {
        metadata: metadata(spec, "egress"),
        spec: {
            podSelector: { matchLabels: { ...spec.podLabels } },
            policyTypes: ["Egress"],
            egress: [
                { to: [DNS_PEER], ports: DNS_PORTS },
                ...spec.kafka.map((t) => ({ to: [...t.to], ports: tcp(t.ports) })),
            ],
        },
    };
}
