/**
 * What a sandbox run that died without stopping (its supervisor SIGKILLed, OOM-killed, its
 * terminal closed, the machine rebooted) leaves behind, found through the run's registry
 * (`.sandbox/registry.jsonl`): processes that still run (the kwok control plane runs in sessions
 * of its own, so it outlives the supervisor) and data folders that a new run cannot reuse (the
 * broker's KRaft logs carry the dead run's cluster id).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isAlive, procInfo } from "../runtime/process";
import {
    Leftover,
    ProcessRegistry,
    RegistryContents,
    describeLeftovers,
    findLeftovers,
    stillRunning,
    stopLeftovers,
} from "../runtime/process-registry";
import {
    CLICKHOUSE_DIR,
    KAFKA_DIR,
    REGISTRY_FILE,
    STATE_FILE,
    SUPERVISOR_LABEL,
    SandboxState,
} from "./sandbox-state";

const registry = () => new ProcessRegistry(REGISTRY_FILE);

/** Records the supervisor as soon as it is spawned, before it records anything itself. */
export function recordSupervisor(pid: number, command: readonly string[]): void {
    registry().recordProcess(pid, SUPERVISOR_LABEL, command);
}

/**
 * A recorded supervisor that still runs (the same process: pid and start time match), the one
 * with `pid` when given; undefined when none does.
 */
function liveSupervisor(contents: RegistryContents, pid?: number): number | undefined {
    const recorded = contents.processes.filter(
        (p) => p.label === SUPERVISOR_LABEL && (pid === undefined || p.pid === pid),
    );
    if (recorded.length === 0 && pid !== undefined) {
        // A state written by a version that kept no registry: the pid, if it still runs the
        // supervisor (a pid the kernel handed to another program is not it).
        const now = procInfo(pid);
        const isSupervisor = now?.command.some((a) => a.endsWith("sandbox-supervisor.ts"));
        return isSupervisor && isAlive(pid) ? pid : undefined;
    }
    return recorded.find((p) => stillRunning(p) !== undefined)?.pid;
}

/** The state of the running sandbox; undefined when none runs (never a dead run's state). */
export function readState(): SandboxState | undefined {
    if (!fs.existsSync(STATE_FILE)) return undefined;
    const state = JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as SandboxState;
    return liveSupervisor(registry().read(), state.supervisorPid) ? state : undefined;
}

/** The pid of a recorded supervisor that runs but has not written its state yet. */
export function startingSupervisor(): number | undefined {
    return fs.existsSync(STATE_FILE) ? undefined : liveSupervisor(registry().read());
}

interface DeadRun {
    readonly supervisorPid?: number;
    readonly leftovers: readonly Leftover[];
    /** Folders of the dead run that still exist. */
    readonly folders: readonly { path: string; label: string }[];
    readonly contents: RegistryContents;
}

/** What a dead run left; undefined when there is no trace of one (or its supervisor runs). */
function deadRun(): DeadRun | undefined {
    const contents = registry().read();
    if (liveSupervisor(contents) !== undefined) return undefined;
    const folders = [
        ...contents.folders,
        // Also without a registry (a run of an older version): the supervisor's own folders.
        { path: KAFKA_DIR, label: "Kafka data" },
        { path: CLICKHOUSE_DIR, label: "ClickHouse data" },
    ].filter((f, i, all) => fs.existsSync(f.path) && all.findIndex((g) => g.path === f.path) === i);
    const leftovers = findLeftovers(contents);
    if (leftovers.length === 0 && folders.length === 0 && !fs.existsSync(STATE_FILE))
        return undefined;
    const supervisorPid = contents.processes.find((p) => p.label === SUPERVISOR_LABEL)?.pid;
    return { supervisorPid, leftovers, folders, contents };
}

/** A sentence on the dead run for `./run sandbox status`; undefined when there is none. */
export function describeDeadRun(): string | undefined {
    const dead = deadRun();
    if (!dead) return undefined;
    const who = dead.supervisorPid ? ` (supervisor pid ${dead.supervisorPid})` : "";
    const left =
        dead.leftovers.length > 0
            ? `${dead.leftovers.length} of its processes still run: ${describeLeftovers(dead.leftovers).join(", ")}`
            : "none of its processes runs any more";
    return (
        `the sandbox is not running: its last run${who} died without stopping; ${left}. ` +
        "`./run sandbox down` cleans up after it; `./run sandbox` cleans up and starts afresh"
    );
}

/**
 * Stops whatever a dead run left running (SIGTERM, then SIGKILL after 10 s, by process group),
 * removes its folders, state and registry, and says what it found. Returns how many processes it
 * stopped.
 */
export async function clearDeadRun(say: (line: string) => void): Promise<number> {
    const dead = deadRun();
    if (!dead) {
        // Nothing of an earlier run is left: a new one starts its own record.
        if (liveSupervisor(registry().read()) === undefined) registry().clear();
        return 0;
    }
    const { leftovers, contents } = dead;
    if (leftovers.length > 0) {
        say(`found ${leftovers.length} processes of a dead sandbox run still running:`);
        for (const line of describeLeftovers(leftovers)) say(`  ${line}`);
        say("stopping them (SIGTERM, then SIGKILL after 10 s)...");
        await stopLeftovers(leftovers);
        const still = findLeftovers(contents);
        if (still.length > 0) {
            throw new Error(
                `could not stop ${describeLeftovers(still).join(", ")}: stop them by hand (kill -9 <pid>) and run this again`,
            );
        }
    }
    // Only now that nothing of the run is left does anything write to its folders.
    for (const f of dead.folders) {
        const rel = path.relative(process.cwd(), f.path);
        const shown = rel === "" || rel.startsWith("..") ? f.path : rel;
        say(`removing ${shown} (${f.label} of the dead run)`);
        fs.rmSync(f.path, { recursive: true, force: true });
    }
    fs.rmSync(STATE_FILE, { force: true });
    registry().clear();
    return leftovers.length;
}

/** After a live run was stopped: stops anything of it still running (e.g. after a forced stop). */
export async function sweepAfterStop(say: (line: string) => void): Promise<void> {
    const left = findLeftovers(registry().read());
    if (left.length === 0) return;
    say(
        `stopping ${left.length} processes the supervisor left: ${describeLeftovers(left).join(", ")}`,
    );
    await stopLeftovers(left);
}
