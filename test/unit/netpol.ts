/**
 * Offline NetworkPolicy analysis for the unit tests: a synthetic model of namespaces and pods,
 * traffic between them, and cyclonus (`analyze --mode query-traffic`, a real policy engine, no
 * cluster) deciding each flow from the policies as YAML files. Also the NetworkPolicy the Strimzi
 * operator writes for a Kafka CR, which the tests cannot get from a running operator.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";

/** A pod of the model. */
export interface ModelPod {
    readonly name: string;
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly ip: string;
}

/** A destination outside the cluster (no pod, no namespace). */
export interface ExternalHost {
    readonly name: string;
    readonly ip: string;
}

export type Endpoint = ModelPod | ExternalHost;

/** One flow to decide: from a pod to a pod or an address, on a port. */
export interface Flow {
    readonly from: ModelPod;
    readonly to: Endpoint;
    readonly port: number;
    readonly protocol?: "TCP" | "UDP";
}

/** A flow's name in a truth table: `client -> clickhouse:8123/TCP`. */
export function flowName(f: Flow): string {
    return `${f.from.name} -> ${f.to.name}:${f.port}/${f.protocol ?? "TCP"}`;
}

/** Every namespace carries its name as a label (Kubernetes sets it since 1.22). */
function namespaceLabels(namespace: string): Record<string, string> {
    return { "kubernetes.io/metadata.name": namespace };
}

function peer(e: Endpoint): Record<string, unknown> {
    if (!("namespace" in e)) return { IP: e.ip };
    return {
        IP: e.ip,
        Internal: {
            Namespace: e.namespace,
            NamespaceLabels: namespaceLabels(e.namespace),
            PodLabels: e.labels,
        },
    };
}

/**
 * The cyclonus binary from KCS_CYCLONUS. Never a skip: without it the analysis cannot run, and
 * the test fails saying how to get it.
 */
export function cyclonusBin(): string {
    const bin = process.env.KCS_CYCLONUS;
    if (!bin) {
        throw new Error(
            'KCS_CYCLONUS is not set: ./run test builds cyclonus and exports it; for one run: export KCS_CYCLONUS="$(bash tools/lint/cyclonus.sh | tail -1)"',
        );
    }
    try {
        fs.accessSync(bin, fs.constants.X_OK);
    } catch {
        throw new Error(
            `KCS_CYCLONUS=${bin} is not an executable file: rebuild it with bash tools/lint/cyclonus.sh`,
        );
    }
    return bin;
}

/**
 * Whether each flow is allowed under `policies` (NetworkPolicy objects), as cyclonus decides it:
 * flow name -> allowed. Each policy goes into a file of its own (cyclonus reads one per file).
 */
