/**
 * The dev and prod stacks' rendered Kubernetes objects (test/unit/rendered-manifests.ts), linted
 * with the real tools: kube-score (default checks plus the optional ones in KUBE_SCORE_OPTIONAL,
 * the Kubernetes version of tools/versions.env) and checkov (its Kubernetes framework, offline). Every finding is a failure unless
 * test/fixtures/manifest-lint-accepted.yaml lists it with a reason; a listed entry that no longer
 * matches, for any stack it names, fails too. Objects the program does not write (the Strimzi
 * operator's chart, the pods Strimzi makes from its CRs) are not scanned: neither tool knows the
 * Strimzi kinds. The tools come from tools/lint/kube-score.sh and checkov.sh (cached by version);
 * `./run test` exports KCS_KUBE_SCORE and KCS_CHECKOV.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { lintBinary } from "./lint-tools";
import { ROOT } from "./mocks";
import { renderStack, toYaml } from "./rendered-manifests";

const ACCEPTED_FILE = path.join(ROOT, "test", "fixtures", "manifest-lint-accepted.yaml");
const STACKS = ["dev", "prod"] as const;
type Tool = "kube-score" | "checkov";

interface Finding {
    readonly tool: Tool;
    readonly check: string;
    /** `Kind/name` */
    readonly object: string;
    /** The stack, or the name of a test's own manifest file. */
    readonly stack: string;
    readonly message: string;
}

interface Accepted {
    readonly tool: Tool;
    readonly check: string;
    readonly object: string;
    readonly stacks: readonly string[];
    readonly reason: string;
}

/** `v1.36` from KUBERNETES_VERSION in tools/versions.env: the API the checks assume. */
function kubernetesVersion(): string {
    const env = fs.readFileSync(path.join(ROOT, "tools", "versions.env"), "utf8");
    const m = /^KUBERNETES_VERSION=(\d+\.\d+)/m.exec(env);
    if (!m) throw new Error("no KUBERNETES_VERSION in tools/versions.env");
    return `v${m[1]}`;
}

function toolFailed(
    tool: string,
    bin: string,
    envVar: string,
    res: { status: number | null; error?: Error; stderr: string },
): Error {
    const why = res.error ? res.error.message : `exit ${res.status}: ${res.stderr.trim()}`;
    return new Error(
        `${tool} (${bin}) failed (${why}); ${envVar} must name the binary that ` +
            `tools/lint/${tool}.sh prints last (unset, the test runs that script)`,
    );
}

/**
 * kube-score's optional checks that hold what the ClickHouse pod already does, so a change that
 * drops it fails: the runtime's seccomp filter, Guaranteed QoS (CPU and memory limits equal the
 * requests), named container ports.
 */
const KUBE_SCORE_OPTIONAL = [
    "container-seccomp-profile",
    "container-cpu-requests-equal-limits",
    "container-memory-requests-equal-limits",
    "container-ports-check",
];

/** kube-score's warnings and criticals for one manifest file. */
function kubeScore(file: string, stack: string): Finding[] {
    const bin = lintBinary("KCS_KUBE_SCORE", "kube-score.sh");
    const res = spawnSync(
        bin,
        [
            "score",
            "--output-format",
            "json",
            "--kubernetes-version",
            kubernetesVersion(),
            ...KUBE_SCORE_OPTIONAL.flatMap((t) => ["--enable-optional-test", t]),
            file,
        ],
        { encoding: "utf8" },
    );
    // Exit 1 means "found problems"; anything else, or no JSON, is the tool failing.
    if ((res.status !== 0 && res.status !== 1) || !res.stdout.trim().startsWith("["))
        throw toolFailed("kube-score", bin, "KCS_KUBE_SCORE", res);
    const objects = JSON.parse(res.stdout) as {
        type_meta: { kind: string };
        object_meta: { name: string };
        checks: {
            check: { id: string };
            grade: number;
            skipped: boolean;
            comments: { summary: string }[] | null;
        }[];
    }[];
    // Grades: 1 critical, 5 warning, 7 almost ok, 10 ok.
    return objects.flatMap((o) =>
        o.checks
            .filter((c) => !c.skipped && c.grade <= 5)
            .map((c) => ({
                tool: "kube-score" as const,
                check: c.check.id,
                object: `${o.type_meta.kind}/${o.object_meta.name}`,
                stack,
                message: (c.comments ?? []).map((x) => x.summary).join("; "),
            })),
    );
}

