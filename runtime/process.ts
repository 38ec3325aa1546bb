/**
 * Process bookkeeping shared by the harnesses that run servers as child processes: children die
 * with the test process (normal exit, SIGINT/SIGTERM/SIGHUP, and, through a watchdog, SIGKILL),
 * temporary directories are removed, and a few small helpers for waiting on ports and logs.
 *
 *   const child = spawn(...);
 *   trackChild(child);            // SIGKILLed if this process exits or is interrupted
 *   watchdog(child.pid!);         // ... even if this process is SIGKILLed
 *   await terminate(child, { graceMs: 10_000 });  // SIGTERM, then SIGKILL
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";

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

/** True while a process with this id exists (and may be signalled by us). */
export function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

// ---------------------------------------------------------------------------------------------
// Children and directories that die with this process

const liveChildren = new Set<ChildProcess>();
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

/** SIGKILLs `child` if this process exits or is interrupted while the child still runs. */
export function trackChild(child: ChildProcess): void {
    installExitHooks();
    liveChildren.add(child);
    child.once("exit", () => liveChildren.delete(child));
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
 * Stops a process that is not our child (e.g. a detached server started by an earlier command):
 * `signal` (default SIGTERM), then SIGKILL once `graceMs` has passed; polls until it is gone.
 * Resolves to false when there was no such process.
 */
export async function terminatePid(
    pid: number,
    opts: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<boolean> {
    if (!isAlive(pid)) return false;
    try {
        process.kill(pid, opts.signal ?? "SIGTERM");
    } catch {
        return false;
    }
    const deadline = Date.now() + (opts.graceMs ?? 30_000);
    while (isAlive(pid)) {
        if (Date.now() > deadline) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // gone in between
            }
            while (isAlive(pid)) await sleep(50);
            break;
        }
        await sleep(50);
    }
    return true;
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
