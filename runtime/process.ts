/**
 * Process bookkeeping shared by the harnesses that run servers as child processes: children die
 * with the test process (normal exit, SIGINT/SIGTERM/SIGHUP, and, through a watchdog, SIGKILL),
 * temporary directories are removed, and a few small helpers for waiting on ports and logs.
 *
 *   const child = spawn(...);
 *   trackChild(child);            // SIGKILLed if this process exits or is interrupted
 *   watchdog(child.pid!);         // ... even if this process is SIGKILLed
 *   await terminate(child, { graceMs: 10_000 });  // SIGTERM, then SIGKILL
 *
 * Processes that are not our children (e.g. a cluster's components, forked into sessions of their
 * own) are tracked by pid with {@link trackPids}; {@link setProcessRecorder} lets a registry
 * (./process-registry.ts) write down every tracked child as it starts and exits, and
 * {@link procInfo} tells a process from a later one the kernel gave the same pid (start time).
 */
import type { ChildProcess } from "node:child_process";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Finds a free TCP port on a loopback address by binding port 0. */
export function freePort(host = "127.0.0.1"): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, host, () => {
            const { port } = srv.address() as net.AddressInfo;
            srv.close(() => resolve(port));
        });
    });
}

/** True when something accepts TCP connections on host:port. */
export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host, port });
        socket.once("connect", () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("error", () => resolve(false));
    });
}

/**
 * True while a process with this id exists (and may be signalled by us); a negative id asks about
 * the process group. A zombie (exited, not yet reaped by its parent) counts as gone.
 */
export function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
    }
    return pid < 0 || !isZombie(pid);
}

function isZombie(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        // The state follows the command name, which is in parentheses and may hold any character.
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
    } catch {
        return false; // no /proc (not Linux), or gone in between
    }
}

/**
 * True while the process group `pgid` has a member that is not a zombie: members whose parent
 * never reaps them (an orphan under a pid 1 that does not reap) must not count as running.
 */
function groupAlive(pgid: number): boolean {
    if (!isAlive(-pgid)) return false;
    if (!fs.existsSync("/proc/self/stat")) return true;
    return listProcesses().some((p) => p.pgid === pgid);
}

// ---------------------------------------------------------------------------------------------
// What /proc says (Linux)

/** A process as /proc describes it. */
export interface ProcInfo {
    readonly pid: number;
    readonly ppid: number;
    readonly pgid: number;
    readonly sid: number;
    /**
     * Clock ticks after boot at which it started (field 22 of /proc/<pid>/stat): with the pid and
     * the boot, it names one process for good, where a pid alone may be handed on.
     */
    readonly startTime: number;
    /** One letter: R, S, D, Z (zombie), ... */
    readonly state: string;
    readonly command: readonly string[];
}

/** What /proc says about `pid`; undefined when there is no such process (or no /proc). */
export function procInfo(pid: number): ProcInfo | undefined {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        // Fields after the command name, which is in parentheses and may hold any character.
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return {
            pid,
            ppid: Number(f[1]),
            pgid: Number(f[2]),
            sid: Number(f[3]),
            startTime: Number(f[19]),
            state: f[0] ?? "?",
            // NUL-terminated arguments: the last split part is the empty rest.
            command: cmdline === "" ? [] : cmdline.replace(/\0$/, "").split("\0"),
        };
    } catch {
        return undefined;
    }
}

/** Every process /proc lists, zombies left out. */
export function listProcesses(): ProcInfo[] {
    let names: string[];
    try {
        names = fs.readdirSync("/proc");
    } catch {
        return [];
    }
    return names
        .filter((n) => /^\d+$/.test(n))
        .map((n) => procInfo(Number(n)))
        .filter((p): p is ProcInfo => p !== undefined && p.state !== "Z");
}

let bootIdCache: string | undefined;

/** This boot's id (Linux); "" without /proc. Start times count from the boot. */
export function bootId(): string {
    if (bootIdCache === undefined) {
        try {
            bootIdCache = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
        } catch {
            bootIdCache = "";
        }
    }
    return bootIdCache;
}

// ---------------------------------------------------------------------------------------------
// Children and directories that die with this process

const liveChildren = new Set<ChildProcess>();
const trackedPids = new Set<() => number[]>();
const ownedDirs = new Set<string>();
let exitHooksInstalled = false;

function killAllNow(): void {
    for (const child of liveChildren) {
        try {
            child.kill("SIGKILL");
        } catch {
            // already gone
        }
    }
    liveChildren.clear();
    for (const pids of trackedPids) {
        for (const pid of pids()) {
            try {
                if (isAlive(pid)) process.kill(pid, "SIGKILL");
            } catch {
                // gone in between
            }
        }
    }
    trackedPids.clear();
    for (const dir of ownedDirs) {
        try {
            fs.rmSync(dir, { recursive: true, force: true });
        } catch {
            // best effort: a child may still be closing files
        }
    }
    ownedDirs.clear();
}

/**
 * Kills tracked children and removes owned directories when this process exits, and on
 * SIGINT/SIGTERM/SIGHUP (then re-raises the signal, so the default action still ends the process
 * once every handler of this kind has run). Idempotent.
 */
export function installExitHooks(): void {
    if (exitHooksInstalled) return;
    exitHooksInstalled = true;
    process.on("exit", killAllNow);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
        const handler = (): void => {
            killAllNow();
            process.removeListener(signal, handler);
            process.kill(process.pid, signal);
        };
        process.on(signal, handler);
    }
}

/** Told about every tracked child as it starts and as it exits (see {@link setProcessRecorder}). */
export interface ProcessRecorder {
    started(pid: number, command: readonly string[]): void;
    exited(pid: number): void;
}

