// A throwaway Kubernetes control plane for e2e tests: kwokctl's "binary"
// runtime with the locally built etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok-controller and kubectl (tools/bootstrap.sh), bound to
// 127.0.0.1, with fake kwok nodes on which pods become Running/Ready.
// Nothing is downloaded: every binary kwokctl would fetch is given explicitly.
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { strimziCrdDir } from "./strimzi";

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

function run(
    file: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    input?: string,
    timeoutMs = 180_000,
): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = execFile(
            file,
            args,
            { env, timeout: timeoutMs, maxBuffer: 64 << 20 },
            (err, stdout, stderr) => {
                if (err) {
                    const cmd = [path.basename(file), ...args].join(" ");
                    reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`.trim()));
                } else {
                    resolve(stdout);
                }
            },
        );
        if (input !== undefined) child.stdin?.end(input);
    });
}

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

// Components left behind if the test process exits or is signalled before
// stop() finishes (a SIGKILLed test process can leak them: they run detached).
const liveClusters = new Set<() => number[]>();
function killLeftovers(): void {
    for (const pids of liveClusters)
        for (const pid of pids()) if (alive(pid)) process.kill(pid, "SIGKILL");
}
let exitHooksInstalled = false;
function installExitHooks(): void {
    if (exitHooksInstalled) return;
    exitHooksInstalled = true;
    process.once("exit", killLeftovers);
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        process.once(sig, () => {
            killLeftovers();
            process.kill(process.pid, sig); // the listener is gone now: default action
        });
    }
}

export async function startKube(opts: KubeOptions = {}): Promise<KubeCluster> {
    const log = opts.log ?? ((line: string) => process.stderr.write(`[kube] ${line}\n`));
    const binDir = opts.binDir ?? ensureTools("kube");
    const name = opts.name ?? `kcs-${process.pid}-${randomBytes(3).toString("hex")}`;
    const workDir = await mkdtemp(path.join(tmpdir(), "kcs-kube-"));
    const kwokDir = path.join(workDir, "kwok");
    const kubeconfig = path.join(workDir, "kubeconfig.yaml");
    const configPath = path.join(workDir, "kwokctl.yaml");
    const bin = (b: string) => path.join(binDir, b);
    const kubectlBin = existsSync(bin("kubectl")) ? bin("kubectl") : "kubectl";

    const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}`,
        KWOK_WORKDIR: kwokDir,
        KUBECONFIG: kubeconfig,
        KUBECACHEDIR: path.join(workDir, "kube-cache"),
    };
    // Every binary is local; bindAddress keeps all listeners on loopback.
    await writeFile(
        configPath,
        [
            "apiVersion: config.kwok.x-k8s.io/v1alpha1",
            "kind: KwokctlConfiguration",
            "options:",
            "  runtime: binary",
            "  bindAddress: 127.0.0.1",
            "  quietPull: true",
            `  cacheDir: ${JSON.stringify(path.join(kwokDir, "cache"))}`,
            `  etcdBinary: ${JSON.stringify(bin("etcd"))}`,
            `  kubeApiserverBinary: ${JSON.stringify(bin("kube-apiserver"))}`,
            `  kubeControllerManagerBinary: ${JSON.stringify(bin("kube-controller-manager"))}`,
            `  kubeSchedulerBinary: ${JSON.stringify(bin("kube-scheduler"))}`,
            `  kwokControllerBinary: ${JSON.stringify(bin("kwok"))}`,
            `  kubectlBinary: ${JSON.stringify(kubectlBin)}`,
            "",
        ].join("\n"),
    );

    const kwokctl = (args: string[], timeoutMs?: number) =>
        run(bin("kwokctl"), ["-c", configPath, "--name", name, ...args], env, undefined, timeoutMs);
    const kubectl = (args: string[], input?: string) =>
        run(kubectlBin, ["--kubeconfig", kubeconfig, ...args], env, input);
    const pidDir = path.join(kwokDir, "clusters", name, "pids");
    const pids = (): number[] => {
        if (!existsSync(pidDir)) return [];
        return readdirSync(pidDir)
            .filter((f) => f.endsWith(".pid"))
            .map((f) => Number.parseInt(readFileSync(path.join(pidDir, f), "utf8").trim(), 10))
            .filter((pid) => Number.isInteger(pid) && pid > 0);
    };
    let known: number[] = [];
    const tracked = () => [...new Set([...known, ...pids()])];
    installExitHooks();
    liveClusters.add(tracked);

    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> =>
        (stopped ??= (async () => {
            known = tracked();
            log(`deleting cluster ${name}`);
            try {
                await kwokctl(["delete", "cluster", "--kubeconfig", kubeconfig], 120_000);
            } catch (e) {
                log(
                    `kwokctl delete cluster failed (killing processes instead): ${(e as Error).message}`,
                );
            }
            for (const pid of known) if (alive(pid)) process.kill(pid, "SIGKILL");
            const deadline = Date.now() + 10_000;
            while (known.some(alive) && Date.now() < deadline)
                await new Promise((r) => setTimeout(r, 100));
            liveClusters.delete(tracked);
            await rm(workDir, { recursive: true, force: true });
        })());

    try {
        log(
            `creating cluster ${name} (kube-apiserver, etcd, controller-manager, scheduler, kwok) in ${workDir}`,
        );
        const extra = (opts.extraArgs ?? []).flatMap((a) => ["--extra-args", a]);
        await kwokctl(
            [
                "create",
                "cluster",
                "--kubeconfig",
                kubeconfig,
                "--wait",
                "2m",
                "--timeout",
                "4m",
                ...extra,
            ],
            300_000,
        );
        known = pids();
        const nodes = opts.nodes ?? 1;
        if (nodes > 0) {
            await kwokctl(["scale", "node", "--replicas", String(nodes)]);
            await kubectl(["wait", "--for=condition=Ready", "node", "--all", "--timeout=120s"]);
        }
        // The default ServiceAccount is created asynchronously by the controller-manager.
        await waitFor(
            async () =>
                (
                    await kubectl([
                        "get",
                        "serviceaccount",
                        "default",
                        "--ignore-not-found",
                        "-o",
                        "name",
                    ])
                ).trim() !== "",
            60_000,
            "default ServiceAccount",
        );
    } catch (e) {
        await stop();
        throw e;
    }
    // Embed the certificates so the text works outside this process (e.g. as a
    // Pulumi stack config value); the file stays equivalent.
    const kubeconfigText = await kubectl(["config", "view", "--raw", "--flatten"]);
    await writeFile(kubeconfig, kubeconfigText);

    return {
        name,
        binDir,
        workDir,
        kubeconfig,
        kubeconfigText,
        env,
        kubectl,
        pids: tracked,
        stop,
        async applyCrds(dir = strimziCrdDir()) {
            const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
            if (files.length === 0) throw new Error(`no YAML files in ${dir}`);
            for (const f of files) {
                await kubectl([
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
                    const crds = JSON.parse(await kubectl(["get", "crd", "-o", "json"])) as {
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
        },
    };
}

/** Polls `check` until it returns true or the timeout expires. */
export async function waitFor(
    check: () => Promise<boolean>,
    timeoutMs: number,
    what: string,
): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
        try {
            if (await check()) return;
        } catch (e) {
            last = e;
        }
        await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
    );
}