/**
 * Environment for an offline checkov: no guideline mapping, no platform download, no PyPI update
 * check (it has no API key, so nothing is sent anywhere).
 */
const CHECKOV_ENV = {
    BC_SKIP_MAPPING: "TRUE",
    CKV_SKIP_PACKAGE_UPDATE_CHECK: "TRUE",
    LOG_LEVEL: "WARNING",
};

/** checkov's failed checks for every `<stack>.yaml` in `dir` (one run: it starts slowly). */
function checkov(dir: string): Finding[] {
    const bin = lintBinary("KCS_CHECKOV", "checkov.sh");
    const res = spawnSync(
        bin,
        ["-d", dir, "--framework", "kubernetes", "--output", "json", "--quiet", "--skip-download"],
        { encoding: "utf8", env: { ...process.env, ...CHECKOV_ENV } },
    );
    if ((res.status !== 0 && res.status !== 1) || !res.stdout.trim().startsWith("{"))
        throw toolFailed("checkov", bin, "KCS_CHECKOV", res);
    const out = JSON.parse(res.stdout) as {
        results?: {
            failed_checks: {
                check_id: string;
                check_name: string;
                resource: string;
                file_path: string;
            }[];
        };
        summary: { parsing_errors: number };
    };
    if (out.summary.parsing_errors > 0)
        throw new Error(`checkov could not parse ${out.summary.parsing_errors} file(s) in ${dir}`);
    return (out.results?.failed_checks ?? []).map((f) => {
        // `Kind.namespace.name`; a graph check on a pod template appends its labels after the
        // name (our names have no dots).
        const [kind, , name] = f.resource.split(".");
        return {
            tool: "checkov" as const,
            check: f.check_id,
            object: `${kind}/${name}`,
            stack: path.basename(f.file_path, ".yaml"),
            message: f.check_name,
        };
    });
}

/** Both tools over `files` (stack or test name to YAML text), in a scratch folder. */
function lint(files: Record<string, string>): Finding[] {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-manifest-lint-"));
    try {
        for (const [name, text] of Object.entries(files))
            fs.writeFileSync(path.join(dir, `${name}.yaml`), text);
        return [
            ...Object.keys(files).flatMap((name) =>
                kubeScore(path.join(dir, `${name}.yaml`), name),
            ),
            ...checkov(dir),
        ];
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function accepted(): Accepted[] {
    const doc = YAML.parse(fs.readFileSync(ACCEPTED_FILE, "utf8")) as { accepted?: Accepted[] };
    return doc.accepted ?? [];
}

const matches = (a: Accepted, f: Finding) =>
    a.tool === f.tool && a.check === f.check && a.object === f.object && a.stacks.includes(f.stack);

/** Findings no entry accepts. */
function unaccepted(findings: readonly Finding[], list: readonly Accepted[]): Finding[] {
    return findings.filter((f) => !list.some((a) => matches(a, f)));
}

const show = (f: Finding) =>
    `${f.stack}: ${f.tool} ${f.check} ${f.object}: ${f.message}\n` +
    `    fix it in components/ (rendered as in test/unit/rendered-manifests.ts), or accept it in ` +
    `test/fixtures/manifest-lint-accepted.yaml: { tool: ${f.tool}, check: ${f.check}, ` +
    `object: ${f.object}, stacks: [${f.stack}], reason: "<why it stays>" }`;

/** A Deployment with the classic mistakes, to prove both tools (and the comparison) can fail. */
const BAD_DEPLOYMENT = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "bad", namespace: "kcs-dev" },
    spec: {
        replicas: 1,
        selector: { matchLabels: { app: "bad" } },
        template: {
            metadata: { labels: { app: "bad" } },
            spec: {
                containers: [
                    { name: "bad", image: "nginx:latest", securityContext: { privileged: true } },
                ],
            },
        },
    },
};

