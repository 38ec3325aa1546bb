/**
 * The sandbox survives its own crash (issue 11). `./run sandbox` as a user runs it, in this
 * checkout; then its supervisor is SIGKILLed (a closed terminal, an OOM kill), which leaves the
 * Kubernetes control plane running (kwokctl starts each component in a session of its own) and
 * the broker's KRaft logs on disk with the dead run's cluster id. The next `./run sandbox` must say
 * what it found, stop it and come up; `./run sandbox down` must stop a live run and, alone, what a
 * dead run left; and no process of any run may remain: checked by the pids and start times the
 * runs recorded, and by a /proc scan for their programs working in their folders.
 *
 * It runs the real sandbox of this checkout, so it refuses to start while `.sandbox` exists (a
 * sandbox of the user's, running or not): `./run sandbox down` first.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ProcInfo, isAlive, listProcesses, sleep } from "../../runtime/process";
import {
    ProcessRegistry,
    RegistryContents,
    describeLeftovers,
    findLeftovers,
    stillRunning,
} from "../../runtime/process-registry";
import { PROJECT_DIR } from "../../runtime/pulumi";
import {
    REGISTRY_FILE,
    SANDBOX_DIR,
    STATE_FILE,
    SUPERVISOR_LABEL,
    SandboxState,
} from "../../scripts/sandbox-state";

const log = (line: string) => process.stderr.write(`[sandbox-crash] ${line}\n`);

/** What kwokctl runs for the sandbox's API server: the processes the issue found left running. */
const CONTROL_PLANE = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
];
/** Every program a sandbox run starts that works in its folders. */
const PROGRAMS = new Set([...CONTROL_PLANE, "kwokctl", "kubectl", "java", "node"]);

