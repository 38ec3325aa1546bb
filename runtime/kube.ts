// A throwaway Kubernetes control plane for e2e tests: kwokctl's "binary"
// runtime with the locally built etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok-controller and kubectl (tools/bootstrap.sh), bound to
// 127.0.0.1, with fake kwok nodes on which pods become Running/Ready.
// Nothing is downloaded: every binary kwokctl would fetch is given explicitly.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { procInfo, runFile, terminatePid, trackPids, waitFor } from "./process";
import { activeRegistry } from "./process-registry";
import { strimziCrdDir } from "./strimzi";

/** Kept here too: the e2e tests that start a cluster poll with it. */
export { waitFor } from "./process";

export const REPO_ROOT = path.resolve(__dirname, "..");

export interface KubeOptions {
    /** kwok cluster name; default kcs-<pid>-<random>. */
    name?: string;
    /** Directory with the binaries; default ensureTools("kube"). */
    binDir?: string;
    /** Number of fake kwok nodes; default 1. */
    nodes?: number;
    /** Extra `component=flag=value` args for kwokctl --extra-args. */
    extraArgs?: string[];
    /** Progress output; default writes to stderr. */
    log?: (line: string) => void;
}

export interface KubeCluster {
    readonly name: string;
    readonly binDir: string;
    /** Temp directory holding kwokctl's workdir, config and the kubeconfig. */
    readonly workDir: string;
    /** Path of the kubeconfig (context = this cluster only). */
    readonly kubeconfig: string;
    /** Contents of the kubeconfig, self-contained (certificates embedded). */
    readonly kubeconfigText: string;
    /** Environment for child processes: bin dir first on PATH, KUBECONFIG set. */
    readonly env: NodeJS.ProcessEnv;
    /** Runs kubectl against this cluster and resolves with its stdout. */
    kubectl(args: string[], input?: string): Promise<string>;
    /**
     * Server-side applies every YAML file of a directory (default: the generated Strimzi CRDs)
     * and waits until the CRDs are Established.
     */
    applyCrds(dir?: string): Promise<void>;
    /** Process ids of the cluster's components (from kwokctl's pid files). */
    pids(): number[];
    /** Deletes the cluster, kills any component still alive and removes workDir. Idempotent. */
    stop(): Promise<void>;
}

const toolsCache = new Map<string, string>();

/**
 * Runs tools/bootstrap.sh once per process (per subset) and returns its bin directory.
 * `./run` bootstraps once and exports KCS_TOOLS_BIN, which is then used as it is.
 */
export function ensureTools(only: "all" | "kube" | "pulumi" = "all"): string {
    const preset = process.env.KCS_TOOLS_BIN;
    if (preset && existsSync(preset)) return preset;
    const cached = toolsCache.get(only) ?? toolsCache.get("all");
    if (cached) return cached;
    const script = path.join(REPO_ROOT, "tools", "bootstrap.sh");
    const res = spawnSync("bash", [script, "--only", only], {
        stdio: ["ignore", "pipe", "inherit"],
        encoding: "utf8",
    });
    if (res.error) throw res.error;
    if (res.status !== 0)
        throw new Error(`tools/bootstrap.sh --only ${only} failed with exit code ${res.status}`);
    const binDir = res.stdout.trim().split("\n").pop() ?? "";
    if (!binDir || !existsSync(binDir))
        throw new Error(`tools/bootstrap.sh printed no bin directory (got '${binDir}')`);
    toolsCache.set(only, binDir);
    return binDir;
}

/** Where a cluster's files live and how its commands run. */
interface ClusterFiles {
    readonly name: string;
    readonly binDir: string;
    readonly workDir: string;
    readonly kubeconfig: string;
    readonly configPath: string;
    /** kwokctl's pid files, one per component. */
    readonly pidDir: string;
    readonly kubectlBin: string;
    readonly env: NodeJS.ProcessEnv;
}

