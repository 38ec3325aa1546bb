// Smoke test of the local control plane used by the e2e tests: a kwok cluster
// from locally built binaries, the Strimzi CRDs, a StatefulSet whose pod
// becomes Ready on a fake node, schema validation of a Kafka CR, and a clean stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startKube, waitFor } from "../../runtime/kube";
import { isAlive, procInfo } from "../../runtime/process";

const statefulSet = `
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: smoke
  namespace: default
spec:
  replicas: 1
  serviceName: smoke
  selector:
    matchLabels: { app: smoke }
  template:
    metadata:
      labels: { app: smoke }
    spec:
      containers:
        - name: main
          image: registry.invalid/smoke:never-pulled
          volumeMounts:
            - { name: data, mountPath: /data }
      volumes:
        - name: data
          emptyDir: {}
`;

const kafka = (listeners: string) => `
apiVersion: kafka.strimzi.io/v1
kind: Kafka
metadata:
  name: smoke
  namespace: default
spec:
  kafka:
    listeners: ${listeners}
`;

test(
    "kwok cluster: CRDs, a Ready StatefulSet pod, Kafka CR validation, clean stop",
    { timeout: 600_000 },
    async (t) => {
        const cluster = await startKube();
        t.after(() => cluster.stop());
        const pids = cluster.pids();
        assert.ok(
            pids.length >= 5,
            `expected the control plane processes, got pids ${pids.join(",")}`,
        );

        await t.test("kubeconfig is usable and points at loopback", async () => {
            assert.match(cluster.kubeconfigText, /server: https:\/\/127\.0\.0\.1:\d+/);
            const version = JSON.parse(await cluster.kubectl(["version", "-o", "json"])) as {
                serverVersion: { gitVersion: string };
            };
            assert.match(version.serverVersion.gitVersion, /^v1\.\d+\.\d+$/);
        });

        await t.test("Strimzi CRDs apply server-side", async () => {
            await cluster.applyCrds();
            const crds = await cluster.kubectl(["get", "crd", "-o", "name"]);
            assert.match(crds, /kafkas\.kafka\.strimzi\.io/);
            assert.match(crds, /kafkatopics\.kafka\.strimzi\.io/);
        });

        await t.test("a StatefulSet pod becomes Ready on a fake node", async () => {
            await cluster.kubectl(["apply", "-f", "-"], statefulSet);
            await waitFor(
                async () =>
                    (
                        await cluster.kubectl([
                            "get",
                            "pod",
                            "smoke-0",
                            "--ignore-not-found",
                            "-o",
                            "name",
                        ])
                    ).trim() !== "",
                60_000,
                "pod smoke-0 to exist",
            );
            await cluster.kubectl([
                "wait",
                "--for=condition=Ready",
                "pod/smoke-0",
                "--timeout=120s",
            ]);
            await cluster.kubectl(["rollout", "status", "statefulset/smoke", "--timeout=60s"]);
            const node = await cluster.kubectl([
                "get",
                "pod",
                "smoke-0",
                "-o",
                "jsonpath={.spec.nodeName}",
            ]);
            assert.ok(node.length > 0, "pod was scheduled");
        });

        await t.test("a Kafka CR validates against the CRD schema", async () => {
            const ok = kafka("[{ name: plain, port: 9092, type: internal, tls: false }]");
            await cluster.kubectl(["apply", "-f", "-"], ok);
            assert.equal(
                (
                    await cluster.kubectl([
                        "get",
                        "kafka",
                        "smoke",
                        "-o",
                        "jsonpath={.spec.kafka.listeners[0].port}",
                    ])
                ).trim(),
                "9092",
            );
            const bad = kafka("[{ name: plain, port: not-a-number, type: internal, tls: false }]");
            await assert.rejects(
                cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], bad),
                /port|Invalid value/,
            );
        });

        await cluster.stop();
        // Running, that is: an exited component stays a zombie until init (its parent once
        // kwokctl has gone) reaps it, which stop() can neither do nor wait for reliably.
        const states = pids.map((pid) => `${pid}:${procInfo(pid)?.state ?? "gone"}`);
        const alive = pids.filter(isAlive);
        assert.deepEqual(
            alive,
            [],
            `control plane processes still running after stop(): ${states}`,
        );
    },
);