interface RunResult {
    readonly code: number;
    /** stdout and stderr interleaved, as a terminal shows them. */
    readonly output: string;
    readonly seconds: number;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-sandbox-crash-"));

/**
 * `./run sandbox <args>` from the checkout, in the environment a user's shell has (none of the
 * test runner's Pulumi or Node settings). Its output goes to a file of its own; the tail of it
 * comes with any failure.
 */
function runSandbox(args: string[], timeoutMs = 20 * 60_000): Promise<RunResult> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of [
        "PULUMI_NODEJS_TRANSPILE_ONLY",
        "KUBECONFIG",
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_HOME",
        "PULUMI_BACKEND_URL",
        "NODE_OPTIONS",
    ])
        delete env[k];
    const logFile = path.join(work, `run-${["sandbox", ...args].join("-")}-${Date.now()}.log`);
    const started = Date.now();
    log(`./run sandbox ${args.join(" ")} (output: ${logFile})`);
    return new Promise((resolve, reject) => {
        const child = spawn("./run", ["sandbox", ...args], {
            cwd: PROJECT_DIR,
            env,
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        const take = (d: Buffer) => {
            output += d.toString();
            fs.appendFileSync(logFile, d);
        };
        child.stdout.on("data", take);
        child.stderr.on("data", take);
        const timer = setTimeout(() => {
            log(`./run sandbox ${args.join(" ")}: no end after ${timeoutMs} ms, killing it`);
            process.kill(-child.pid!, "SIGKILL");
        }, timeoutMs);
        child.on("error", reject);
        child.on("close", (code) => {
            clearTimeout(timer);
            const seconds = Math.round((Date.now() - started) / 1000);
            log(`./run sandbox ${args.join(" ")}: exit ${code} after ${seconds} s`);
            resolve({ code: code ?? -1, output, seconds });
        });
    });
}

/** Logs what a command said about a dead run: what it found, stopped and removed. */
function logRecovery(output: string): void {
    for (const line of output.split("\n")) {
        if (/dead (sandbox )?run|^\[sandbox\] {3}\S+ \(pid \d+|stopping them/.test(line))
            log(`  ${line}`);
    }
}

const tail = (text: string, lines = 60) => text.trimEnd().split("\n").slice(-lines).join("\n");

function readState(): SandboxState {
    return JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as SandboxState;
}

/** The run's recorded processes that still run (the same pid, start time and boot). */
function stillRunningOf(run: RegistryContents): ProcInfo[] {
    return run.processes.map((p) => stillRunning(p)).filter((p): p is ProcInfo => p !== undefined);
}

function labelsOf(run: RegistryContents, procs: readonly ProcInfo[]): string[] {
    return procs.map((p) => run.processes.find((r) => r.pid === p.pid)?.label ?? "?").sort();
}

/** Does `a` name `folder` or something inside it? */
const inFolder = (a: string, folder: string) =>
    a === folder ||
    a.startsWith(`${folder}/`) ||
    a.includes(`=${folder}`) ||
    a.includes(`${folder}/`);

function cwdOf(pid: number): string {
    try {
        return fs.readlinkSync(`/proc/${pid}/cwd`);
    } catch {
        return "";
    }
}

/**
 * Processes of the sandbox's programs whose command line or working directory points into
 * `.sandbox` or a folder a run recorded (the control plane's temporary folder).
 */
function strays(runs: readonly RegistryContents[]): ProcInfo[] {
    const folders = [SANDBOX_DIR, ...runs.flatMap((r) => r.folders.map((f) => f.path))];
    return listProcesses().filter(
        (p) =>
            p.pid !== process.pid &&
            PROGRAMS.has(path.basename(p.command[0] ?? "")) &&
            folders.some((f) => p.command.some((a) => inFolder(a, f)) || inFolder(cwdOf(p.pid), f)),
    );
}

const describeProcs = (procs: readonly ProcInfo[]) =>
    procs.map((p) => `${p.pid} ${p.command.join(" ").slice(0, 160)}`).join("\n");

/** SIGKILLs the supervisor of the running sandbox, and waits until its watchdogs have acted. */
async function crash(): Promise<{
    supervisorPid: number;
    left: ProcInfo[];
    run: RegistryContents;
}> {
    const { supervisorPid } = readState();
    const run = new ProcessRegistry(REGISTRY_FILE).read();
    const supervisor = run.processes.find((p) => p.label === SUPERVISOR_LABEL);
    assert.equal(supervisor?.pid, supervisorPid, "the registry records the supervisor");
    assert.ok(stillRunning(supervisor), "the recorded supervisor runs");
    log(`SIGKILL to the supervisor (pid ${supervisorPid})`);
    process.kill(supervisorPid, "SIGKILL");
    while (isAlive(supervisorPid)) await sleep(100);
    // The broker and ClickHouse have watchdogs that kill them within a second of the supervisor.
    await sleep(5_000);
    const left = stillRunningOf(run);
    log(`left running by the dead run: ${labelsOf(run, left).join(", ")}`);
    return { supervisorPid, left, run };
}

/**
 * The command names each of the dead run's control-plane processes as `<label> (pid <pid>`:
 * those never exit by themselves, where another leftover may have in the meantime.
 */
function assertListed(output: string, run: RegistryContents, left: readonly ProcInfo[]): void {
    for (const p of left) {
        const label = run.processes.find((r) => r.pid === p.pid)?.label ?? "?";
        if (!CONTROL_PLANE.includes(label)) continue;
        assert.ok(
            output.includes(`${label} (pid ${p.pid}`),
            `${label} (pid ${p.pid}) is listed:\n${tail(output)}`,
        );
    }
}

describe("e2e: the sandbox survives its own crash", { timeout: 75 * 60_000 }, () => {
    /** Every run's record, read before the next command clears it. */
    const runs: RegistryContents[] = [];
    const timings: string[] = [];

    before(() => {
        assert.ok(
            !fs.existsSync(SANDBOX_DIR),
            `${SANDBOX_DIR} exists: this test runs ./run sandbox in this checkout and would take over that sandbox; run ./run sandbox down first`,
        );
    });

    after(async () => {
        if (fs.existsSync(SANDBOX_DIR)) {
            const r = await runSandbox(["down"]);
            if (r.code !== 0) log(`cleanup: ./run sandbox down failed:\n${tail(r.output, 10)}`);
        }
        // Whatever any run left despite that: by recorded pid and start time only.
        const left = runs.flatMap((run) => findLeftovers(run));
        for (const l of left) {
            log(`cleanup: SIGKILL to ${describeLeftovers([l]).join("")}`);
            try {
                process.kill(l.pid, "SIGKILL");
            } catch {
                // gone
            }
        }
        log(`timings: ${timings.join("; ")}`);
        fs.rmSync(work, { recursive: true, force: true });
    });

    it("a run SIGKILLed: the next ./run sandbox stops what it left and comes up; down stops everything", async () => {
        const first = await runSandbox([]);
        assert.equal(first.code, 0, tail(first.output));
        timings.push(`up ${first.seconds} s`);
        const dead = await crash();
        runs.push(dead.run);
        assert.deepEqual(
            CONTROL_PLANE.filter((c) => !labelsOf(dead.run, dead.left).includes(c)),
            [],
            "the control plane outlives the supervisor (what the next run has to clean up)",
        );

        const status = await runSandbox(["status"]);
        assert.notEqual(status.code, 0, tail(status.output));
        assert.match(status.output, /its last run \(supervisor pid \d+\) died without stopping/);
        assertListed(status.output, dead.run, dead.left);

        const second = await runSandbox([]);
        assert.equal(second.code, 0, tail(second.output));
        logRecovery(second.output);
        timings.push(`up after a crash ${second.seconds} s`);
        assert.match(second.output, /found \d+ processes of a dead sandbox run still running/);
        assertListed(second.output, dead.run, dead.left);
        assert.match(
            second.output,
            /removing \.sandbox\/kafka \(Kafka data \(KRaft logs\) of the dead run\)/,
        );
        assert.doesNotMatch(second.output, /Invalid cluster\.id/);
        assert.match(
            second.output,
            /forgetting the sandbox stack's resources left from a previous run/,
        );
        assert.deepEqual(stillRunningOf(dead.run), [], "nothing of the dead run runs");
        const state = readState();
        assert.notEqual(state.supervisorPid, dead.supervisorPid);
        assert.ok(isAlive(state.supervisorPid), "the new run's supervisor runs");
        const live = new ProcessRegistry(REGISTRY_FILE).read();
        runs.push(live);

        const down = await runSandbox(["down"]);
        assert.equal(down.code, 0, tail(down.output));
        timings.push(`down ${down.seconds} s`);
        assert.match(down.output, /sandbox removed/);
        assert.equal(fs.existsSync(SANDBOX_DIR), false);
        assert.deepEqual(stillRunningOf(live), [], "nothing of the stopped run runs");
        const stray = strays(runs);
        assert.deepEqual(stray, [], describeProcs(stray));
    });

    it("a run SIGKILLed: ./run sandbox down alone says what it left and stops it", async () => {
        const up = await runSandbox([]);
        assert.equal(up.code, 0, tail(up.output));
        timings.push(`up ${up.seconds} s`);
        const dead = await crash();
        runs.push(dead.run);
        assert.ok(
            dead.left.length >= CONTROL_PLANE.length,
            labelsOf(dead.run, dead.left).join(", "),
        );

        const down = await runSandbox(["down"]);
        assert.equal(down.code, 0, tail(down.output));
        timings.push(`down after a crash ${down.seconds} s`);
        logRecovery(down.output);
        assertListed(down.output, dead.run, dead.left);
        assert.match(down.output, /stopped \d+ leftover processes of a dead run/);
        assert.doesNotMatch(down.output, /no running sandbox/);
        assert.match(down.output, /sandbox removed/);
        assert.equal(fs.existsSync(SANDBOX_DIR), false);
        for (const run of runs) assert.deepEqual(stillRunningOf(run), []);
        for (const f of dead.run.folders) assert.equal(fs.existsSync(f.path), false, f.path);
        const stray = strays(runs);
        assert.deepEqual(stray, [], describeProcs(stray));
    });
});