/** kwokctl's configuration: every binary is local; bindAddress keeps all listeners on loopback. */
function kwokctlConfig(binDir: string, kwokDir: string, kubectlBin: string): string {
    const bin = (b: string) => JSON.stringify(path.join(binDir, b));
    return [
        "apiVersion: config.kwok.x-k8s.io/v1alpha1",
        "kind: KwokctlConfiguration",
        "options:",
        "  runtime: binary",
        "  bindAddress: 127.0.0.1",
        "  quietPull: true",
        // kwokctl's default, pinned: admission plugins (PodSecurity among them) stay on, so the
        // stack's Pod Security `restricted` namespace is enforced as on a real cluster.
        "  kubeAdmission: true",
        `  cacheDir: ${JSON.stringify(path.join(kwokDir, "cache"))}`,
        `  etcdBinary: ${bin("etcd")}`,
        `  kubeApiserverBinary: ${bin("kube-apiserver")}`,
        `  kubeControllerManagerBinary: ${bin("kube-controller-manager")}`,
        `  kubeSchedulerBinary: ${bin("kube-scheduler")}`,
        `  kwokControllerBinary: ${bin("kwok")}`,
        `  kubectlBinary: ${JSON.stringify(kubectlBin)}`,
        "",
    ].join("\n");
}

