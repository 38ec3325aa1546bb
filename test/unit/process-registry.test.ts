/**
 * runtime/process-registry.ts: the record a long-lived runtime keeps of what it started, and how a
 * later command finds and stops what a dead run left. Synthetic /proc listings for the matching
 * rules (a pid handed to another process, another boot, folders); real `sleep` processes for
 * stopping by group.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { ProcInfo, bootId, isAlive, procInfo, sleep } from "../../runtime/process";
import {
    ProcessRegistry,
    RegistryContents,
    findLeftovers,
    stillRunning,
    stopLeftovers,
} from "../../runtime/process-registry";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-registry-test-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshFile = () => path.join(dir, `registry-${++n}.jsonl`);

const BOOT = "boot-1";
const ETCD = "/tools/bin/etcd";
const WORK = "/tmp/kcs-kube-abc";

/** A process as procInfo would describe it; pids far above what the test runner's ancestors use. */
function proc(
    pid: number,
    startTime: number,
    command: readonly string[],
    more: Partial<ProcInfo> = {},
) {
    return { pid, ppid: 1, pgid: pid, sid: pid, startTime, state: "S", command, ...more };
}

function contents(c: Partial<RegistryContents>): RegistryContents {
    return { processes: c.processes ?? [], folders: c.folders ?? [] };
}

const recorded = (
    pid: number,
    startTime: number | undefined,
    command: readonly string[],
    label = "etcd",
) => ({
    pid,
    pgid: pid,
    startTime,
    boot: BOOT,
    command,
    label,
    exited: false,
});

describe("ProcessRegistry: the file", () => {
    it("records processes, exits and folders, one JSON line each", () => {
        const r = new ProcessRegistry(freshFile());
        const start = r.recordProcess(process.pid, "me");
        r.recordFolder(path.join(dir, "data"), "data");
        r.recordProcess(999_999_999, "gone", ["x"]);
        r.recordExit(999_999_999, undefined);
        const read = r.read();
        assert.equal(start, procInfo(process.pid)!.startTime);
        assert.deepEqual(
            read.processes.map((p) => [p.pid, p.label, p.exited]),
            [
                [process.pid, "me", false],
                [999_999_999, "gone", true],
            ],
        );
        assert.equal(read.processes[0]!.boot, bootId());
        assert.deepEqual(read.processes[0]!.command, procInfo(process.pid)!.command);
        assert.deepEqual(read.folders, [{ path: path.join(dir, "data"), label: "data" }]);
        assert.equal(fs.readFileSync(r.file, "utf8").trim().split("\n").length, 4);
    });

    it("skips a last line a crash cut short, and the next record after it stays whole", () => {
        const file = freshFile();
        const r = new ProcessRegistry(file);
        r.recordProcess(4242, "a", ["a"]);
        fs.appendFileSync(file, '{"type":"process","pid":4343,"startT');
        assert.deepEqual(
            r.read().processes.map((p) => p.pid),
            [4242],
        );
        r.recordProcess(4444, "b", ["b"]);
        assert.deepEqual(
            r.read().processes.map((p) => p.pid),
            [4242, 4444],
        );
    });

    it("ignores lines that are not records (garbage, wrong shapes, a bad pid)", () => {
        const file = freshFile();
        fs.writeFileSync(
            file,
            [
                "not json",
                "12",
                "null",
                '{"type":"process","pid":-1,"command":[],"label":"x"}',
                '{"type":"process","pid":7,"label":"no command"}',
                '{"type":"what","pid":7}',
                '{"type":"process","pid":8,"command":["c"],"label":"ok"}',
                "",
            ].join("\n"),
        );
        assert.deepEqual(
            new ProcessRegistry(file).read().processes.map((p) => p.label),
            ["ok"],
        );
    });

    it("reads an absent file as empty, and clear() forgets everything", () => {
        const r = new ProcessRegistry(freshFile());
        assert.deepEqual(r.read(), { processes: [], folders: [] });
        r.recordFolder(dir, "d");
        r.clear();
        assert.deepEqual(r.read(), { processes: [], folders: [] });
    });
});

describe("stillRunning: a pid alone is never trusted", () => {
    const now = new Map([[500, proc(500, 1000, [ETCD, "--data-dir", WORK])]]);
    const lookup = (pid: number) => now.get(pid);
    const cases: [string, Parameters<typeof stillRunning>[0], boolean][] = [
        ["same pid, same start, same boot", recorded(500, 1000, [ETCD]), true],
        ["the pid handed to a later process", recorded(500, 999, [ETCD]), false],
        ["another boot", { ...recorded(500, 1000, [ETCD]), boot: "boot-0" }, false],
        [
            "no start time, the same command line",
            recorded(500, undefined, [ETCD, "--data-dir", WORK]),
            true,
        ],
        ["no start time, another command line", recorded(500, undefined, [ETCD]), false],
        ["no start time, no command line", recorded(500, undefined, []), false],
        ["no such pid", recorded(501, 1000, [ETCD]), false],
    ];
    for (const [name, r, expected] of cases) {
        it(name, () => assert.equal(stillRunning(r, lookup, BOOT) !== undefined, expected));
    }
    it("a zombie is not running", () => {
        const z = (pid: number) => (pid === 500 ? { ...now.get(500)!, state: "Z" } : undefined);
        assert.equal(stillRunning(recorded(500, 1000, [ETCD]), z, BOOT), undefined);
    });
});

