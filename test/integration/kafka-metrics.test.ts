/**
 * The JMX exporter rules the stack gives Strimzi (components/kafka/metrics.ts), loaded into the
 * real Prometheus JMX exporter agent (the version Strimzi ships, from Maven Central) on a real
 * broker: after known traffic, the series dashboards and alerts need are there with the right
 * labels and values, every rule yields at least one series, and nothing fails to scrape.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { JMX_EXPORTER_RULES, JMX_RULES } from "../../components/kafka/metrics";
import { KafkaBroker, freePort, kafkaLibDir, startKafka } from "../../runtime/kafka";

const TOPIC = "metrics.events";
const MESSAGES = 250;

interface Sample {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly value: number;
}

/** Prometheus text format: `name{a="x",b="y"} value` lines; comments skipped. */
function parseExposition(text: string): Sample[] {
    const samples: Sample[] = [];
    for (const line of text.split("\n")) {
        if (line === "" || line.startsWith("#")) continue;
        const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
        assert.ok(m, `not a Prometheus sample line: ${line}`);
        const labels: Record<string, string> = {};
        for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
        samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
    return samples;
}

describe(
    "Kafka metrics: the stack's JMX rules in the real exporter agent",
    { timeout: 5 * 60_000 },
    () => {
        let broker: KafkaBroker;
        let port: number;
        let dir: string;

        const scrape = async (): Promise<Sample[]> => {
            const res = await fetch(`http://127.0.0.1:${port}/metrics`);
            assert.equal(res.status, 200, `GET /metrics answered ${res.status}`);
            return parseExposition(await res.text());
        };
        const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
            samples.filter(
                (s) =>
                    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
            );

        before(async () => {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-metrics-"));
            const rules = path.join(dir, "metrics-config.yml");
            fs.writeFileSync(rules, JMX_EXPORTER_RULES);
            const agent = fs
                .readdirSync(await kafkaLibDir())
                .find((f) => /^jmx_prometheus_javaagent-.*\.jar$/.test(f));
            assert.ok(
                agent,
                "the JMX exporter agent is missing from KAFKA_LIB: run tools/kafka/fetch.sh",
            );
            port = await freePort();
            broker = await startKafka({
                jvmOptions: [
                    `-javaagent:${path.join(await kafkaLibDir(), agent)}=127.0.0.1:${port}:${rules}`,
                ],
            });
            await broker.createTopic(TOPIC, 2);
            await broker.produce(
                TOPIC,
                Array.from({ length: MESSAGES }, (_, i) => `{"n":${i}}`),
            );
            assert.equal((await broker.consume(TOPIC, MESSAGES)).length, MESSAGES);
        });

        after(async () => {
            await broker?.stop();
            if (dir) fs.rmSync(dir, { recursive: true, force: true });
        });

        it("per-topic throughput counts exactly the messages produced", async () => {
            const samples = await scrape();
            const messagesIn = find(samples, "kafka_server_brokertopicmetrics_messagesin_total", {
                topic: TOPIC,
            });
            assert.equal(messagesIn.length, 1, "one messages-in series for the topic");
            assert.equal(messagesIn[0]!.value, MESSAGES);
            const bytesOut = find(samples, "kafka_server_brokertopicmetrics_bytesout_total", {
                topic: TOPIC,
            });
            assert.ok(bytesOut[0] && bytesOut[0].value > 0, "bytes out for the consumed topic");
            const total = find(samples, "kafka_server_brokertopicmetrics_messagesin_total").filter(
                (x) => x.labels["topic"] === undefined,
            );
            assert.equal(total.length, 1, "one broker-wide messages-in series (no topic label)");
            assert.ok(total[0]!.value >= MESSAGES, `broker-wide ${total[0]!.value} < ${MESSAGES}`);
        });

        it("replication, log size, requests, connections, controller and KRaft series", async () => {
            const samples = await scrape();
            const one = (name: string, labels: Record<string, string> = {}): number => {
                const got = find(samples, name, labels);
                assert.ok(got.length > 0, `no series ${name}${JSON.stringify(labels)}`);
                return got[0]!.value;
            };
            assert.equal(one("kafka_server_replicamanager_underreplicatedpartitions"), 0);
            assert.ok(one("kafka_server_replicamanager_partitioncount") >= 2);
            assert.ok(
                one("kafka_log_log_size", { topic: TOPIC, partition: "0" }) > 0 ||
                    one("kafka_log_log_size", { topic: TOPIC, partition: "1" }) > 0,
            );
            assert.ok(
                one("kafka_network_requestmetrics_requests_total", { request: "Produce" }) > 0,
            );
            one("kafka_network_requestmetrics_total_time_ms", {
                request: "Fetch",
                percentile: "99",
            });
            one("kafka_server_socket_server_metrics_connection_count", { listener: "PLAINTEXT" });
            assert.equal(one("kafka_controller_kafkacontroller_activecontrollercount"), 1);
            one("kafka_server_raftmetrics_current_leader");
        });

        it("every rule yields a series (no rule is dead), and the scrape had no error", async () => {
            const samples = await scrape();
            const names = new Set(samples.map((s) => s.name));
            const prefix = (ruleName: string) => ruleName.toLowerCase().replace(/\$\d.*$/, "");
            const dead = JMX_RULES.filter(
                (r) => ![...names].some((n) => n.startsWith(prefix(r.name))),
            );
            assert.deepEqual(
                dead.map((r) => r.pattern),
                [],
                "rules that matched no MBean",
            );
            assert.equal(one(samples, "jmx_scrape_error"), 0);
        });
    },
);

function one(samples: Sample[], name: string): number {
    const s = samples.find((x) => x.name === name);
    assert.ok(s, `no series ${name}`);
    return s.value;
}
