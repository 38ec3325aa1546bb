import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadStreams } from "../../schemas/loader";
import { strimziCrdDir } from "../../runtime/strimzi";
import { parseConfig } from "../../infra/config";
import { destroyImpact } from "../../infra/destroy";
import { ROOT, Recorded, ofType, runStack, stackFileConfig, strimzi } from "./mocks";
import * as path from "node:path";

const STREAMS = loadStreams(path.join(ROOT, "schemas/streams")).map((s) => s.spec);

function counts(resources: { type: string }[]): Record<string, number> {
    const c: Record<string, number> = {};
    for (const r of resources) c[r.type] = (c[r.type] ?? 0) + 1;
    return c;
}

describe("stack wiring (Pulumi mocks)", () => {
    it("dev: one dual-role node pool, one topic per stream, exact kinds and counts", async () => {
        const { resources } = await runStack("dev");
        const c = counts(resources);
        assert.equal(c["kubernetes:kafka.strimzi.io/v1:Kafka"], 1);
        assert.equal(c["kubernetes:kafka.strimzi.io/v1:KafkaNodePool"], 1);
        assert.equal(c["kubernetes:kafka.strimzi.io/v1:KafkaTopic"], STREAMS.length);
        assert.equal(
            c["kubernetes:kafka.strimzi.io/v1:KafkaUser"],
            2,
            "ClickHouse's consumer and the orders stream's producer (shop-backend)",
        );
        assert.equal(c["kubernetes:apps/v1:StatefulSet"], 1);
        assert.equal(c["kubernetes:core/v1:Service"], 2);
        assert.equal(
            c["kubernetes:core/v1:ConfigMap"],
            2,
            "config.d and users.d; no metrics ConfigMap in dev",
        );
        assert.equal(
            c["kubernetes:core/v1:Secret"],
            3,
            "ClickHouse credentials and the SCRAM Secrets of the consumer and the producer",
        );
        assert.equal(c["kubernetes:policy/v1:PodDisruptionBudget"], 1);
        assert.equal(c["kubernetes:core/v1:ServiceAccount"], 1, "ClickHouse's own identity");
        assert.equal(
            c["kubernetes:networking.k8s.io/v1:NetworkPolicy"],
            3,
            "ClickHouse's ingress and egress, the query pods' (Strimzi writes the brokers' own)",
        );
        assert.equal(c["kubernetes:batch/v1:CronJob"], 1, "the daily retention report");
        assert.equal(c["kubernetes:batch/v1:Job"], undefined, "no one-off query, no backfill");
        assert.equal(c["kubernetes:core/v1:Namespace"], 1);
        assert.equal(
            c["random:index/randomPassword:RandomPassword"],
            5,
            "admin, reader, the consumer's and the producer's Kafka passwords, the checksum key",
        );
        assert.equal(
            c["kubernetes:helm.sh/v3:Release"],
            undefined,
            "dev does not install the operator",
        );

        const [pool] = strimzi(resources, "KafkaNodePool");
        assert.deepEqual(pool!.inputs.spec.roles, ["controller", "broker"]);
        assert.equal(pool!.inputs.spec.replicas, 1);
        assert.equal(pool!.inputs.metadata.labels["strimzi.io/cluster"], "events");
        assert.deepEqual(pool!.inputs.spec.storage, {
            type: "jbod",
            volumes: [
                {
                    id: 0,
                    type: "persistent-claim",
                    size: "5Gi",
                    deleteClaim: false,
                    kraftMetadata: "shared",
                },
            ],
        });
    });

    it("dev: listeners, auth, and replication derived from one broker", async () => {
        const { resources } = await runStack("dev");
        const [kafka] = strimzi(resources, "Kafka");
        const [pool] = strimzi(resources, "KafkaNodePool");
        const spec = kafka!.inputs.spec;
        assert.equal(kafka!.inputs.apiVersion, "kafka.strimzi.io/v1");
        assert.equal(spec.kafkaExporter, undefined, "no Kafka Exporter while metrics are off");
        // Only ClickHouse's pods reach the listeners: dev declares no producer pods.
        const clickhouseOnly = [
            {
                podSelector: {
                    matchLabels: {
                        "app.kubernetes.io/name": "clickhouse",
                        "app.kubernetes.io/instance": "clickhouse",
                    },
                },
            },
        ];
        assert.deepEqual(spec.kafka.listeners, [
            {
                name: "plain",
                port: 9092,
                type: "internal",
                tls: false,
                authentication: { type: "scram-sha-512" },
                networkPolicyPeers: clickhouseOnly,
            },
            {
                name: "tls",
                port: 9093,
                type: "internal",
                tls: true,
                authentication: { type: "scram-sha-512" },
                networkPolicyPeers: clickhouseOnly,
            },
        ]);
        assert.deepEqual(spec.kafka.authorization, { type: "simple" });
        assert.equal(spec.kafka.config["default.replication.factor"], 1);
        assert.equal(spec.kafka.config["min.insync.replicas"], 1);
        assert.equal(spec.kafka.config["offsets.topic.replication.factor"], 1);
        assert.deepEqual(spec.entityOperator.topicOperator, {});
        assert.deepEqual(spec.entityOperator.userOperator, {});
        // Pinned, so a version bump never raises it unasked (it cannot be lowered again).
        assert.equal(spec.kafka.version, "4.3.1");
        assert.equal(spec.kafka.metadataVersion, "4.3-IV0");
        // Gated on what Strimzi 1.2 reports; node pools never (no Ready condition there).
        const waitFor = (r: Recorded) => r.inputs.metadata.annotations?.["pulumi.com/waitFor"];
        assert.equal(
            waitFor(kafka!),
            '["condition=Ready","jsonpath={.status.listeners[*].bootstrapServers}"]',
        );
        assert.equal(waitFor(pool!), undefined, "no wait on a node pool");
        assert.equal(pool!.inputs.metadata.annotations, undefined);
        for (const t of strimzi(resources, "KafkaTopic"))
            assert.equal(waitFor(t), "condition=Ready");
        const [user] = strimzi(resources, "KafkaUser");
        assert.equal(waitFor(user!), '["condition=Ready","jsonpath={.status.secret}"]');
        for (const t of strimzi(resources, "KafkaTopic")) assert.equal(t.inputs.spec.replicas, 1);
    });

    it("prod: separate controller and broker pools, RF 3, min ISR 2, metrics, operator chart", async () => {
        const { resources } = await runStack("prod");
        const pools = strimzi(resources, "KafkaNodePool");
        assert.deepEqual(
            pools.map((p) => [p.inputs.metadata.name, p.inputs.spec.replicas, p.inputs.spec.roles]),
            [
                ["controllers", 3, ["controller"]],
                ["brokers", 3, ["broker"]],
            ],
        );
        assert.equal(pools[1]!.inputs.spec.storage.volumes[0].class, "fast-ssd");
        // Controllers hold the metadata log alone: their own, smaller sizing.
        const sizing = (p: (typeof pools)[number]) => [
            p.inputs.spec.resources.requests.cpu,
            p.inputs.spec.resources.requests.memory,
            p.inputs.spec.resources.limits.memory,
            p.inputs.spec.storage.volumes[0].size,
            p.inputs.spec.storage.volumes[0].class,
        ];
        assert.deepEqual(sizing(pools[0]!), ["500m", "2Gi", "2Gi", "20Gi", "fast-ssd"]);
        assert.deepEqual(sizing(pools[1]!), ["2", "8Gi", "8Gi", "500Gi", "fast-ssd"]);
        const [kafka] = strimzi(resources, "Kafka");
        const spec = kafka!.inputs.spec;
        assert.equal(spec.kafka.listeners.length, 1, "no plain listener in prod");
        assert.equal(spec.kafka.listeners[0].tls, true);
        assert.equal(spec.kafka.config["default.replication.factor"], 3);
        assert.equal(spec.kafka.config["min.insync.replicas"], 2);
        assert.equal(spec.kafka.metricsConfig.type, "jmxPrometheusExporter");
        assert.equal(
            spec.kafka.metricsConfig.valueFrom.configMapKeyRef.name,
            "events-kafka-metrics",
        );
        // Kafka Exporter: consumer-group lag, which the JMX rules cannot show; restricted container.
        assert.equal(spec.kafkaExporter.groupRegex, ".*");
        assert.equal(spec.kafkaExporter.topicExcludeRegex, "^__.*");
        assert.equal(
            spec.kafkaExporter.template.container.securityContext.allowPrivilegeEscalation,
            false,
        );
        assert.equal(
            ofType(resources, "kubernetes:core/v1:ConfigMap").length,
            3,
            "config.d, users.d and metrics",
        );
        const [release] = ofType(resources, "kubernetes:helm.sh/v3:Release");
        assert.equal(release!.inputs.chart, "oci://quay.io/strimzi-helm/strimzi-kafka-operator");
        assert.equal(release!.inputs.version, "1.2.0");
        for (const t of strimzi(resources, "KafkaTopic")) {
            assert.equal(t.inputs.spec.replicas, 3);
            assert.equal(t.inputs.spec.config["min.insync.replicas"], 2);
        }
    });

    it("topics carry partitions, retention and cleanup policy from the stream files", async () => {
        const { resources } = await runStack("dev");
        const topics = strimzi(resources, "KafkaTopic");
        assert.deepEqual(
            topics.map((t) => t.inputs.spec.topicName).sort(),
            STREAMS.map((s) => s.topic.name).sort(),
        );
        for (const s of STREAMS) {
            const t = topics.find((x) => x.inputs.spec.topicName === s.topic.name)!;
            assert.equal(t.inputs.spec.partitions, s.topic.partitions);
            assert.equal(t.inputs.spec.config["retention.ms"], s.topic.retentionMs);
            assert.equal(t.inputs.spec.config["cleanup.policy"], s.topic.cleanupPolicy);
            assert.match(t.inputs.metadata.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
        }
    });

    it("the ClickHouse KafkaUser reads only the stream topics and groups, with its password from a Secret", async () => {
        const { resources } = await runStack("dev");
        const user = strimzi(resources, "KafkaUser").find(
            (u) => u.inputs.metadata.name === "clickhouse",
        );
        const auth = user!.inputs.spec.authentication;
        assert.equal(auth.type, "scram-sha-512");
        assert.deepEqual(auth.password, {
            valueFrom: { secretKeyRef: { name: "events-clickhouse-scram", key: "password" } },
        });
        const acls = user!.inputs.spec.authorization.acls as Array<{
            resource: { type: string; name: string };
            operations: string[];
        }>;
        assert.deepEqual(
            acls
                .filter((a) => a.resource.type === "topic")
                .map((a) => a.resource.name)
                .sort(),
            STREAMS.map((s) => s.topic.name).sort(),
        );
        assert.deepEqual(
            acls
                .filter((a) => a.resource.type === "group")
                .map((a) => a.resource.name)
                .sort(),
            // Both defaults: the per-database group of new streams, and the first release's.
            STREAMS.flatMap((s) => [`clickhouse-ingest-${s.name}`, `clickhouse-${s.name}`]).sort(),
        );
        for (const a of acls)
            assert.ok(
                !a.operations.includes("Write") && !a.operations.includes("All"),
                "read-only ACLs",
            );
        const scram = ofType(resources, "kubernetes:core/v1:Secret").find(
            (s) => s.inputs.metadata.name === "events-clickhouse-scram",
        );
        assert.ok(scram, "the SCRAM secret exists under the referenced name");
    });

    it("ClickHouse ConfigMaps are named by Pulumi and mounted by their generated names", async () => {
        // A fixed name makes a config change delete the ConfigMap first, and with it the
        // StatefulSet that mounts it; a generated name lets the StatefulSet roll instead.
        const { resources } = await runStack("dev");
        const maps = ofType(resources, "kubernetes:core/v1:ConfigMap");
        for (const logical of ["clickhouse-config", "clickhouse-users"]) {
            const m = maps.find((r) => r.name === logical);
            assert.ok(m, logical);
            assert.equal(m.inputs.metadata.name, undefined, `${logical} has a fixed name`);
        }
        const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
        const mounted = (sts!.inputs.spec.template.spec.volumes as Record<string, any>[])
            .filter((v) => v.configMap)
            .map((v) => v.configMap.name);
        // The mocks name an unnamed object `<logical name>-generated`, as Pulumi adds a suffix.
        assert.deepEqual(mounted, ["clickhouse-config-generated", "clickhouse-users-generated"]);
    });

    it("ClickHouse StatefulSet: volumes and mounts, probes, secret env, security context, PVCs", async () => {
        const { resources } = await runStack("dev");
        const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
        const spec = sts!.inputs.spec;
        const pod = spec.template.spec;
        const [c] = pod.containers;
        assert.equal(c.image, "clickhouse/clickhouse-server:26.3.9");
        assert.equal(spec.serviceName, "clickhouse-headless");
        assert.deepEqual(
            c.volumeMounts.map((m: { mountPath: string }) => m.mountPath),
            [
                "/var/lib/clickhouse",
                "/etc/clickhouse-server/config.d",
                "/etc/clickhouse-server/users.d",
                "/etc/clickhouse-server/kafka-ca",
                "/tmp",
                "/var/log/clickhouse-server",
            ],
        );
        assert.deepEqual(
            pod.volumes.map((v: Record<string, unknown>) => [
                v.name,
                Object.keys(v).find((k) => k !== "name"),
            ]),
            [
                ["config", "configMap"],
                ["users", "configMap"],
                ["kafka-ca", "secret"],
                ["tmp", "emptyDir"],
                ["logs", "emptyDir"],
            ],
        );
        assert.equal(pod.volumes[2].secret.secretName, "events-cluster-ca-cert");
        for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
            assert.deepEqual(c[p].httpGet, { path: "/ping", port: "http" }, p);
        }
        const env = Object.fromEntries(c.env.map((e: { name: string }) => [e.name, e]));
        assert.deepEqual(env.CLICKHOUSE_ADMIN_PASSWORD_SHA256.valueFrom, {
            secretKeyRef: { name: "clickhouse-credentials", key: "admin-password-sha256" },
        });
        assert.deepEqual(env.KAFKA_SASL_PASSWORD.valueFrom, {
            secretKeyRef: { name: "events-clickhouse-scram", key: "password" },
        });
        // Every rule of Pod Security "restricted" is checked in pod-security.test.ts.
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.equal(pod.securityContext.runAsUser, 101);
        assert.equal(c.securityContext.allowPrivilegeEscalation, false);
        assert.equal(c.securityContext.readOnlyRootFilesystem, true);
        assert.equal(pod.serviceAccountName, "clickhouse");
        assert.equal(pod.automountServiceAccountToken, false);
        // Guaranteed QoS, node disk bounded (manifest-lint.test.ts: kube-score, checkov).
        assert.deepEqual(c.resources, {
            requests: { cpu: "500m", memory: "2Gi", "ephemeral-storage": "512Mi" },
            limits: { cpu: "500m", memory: "2Gi", "ephemeral-storage": "1Gi" },
        });
        assert.equal(c.imagePullPolicy, "Always");
        assert.equal(
            pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]
                .podAffinityTerm.topologyKey,
            "kubernetes.io/hostname",
        );
        assert.equal(spec.volumeClaimTemplates.length, 1);
        assert.equal(spec.volumeClaimTemplates[0].spec.resources.requests.storage, "10Gi");
        const [pdb] = ofType(resources, "kubernetes:policy/v1:PodDisruptionBudget");
        assert.deepEqual(pdb!.inputs.spec.selector.matchLabels, spec.selector.matchLabels);
    });

    it("ClickHouse listens, publishes and probes only HTTP and native; no MySQL, PostgreSQL or interserver", async () => {
        // Plain listeners; with TLS (prod's default): test/unit/clickhouse-tls.test.ts.
        const { resources } = await runStack("prod", { clickhouseTls: "off" });
        const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
        const [c] = sts!.inputs.spec.template.spec.containers;
        const names = (ports: Array<{ name: string }>) => ports.map((p) => p.name);
        assert.deepEqual(names(c.ports), ["http", "native"]);
        for (const svc of ofType(resources, "kubernetes:core/v1:Service"))
            assert.deepEqual(
                svc.inputs.spec.ports.map((p: { port: number; targetPort: string }) => [
                    p.port,
                    p.targetPort,
                ]),
                [
                    [8123, "http"],
                    [9000, "native"],
                ],
                svc.inputs.metadata.name,
            );
        for (const p of ["startupProbe", "readinessProbe", "livenessProbe"])
            assert.ok(names(c.ports).includes(c[p].httpGet.port), p);
        const cm = ofType(resources, "kubernetes:core/v1:ConfigMap").find(
            (m) => m.name === "clickhouse-config",
        )!;
        const network = cm.inputs.data["network.xml"] as string;
        for (const port of ["mysql_port", "postgresql_port", "interserver_http_port"])
            assert.match(network, new RegExp(`<${port} remove="remove"/>`), port);
        assert.doesNotMatch(network, /9004|9005|9009/);
    });

    it("system log tables keep clickhouseSystemLogTtlDays (default 7); 0 leaves the image's defaults", async () => {
        const configFiles = async (overrides: Record<string, string>) => {
            const { resources } = await runStack("dev", overrides);
            const cm = ofType(resources, "kubernetes:core/v1:ConfigMap").find(
                (m) => m.name === "clickhouse-config",
            )!;
            const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
            const hash =
                sts!.inputs.spec.template.metadata.annotations["kafka-clickhouse/config-hash"];
            return { data: cm.inputs.data as Record<string, string>, hash };
        };
        const seven = await configFiles({});
        assert.match(
            seven.data["system-logs.xml"]!,
            /<ttl>event_date \+ INTERVAL 7 DAY DELETE<\/ttl>/,
        );
        const thirty = await configFiles({ clickhouseSystemLogTtlDays: "30" });
        assert.match(thirty.data["system-logs.xml"]!, /INTERVAL 30 DAY DELETE/);
        assert.notEqual(thirty.hash, seven.hash, "a new TTL rolls the pods");
        const none = await configFiles({ clickhouseSystemLogTtlDays: "0" });
        assert.equal(none.data["system-logs.xml"], undefined);
        assert.deepEqual(Object.keys(none.data).sort(), [
            "kafka.xml",
            "logging.xml",
            "network.xml",
        ]);
    });

    it("dedicated controller sizing applies to the controller pool only, and follows ephemeral storage", async () => {
        const { resources } = await runStack("dev", {
            kafkaBrokers: "3",
            kafkaControllers: "3",
            kafkaControllerCpu: "100m",
            kafkaControllerMemory: "512Mi",
            kafkaControllerStorageSize: "1Gi",
        });
        const [controllers, brokers] = strimzi(resources, "KafkaNodePool");
        assert.deepEqual(controllers!.inputs.spec.resources, {
            requests: { cpu: "100m", memory: "512Mi" },
            limits: { memory: "512Mi" },
        });
        assert.equal(controllers!.inputs.spec.storage.volumes[0].size, "1Gi");
        assert.deepEqual(brokers!.inputs.spec.resources.requests, { cpu: "250m", memory: "1Gi" });
        assert.equal(brokers!.inputs.spec.storage.volumes[0].size, "5Gi");
        const ephemeral = await runStack("prod", { kafkaEphemeralStorage: "true" });
        for (const pool of strimzi(ephemeral.resources, "KafkaNodePool"))
            assert.equal(pool.inputs.spec.storage.volumes[0].type, "ephemeral");
    });

    it("kafkaMetadataVersion pins the Kafka CR's metadataVersion", async () => {
        const { resources } = await runStack("dev", {
            kafkaVersion: "4.3.1",
            kafkaMetadataVersion: "4.2-IV1",
        });
        const [kafka] = strimzi(resources, "Kafka");
        assert.equal(kafka!.inputs.spec.kafka.metadataVersion, "4.2-IV1");
    });

    it("ephemeral storage swaps PVC templates for emptyDir", async () => {
        const { resources } = await runStack("dev", {
            clickhouseEphemeralStorage: "true",
            kafkaEphemeralStorage: "true",
        });
        const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
        assert.deepEqual(sts!.inputs.spec.volumeClaimTemplates, []);
        assert.ok(
            sts!.inputs.spec.template.spec.volumes.some(
                (v: { name: string; emptyDir?: object }) => v.name === "data" && v.emptyDir,
            ),
        );
        const [pool] = strimzi(resources, "KafkaNodePool");
        assert.equal(pool!.inputs.spec.storage.volumes[0].type, "ephemeral");
    });

    it("readiness gating can be switched off", async () => {
        const { resources } = await runStack("dev", { kafkaWaitForReady: "false" });
        for (const kind of ["Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"]) {
            for (const r of strimzi(resources, kind))
                assert.equal(
                    r.inputs.metadata.annotations,
                    undefined,
                    `${kind}: no annotations key at all`,
                );
        }
    });

    it("CRDs from a local path: the chart skips its own CRDs and a ConfigGroup applies the files", async () => {
        const crds = strimziCrdDir();
        const { resources } = await runStack("prod", {
            strimziCrdSource: "path",
            strimziCrdPath: crds,
        });
        const [release] = ofType(resources, "kubernetes:helm.sh/v3:Release");
        assert.equal(release!.inputs.skipCrds, true);
        const [group] = ofType(resources, "kubernetes:yaml/v2:ConfigGroup");
        assert.equal((group!.inputs.files as string[]).length, 6);
    });

    it("strimziInstall: the stack applies the release's CRD file (a version bump updates them) and keeps it on destroy", async () => {
        const { resources } = await runStack("prod", { strimziChartVersion: "1.3.0" });
        const [crds] = ofType(resources, "kubernetes:yaml/v2:ConfigFile");
        assert.equal(
            crds!.inputs.file,
            "https://github.com/strimzi/strimzi-kafka-operator/releases/download/1.3.0/strimzi-crds-1.3.0.yaml",
        );
        assert.equal(crds!.retainOnDelete, true, "deleting a CRD deletes every CR of its kind");
        const [release] = ofType(resources, "kubernetes:helm.sh/v3:Release");
        assert.equal(release!.inputs.version, "1.3.0");
        assert.equal(release!.inputs.skipCrds, true, "Helm would install them once, never upgrade");
        const path = await runStack("prod", {
            strimziCrdSource: "path",
            strimziCrdPath: strimziCrdDir(),
        });
        const [group] = ofType(path.resources, "kubernetes:yaml/v2:ConfigGroup");
        assert.equal(group!.retainOnDelete, true);
        assert.equal(ofType(path.resources, "kubernetes:yaml/v2:ConfigFile").length, 0);
    });

    it("prod protects what holds data; dev protects nothing", async () => {
        const isData = (r: Recorded) =>
            r.type === "kubernetes:core/v1:Namespace" ||
            r.type === "kubernetes:apps/v1:StatefulSet" ||
            ["Kafka", "KafkaNodePool", "KafkaTopic"].some(
                (k) => r.type === `kubernetes:kafka.strimzi.io/v1:${k}`,
            );
        const prod = (await runStack("prod")).resources;
        const data = prod.filter(isData);
        assert.equal(data.length, 1 + 1 + 1 + 2 + STREAMS.length);
        for (const r of data) assert.equal(r.protect, true, `${r.type} ${r.name}`);
        for (const r of prod.filter((x) => !isData(x) && x.type.startsWith("kubernetes:")))
            assert.equal(r.protect, false, `${r.type} ${r.name} holds no data`);
        for (const r of (await runStack("dev")).resources)
            assert.equal(r.protect, false, `${r.type} ${r.name}`);
    });

    it("ClickHouse PVCs: retention policy Retain by default, Delete when asked, none on emptyDir", async () => {
        const sts = async (overrides: Record<string, string>) =>
            ofType(
                (await runStack("prod", overrides)).resources,
                "kubernetes:apps/v1:StatefulSet",
            )[0]!.inputs.spec;
        assert.deepEqual((await sts({})).persistentVolumeClaimRetentionPolicy, {
            whenDeleted: "Retain",
            whenScaled: "Retain",
        });
        assert.deepEqual(
            (await sts({ clickhouseVolumeRetention: "Delete" }))
                .persistentVolumeClaimRetentionPolicy,
            { whenDeleted: "Delete", whenScaled: "Delete" },
        );
        assert.equal(
            (await sts({ clickhouseEphemeralStorage: "true" }))
                .persistentVolumeClaimRetentionPolicy,
            undefined,
        );
    });

    it("external mode: topics through @pulumi/kafka, no Strimzi resources, ClickHouse gets SASL from a Secret", async () => {
        const { resources, outputs } = await runStack(
            "dev",
            {
                kafkaMode: "external",
                kafkaExternalBootstrap: "kafka-1:9093,kafka-2:9093",
                kafkaExternalUsername: "ingest",
            },
            { kafkaExternalPassword: require("@pulumi/pulumi").secret("external-secret-pw") },
        );
        assert.equal(resources.filter((r) => r.type.includes("strimzi")).length, 0);
        const topics = ofType(resources, "kafka:index/topic:Topic");
        assert.equal(topics.length, STREAMS.length);
        const web = topics.find((t) => t.inputs.name === "web.events")!;
        assert.equal(web.inputs.partitions, 6);
        assert.equal(web.inputs.replicationFactor, 3);
        assert.equal(web.inputs.config["retention.ms"], "259200000");
        const [provider] = ofType(resources, "pulumi:providers:kafka");
        assert.deepEqual(JSON.parse(provider!.inputs.bootstrapServers), [
            "kafka-1:9093",
            "kafka-2:9093",
        ]);
        assert.equal(provider!.inputs.saslMechanism, "scram-sha512");
        assert.equal(outputs.kafkaBootstrapServers, "kafka-1:9093,kafka-2:9093");
        const cm = ofType(resources, "kubernetes:core/v1:ConfigMap").find(
            (c) => c.name === "clickhouse-config",
        )!;
        assert.match(
            cm.inputs.data["kafka.xml"],
            /<security_protocol>sasl_ssl<\/security_protocol>/,
        );
        assert.match(cm.inputs.data["kafka.xml"], /<sasl_username>ingest<\/sasl_username>/);
    });

    it("outputs: addresses and secret names only", async () => {
        const { outputs } = await runStack("dev");
        assert.deepEqual(outputs, {
            namespace: "kcs-dev",
            kafkaBootstrapServers: "events-kafka-bootstrap.kcs-dev.svc:9093",
            kafkaCredentialsSecret: "events-clickhouse-scram",
            clickhouseEndpoint: "http://clickhouse.kcs-dev.svc:8123",
            clickhouseCredentialsSecret: "clickhouse-credentials",
            streams: STREAMS.map((s) => s.name),
            // Text only; its cases are in destroy.test.ts.
            onDestroy: destroyImpact(parseConfig(stackFileConfig("dev"), "dev")),
            // Under mocks the dynamic provider does not run, so no plan is computed.
            ingestionPlans: Object.fromEntries(STREAMS.map((s) => [s.name, []])),
            queryJobs: { "daily-retention-report": "cronjob/clickhouse-daily-retention-report" },
        });
    });

    it("one StreamIngestion per stream, reaching ClickHouse by port-forward with the password by reference", async () => {
        const { resources } = await runStack("dev");
        const ingestion = ofType(resources, "pulumi-nodejs:dynamic/ingestion:StreamIngestion");
        assert.deepEqual(
            ingestion.map((r) => r.name).sort(),
            STREAMS.map((s) => `ingestion-${s.name}`).sort(),
        );
        for (const r of ingestion) {
            assert.equal(r.inputs.database, "ingest");
            assert.equal(r.inputs.kafkaBrokers, "events-kafka-bootstrap.kcs-dev.svc:9093");
            assert.equal(r.inputs.allowDestructiveChanges, true, "dev allows destructive changes");
            assert.equal(r.inputs.dropTargetOnDelete, false);
            assert.deepEqual(r.inputs.connection, {
                kind: "port-forward",
                namespace: "kcs-dev",
                service: "clickhouse",
                port: 8123,
                username: "admin",
                password: {
                    fromKubernetesSecret: {
                        namespace: "kcs-dev",
                        name: "clickhouse-credentials",
                        key: "admin-password",
                    },
                },
            });
            assert.equal(r.inputs.stream.name, r.name.replace("ingestion-", ""));
        }
    });

    it("a read-only DDL identity (previews): its user and the Secret of its password, by reference", async () => {
        const { resources } = await runStack("prod", {
            ingestionUser: "preview",
            ingestionPasswordSecret: "clickhouse-preview",
        });
        const ingestion = ofType(resources, "pulumi-nodejs:dynamic/ingestion:StreamIngestion");
        assert.equal(ingestion.length, STREAMS.length);
        for (const r of ingestion) {
            assert.equal(r.inputs.connection.username, "preview");
            assert.deepEqual(r.inputs.connection.password, {
                fromKubernetesSecret: {
                    namespace: "kcs-prod",
                    name: "clickhouse-preview",
                    key: "password",
                },
            });
        }
    });

    it("the DDL provider reads the password Secret through the stack's kubernetes:kubeconfig file", async () => {
        const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
        pulumi.runtime.setConfig("kubernetes:kubeconfig", ".sandbox/kubeconfig.yaml");
        try {
            const { resources } = await runStack("dev");
            for (const r of ofType(resources, "pulumi-nodejs:dynamic/ingestion:StreamIngestion"))
                assert.deepEqual(r.inputs.connection.kubeconfig, {
                    fromFile: path.join(ROOT, ".sandbox/kubeconfig.yaml"),
                });
        } finally {
            pulumi.runtime.setConfig("kubernetes:kubeconfig", "");
        }
        const { resources } = await runStack("dev");
        const [r] = ofType(resources, "pulumi-nodejs:dynamic/ingestion:StreamIngestion");
        assert.equal(r!.inputs.connection.kubeconfig, undefined, "unset: $KUBECONFIG, as before");
    });

    it("embedded ingestion resolves its data path against the project and can point at any broker list", async () => {
        const { resources } = await runStack("dev", {
            ingestionConnection: "embedded",
            ingestionEmbeddedPath: ".sandbox/clickhouse",
            ingestionKafkaBrokers: "127.0.0.1:29092",
        });
        const [r] = ofType(resources, "pulumi-nodejs:dynamic/ingestion:StreamIngestion");
        assert.deepEqual(r!.inputs.connection, {
            kind: "embedded",
            path: path.join(ROOT, ".sandbox/clickhouse"),
        });
        assert.equal(r!.inputs.kafkaBrokers, "127.0.0.1:29092");
    });
});