export function analyse(
    policies: readonly Record<string, unknown>[],
    flows: readonly Flow[],
): Record<string, boolean> {
    const bin = cyclonusBin();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-netpol-"));
    try {
        const policyDir = path.join(dir, "policies");
        fs.mkdirSync(policyDir);
        policies.forEach((p, i) =>
            fs.writeFileSync(path.join(policyDir, `${i}.yaml`), YAML.stringify(p)),
        );
        const traffic = flows.map((f) => ({
            Source: peer(f.from),
            Destination: peer(f.to),
            Protocol: f.protocol ?? "TCP",
            ResolvedPort: f.port,
            ResolvedPortName: "",
        }));
        const trafficFile = path.join(dir, "traffic.json");
        fs.writeFileSync(trafficFile, JSON.stringify(traffic));
        const args = ["analyze", "--mode", "query-traffic", "--policy-path", policyDir];
        const res = spawnSync(bin, [...args, "--traffic-path", trafficFile], {
            encoding: "utf8",
        });
        if (res.status !== 0)
            throw new Error(`cyclonus failed (exit ${res.status}): ${res.stderr.slice(-2000)}`);
        const verdicts = [...res.stdout.matchAll(/\|\s*IS ALLOWED\?\s*\|\s*(TRUE|FALSE)\s*\|/g)];
        if (verdicts.length !== flows.length) {
            throw new Error(
                `cyclonus answered ${verdicts.length} of ${flows.length} flows:\n${res.stdout.slice(-3000)}`,
            );
        }
        return Object.fromEntries(flows.map((f, i) => [flowName(f), verdicts[i]![1] === "TRUE"]));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Where the Strimzi cluster operator runs, as its network policies see it. */
export type OperatorPlacement =
    /** The Kafka CR's namespace. */
    | { readonly sameNamespace: true }
    /** Another namespace, no STRIMZI_OPERATOR_NAMESPACE_LABELS set. */
    | { readonly sameNamespace: false };

const STRIMZI_PORTS = { controlPlane: 9090, replication: 9091, agent: 8443, metrics: 9404 };

/**
 * The NetworkPolicy the Strimzi cluster operator (1.2, KRaft) writes for the broker pods of a Kafka
 * CR, rendered here from the CR the way the operator does it (KafkaCluster.generateNetworkPolicy
 * with NetworkPolicyUtils): named `<cluster>-network-policy-kafka`, selecting the pods by Strimzi's
 * selector labels, one TCP ingress rule per port:
 * - 9090 (control plane) from the cluster's own pods and the cluster operator;
 * - 9091 (replication) from the operator, the cluster's pods, the entity operator, Kafka Exporter
 *   and Cruise Control;
 * - 8443 (Kafka agent) from the operator;
 * - each listener's port from its `networkPolicyPeers` (none: from everyone);
 * - 9404 (metrics) from everyone when metrics are configured.
 * The operator is matched by `strimzi.io/kind: cluster-operator`, in the same namespace or, from
 * another namespace with no namespace labels configured, in any namespace. `policyTypes` is what
 * the API server defaults it to (the operator leaves it out).
 */
export function strimziKafkaPolicy(
    kafkaCr: { metadata: { name: string; namespace: string }; spec: Record<string, any> },
    operator: OperatorPlacement,
): Record<string, unknown> {
    const cluster = kafkaCr.metadata.name;
    const selector = {
        "strimzi.io/cluster": cluster,
        "strimzi.io/kind": "Kafka",
        "strimzi.io/name": `${cluster}-kafka`,
    };
    const byName = (name: string) => ({
        podSelector: { matchLabels: { "strimzi.io/name": name } },
    });
    const operatorPeer = {
        podSelector: { matchLabels: { "strimzi.io/kind": "cluster-operator" } },
        ...(operator.sameNamespace ? {} : { namespaceSelector: {} }),
    };
    const clusterPeer = { podSelector: { matchLabels: selector } };
    const rule = (port: number, from: unknown[]) => ({
        ports: [{ port, protocol: "TCP" }],
        ...(from.length > 0 ? { from } : {}),
    });
    const kafka = kafkaCr.spec.kafka as {
        listeners: { port: number; networkPolicyPeers?: unknown[] }[];
        metricsConfig?: unknown;
    };
    return {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: {
            name: `${cluster}-network-policy-kafka`,
            namespace: kafkaCr.metadata.namespace,
        },
        spec: {
            podSelector: { matchLabels: selector },
            policyTypes: ["Ingress"],
            ingress: [
                rule(STRIMZI_PORTS.controlPlane, [clusterPeer, operatorPeer]),
                rule(STRIMZI_PORTS.replication, [
                    operatorPeer,
                    clusterPeer,
                    byName(`${cluster}-entity-operator`),
                    byName(`${cluster}-kafka-exporter`),
                    byName(`${cluster}-cruise-control`),
                ]),
                rule(STRIMZI_PORTS.agent, [operatorPeer]),
                ...kafka.listeners.map((l) => rule(l.port, l.networkPolicyPeers ?? [])),
                ...(kafka.metricsConfig ? [rule(STRIMZI_PORTS.metrics, [])] : []),
            ],
        },
    };
}
