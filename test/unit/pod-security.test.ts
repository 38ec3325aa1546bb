/**
 * Pod Security "restricted" (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
 * checked rule by rule on what the stack renders: the ClickHouse pod, and the security contexts it
 * hands Strimzi for the Kafka, entity operator and cluster operator containers. Each rule is proved
 * able to fail by a pod that breaks it and nothing else.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { POD_SECURITY_LABELS } from "../../components/pipeline/pipeline";
import { ofType, runStack, strimzi } from "./mocks";

type Obj = Record<string, any>;

const CONTAINER_KINDS = ["containers", "initContainers", "ephemeralContainers"] as const;

function containersOf(pod: Obj): Obj[] {
    return CONTAINER_KINDS.flatMap((k) => (pod[k] ?? []) as Obj[]);
}

/** Container security contexts, with the pod's as a fallback where the rule allows one. */
function contexts(pod: Obj): Obj[] {
    return containersOf(pod).map((c) => c.securityContext ?? {});
}

const SAFE_SYSCTLS = new Set([
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
]);
const SELINUX_TYPES = new Set([
    undefined,
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
]);
const ALLOWED_VOLUMES = new Set([
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
]);

/** One predicate per rule of the baseline and restricted profiles: true when the pod complies. */
const RULES: Record<string, (pod: Obj) => boolean> = {
    "baseline: no HostProcess": (pod) =>
        [pod.securityContext ?? {}, ...contexts(pod)].every(
            (s) => s.windowsOptions?.hostProcess !== true,
        ),
    "baseline: no host namespaces": (pod) => !pod.hostNetwork && !pod.hostPID && !pod.hostIPC,
    "baseline: no privileged containers": (pod) => contexts(pod).every((s) => !s.privileged),
    "baseline: no hostPath volumes": (pod) => (pod.volumes ?? []).every((v: Obj) => !v.hostPath),
    "baseline: no host ports": (pod) =>
        containersOf(pod).every((c) => (c.ports ?? []).every((p: Obj) => !p.hostPort)),
    "baseline: AppArmor unset, RuntimeDefault or Localhost": (pod) =>
        [pod.securityContext ?? {}, ...contexts(pod)].every((s) =>
            [undefined, "RuntimeDefault", "Localhost"].includes(s.appArmorProfile?.type),
        ),
    "baseline: SELinux type limited, no user or role": (pod) =>
        [pod.securityContext ?? {}, ...contexts(pod)].every(
            (s) =>
                SELINUX_TYPES.has(s.seLinuxOptions?.type) &&
                s.seLinuxOptions?.user === undefined &&
                s.seLinuxOptions?.role === undefined,
        ),
    "baseline: default /proc mount": (pod) =>
        contexts(pod).every((s) => s.procMount === undefined || s.procMount === "Default"),
    "baseline: safe sysctls only": (pod) =>
        (pod.securityContext?.sysctls ?? []).every((s: Obj) => SAFE_SYSCTLS.has(s.name)),
    "restricted: volume types": (pod) =>
        (pod.volumes ?? []).every((v: Obj) =>
            Object.keys(v)
                .filter((k) => k !== "name")
                .every((k) => ALLOWED_VOLUMES.has(k)),
        ),
    "restricted: allowPrivilegeEscalation false": (pod) =>
        contexts(pod).every((s) => s.allowPrivilegeEscalation === false),
    "restricted: runAsNonRoot": (pod) =>
        contexts(pod).every(
            (s) =>
                s.runAsNonRoot === true ||
                (s.runAsNonRoot === undefined && pod.securityContext?.runAsNonRoot === true),
        ),
    "restricted: runAsUser not 0": (pod) =>
        [pod.securityContext ?? {}, ...contexts(pod)].every((s) => s.runAsUser !== 0),
    "restricted: seccomp RuntimeDefault or Localhost": (pod) => {
        const ok = (t: unknown) => t === "RuntimeDefault" || t === "Localhost";
        const podType = pod.securityContext?.seccompProfile?.type;
        return contexts(pod).every((s) => {
            const t = s.seccompProfile?.type;
            return t === undefined ? ok(podType) : ok(t);
        });
    },
    "restricted: capabilities drop ALL, add NET_BIND_SERVICE at most": (pod) =>
        contexts(pod).every(
            (s) =>
                (s.capabilities?.drop ?? []).includes("ALL") &&
                (s.capabilities?.add ?? []).every((c: string) => c === "NET_BIND_SERVICE"),
        ),
};

function violations(pod: Obj): string[] {
    return Object.entries(RULES)
        .filter(([, complies]) => !complies(pod))
        .map(([rule]) => rule);
}

