/**
 * Issue 12, acceptance 2: who reaches ClickHouse and the Kafka listeners, decided by a real
 * NetworkPolicy analyser (cyclonus, `KCS_CYCLONUS`) over the policies the dev and prod stacks
 * render, plus the one the Strimzi operator writes from the Kafka CR's `networkPolicyPeers`
 * (rendered as Strimzi does, test/unit/netpol.ts), on a model of pods:
 * - ClickHouse on its ports (8123/9000; prod: TLS, 8443/9440) only from the configured clients;
 *   nobody on 9004/9005/9009, nor on the plain ports under TLS. The DDL provider's port-forward
 *   is no network flow (the runtime dials the pod's loopback; pods cannot block loopback or
 *   their node), so the table has no row for it: RBAC governs that path.
 * - The Kafka listeners only from ClickHouse and the declared producers; Strimzi's own ports stay
 *   open to the operator.
 * - ClickHouse's egress: DNS and the brokers' listener ports (or the external bootstrap), nothing
 *   else.
 * Controls show the analysis can fail: an allow-all policy, or listeners without peers, change
 * the table.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clickhouseLabels, parseBootstrap, strimziBrokerPeer } from "../../components/clickhouse";
import { type PipelineArgs, kafkaEgress } from "../../components/pipeline/pipeline";
import { jobPodLabels } from "../../components/jobs";
import { type Recorded, mockPassword, ofType, runStack, strimzi } from "./mocks";
import {
    type Endpoint,
    type Flow,
    type ModelPod,
    analyse,
    cyclonusBin,
    flowName,
    strimziKafkaPolicy,
} from "./netpol";

const NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy";
const CLIENTS = JSON.stringify([{ namespace: "apps", podLabels: { app: "dashboard" } }]);
const PRODUCERS = JSON.stringify([{ namespace: "apps", podLabels: { app: "orders-producer" } }]);

/**
 * The ports ClickHouse listens on (HTTP(S), native), and those it must refuse: the image's MySQL,
 * PostgreSQL and interserver ports, and the plain ones when TLS replaces them.
 */
function clickhousePorts(tls: boolean): { open: number[]; closed: number[] } {
    const unused = [9004, 9005, 9009];
    return tls
        ? { open: [8443, 9440], closed: [8123, 9000, ...unused] }
        : { open: [8123, 9000], closed: unused };
}

/** The model: the stack's namespace, a client namespace, an unrelated one, and kube-system. */
function model(stackNamespace: string, operatorNamespace: string, tls = false) {
    let n = 0;
    const pod = (name: string, namespace: string, labels: Record<string, string>): ModelPod => ({
        name,
        namespace,
        labels,
        ip: `10.0.0.${++n}`,
    });
    return {
        clickhousePorts: clickhousePorts(tls),
        clickhouse: pod("clickhouse", stackNamespace, clickhouseLabels("clickhouse")),
        broker: pod("broker", stackNamespace, {
            "strimzi.io/cluster": "events",
            "strimzi.io/kind": "Kafka",
            "strimzi.io/name": "events-kafka",
            "strimzi.io/broker-role": "true",
            "strimzi.io/pool-name": "brokers",
        }),
        operator: pod("operator", operatorNamespace, { "strimzi.io/kind": "cluster-operator" }),
        client: pod("client", "apps", { app: "dashboard" }),
        producer: pod("producer", "apps", { app: "orders-producer" }),
        // The client's labels, in the wrong namespace; and an unlabelled pod beside ClickHouse.
        stranger: pod("stranger", "other", { app: "dashboard" }),
        neighbour: pod("neighbour", stackNamespace, { app: "neighbour" }),
        dns: pod("dns", "kube-system", { "k8s-app": "kube-dns" }),
        // A declared query's pod (the shipped retention report's CronJob).
        query: pod("query", stackNamespace, jobPodLabels("clickhouse")),
    };
}
type Model = ReturnType<typeof model>;

/** A truth table row: a flow and whether it must be allowed. */
type Row = readonly [Flow, boolean];

