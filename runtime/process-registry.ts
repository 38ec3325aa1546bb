/**
 * A written record of what a long-lived runtime started, so that what it leaves behind when it
 * dies without cleaning up (SIGKILL, an OOM kill, a closed terminal, a reboot) can be found and
 * stopped by the next command. One JSON line per event, appended as each thing starts (a single
 * small append, so even a SIGKILL leaves every earlier line whole):
 *
 *   const registry = activateRegistry(file);     // every trackChild() child is recorded
 *   registry.recordFolder(dir, "Kafka data");    // a folder it is about to fill
 *   activeRegistry()?.recordProcess(pid, "etcd");  // a process that is not our child
 *
 *   const left = findLeftovers(new ProcessRegistry(file).read());   // a later command
 *   await stopLeftovers(left);                                      // TERM, then KILL, by group
 *
 * A pid is only trusted together with the start time Linux gives it in /proc/<pid>/stat, so a pid
 * the kernel has since handed to another process is never signalled.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
    ProcInfo,
    bootId,
    listProcesses,
    procInfo,
    setProcessRecorder,
    terminatePid,
} from "./process";

export interface RecordedProcess {
    readonly pid: number;
    /** Its process group; when it equals pid, the process led a group of its own. */
    readonly pgid?: number;
    readonly startTime?: number;
    /** The boot it ran in: start times count from the boot, so another boot's say nothing now. */
    readonly boot?: string;
    readonly command: readonly string[];
    readonly label: string;
    /** An exit was recorded after the start. */
    readonly exited: boolean;
}

export interface RecordedFolder {
    readonly path: string;
    readonly label: string;
}

export interface RegistryContents {
    readonly processes: readonly RecordedProcess[];
    readonly folders: readonly RecordedFolder[];
}

type Line =
    | ({ type: "process" } & Omit<RecordedProcess, "exited">)
    | { type: "exited"; pid: number; startTime?: number }
    | ({ type: "folder" } & RecordedFolder);

/** One line of the file, or undefined for anything else (a line a crash cut short, an empty one). */
function parseLine(raw: string): Line | undefined {
    let v: unknown;
    try {
        v = JSON.parse(raw);
    } catch {
        return undefined;
    }
    if (typeof v !== "object" || v === null) return undefined;
    const line = v as Partial<Record<string, unknown>>;
    if (line.type === "folder") return typeof line.path === "string" ? (v as Line) : undefined;
    if (line.type !== "process" && line.type !== "exited") return undefined;
    if (!Number.isInteger(line.pid) || (line.pid as number) <= 0) return undefined;
    if (line.type === "process" && !Array.isArray(line.command)) return undefined;
    return v as Line;
}

export class ProcessRegistry {
    constructor(readonly file: string) {}

    /** Records a started process (its group and start time read from /proc); returns the start time. */
    recordProcess(pid: number, label: string, command?: readonly string[]): number | undefined {
        const info = procInfo(pid);
        this.append({
            type: "process",
            pid,
            pgid: info?.pgid,
            startTime: info?.startTime,
            boot: info ? bootId() || undefined : undefined,
            command: command ?? info?.command ?? [],
            label,
        });
        return info?.startTime;
    }

    /** Records that a process recorded with this start time has exited. */
    recordExit(pid: number, startTime: number | undefined): void {
        this.append({ type: "exited", pid, startTime });
    }

    /** Records a folder the run fills, to be removed once the run is dead. */
    recordFolder(dir: string, label: string): void {
        this.append({ type: "folder", path: path.resolve(dir), label });
    }