/** A pod that passes every rule, and per rule one change that breaks exactly that rule. */
const COMPLIANT: Obj = {
    securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
    containers: [
        {
            name: "app",
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
    ],
    volumes: [{ name: "data", emptyDir: {} }],
};
const BREAKS: Record<string, (pod: Obj) => void> = {
    "baseline: no HostProcess": (p) => {
        p.securityContext.windowsOptions = { hostProcess: true };
    },
    "baseline: no host namespaces": (p) => {
        p.hostPID = true;
    },
    "baseline: no privileged containers": (p) => {
        p.containers[0].securityContext.privileged = true;
    },
    "baseline: no hostPath volumes": (p) => {
        p.volumes.push({ name: "host", hostPath: { path: "/" } });
    },
    "baseline: no host ports": (p) => {
        p.containers[0].ports = [{ containerPort: 80, hostPort: 80 }];
    },
    "baseline: AppArmor unset, RuntimeDefault or Localhost": (p) => {
        p.securityContext.appArmorProfile = { type: "Unconfined" };
    },
    "baseline: SELinux type limited, no user or role": (p) => {
        p.containers[0].securityContext.seLinuxOptions = { type: "spc_t" };
    },
    "baseline: default /proc mount": (p) => {
        p.containers[0].securityContext.procMount = "Unmasked";
    },
    "baseline: safe sysctls only": (p) => {
        p.securityContext.sysctls = [{ name: "kernel.msgmax", value: "1" }];
    },
    "restricted: volume types": (p) => {
        p.volumes.push({ name: "nfs", nfs: { server: "x", path: "/" } });
    },
    "restricted: allowPrivilegeEscalation false": (p) => {
        delete p.containers[0].securityContext.allowPrivilegeEscalation;
    },
    "restricted: runAsNonRoot": (p) => {
        p.containers[0].securityContext.runAsNonRoot = false;
    },
    "restricted: runAsUser not 0": (p) => {
        p.containers[0].securityContext.runAsUser = 0;
    },
    "restricted: seccomp RuntimeDefault or Localhost": (p) => {
        p.containers[0].securityContext.seccompProfile = { type: "Unconfined" };
    },
    "restricted: capabilities drop ALL, add NET_BIND_SERVICE at most": (p) => {
        p.containers[0].securityContext.capabilities.add = ["NET_ADMIN"];
    },
};

/** A hostPath volume is also outside the restricted profile's volume types. */
const ALSO_BROKEN: Record<string, string[]> = {
    "baseline: no hostPath volumes": ["restricted: volume types"],
};

describe("the Pod Security 'restricted' checker", () => {
    it("has a breaking change for each rule and passes the compliant pod", () => {
        assert.deepEqual(Object.keys(BREAKS).sort(), Object.keys(RULES).sort());
        assert.deepEqual(violations(COMPLIANT), []);
    });

    for (const [rule, breakIt] of Object.entries(BREAKS)) {
        it(`can fail: ${rule}`, () => {
            const pod = structuredClone(COMPLIANT);
            breakIt(pod);
            assert.deepEqual(violations(pod), [rule, ...(ALSO_BROKEN[rule] ?? [])]);
        });
    }

    it("an unhardened pod (no security context at all) fails the restricted rules", () => {
        const pod = { containers: [{ name: "clickhouse", image: "clickhouse" }] };
        assert.deepEqual(violations(pod), [
            "restricted: allowPrivilegeEscalation false",
            "restricted: runAsNonRoot",
            "restricted: seccomp RuntimeDefault or Localhost",
            "restricted: capabilities drop ALL, add NET_BIND_SERVICE at most",
        ]);
    });
});

/** The StatefulSet's pod as the API server sees it: the claim templates become PVC volumes. */
function clickhousePod(sts: Obj): Obj {
    const pod = structuredClone(sts.spec.template.spec) as Obj;
    for (const claim of sts.spec.volumeClaimTemplates ?? [])
        pod.volumes.push({
            name: claim.metadata.name,
            persistentVolumeClaim: { claimName: claim.metadata.name },
        });
    return pod;
}

describe("ClickHouse pod: Pod Security 'restricted'", () => {
    const cases: Array<[string, string, Record<string, string>]> = [
        ["dev", "dev", {}],
        ["prod", "prod", {}],
        ["ephemeral storage", "dev", { clickhouseEphemeralStorage: "true" }],
        [
            "external Kafka",
            "dev",
            {
                kafkaMode: "external",
                kafkaExternalBootstrap: "kafka:9093",
                kafkaExternalSaslMechanism: "none",
            },
        ],
    ];
    for (const [title, stack, overrides] of cases) {
        it(`${title}: every rule holds`, async () => {
            const { resources } = await runStack(stack, overrides);
            const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
            const pod = clickhousePod(sts!.inputs);
            for (const [rule, complies] of Object.entries(RULES))
                assert.ok(complies(pod), `${rule}: ${JSON.stringify(pod.securityContext)}`);
        });
    }

    it("runs as the image's clickhouse user (101) with a read-only root and its own ServiceAccount without a token", async () => {
        const { resources } = await runStack("prod");
        const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
        const pod = sts!.inputs.spec.template.spec;
        assert.deepEqual(pod.securityContext, {
            runAsNonRoot: true,
            runAsUser: 101,
            runAsGroup: 101,
            fsGroup: 101,
            seccompProfile: { type: "RuntimeDefault" },
        });
        assert.deepEqual(pod.containers[0].securityContext, {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            readOnlyRootFilesystem: true,
        });
        assert.equal(pod.automountServiceAccountToken, false);
        const accounts = ofType(resources, "kubernetes:core/v1:ServiceAccount");
        assert.equal(accounts.length, 1);
        assert.equal(pod.serviceAccountName, accounts[0]!.inputs.metadata.name);
        assert.equal(accounts[0]!.inputs.metadata.name, "clickhouse");
        assert.equal(accounts[0]!.inputs.automountServiceAccountToken, false);
        // Writable places under the read-only root: the data volume and two scratch emptyDirs.
        const mounts = pod.containers[0].volumeMounts as Obj[];
        assert.deepEqual(
            mounts.filter((m) => !m.readOnly).map((m) => m.mountPath),
            ["/var/lib/clickhouse", "/tmp", "/var/log/clickhouse-server"],
        );
        for (const name of ["tmp", "logs"]) {
            const v = (pod.volumes as Obj[]).find((x) => x.name === name)!;
            assert.deepEqual(Object.keys(v.emptyDir), ["sizeLimit"], name);
        }
    });
});

describe("Strimzi containers carry what 'restricted' asks", () => {
    it("Kafka, topic and user operator containers, in dev and prod", async () => {
        for (const stack of ["dev", "prod"]) {
            const { resources } = await runStack(stack);
            const [kafka] = strimzi(resources, "Kafka");
            const spec = kafka!.inputs.spec;
            const template = spec.kafka.template;
            // Strimzi's pods, with the contexts the templates give them.
            const pods: Record<string, Obj> = {
                kafka: {
                    securityContext: template.pod.securityContext,
                    containers: [
                        { name: "kafka", securityContext: template.kafkaContainer.securityContext },
                    ],
                    volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }],
                },
                "entity-operator": {
                    containers: [
                        {
                            name: "topic-operator",
                            securityContext:
                                spec.entityOperator.template.topicOperatorContainer.securityContext,
                        },
                        {
                            name: "user-operator",
                            securityContext:
                                spec.entityOperator.template.userOperatorContainer.securityContext,
                        },
                    ],
                },
            };
            for (const [name, pod] of Object.entries(pods))
                assert.deepEqual(violations(pod), [], `${stack}: ${name}`);
            assert.deepEqual(
                template.pod.securityContext,
                { fsGroup: 0 },
                "Strimzi's own fsGroup kept: the Kafka user writes its volumes through group 0",
            );
        }
    });

    it("the cluster operator's container (strimziInstall)", async () => {
        const { resources } = await runStack("prod");
        const [release] = ofType(resources, "kubernetes:helm.sh/v3:Release");
        const values = release!.inputs.values;
        const pod = {
            containers: [
                { name: "strimzi-cluster-operator", securityContext: values.securityContext },
            ],
            // The chart's own volumes: /tmp in memory and the logging ConfigMap.
            volumes: [
                { name: "strimzi-tmp", emptyDir: { medium: "Memory" } },
                { name: "co-config-volume", configMap: { name: "strimzi-cluster-operator" } },
            ],
        };
        assert.deepEqual(violations(pod), []);
    });
});

