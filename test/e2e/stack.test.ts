/**
 * End to end, as users run it: the real Pulumi engine and providers (Automation API, a fresh
 * stack on a file backend), a real Kubernetes API server (kwok: pods become Ready on fake nodes),
 * a real Kafka broker and the real ClickHouse engine behind its HTTP interface.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { renderKafkaConfig } from "../../components/clickhouse/render";
import { loadStreams } from "../../schemas/loader";
import { sampleMessages } from "../../schemas/sample";
import { ClickHouseServer, startClickHouseServer } from "../harness/chserver";
import { KafkaBroker, startKafka } from "../harness/kafka";
import { KubeCluster, startKube, waitFor } from "../harness/kube";
import { Engine, PROJECT_DIR, removeStack, startEngine, uniqueStackName } from "../harness/pulumi";

const log = (line: string) => process.stderr.write(`[e2e] ${line}\n`);
const quiet = () => undefined;

async function count(ch: ClickHouseServer, sql: string): Promise<number> {
    const rows = await (
        await ch.client().query({ query: sql, format: "JSONEachRow" })
    ).json<{ n: string }>();
    return Number(rows[0]!.n);
}

/** The stack's checkpoint as the file backend stores it (secrets encrypted with the passphrase). */
function readStateFile(backendDir: string, stack: string): string {
    const file = (fs.readdirSync(backendDir, { recursive: true }) as string[]).find((f) =>
        f.endsWith(`${stack}.json`),
    );
    assert.ok(file, `no state file for ${stack} under ${backendDir}`);
    return fs.readFileSync(path.join(backendDir, file), "utf8");
}

async function kubectlJson(kube: KubeCluster, ...args: string[]): Promise<{ items: any[] }> {
    const text = (await kube.kubectl([...args, "-o", "json"])).trim();
    // `--ignore-not-found` prints nothing at all when there is nothing.
    return text === "" ? { items: [] } : JSON.parse(text);
}