async function prepareFiles(opts: KubeOptions): Promise<ClusterFiles> {
    const binDir = opts.binDir ?? ensureTools("kube");
    const name = opts.name ?? `kcs-${process.pid}-${randomBytes(3).toString("hex")}`;
    const workDir = await mkdtemp(path.join(tmpdir(), "kcs-kube-"));
    // Every component's command line names this folder: a later command finds them by it, also
    // one started too shortly before a crash to be recorded by pid.
    activeRegistry()?.recordFolder(workDir, `Kubernetes control plane ${name}`);
    const kwokDir = path.join(workDir, "kwok");
    const kubeconfig = path.join(workDir, "kubeconfig.yaml");
    const configPath = path.join(workDir, "kwokctl.yaml");
    const kubectlBin = existsSync(path.join(binDir, "kubectl"))
        ? path.join(binDir, "kubectl")
        : "kubectl";
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}`,
        KWOK_WORKDIR: kwokDir,
        KUBECONFIG: kubeconfig,
        KUBECACHEDIR: path.join(workDir, "kube-cache"),
    };
    await writeFile(configPath, kwokctlConfig(binDir, kwokDir, kubectlBin));
    const pidDir = path.join(kwokDir, "clusters", name, "pids");
    return { name, binDir, workDir, kubeconfig, configPath, pidDir, kubectlBin, env };
}

/** The component pids kwokctl's pid files hold, by component name. */
function pidFiles(pidDir: string): Map<string, number> {
    const out = new Map<string, number>();
    if (!existsSync(pidDir)) return out;
    for (const f of readdirSync(pidDir).filter((x) => x.endsWith(".pid"))) {
        const pid = Number.parseInt(readFileSync(path.join(pidDir, f), "utf8").trim(), 10);
        if (Number.isInteger(pid) && pid > 0) out.set(f.slice(0, -".pid".length), pid);
    }
    return out;
}

interface Commands {
    kwokctl(args: string[], timeoutMs?: number): Promise<string>;
    kubectl(args: string[], input?: string): Promise<string>;
}

function commands(f: ClusterFiles): Commands {
    return {
        kwokctl: (args, timeoutMs) =>
            runFile(
                path.join(f.binDir, "kwokctl"),
                ["-c", f.configPath, "--name", f.name, ...args],
                { env: f.env, timeoutMs },
            ),
        kubectl: (args, input) =>
            runFile(f.kubectlBin, ["--kubeconfig", f.kubeconfig, ...args], { env: f.env, input }),
    };
}

/**
 * The cluster's components: kwokctl starts each in a session of its own, so they are not our
 * children. They are killed if this process exits first (process.ts's exit hooks), recorded in the
 * active registry as they appear, and stopped by `stop`.
 */
interface Components {
    pids(): number[];
    /** Records the components started since the last call. */
    note(): void;
    stop(): Promise<void>;
}

function components(f: ClusterFiles, cmd: Commands, log: (line: string) => void): Components {
    // Each pid with the start time it had when first seen: a pid the kernel has handed on since
    // (a component that exited) is never signalled.
    const known = new Map<number, number | undefined>();
    const note = () => {
        for (const [component, pid] of pidFiles(f.pidDir)) {
            if (known.has(pid)) continue;
            known.set(
                pid,
                activeRegistry()?.recordProcess(pid, component) ?? procInfo(pid)?.startTime,
            );
        }
    };
    const pids = () => {
        note();
        return [...known]
            .filter(([pid, start]) => start === undefined || procInfo(pid)?.startTime === start)
            .map(([pid]) => pid);
    };
    const untrack = trackPids(pids);
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> =>
        (stopped ??= (async () => {
            const running = pids();
            log(`deleting cluster ${f.name}`);
            try {
                await cmd.kwokctl(["delete", "cluster", "--kubeconfig", f.kubeconfig], 120_000);
            } catch (e) {
                const why = (e as Error).message;
                log(`kwokctl delete cluster failed (killing processes instead): ${why}`);
            }
            const left = pids().filter((pid) => running.includes(pid));
            await Promise.all(
                left.map((pid) => terminatePid(pid, { signal: "SIGKILL", graceMs: 10_000 })),
            );
            untrack();
            await rm(f.workDir, { recursive: true, force: true });
        })());
    return { pids, note, stop };
}

/** kwokctl create (recording components as they start), nodes Ready, the default ServiceAccount. */
async function createCluster(
    f: ClusterFiles,
    cmd: Commands,
    comps: Components,
    opts: KubeOptions,
): Promise<void> {
    const extra = (opts.extraArgs ?? []).flatMap((a) => ["--extra-args", a]);
    const create = ["create", "cluster", "--kubeconfig", f.kubeconfig, "--wait", "2m"];
    const noting = setInterval(comps.note, 500);
    try {
        await cmd.kwokctl([...create, "--timeout", "4m", ...extra], 300_000);
    } finally {
        clearInterval(noting);
        comps.note();
    }
    const nodes = opts.nodes ?? 1;
    if (nodes > 0) {
        // kwok's node template offers no ephemeral-storage: a pod requesting some (ClickHouse
        // does) would stay Pending with "Insufficient ephemeral-storage".
        const disk = '.allocatable["ephemeral-storage"] = "100Gi"';
        await cmd.kwokctl(["scale", "node", "--replicas", String(nodes), "--param", disk]);
        await cmd.kubectl(["wait", "--for=condition=Ready", "node", "--all", "--timeout=120s"]);
    }
    // The default ServiceAccount is created asynchronously by the controller-manager.
    const sa = ["get", "serviceaccount", "default", "--ignore-not-found", "-o", "name"];
    await waitFor(
        async () => (await cmd.kubectl(sa)).trim() !== "",
        60_000,
        "default ServiceAccount",
    );
}

/** Server-side applies every YAML file of `dir` and waits until the CRDs are Established. */
async function applyCrds(cmd: Commands, dir: string): Promise<void> {
    const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
    if (files.length === 0) throw new Error(`no YAML files in ${dir}`);
    for (const f of files) {
        await cmd.kubectl([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=kcs-e2e",
            "-f",
            path.join(dir, f),
        ]);
    }
    // Poll rather than `kubectl wait`: that errors out on a CRD whose status has no conditions yet.
    await waitFor(
        async () => {
            const crds = JSON.parse(await cmd.kubectl(["get", "crd", "-o", "json"])) as {
                items: { status?: { conditions?: { type: string; status: string }[] } }[];
            };
            return (
                crds.items.length > 0 &&
                crds.items.every((c) =>
                    c.status?.conditions?.some(
                        (x) => x.type === "Established" && x.status === "True",
                    ),
                )
            );
        },
        60_000,
        "the CRDs to be Established",
    );
}

export async function startKube(opts: KubeOptions = {}): Promise<KubeCluster> {
    const log = opts.log ?? ((line: string) => process.stderr.write(`[kube] ${line}\n`));
    const f = await prepareFiles(opts);
    const cmd = commands(f);
    const comps = components(f, cmd, log);
    try {
        log(
            `creating cluster ${f.name} (kube-apiserver, etcd, controller-manager, scheduler, kwok) in ${f.workDir}`,
        );
        await createCluster(f, cmd, comps, opts);
    } catch (e) {
        await comps.stop();
        throw e;
    }
    // Embed the certificates so the text works outside this process (e.g. as a
    // Pulumi stack config value); the file stays equivalent.
    const kubeconfigText = await cmd.kubectl(["config", "view", "--raw", "--flatten"]);
    await writeFile(f.kubeconfig, kubeconfigText);
    return {
        name: f.name,
        binDir: f.binDir,
        workDir: f.workDir,
        kubeconfig: f.kubeconfig,
        kubeconfigText,
        env: f.env,
        kubectl: cmd.kubectl,
        pids: comps.pids,
        stop: comps.stop,
        applyCrds: (dir = strimziCrdDir()) => applyCrds(cmd, dir),
    };
}