describe("namespace: Pod Security admission labels", () => {
    const expected = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
    };

    it("the namespace the stack creates enforces, audits and warns at 'restricted'", async () => {
        assert.deepEqual(POD_SECURITY_LABELS, expected);
        for (const stack of ["dev", "prod"]) {
            const { resources } = await runStack(stack);
            const [ns] = ofType(resources, "kubernetes:core/v1:Namespace");
            assert.deepEqual(ns!.inputs.metadata.labels, expected, stack);
        }
    });

    it("a namespace managed elsewhere is left alone", async () => {
        const { resources } = await runStack("dev", { createNamespace: "false" });
        assert.equal(ofType(resources, "kubernetes:core/v1:Namespace").length, 0);
    });
});

describe("query and backfill pods: Pod Security 'restricted'", () => {
    it("the CronJob of every shipped query, dev and prod (TLS)", async () => {
        for (const stack of ["dev", "prod"]) {
            const { resources } = await runStack(stack);
            const cronJobs = ofType(resources, "kubernetes:batch/v1:CronJob");
            assert.ok(cronJobs.length > 0, `${stack}: no CronJob rendered`);
            for (const c of cronJobs) {
                const pod = c.inputs.spec.jobTemplate.spec.template.spec as Obj;
                for (const [rule, complies] of Object.entries(RULES))
                    assert.ok(complies(pod), `${stack} ${c.name}: ${rule}`);
            }
        }
    });

    it("one-off Jobs: the example export and import (the S3 one is scheduled)", async () => {
        const { resources } = await runStack("dev", { queriesDir: "schemas/query-examples" });
        const jobs = ofType(resources, "kubernetes:batch/v1:Job");
        assert.deepEqual(jobs.map((j) => j.inputs.metadata.name).sort(), [
            "clickhouse-export-web-events",
            "clickhouse-import-web-events",
        ]);
        for (const j of jobs) {
            const pod = j.inputs.spec.template.spec as Obj;
            for (const [rule, complies] of Object.entries(RULES))
                assert.ok(complies(pod), `${j.name}: ${rule}`);
        }
    });
});
