/**
 * End to end, as users run it: the real Pulumi engine and providers (Automation API, a fresh
 * stack on a file backend), a real Kubernetes API server (kwok: pods become Ready on fake nodes),
 * a real Kafka broker and the real ClickHouse engine behind its HTTP interface, with readiness
 * gating on against the Strimzi stand-in (runtime/strimzi-standin.ts), which writes the
 * status Strimzi 1.2 writes and does the operators' work on the broker: topics, SCRAM
 * credentials and ACLs, the topic finalizer.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { renderKafkaConfig } from "../../components/clickhouse/render";
import { loadStreams, parseStream } from "../../schemas/loader";
import { loadQueries } from "../../schemas/queries";
import { backfillJobs, queryObject } from "../../components/jobs";
import { sampleMessages } from "../../schemas/sample";
import { ClickHouseServer, startClickHouseServer } from "../../runtime/chserver";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { sleep } from "../../runtime/process";
import {
    STANDIN_BROKER_PROPERTIES,
    StrimziStandIn,
    startStrimziStandIn,
} from "../../runtime/strimzi-standin";
import { KubeCluster, startKube, waitFor } from "../../runtime/kube";
import {
    Engine,
    PROJECT_DIR,
    localStackConfig,
    removeStack,
    startEngine,
    uniqueStackName,
} from "../../runtime/pulumi";

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

/** True when a CR's status has the condition `type` with status True. */
function hasCondition(cr: any, type: string): boolean {
    return (cr.status?.conditions ?? []).some((c: any) => c.type === type && c.status === "True");
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
        let strimzi: StrimziStandIn;
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
                // A SASL listener and the standard authorizer: the KafkaUser's credentials and ACLs
                // the stand-in writes are enforced there.
                startKafka({
                    scram: { username: "kcs-harness", password: randomBytes(12).toString("hex") },
                    serverProperties: STANDIN_BROKER_PROPERTIES,
                }),
                startClickHouseServer({ configXml, username: "admin", password: adminPassword }),
            ]);
            await kube.applyCrds();
            strimzi = await startStrimziStandIn({
                kubeconfig: kube.kubeconfig,
                kafkaBootstrap: broker.bootstrap,
                log: (line) => log(`strimzi: ${line}`),
            });
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
                localStackConfig({
                    namespace,
                    streamsDir,
                    clickhouseUrl: ch.url,
                    kafkaBootstrap: broker.bootstrap,
                }),
                { clickhouseAdminPassword: adminPassword },
            );
        });

        after(async () => {
            if (stack) await removeStack(stack, quiet).catch((e) => log(`cleanup: ${String(e)}`));
            engine?.dispose();
            await strimzi?.stop();
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
            const user = (
                await kubectlJson(kube, "-n", namespace, "get", "kafkausers.kafka.strimzi.io")
            ).items.find((u) => u.metadata.name === "clickhouse");
            assert.deepEqual(user.spec.authentication.password.valueFrom.secretKeyRef, {
                name: "events-clickhouse-scram",
                key: "password",
            });

            // Gating was on: up returned only after the stand-in reported what Strimzi 1.2 reports.
            assert.ok(hasCondition(kafka, "Ready"), JSON.stringify(kafka.status));
            assert.equal(kafka.status.observedGeneration, kafka.metadata.generation);
            assert.deepEqual(
                kafka.status.listeners.map((l: any) => l.bootstrapServers),
                [`events-kafka-bootstrap.${namespace}.svc:9093`],
            );
            for (const t of topics) {
                assert.ok(
                    hasCondition(t, "Ready"),
                    `${t.metadata.name}: ${JSON.stringify(t.status)}`,
                );
                assert.deepEqual(t.metadata.finalizers, ["strimzi.io/topic-operator"]);
            }
            assert.ok(hasCondition(user, "Ready"), JSON.stringify(user.status));
            assert.equal(user.status.secret, "clickhouse");
            // The topics are the stand-in's work on the broker, with the stream's settings.
            for (const s of streams) {
                const t = await broker.describeTopic(s.topic.name);
                assert.equal(t?.partitions, s.topic.partitions, s.topic.name);
                assert.equal(t?.config["retention.ms"], String(s.topic.retentionMs), s.topic.name);
            }

            const [sts] = (await kubectlJson(kube, "-n", namespace, "get", "statefulsets")).items;
            assert.equal(
                sts.status.readyReplicas,
                1,
                "the ClickHouse pod is Ready on the fake node",
            );
            // Pod Security `restricted` is enforced in the namespace: the ClickHouse pod was
            // admitted under it, and a pod that breaks it is refused by the API server.
            const ns = JSON.parse(
                await kube.kubectl(["get", "namespace", namespace, "-o", "json"]),
            );
            assert.equal(ns.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
            const pod = JSON.parse(
                await kube.kubectl([
                    "-n",
                    namespace,
                    "get",
                    "pod",
                    `${sts.metadata.name}-0`,
                    "-o",
                    "json",
                ]),
            );
            assert.equal(pod.status.phase, "Running");
            const privileged = {
                apiVersion: "v1",
                kind: "Pod",
                metadata: { name: "privileged", namespace },
                spec: {
                    containers: [
                        {
                            name: "main",
                            image: "registry.invalid/never-pulled",
                            securityContext: { privileged: true },
                        },
                    ],
                },
            };
            await assert.rejects(
                kube.kubectl(["create", "-f", "-"], JSON.stringify(privileged)),
                /violates PodSecurity "restricted:latest": privileged/,
            );
            const configMaps = (
                await kubectlJson(kube, "-n", namespace, "get", "configmaps")
            ).items.map((c) => c.metadata.name);
            // Named by Pulumi: `<logical name>-<suffix>`.
            for (const prefix of ["clickhouse-config-", "clickhouse-users-"])
                assert.ok(
                    configMaps.some((n) => n.startsWith(prefix)),
                    `${prefix}*: ${configMaps}`,
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
                const rollups = s.rollups?.length ?? 0;
                assert.equal(
                    n,
                    5 + 2 * rollups,
                    `${s.name}: target, Kafka table, view, dead-letter table and view, and ${rollups} rollup table(s) and view(s)`,
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

        it("1b. declared queries: the CronJob is admitted, a Job made from it gets its pod under Pod Security restricted, and every kind of query Job passes strict validation without a warning", async () => {
            const [cron] = (await kubectlJson(kube, "-n", namespace, "get", "cronjobs.batch"))
                .items;
            assert.equal(cron.metadata.name, "clickhouse-daily-retention-report");
            assert.equal(cron.spec.concurrencyPolicy, "Forbid");
            assert.equal(cron.spec.timeZone, "Etc/UTC");
            // Run it now, as an operator would: the Job controller creates the pod, which the API
            // server admits only if it meets "restricted" (enforced in the namespace).
            await kube.kubectl([
                "-n",
                namespace,
                "create",
                "job",
                "report-now",
                "--from=cronjob/clickhouse-daily-retention-report",
            ]);
            await waitFor(
                async () =>
                    (
                        await kubectlJson(
                            kube,
                            "-n",
                            namespace,
                            "get",
                            "pods",
                            "-l",
                            "job-name=report-now",
                        )
                    ).items.length === 1,
                60_000,
                "the pod of job report-now",
            );
            await kube.kubectl([
                "-n",
                namespace,
                "delete",
                "job",
                "report-now",
                "--cascade=foreground",
            ]);
            // The kinds the sample stack does not deploy: one-off export and import Jobs, an export
            // to object storage, HTTPS with a CA, a rollup backfill of two steps. Strict field
            // validation against the API server's schemas, Pod Security "restricted" warnings
            // turned into errors, admission run without storing anything.
            const spec = {
                clickhouseName: "clickhouse",
                namespace,
                url: `http://clickhouse.${namespace}.svc:8123`,
                database: "ingest",
                credentialsSecret: "clickhouse-credentials",
            };
            const objects: unknown[] = [];
            for (const { spec: q } of loadQueries(
                path.join(PROJECT_DIR, "schemas/query-examples"),
            )) {
                for (const variant of [
                    spec,
                    {
                        ...spec,
                        url: spec.url.replace("http:", "https:"),
                        caSecret: "clickhouse-tls",
                    },
                ]) {
                    const o = queryObject(variant, q);
                    objects.push({ apiVersion: "batch/v1", kind: o.kind, ...o.args });
                }
            }
            const clicks = parseStream(
                "name: clicks\ntopic: { name: clicks }\nformat: JSONEachRow\ncolumns: [{ name: at, type: DateTime }, { name: page, type: String }]\norderBy: [at]\nrollups: [{ name: per_hour, time: at, interval: 1 hour, by: [page], measures: [{ name: n, fn: count }], backfill: true }]\n",
                "clicks.yaml",
            ).spec;
            for (const job of Object.values(backfillJobs(spec, [clicks])))
                objects.push({ apiVersion: "batch/v1", kind: "Job", ...job });
            const out = await kube.kubectl(
                [
                    "apply",
                    "--dry-run=server",
                    "--validate=strict",
                    "--warnings-as-errors",
                    "-f",
                    "-",
                ],
                JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
            );
            assert.equal(out.trim().split("\n").length, objects.length, out);
            assert.match(
                out,
                /job\.batch\/clickhouse-clicks-per-hour-backfill created \(server dry run\)/,
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

        it("2b. a changed query shows its new SQL in preview --diff; one the engine refuses stops the preview with its file and key", async () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-e2e-queries-"));
            const file = path.join(dir, "daily-retention-report.yaml");
            const shipped = fs.readFileSync(
                path.join(PROJECT_DIR, "schemas/queries/daily-retention-report.yaml"),
                "utf8",
            );
            try {
                fs.writeFileSync(
                    file,
                    shipped
                        .replace(
                            "GROUP BY table",
                            "GROUP BY table HAVING rows >= {min_rows:UInt64}",
                        )
                        .replace(
                            'parameters: { skip: "%_backfill" }',
                            'parameters: { skip: "%_backfill", min_rows: 1 }',
                        ),
                );
                await stack.setConfig("kafka-clickhouse-stack:queriesDir", { value: dir });
                const changed = await stack.preview({ diff: true, onOutput: quiet });
                assert.equal(
                    changed.changeSummary.update,
                    1,
                    JSON.stringify(changed.changeSummary),
                );
                assert.match(changed.stdout, /HAVING rows >= \{min_rows:UInt64\}/);
                assert.match(changed.stdout, /param_min_rows=1/);

                fs.writeFileSync(
                    file,
                    shipped.replace("sum(rows) AS rows", "sum(no_such_column) AS rows"),
                );
                const refused = await stack.preview({ diff: true, onOutput: quiet }).then(
                    () => "",
                    (e: unknown) => String(e),
                );
                assert.match(
                    refused,
                    /daily-retention-report\.yaml: sql: the engine refuses it: .*no_such_column/,
                );
            } finally {
                await stack.removeConfig("kafka-clickhouse-stack:queriesDir");
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });

        it("3. the node pool gets Strimzi's status but never Ready: a wait for it times out", async () => {
            const [pool] = (
                await kubectlJson(kube, "-n", namespace, "get", "kafkanodepools.kafka.strimzi.io")
            ).items;
            // The stand-in reconciled the pool (what the operator writes there) ...
            assert.equal(pool.status?.observedGeneration, pool.metadata.generation);
            assert.deepEqual(pool.status.nodeIds, [0]);
            assert.deepEqual(pool.status.roles, ["controller", "broker"]);
            // ... and, like Strimzi 1.2, set no condition at all: pulumi.com/waitFor:
            // condition=Ready on a pool would wait until its timeout.
            assert.equal(pool.status.conditions, undefined);
            const started = Date.now();
            await assert.rejects(
                kube.kubectl([
                    "-n",
                    namespace,
                    "wait",
                    "--for=condition=Ready",
                    `kafkanodepools.kafka.strimzi.io/${pool.metadata.name}`,
                    "--timeout=15s",
                ]),
                /timed out waiting for the condition/,
            );
            assert.ok(Date.now() - started >= 14_000, "kubectl gave up at its timeout, not before");
        });

        it("4. a new column: preview shows the ALTER, up applies it, ingested rows stay", async () => {
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

        it("5. an update waits for the operator to reconcile the new generation", async () => {
            const iot = streams.find((s) => s.name === "iot_readings")!;
            const before = iot.topic.partitions;
            const file = path.join(streamsDir, "iot_readings.yaml");
            const text = fs.readFileSync(file, "utf8");
            assert.ok(text.includes(`partitions: ${before}`));
            fs.writeFileSync(
                file,
                text.replace(`partitions: ${before}`, `partitions: ${before + 2}`),
            );
            const topicCr = async () =>
                JSON.parse(
                    await kube.kubectl([
                        "-n",
                        namespace,
                        "get",
                        `kafkatopics.kafka.strimzi.io/${iot.topic.name}`,
                        "-o",
                        "json",
                    ]),
                );
            // With the operator held, the KafkaTopic keeps its Ready of the previous generation.
            strimzi.pause();
            let settled = false;
            const up = stack.up({ onOutput: quiet }).finally(() => (settled = true));
            try {
                await waitFor(
                    async () => {
                        const t = await topicCr();
                        return t.metadata.generation > t.status.observedGeneration;
                    },
                    180_000,
                    "the KafkaTopic's new generation",
                );
                const stale = await topicCr();
                assert.ok(hasCondition(stale, "Ready"), "the old Ready is still there");
                await sleep(8_000);
                assert.equal(settled, false, "up must not finish on the old generation's Ready");
            } finally {
                strimzi.resume();
            }
            const result = await up;
            assert.equal(result.summary.result, "succeeded");
            const t = await topicCr();
            assert.equal(t.status.observedGeneration, t.metadata.generation);
            assert.equal((await broker.describeTopic(iot.topic.name))?.partitions, before + 2);
        });

        it("6. refresh shows a column added by hand in ClickHouse as drift", async () => {
            await ch.client().command({
                query: "ALTER TABLE ingest.web_events ADD COLUMN hand_added String DEFAULT ''",
            });
            const refresh = await stack.refresh({ onOutput: quiet });
            assert.equal(refresh.summary.result, "succeeded");
            const state = await stack.exportStack();
            const web = (state.deployment.resources as any[]).find((r) =>
                String(r.urn).endsWith("::ingestion-web_events"),
            );
            assert.ok(web, "the web_events ingestion resource is in the state");
            const drift: string[] = web.outputs.drift ?? [];
            assert.ok(
                drift.some((l) => l.includes("hand_added")),
                `drift names the hand-made column: ${JSON.stringify(drift)}`,
            );
            // Undo it by hand, as an operator would, so the later steps see the managed schema.
            await ch
                .client()
                .command({ query: "ALTER TABLE ingest.web_events DROP COLUMN hand_added" });
            await stack.refresh({ onOutput: quiet });
        });

        it("7. the ClickHouse KafkaUser's SCRAM credentials work and its ACLs hold on the broker", async () => {
            const secretJson = async (name: string) =>
                (
                    await kubectlJson(
                        kube,
                        "-n",
                        namespace,
                        "get",
                        "secrets",
                        "--field-selector",
                        `metadata.name=${name}`,
                    )
                ).items[0];
            const decode = (v: string) => Buffer.from(v, "base64").toString();
            // The User Operator's Secret for the user carries the password the stack generated.
            const [own, made] = [
                await secretJson("events-clickhouse-scram"),
                await secretJson("clickhouse"),
            ];
            assert.ok(made, "the Secret the User Operator writes for the KafkaUser");
            const password = decode(own.data.password);
            assert.equal(decode(made.data.password), password);
            assert.match(decode(made.data["sasl.jaas.config"]), /username="clickhouse"/);
            const user = (
                await kubectlJson(kube, "-n", namespace, "get", "kafkausers.kafka.strimzi.io")
            ).items.find((u) => u.metadata.name === "clickhouse");
            const group = user.spec.authorization.acls.find((a: any) => a.resource.type === "group")
                .resource.name;
            await broker.createTopic("outside.acl", 1);
            await broker.produce("outside.acl", ['{"not":"for clickhouse"}']);
            // TopicAuthorizationException comes after a successful SCRAM login: a wrong password
            // would fail with SaslAuthenticationException instead.
            await assert.rejects(
                broker.consume("outside.acl", 1, {
                    auth: { username: "clickhouse", password },
                    group,
                    timeoutMs: 15_000,
                }),
                /TopicAuthorizationException|Not authorized to access topics/,
            );
        });

        it("8. external Kafka mode creates topics with @pulumi/kafka on the broker", async () => {
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

        it("9. destroy finishes with the topic finalizers in place, leaves no API objects, Kafka tables or views; target tables stay", async () => {
            const started = Date.now();
            const result = await stack.destroy({ onOutput: quiet });
            log(
                `destroy: ${result.summary.result} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
            );
            assert.equal(result.summary.result, "succeeded");
            // The Topic Operator deleted each topic before it released its KafkaTopic.
            for (const s of streams) {
                assert.equal(await broker.describeTopic(s.topic.name), undefined, s.topic.name);
            }
            for (const kind of [
                "kafkas.kafka.strimzi.io",
                "kafkanodepools.kafka.strimzi.io",
                "kafkatopics.kafka.strimzi.io",
                "kafkausers.kafka.strimzi.io",
                "statefulsets",
                "services",
                "configmaps,secrets",
                "poddisruptionbudgets",
                "cronjobs.batch,jobs.batch",
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
                streams
                    .flatMap((s) => [
                        s.name,
                        `${s.name}_dlq`,
                        ...(s.rollups ?? []).map((r) => `${s.name}_${r.name}`),
                    ])
                    .sort(),
                "only targets, dead-letter and rollup tables are kept (dropTargetOnDelete: false)",
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