    read(): RegistryContents {
        let text = "";
        try {
            text = fs.readFileSync(this.file, "utf8");
        } catch {
            return { processes: [], folders: [] };
        }
        const processes = new Map<string, RecordedProcess>();
        const folders = new Map<string, RecordedFolder>();
        for (const raw of text.split("\n")) {
            const line = parseLine(raw);
            if (line === undefined) continue;
            if (line.type === "folder") {
                folders.set(line.path, { path: line.path, label: line.label });
                continue;
            }
            const key = `${line.pid}@${line.startTime ?? ""}`;
            if (line.type === "process") {
                const { pid, pgid, startTime, boot, command, label } = line;
                processes.set(key, { pid, pgid, startTime, boot, command, label, exited: false });
            } else {
                const p = processes.get(key);
                if (p) processes.set(key, { ...p, exited: true });
            }
        }
        return { processes: [...processes.values()], folders: [...folders.values()] };
    }

    /** Forgets everything recorded (a new run starts its own record). */
    clear(): void {
        fs.rmSync(this.file, { force: true });
    }

    private append(line: Line): void {
        fs.mkdirSync(path.dirname(this.file), { recursive: true });
        // A line a crash cut short has no newline: end it, or it would swallow this one too.
        fs.appendFileSync(this.file, `${endsOpen(this.file) ? "\n" : ""}${JSON.stringify(line)}\n`);
    }
}

/** Does `file` end with something other than a newline? */
function endsOpen(file: string): boolean {
    let fd: number;
    try {
        fd = fs.openSync(file, "r");
    } catch {
        return false;
    }
    try {
        const size = fs.fstatSync(fd).size;
        if (size === 0) return false;
        const last = Buffer.alloc(1);
        fs.readSync(fd, last, 0, 1, size - 1);
        return last[0] !== 0x0a;
    } finally {
        fs.closeSync(fd);
    }
}

let active: ProcessRegistry | undefined;

/** The registry this process records into, if one was activated. */
export function activeRegistry(): ProcessRegistry | undefined {
    return active;
}

/**
 * Makes `file` this process's registry: every child that process.ts's trackChild sees from now on
 * is recorded there as it starts and exits, and {@link activeRegistry} returns it.
 */
export function activateRegistry(file: string): ProcessRegistry {
    const registry = new ProcessRegistry(file);
    active = registry;
    const started = new Map<number, number | undefined>();
    setProcessRecorder({
        started: (pid, command) => {
            const label = path.basename(command[0] ?? "?");
            started.set(pid, registry.recordProcess(pid, label, command));
        },
        exited: (pid) => {
            registry.recordExit(pid, started.get(pid));
            started.delete(pid);
        },
    });
    return registry;
}

// ---------------------------------------------------------------------------------------------
// What a dead run left

/**
 * The process `recorded` names, if it still runs: the same pid, started at the same clock tick of
 * the same boot. A record without a start time (written where /proc was unreadable) is trusted
 * only when the process at that pid has exactly the recorded command line.
 */
export function stillRunning(
    recorded: Pick<RecordedProcess, "pid" | "startTime" | "boot" | "command">,
    lookup: (pid: number) => ProcInfo | undefined = procInfo,
    boot: string = bootId(),
): ProcInfo | undefined {
    const now = lookup(recorded.pid);
    if (now === undefined || now.state === "Z") return undefined;
    if (recorded.startTime === undefined) {
        const same =
            recorded.command.length > 0 &&
            recorded.command.length === now.command.length &&
            recorded.command.every((a, i) => a === now.command[i]);
        return same ? now : undefined;
    }
    if (recorded.boot !== undefined && recorded.boot !== boot) return undefined;
    return now.startTime === recorded.startTime ? now : undefined;
}

/** A process of a dead run that still runs. */
export interface Leftover {
    readonly pid: number;
    readonly pgid: number;
    readonly command: readonly string[];
    /** What it is: the recorded label, or the program's name. */
    readonly label: string;
    /** Set when its whole process group belongs to the dead run and may be signalled as one. */
    readonly group: boolean;
}