describe(
    "e2e: the stack on a real engine, API server, broker and ClickHouse engine",
    { timeout: 30 * 60_000 },
    () => {
        let kube: KubeCluster;
        let broker: KafkaBroker;
        let ch: ClickHouseServer;
        let engine: Engine;
        let stack: Stack;
        let streamsDir: string;
        const name = uniqueStackName("e2e");
        const namespace = name.slice(0, 63);
        const streams = loadStreams().map((s) => s.spec);
        const web = streams.find((s) => s.name === "web_events")!;
        // The stack stores it (encrypted) and puts it in the ClickHouse Secret; the provider reads it from there.
        const adminPassword = randomBytes(18).toString("base64url");

        before(async () => {
            log(`stack ${name}: starting the API server, the broker and ClickHouse...`);
            // The engine gets the Kafka client settings the StatefulSet's config.d/kafka.xml carries.
            const configXml = renderKafkaConfig({ securityProtocol: "PLAINTEXT" });
            [kube, broker, ch] = await Promise.all([
                startKube(),
                startKafka(),
                startClickHouseServer({ configXml, username: "admin", password: adminPassword }),
            ]);
            await kube.applyCrds();
            // No Strimzi operator runs here: create the topics on the real broker as its Topic Operator would.
            for (const s of streams) await broker.createTopic(s.topic.name, s.topic.partitions);
            streamsDir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-e2e-streams-"));
            for (const f of fs.readdirSync(path.join(PROJECT_DIR, "schemas/streams"))) {
                fs.copyFileSync(
                    path.join(PROJECT_DIR, "schemas/streams", f),
                    path.join(streamsDir, f),
                );
            }
            engine = await startEngine({ env: { KUBECONFIG: kube.kubeconfig } });
            stack = await engine.stack(
                name,
                {
                    namespace,
                    streamsDir,
                    kafkaWaitForReady: "false",
                    kafkaEphemeralStorage: "true",
                    clickhouseEphemeralStorage: "true",
                    kafkaBrokerCpu: "100m",
                    kafkaBrokerMemory: "512Mi",
                    clickhouseCpu: "100m",
                    clickhouseMemory: "512Mi",
                    ingestionConnection: "url",
                    ingestionUrl: ch.url,
                    ingestionKafkaBrokers: broker.bootstrap,
                },
                { clickhouseAdminPassword: adminPassword },
            );
        });

        after(async () => {
            if (stack) await removeStack(stack, quiet).catch((e) => log(`cleanup: ${String(e)}`));
            engine?.dispose();
            await Promise.allSettled([kube?.stop(), broker?.stop(), ch?.stop()]);
            if (streamsDir) fs.rmSync(streamsDir, { recursive: true, force: true });
        });

        it("1. up creates the Kafka CRs, topics, user, ClickHouse and the ingestion DDL", async () => {
            const started = Date.now();
            const result = await stack.up({ onOutput: quiet });
            log(`up: ${result.summary.result} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
            assert.equal(result.summary.result, "succeeded");

            const [kafka] = (
                await kubectlJson(kube, "-n", namespace, "get", "kafkas.kafka.strimzi.io")
            ).items;
            assert.equal(
                kafka.spec.kafka.listeners.find((l: any) => l.name === "tls").authentication.type,
                "scram-sha-512",
            );
            assert.equal(
                (await kubectlJson(kube, "-n", namespace, "get", "kafkanodepools.kafka.strimzi.io"))
                    .items.length,
                1,
            );
            const topics = (
                await kubectlJson(kube, "-n", namespace, "get", "kafkatopics.kafka.strimzi.io")
            ).items;
            assert.deepEqual(
                topics.map((t) => [t.spec.topicName, t.spec.partitions]).sort(),
                streams.map((s) => [s.topic.name, s.topic.partitions]).sort(),
            );
            const [user] = (
                await kubectlJson(kube, "-n", namespace, "get", "kafkausers.kafka.strimzi.io")
            ).items;
            assert.deepEqual(user.spec.authentication.password.valueFrom.secretKeyRef, {
                name: "events-clickhouse-scram",
                key: "password",
            });

            const [sts] = (await kubectlJson(kube, "-n", namespace, "get", "statefulsets")).items;
            assert.equal(
                sts.status.readyReplicas,
                1,
                "the ClickHouse pod is Ready on the fake node",
            );
            const configMaps = (
                await kubectlJson(kube, "-n", namespace, "get", "configmaps")
            ).items.map((c) => c.metadata.name);
            assert.ok(
                configMaps.includes("clickhouse-config") && configMaps.includes("clickhouse-users"),
            );
            const secrets = (await kubectlJson(kube, "-n", namespace, "get", "secrets")).items.map(
                (s) => s.metadata.name,
            );
            assert.ok(
                secrets.includes("clickhouse-credentials") &&
                    secrets.includes("events-clickhouse-scram"),
            );
            assert.equal(
                (await kubectlJson(kube, "-n", namespace, "get", "poddisruptionbudgets")).items
                    .length,
                1,
            );

            for (const s of streams) {
                const n = await count(
                    ch,
                    `SELECT count() AS n FROM system.tables WHERE database = 'ingest' AND name LIKE '${s.name}%'`,
                );
                assert.equal(
                    n,
                    5,
                    `${s.name}: target, Kafka table, view, dead-letter table and view`,
                );
            }
            // Secrets in the state on disk: the configured admin password and a generated one, raw or base64.
            const stateText = readStateFile(engine.backendDir, name);
            assert.ok(stateText.includes("clickhouse-credentials"), "this is the stack's state");
            const [credentials] = (
                await kubectlJson(
                    kube,
                    "-n",
                    namespace,
                    "get",
                    "secrets",
                    "--field-selector",
                    "metadata.name=clickhouse-credentials",
                )
            ).items;
            const generated = Buffer.from(
                credentials.data["readonly-password"],
                "base64",
            ).toString();
            assert.equal(
                Buffer.from(credentials.data["admin-password"], "base64").toString(),
                adminPassword,
            );
            for (const secret of [adminPassword, generated]) {
                for (const form of [secret, Buffer.from(secret).toString("base64")]) {
                    assert.ok(!stateText.includes(form), "no password in clear in the state file");
                }
            }
            const outputs = await stack.outputs();
            assert.equal(outputs.clickhouseCredentialsSecret!.value, "clickhouse-credentials");

            // Rows flow through what the stack built.
            await broker.produce(web.topic.name, sampleMessages(web, 200, { seed: 3 }));
            await waitFor(
                async () => (await count(ch, "SELECT count() AS n FROM ingest.web_events")) === 200,
                90_000,
                "200 rows in ingest.web_events",
            );
        });

        it("2. preview right after up shows no changes", async () => {
            const preview = await stack.preview({ diff: true, onOutput: quiet });
            const changes = Object.entries(preview.changeSummary).filter(
                ([op, n]) => op !== "same" && n > 0,
            );
            assert.deepEqual(
                changes,
                [],
                `unexpected changes: ${JSON.stringify(preview.changeSummary)}\n${preview.stdout}`,
            );
        });

        it("3. a new column: preview shows the ALTER, up applies it, ingested rows stay", async () => {
            const file = path.join(streamsDir, "web_events.yaml");
            fs.writeFileSync(
                file,
                fs
                    .readFileSync(file, "utf8")
                    .replace(
                        "orderBy:",
                        `  - { name: browser, type: LowCardinality(String), default: "'unknown'" }\norderBy:`,
                    ),
            );
            const preview = await stack.preview({ diff: true, onOutput: quiet });
            assert.match(
                preview.stdout,
                /ALTER TABLE `ingest`\.`web_events` ADD COLUMN IF NOT EXISTS `browser` LowCardinality\(String\)/,
            );
            assert.equal(preview.changeSummary.update, 1, JSON.stringify(preview.changeSummary));

            const up = await stack.up({ onOutput: quiet });
            assert.equal(up.summary.result, "succeeded");
            assert.equal(
                await count(ch, "SELECT count() AS n FROM ingest.web_events"),
                200,
                "rows ingested before the change are kept",
            );
            const withBrowser = sampleMessages(web, 50, { seed: 4 }).map((m) =>
                JSON.stringify({ ...JSON.parse(m), browser: "firefox" }),
            );
            await broker.produce(web.topic.name, withBrowser);
            await waitFor(
                async () =>
                    (await count(
                        ch,
                        "SELECT count() AS n FROM ingest.web_events WHERE browser = 'firefox'",
                    )) === 50,
                90_000,
                "50 new rows with the new column filled",
            );
        });

        it("4. external Kafka mode creates topics with @pulumi/kafka on the broker", async () => {
            const extDir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-e2e-ext-"));
            const iot = fs.readFileSync(
                path.join(PROJECT_DIR, "schemas/streams/iot_readings.yaml"),
                "utf8",
            );
            fs.writeFileSync(
                path.join(extDir, "iot_readings.yaml"),
                iot
                    .replace("name: iot.readings", "name: ext.iot.readings")
                    .replace("partitions: 3", "partitions: 4"),
            );
            const ext = await engine.stack(`${name}-ext`, {
                namespace: `${namespace}-ext`.slice(0, 63),
                streamsDir: extDir,
                kafkaMode: "external",
                kafkaExternalBootstrap: broker.bootstrap,
                kafkaExternalSaslMechanism: "none",
                kafkaExternalTls: "false",
                kafkaExternalReplicas: "1",
                clickhouseEphemeralStorage: "true",
                clickhouseCpu: "100m",
                clickhouseMemory: "512Mi",
                ingestionEnabled: "false",
            });
            try {
                const up = await ext.up({ onOutput: quiet });
                assert.equal(up.summary.result, "succeeded");
                const topic = await broker.describeTopic("ext.iot.readings");
                assert.ok(topic, "the topic exists on the broker");
                assert.equal(topic.partitions, 4);
                assert.equal(topic.replicationFactor, 1);
                assert.equal(topic.config["retention.ms"], "86400000");
                assert.equal(topic.config["cleanup.policy"], "delete");
            } finally {
                await removeStack(ext, quiet);
                fs.rmSync(extDir, { recursive: true, force: true });
            }
            assert.equal(
                await broker.describeTopic("ext.iot.readings"),
                undefined,
                "destroy deletes the topic",
            );
        });

        it("5. destroy leaves no API objects, Kafka tables or views; target tables stay", async () => {
            const result = await stack.destroy({ onOutput: quiet });
            assert.equal(result.summary.result, "succeeded");
            for (const kind of [
                "kafkas.kafka.strimzi.io",
                "kafkanodepools.kafka.strimzi.io",
                "kafkatopics.kafka.strimzi.io",
                "kafkausers.kafka.strimzi.io",
                "statefulsets",
                "services",
                "configmaps,secrets",
                "poddisruptionbudgets",
            ]) {
                const items = (
                    await kubectlJson(kube, "-n", namespace, "get", kind, "--ignore-not-found")
                ).items.filter((i) => i.metadata.name !== "kube-root-ca.crt");
                assert.deepEqual(
                    items.map((i) => i.metadata.name),
                    [],
                    kind,
                );
            }
            await waitFor(
                async () =>
                    (
                        await kube.kubectl([
                            "get",
                            "namespace",
                            namespace,
                            "--ignore-not-found",
                            "-o",
                            "name",
                        ])
                    ).trim() === "",
                120_000,
                `namespace ${namespace} deleted`,
            );
            const left = await (
                await ch.client().query({
                    query: "SELECT name, engine FROM system.tables WHERE database = 'ingest' ORDER BY name",
                    format: "JSONEachRow",
                })
            ).json<{ name: string; engine: string }>();
            assert.deepEqual(
                left.map((t) => t.name),
                streams.flatMap((s) => [s.name, `${s.name}_dlq`]).sort(),
                "only targets and dead-letter tables are kept (dropTargetOnDelete: false)",
            );
            assert.ok(left.every((t) => t.engine.endsWith("MergeTree")));
            assert.equal(
                await count(ch, "SELECT count() AS n FROM ingest.web_events"),
                250,
                "their rows are kept too",
            );
        });
    },
);