function row(from: ModelPod, to: Endpoint, port: number, allowed: boolean, udp = false): Row {
    return [{ from, to, port, ...(udp ? { protocol: "UDP" as const } : {}) }, allowed];
}

/**
 * ClickHouse's ingress: the clients (when configured) on the ports in use, the query pods on the
 * HTTP(S) port only (their own egress allows no other), nobody else.
 */
function clickhouseIngressRows(m: Model, clientsConfigured: boolean): Row[] {
    const sources = [m.client, m.producer, m.stranger, m.neighbour, m.broker, m.operator, m.query];
    const httpPort = m.clickhousePorts.open[0];
    const allowed = (src: ModelPod, port: number) =>
        (clientsConfigured && src === m.client) || (src === m.query && port === httpPort);
    return sources.flatMap((src) => [
        ...m.clickhousePorts.open.map((p) => row(src, m.clickhouse, p, allowed(src, p))),
        ...m.clickhousePorts.closed.map((p) => row(src, m.clickhouse, p, false)),
    ]);
}

/** The brokers: listeners from ClickHouse and the producers (when declared); Strimzi's own ports. */
function kafkaRows(m: Model, listeners: number[], producersDeclared: boolean): Row[] {
    const callers = [m.clickhouse, m.producer, m.client, m.stranger, m.neighbour];
    const allowed = (src: ModelPod) =>
        src === m.clickhouse || (producersDeclared && src === m.producer);
    return [
        ...callers.flatMap((src) => listeners.map((p) => row(src, m.broker, p, allowed(src)))),
        // Replication and control plane: Strimzi's components only, never a client.
        ...callers.flatMap((src) => [9090, 9091].map((p) => row(src, m.broker, p, false))),
        row(m.operator, m.broker, 9091, true),
        row(m.operator, m.broker, 8443, true),
        row(m.operator, m.broker, 9090, true),
    ];
}

/** ClickHouse's egress: DNS, the brokers' listeners; nothing else. */
function clickhouseEgressRows(m: Model, listeners: number[]): Row[] {
    return [
        row(m.clickhouse, m.dns, 53, true, true),
        row(m.clickhouse, m.dns, 53, true),
        row(m.clickhouse, m.dns, 80, false),
        row(m.clickhouse, m.stranger, 8080, false),
        row(m.clickhouse, m.neighbour, 9093, false),
        row(m.clickhouse, m.producer, 9093, false),
        row(m.clickhouse, { name: "internet", ip: "8.8.8.8" }, 443, false),
        ...[9090, 9091].map((p) => row(m.clickhouse, m.broker, p, false)),
        ...listeners.map((p) => row(m.clickhouse, m.broker, p, true)),
    ];
}

/** The query pods: out to DNS and ClickHouse's HTTP(S) port only; nothing connects to them. */
function queryRows(m: Model): Row[] {
    return [
        row(m.query, m.dns, 53, true, true),
        row(m.query, m.dns, 53, true),
        row(m.query, m.broker, 9093, false),
        row(m.query, m.neighbour, 8123, false),
        row(m.query, { name: "internet", ip: "8.8.8.8" }, 443, false),
        ...[m.client, m.stranger, m.neighbour, m.clickhouse].map((src) =>
            row(src, m.query, 8080, false),
        ),
    ];
}

function inputsOf(resources: Recorded[]): Record<string, unknown>[] {
    return ofType(resources, NETWORK_POLICY).map((r) => r.inputs);
}

/** Runs cyclonus over the rows' flows and compares its table with the expected one. */
function assertTable(policies: Record<string, unknown>[], rows: Row[]): void {
    const actual = analyse(
        policies,
        rows.map(([f]) => f),
    );
    const expected = Object.fromEntries(rows.map(([f, allowed]) => [flowName(f), allowed]));
    assert.deepEqual(actual, expected);
}