let recorder: ProcessRecorder | undefined;

/** Reports every child tracked from now on to `r` (undefined: to nobody). */
export function setProcessRecorder(r: ProcessRecorder | undefined): void {
    recorder = r;
}

/** SIGKILLs `child` if this process exits or is interrupted while the child still runs. */
export function trackChild(child: ChildProcess): void {
    installExitHooks();
    liveChildren.add(child);
    const pid = child.pid;
    const seenBy = recorder;
    if (pid !== undefined) seenBy?.started(pid, child.spawnargs);
    child.once("exit", () => {
        liveChildren.delete(child);
        if (pid !== undefined) seenBy?.exited(pid);
    });
}

/**
 * SIGKILLs the processes `pids()` lists if this process exits or is interrupted: for processes
 * that are not our children. Returns the function that stops tracking them.
 */
export function trackPids(pids: () => number[]): () => void {
    installExitHooks();
    trackedPids.add(pids);
    return () => trackedPids.delete(pids);
}

/** Removes `dir` when this process exits, unless {@link releaseDir} is called first. */
export function ownDir(dir: string): void {
    installExitHooks();
    ownedDirs.add(dir);
}

/** Stops removing `dir` on exit (call after removing it yourself, or to keep it). */
export function releaseDir(dir: string): void {
    ownedDirs.delete(dir);
}

/**
 * Kills `pid` when this process disappears, even by SIGKILL (which runs no exit hook): a detached
 * shell polls both processes once a second and exits with whichever goes first.
 */
export function watchdog(pid: number): void {
    const script =
        `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${pid} 2>/dev/null; do sleep 1; done; ` +
        `kill -9 ${pid} 2>/dev/null; exit 0`;
    const dog = spawn("sh", ["-c", script], { detached: true, stdio: "ignore" });
    dog.unref();
}

/**
 * Stops a child: `signal` (default SIGTERM), then SIGKILL once `graceMs` has passed. Resolves
 * when it has exited; at once when it already had.
 */
export async function terminate(
    child: ChildProcess,
    opts: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // An unref'd child would not keep this process alive until its exit is seen.
    child.ref();
    const gone = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(opts.signal ?? "SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.graceMs ?? 30_000);
    await gone;
    clearTimeout(timer);
}

/**
 * Stops a process that is not our child (e.g. a detached server started by an earlier command), or
 * with `group` its whole process group (`pid` is then the group's id): `signal` (default SIGTERM),
 * then SIGKILL once `graceMs` has passed; polls until it is gone (after SIGKILL, for at most 10 s
 * more). Resolves to false when there was no such process.
 */
export async function terminatePid(
    pid: number,
    opts: { signal?: NodeJS.Signals; graceMs?: number; group?: boolean } = {},
): Promise<boolean> {
    const target = opts.group ? -pid : pid;
    const alive = opts.group ? () => groupAlive(pid) : () => isAlive(pid);
    if (!alive()) return false;
    try {
        process.kill(target, opts.signal ?? "SIGTERM");
    } catch {
        return false;
    }
    const deadline = Date.now() + (opts.graceMs ?? 30_000);
    while (alive() && Date.now() <= deadline) await sleep(100);
    if (alive()) {
        try {
            process.kill(target, "SIGKILL");
        } catch {
            // gone in between
        }
        const killDeadline = Date.now() + 10_000;
        while (alive() && Date.now() <= killDeadline) await sleep(100);
    }
    return true;
}

/**
 * Runs `file` to completion and resolves with its stdout; fails with its stderr. The child is
 * tracked (killed if this process exits first) and killed once `timeoutMs` has passed.
 */
export function runFile(
    file: string,
    args: readonly string[],
    opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = execFile(
            file,
            args,
            { env: opts.env, timeout: opts.timeoutMs ?? 180_000, maxBuffer: 64 << 20 },
            (err, stdout, stderr) => {
                if (err) {
                    const cmd = [path.basename(file), ...args].join(" ");
                    reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`.trim()));
                } else {
                    resolve(stdout);
                }
            },
        );
        trackChild(child);
        if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
}

// ---------------------------------------------------------------------------------------------
// Logs

/** What was appended to `file` after byte `offset` ("" when nothing or no file). */
export function logSince(file: string, offset: number): string {
    let fd: number;
    try {
        fd = fs.openSync(file, "r");
    } catch {
        return "";
    }
    try {
        const size = fs.fstatSync(fd).size;
        if (size <= offset) return "";
        const buf = Buffer.alloc(size - offset);
        fs.readSync(fd, buf, 0, buf.length, offset);
        return buf.toString("utf8");
    } finally {
        fs.closeSync(fd);
    }
}

/** The last `bytes` of a log file, for error messages. */
export function readTail(file: string, bytes = 6000): string {
    try {
        const size = fs.statSync(file).size;
        return logSince(file, Math.max(0, size - bytes));
    } catch {
        return "(no log)";
    }
}

/**
 * Polls `read` every 500 ms until `done` holds and returns that value; fails with the last value
 * seen once `timeoutMs` has passed.
 */
export async function pollUntil<T>(
    what: string,
    read: () => Promise<T>,
    done: (v: T) => boolean,
    timeoutMs = 90_000,
): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await read();
        if (done(v)) return v;
        if (Date.now() > deadline) {
            throw new Error(
                `${what}: not reached within ${timeoutMs} ms; last: ${JSON.stringify(v)}`,
            );
        }
        await sleep(500);
    }
}

/** Polls `check` every 500 ms until it returns true (a throw counts as false); fails after `timeoutMs`. */
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
        await sleep(500);
    }
    throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`,
    );
}