/** This process and its ancestors: never leftovers, whatever their command lines say. */
function selfAndAncestors(procs: readonly ProcInfo[]): ProcInfo[] {
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const out = new Map<number, ProcInfo>();
    for (let pid: number | undefined = process.pid; pid && !out.has(pid);) {
        const p: ProcInfo | undefined = byPid.get(pid) ?? procInfo(pid);
        if (p === undefined) break;
        out.set(pid, p);
        pid = p.ppid;
    }
    return [...out.values()];
}

/** Does any argument name `folder` or something inside it? */
function mentions(command: readonly string[], folder: string): boolean {
    return command.some(
        (a) => a === folder || a.includes(`${folder}/`) || a.endsWith(`=${folder}`),
    );
}

const programName = (p: ProcInfo) => path.basename(p.command[0] ?? "?");

/**
 * The processes a dead run left running: recorded ones that still run (see {@link stillRunning}),
 * with the members of the groups they still lead; and, started no earlier than the run's first
 * recorded process, those whose command line names one of the run's folders and whose program is
 * one the run ran or lies in that folder (a component started too shortly before a crash to be
 * recorded: kwokctl runs the control plane from the cluster's folder). Never this process, its
 * ancestors or their groups. `procs` defaults to what /proc lists now.
 */
export function findLeftovers(
    contents: RegistryContents,
    procs: readonly ProcInfo[] = listProcesses(),
    boot: string = bootId(),
): Leftover[] {
    const spare = selfAndAncestors(procs);
    const sparePids = new Set(spare.map((p) => p.pid));
    const spareGroups = new Set(spare.map((p) => p.pgid));
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const out = new Map<number, Leftover>();
    const add = (p: ProcInfo, label: string, group: boolean) => {
        if (sparePids.has(p.pid) || out.has(p.pid)) return;
        const whole = group && !spareGroups.has(p.pgid);
        out.set(p.pid, { pid: p.pid, pgid: p.pgid, command: p.command, label, group: whole });
    };
    for (const r of contents.processes) {
        const leader = stillRunning(r, (pid) => byPid.get(pid), boot);
        if (leader === undefined) continue;
        // While its leader lives, a group is the one the leader made: its members are the run's.
        const leads = leader.pgid === leader.pid;
        add(leader, r.label, leads);
        if (leads) for (const p of procs) if (p.pgid === leader.pid) add(p, programName(p), true);
    }
    const sameBoot = contents.processes.filter((p) => p.startTime !== undefined && p.boot === boot);
    if (sameBoot.length === 0) return [...out.values()];
    const runStart = Math.min(...sameBoot.map((p) => p.startTime!));
    const programs = new Set(contents.processes.map((p) => p.command[0]).filter(Boolean));
    for (const f of contents.folders) {
        for (const p of procs) {
            const program = p.command[0] ?? "";
            if (p.startTime < runStart || !mentions(p.command, f.path)) continue;
            if (programs.has(program) || program.startsWith(`${f.path}/`))
                add(p, programName(p), p.pid === p.pgid);
        }
    }
    return [...out.values()];
}

/**
 * Stops leftovers: SIGTERM to each (to its whole group when the group is the dead run's), then
 * SIGKILL to whatever still runs after `graceMs`.
 */
export async function stopLeftovers(left: readonly Leftover[], graceMs = 10_000): Promise<void> {
    const groups = new Set(left.filter((l) => l.group).map((l) => l.pgid));
    const single = left.filter((l) => !groups.has(l.pgid)).map((l) => l.pid);
    await Promise.all([
        ...[...groups].map((pgid) => terminatePid(pgid, { group: true, graceMs })),
        ...single.map((pid) => terminatePid(pid, { graceMs })),
    ]);
}

/** One line per leftover, for a human: `etcd (pid 123, group 123)`. */
export function describeLeftovers(left: readonly Leftover[]): string[] {
    return left.map(
        (l) => `${l.label} (pid ${l.pid}${l.pid === l.pgid ? "" : `, group ${l.pgid}`})`,
    );
}