async function strimziStack(stack: "dev" | "prod", overrides: Record<string, string> = {}) {
    const { resources, config } = await runStack(stack, overrides);
    const kafkaCr = strimzi(resources, "Kafka")[0]!.inputs as Parameters<
        typeof strimziKafkaPolicy
    >[0];
    // prod installs the operator in the stack's namespace; dev expects one elsewhere.
    const operatorNamespace = config.strimziInstall ? config.namespace : "strimzi";
    const m = model(config.namespace, operatorNamespace, config.clickhouseTls !== "off");
    const listeners = (kafkaCr.spec.kafka.listeners as { port: number }[]).map((l) => l.port);
    const strimziPolicy = strimziKafkaPolicy(kafkaCr, { sameNamespace: config.strimziInstall });
    return { resources, config, kafkaCr, m, listeners, strimziPolicy };
}

describe("network policies, analysed with cyclonus", () => {
    it("KCS_CYCLONUS names the analyser (./run test exports it)", () => {
        assert.match(cyclonusBin(), /cyclonus$/);
    });

    for (const stack of ["dev", "prod"] as const) {
        it(`${stack}: ClickHouse only from its clients, the listeners only from ClickHouse and producers`, async () => {
            const { resources, m, listeners, strimziPolicy } = await strimziStack(stack, {
                clickhouseClients: CLIENTS,
                kafkaProducers: PRODUCERS,
            });
            assert.deepEqual(listeners, stack === "dev" ? [9092, 9093] : [9093]);
            const policies = [...inputsOf(resources), strimziPolicy];
            assert.equal(
                policies.length,
                4,
                "ClickHouse ingress and egress, the query pods', Strimzi's brokers",
            );
            assertTable(policies, [
                ...clickhouseIngressRows(m, true),
                ...queryRows(m),
                ...kafkaRows(m, listeners, true),
                ...clickhouseEgressRows(m, listeners),
            ]);
        });
    }

    it("the stack files as they are: no pod reaches ClickHouse, only ClickHouse the listeners", async () => {
        const { resources, m, listeners, strimziPolicy } = await strimziStack("dev");
        assertTable(
            [...inputsOf(resources), strimziPolicy],
            [
                ...clickhouseIngressRows(m, false),
                ...queryRows(m),
                ...kafkaRows(m, listeners, false),
            ],
        );
    });

    it("prod: Strimzi keeps the metrics port open to every pod (its rule, not a listener)", async () => {
        const { resources, m, strimziPolicy } = await strimziStack("prod");
        assertTable(
            [...inputsOf(resources), strimziPolicy],
            [row(m.stranger, m.broker, 9404, true), row(m.stranger, m.broker, 9093, false)],
        );
    });

    describe("external Kafka: egress to the bootstrap only", () => {
        const external = async (overrides: Record<string, string>) => {
            const { resources, config } = await runStack(
                "dev",
                {
                    kafkaMode: "external",
                    kafkaExternalUsername: "ingest",
                    clickhouseClients: CLIENTS,
                    ...overrides,
                },
                { kafkaExternalPassword: mockPassword("external") as never },
            );
            assert.equal(strimzi(resources, "Kafka").length, 0, "no Kafka CR in external mode");
            return { policies: inputsOf(resources), m: model(config.namespace, "strimzi") };
        };
        const host = (ip: string) => ({ name: ip, ip });

        it("IP bootstrap: those addresses on those ports", async () => {
            const { policies, m } = await external({
                kafkaExternalBootstrap: "10.20.0.5:9093,10.20.0.6:9093",
            });
            assertTable(policies, [
                row(m.clickhouse, host("10.20.0.5"), 9093, true),
                row(m.clickhouse, host("10.20.0.6"), 9093, true),
                row(m.clickhouse, host("10.20.0.7"), 9093, false),
                row(m.clickhouse, host("10.20.0.5"), 9092, false),
                row(m.clickhouse, m.dns, 53, true, true),
                ...clickhouseIngressRows(m, true),
            ]);
        });

        it("host-name bootstrap: its port to any address (a policy cannot select a name)", async () => {
            const { policies, m } = await external({
                kafkaExternalBootstrap: "kafka.example.com:9094",
            });
            assertTable(policies, [
                row(m.clickhouse, host("203.0.113.9"), 9094, true),
                row(m.clickhouse, host("203.0.113.9"), 9093, false),
                row(m.clickhouse, m.stranger, 8080, false),
            ]);
        });

        it("kafkaExternalCidrs narrows a host-name bootstrap to the brokers' networks", async () => {
            const { policies, m } = await external({
                kafkaExternalBootstrap: "kafka.example.com:9094",
                kafkaExternalCidrs: "10.30.0.0/16",
            });
            assertTable(policies, [
                row(m.clickhouse, host("10.30.1.1"), 9094, true),
                row(m.clickhouse, host("203.0.113.9"), 9094, false),
            ]);
        });
    });

    describe("controls: the analysis can fail", () => {
        it("an allow-all ingress policy lets strangers reach ClickHouse, and the table says so", async () => {
            const { resources, m, strimziPolicy } = await strimziStack("dev", {
                clickhouseClients: CLIENTS,
            });
            const allowAll = {
                apiVersion: "networking.k8s.io/v1",
                kind: "NetworkPolicy",
                metadata: { name: "allow-all", namespace: m.clickhouse.namespace },
                spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [{}] },
            };
            const rows = clickhouseIngressRows(m, true);
            const actual = analyse(
                [...inputsOf(resources), strimziPolicy, allowAll],
                rows.map(([f]) => f),
            );
            assert.equal(actual[flowName(row(m.stranger, m.clickhouse, 9004, false)[0])], true);
            assert.throws(() =>
                assertTable([...inputsOf(resources), strimziPolicy, allowAll], rows),
            );
        });

        it("listeners without networkPolicyPeers are open to every pod (Strimzi's default)", async () => {
            const { resources, m, kafkaCr, listeners } = await strimziStack("dev");
            const listenersWithoutPeers = (
                kafkaCr.spec.kafka.listeners as Record<string, unknown>[]
            ).map(({ networkPolicyPeers: _, ...l }) => l);
            const open = strimziKafkaPolicy(
                {
                    ...kafkaCr,
                    spec: { kafka: { ...kafkaCr.spec.kafka, listeners: listenersWithoutPeers } },
                },
                { sameNamespace: false },
            );
            const actual = analyse(
                [...inputsOf(resources), open],
                [row(m.stranger, m.broker, listeners[0]!, false)[0]],
            );
            assert.deepEqual(Object.values(actual), [true]);
        });
    });
});