/** Both stacks and the bad example, linted once (the first test to ask runs the tools). */
let linted: Promise<Finding[]> | undefined;
function findings(): Promise<Finding[]> {
    linted ??= (async () => {
        const files: Record<string, string> = {};
        for (const stack of STACKS) files[stack] = toYaml(await renderStack(stack));
        files["bad-example"] = YAML.stringify(BAD_DEPLOYMENT);
        return lint(files);
    })();
    return linted;
}

async function ofStacks(): Promise<Finding[]> {
    return (await findings()).filter((f) => (STACKS as readonly string[]).includes(f.stack));
}

describe("rendered manifests: kube-score and checkov", () => {
    it("every finding is fixed or accepted with a one-line reason", async () => {
        const list = accepted();
        for (const a of list) {
            assert.ok(
                a.reason && a.reason.trim().length > 10 && !a.reason.includes("\n"),
                `${a.tool} ${a.check} ${a.object}: give a one-line reason`,
            );
            for (const s of a.stacks)
                assert.ok(
                    (STACKS as readonly string[]).includes(s),
                    `${a.check}: unknown stack ${s}`,
                );
        }
        const found = await ofStacks();
        const counts = STACKS.map((stack) => {
            const n = (tool: Tool) =>
                found.filter((f) => f.stack === stack && f.tool === tool).length;
            return `${stack}: kube-score ${n("kube-score")}, checkov ${n("checkov")}`;
        });
        console.log(`manifest findings (before the accepted list): ${counts.join("; ")}`);
        const fresh = unaccepted(found, list);
        assert.deepEqual(
            fresh.map(show),
            [],
            "new findings: fix them, or accept each with a reason",
        );
    });

    it("no accepted entry is stale (each matches a finding in every stack it names)", async () => {
        const found = await ofStacks();
        const stale = accepted().flatMap((a) =>
            a.stacks
                .filter((stack) => !found.some((f) => f.stack === stack && matches(a, f)))
                .map((stack) => `${stack}: ${a.tool} ${a.check} ${a.object}`),
        );
        assert.deepEqual(
            stale,
            [],
            "entries that match no finding any more: remove them (or the stack)",
        );
    });

    it("both tools report a bad Deployment, and the comparison fails on it (the check can fail)", async () => {
        const bad = (await findings()).filter((f) => f.stack === "bad-example");
        const found = new Set(bad.map((f) => `${f.tool}:${f.check}`));
        for (const want of [
            "kube-score:container-resources", // no requests or limits
            "kube-score:container-image-tag", // :latest
            "kube-score:container-security-context-privileged",
            "kube-score:container-seccomp-profile", // an optional check the suite turns on
            "checkov:CKV_K8S_14", // image tag latest
            "checkov:CKV_K8S_16", // privileged
            "checkov:CKV_K8S_11", // no CPU limit
        ])
            assert.ok(found.has(want), `${want} not reported; got ${[...found].join(", ")}`);
        const asDev = bad.map((f) => ({ ...f, stack: "dev" }));
        assert.equal(
            unaccepted(asDev, accepted()).length,
            asDev.length,
            "none of them is accepted",
        );
    });
});

describe("ClickHouse pod resources (what kube-score and checkov asked for)", () => {
    const container = async (overrides: Record<string, string>) => {
        const manifests = await renderStack("dev", overrides);
        const sts = manifests.find((m) => m.kind === "StatefulSet")!;
        return (sts.spec as any).template.spec.containers[0];
    };

    it("an emptyDir data volume lifts the ephemeral-storage limit, which would evict the pod", async () => {
        const persistent = await container({});
        assert.equal(persistent.resources.limits["ephemeral-storage"], "1Gi");
        const ephemeral = await container({ clickhouseEphemeralStorage: "true" });
        assert.deepEqual(ephemeral.resources.limits, { cpu: "500m", memory: "2Gi" });
        assert.equal(ephemeral.resources.requests["ephemeral-storage"], "512Mi");
    });
});