describe("findLeftovers", () => {
    const etcd = proc(500, 1000, [ETCD, `--data-dir=${WORK}/etcd`]);
    const member = proc(510, 1200, ["/usr/bin/helper"], { pgid: 500 });

    it("finds a recorded process by pid and start time, with its group's members", () => {
        const left = findLeftovers(
            contents({ processes: [recorded(500, 1000, etcd.command)] }),
            [etcd, member, proc(600, 900, ["/bin/unrelated"])],
            BOOT,
        );
        assert.deepEqual(
            left.map((l) => [l.pid, l.label, l.group]),
            [
                [500, "etcd", true],
                [510, "helper", true],
            ],
        );
    });

    it("leaves alone a process that got a recorded pid later, and a group whose leader is gone", () => {
        const reused = proc(500, 5000, ["/usr/bin/vim"]);
        const orphan = proc(520, 6000, ["/usr/bin/other"], { pgid: 500 });
        const left = findLeftovers(
            contents({ processes: [recorded(500, 1000, etcd.command)] }),
            [reused, orphan],
            BOOT,
        );
        assert.deepEqual(left, []);
        // The same after a reboot, where start times begin again.
        assert.deepEqual(
            findLeftovers(
                contents({ processes: [recorded(500, 1000, etcd.command)] }),
                [etcd],
                "boot-2",
            ),
            [],
        );
    });

    it("finds by folder a process of a program the run ran or kept in that folder", () => {
        // kwokctl runs the components from links in the cluster's folder.
        const inside = proc(700, 1500, [`${WORK}/bin/kube-apiserver`, `--etcd=${WORK}/x`]);
        const sameProgram = proc(704, 1500, [ETCD, `--data-dir=${WORK}/etcd2`], { pgid: 1 });
        const tail = proc(701, 1500, ["/usr/bin/tail", "-f", `${WORK}/etcd.log`]);
        const before = proc(702, 10, [`${WORK}/bin/kube-apiserver`, `--cert-dir=${WORK}`]);
        const elsewhere = proc(703, 1500, [ETCD, "--data-dir=/tmp/kcs-kube-abcd"]);
        const left = findLeftovers(
            contents({
                processes: [recorded(500, 1000, etcd.command)],
                folders: [{ path: WORK, label: "cluster" }],
            }),
            [inside, sameProgram, tail, before, elsewhere],
            BOOT,
        );
        assert.deepEqual(
            left.map((l) => [l.pid, l.label, l.group]),
            [
                [700, "kube-apiserver", true],
                [704, "etcd", false],
            ],
        );
    });

    it("never lists this process or its ancestors, nor signals their group as a whole", () => {
        const me = procInfo(process.pid)!;
        const parent = procInfo(me.ppid)!;
        const inMyGroup = proc(800, me.startTime, ["/bin/x"], { pgid: me.pgid });
        const r = [
            { ...recorded(me.pid, me.startTime, [...me.command]), pgid: me.pgid, boot: bootId() },
            { ...recorded(parent.pid, parent.startTime, [...parent.command]), boot: bootId() },
            { ...recorded(800, me.startTime, ["/bin/x"]), pgid: me.pgid, boot: bootId() },
        ];
        const left = findLeftovers(contents({ processes: r }), [me, parent, inMyGroup], bootId());
        assert.deepEqual(
            left.map((l) => [l.pid, l.group]),
            [[800, false]],
        );
    });
});

describe("stopLeftovers, on real processes", () => {
    /** A shell leading a group of its own, with a `sleep` child in that group. */
    async function group(): Promise<{ leader: number; child: number }> {
        const sh = spawn("sh", ["-c", "sleep 300 & echo $!; wait"], {
            detached: true,
            stdio: ["ignore", "pipe", "ignore"],
        });
        sh.unref();
        const child = await new Promise<number>((resolve) =>
            sh.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))),
        );
        sh.stdout.destroy();
        return { leader: sh.pid!, child };
    }

    it("stops a recorded group leader and its group; a pid recorded with another start time is spared", async () => {
        const file = freshFile();
        const r = new ProcessRegistry(file);
        const run = await group();
        const spared = await group();
        try {
            r.recordProcess(run.leader, "leader");
            // As if `spared.leader` had got the pid of a process recorded earlier.
            const info = procInfo(spared.leader)!;
            fs.appendFileSync(
                file,
                JSON.stringify({
                    type: "process",
                    pid: spared.leader,
                    pgid: spared.leader,
                    startTime: info.startTime - 1,
                    boot: bootId(),
                    command: info.command,
                    label: "old",
                }) + "\n",
            );
            const left = findLeftovers(r.read());
            assert.deepEqual(left.map((l) => l.pid).sort(), [run.leader, run.child].sort());
            await stopLeftovers(left, 2_000);
            assert.equal(isAlive(run.leader), false, "the leader is stopped");
            assert.equal(isAlive(run.child), false, "its group's member is stopped");
            assert.equal(isAlive(spared.leader), true, "the other process is not touched");
            assert.equal(isAlive(spared.child), true);
            assert.deepEqual(findLeftovers(r.read()), []);
        } finally {
            for (const pid of [run.leader, spared.leader]) {
                try {
                    process.kill(-pid, "SIGKILL");
                } catch {
                    // gone
                }
            }
            await sleep(50);
        }
    });
});