describe("network policy config", () => {
    it("a client entry needs a namespace or labels; a bad bootstrap names the key", async () => {
        await assert.rejects(
            runStack("dev", { clickhouseClients: '[{"podLabels":{}}]' }),
            /clickhouseClients: each entry needs a namespace, podLabels or both/,
        );
        await assert.rejects(
            runStack("dev", { kafkaProducers: "apps/producer" }),
            /kafkaProducers: must be a JSON list/,
        );
        await assert.rejects(
            runStack("dev", { clickhouseClients: '[{"namespace":"Apps"}]' }),
            /clickhouseClients: namespace must be a namespace name \(at 0\.namespace\)/,
        );
        assert.throws(() => parseBootstrap("kafka.example.com"), /is not host:port/);
        assert.deepEqual(parseBootstrap("[fd00::1]:9093, b:9094"), [
            { host: "fd00::1", port: 9093 },
            { host: "b", port: 9094 },
        ]);
    });

    it("a broker list given to the ingestion tables is allowed too, unless it is the cluster's own", () => {
        const strimziArgs = (kafkaBrokers?: string) =>
            ({
                kafka: {
                    mode: "strimzi",
                    cluster: { clusterName: "events", plainListener: false },
                },
                ...(kafkaBrokers ? { ingestion: { kafkaBrokers } } : {}),
            }) as unknown as PipelineArgs;
        const brokers = { to: [strimziBrokerPeer("events")], ports: [9093] };
        assert.deepEqual(kafkaEgress(strimziArgs()), [brokers]);
        assert.deepEqual(kafkaEgress(strimziArgs("events-kafka-bootstrap.kcs.svc:9093")), [
            brokers,
        ]);
        assert.deepEqual(kafkaEgress(strimziArgs("10.1.2.3:9092")), [
            brokers,
            { to: [{ ipBlock: { cidr: "10.1.2.3/32" } }], ports: [9092] },
        ]);
    });
});
