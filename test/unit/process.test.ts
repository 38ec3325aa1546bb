/**
 * runtime/process.ts on real, short-lived processes (sleep, sh, node): stopping a child or a process
 * group that ignores SIGTERM, what dies with this process (exit hooks, the watchdog even after a
 * SIGKILL), the recorder, runFile, zombies, and the log and polling helpers.
 */
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import {
    canConnect,
    freePort,
    isAlive,
    listProcesses,
    logSince,
    pollUntil,
    procInfo,
    readTail,
    runFile,
    setProcessRecorder,
    sleep,
    terminate,
    terminatePid,
    trackChild,
    waitFor,
    watchdog,
} from "../../runtime/process";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-process-test-"));
const PROCESS_TS = path.resolve(__dirname, "../../runtime/process.ts");

// Suites that wait for processes to exit have a timeout: a regression fails them instead of hanging.

/** Every pid a test started; SIGKILLed (with its group when it leads one) at the end. */
const started = new Set<number>();
after(async () => {
    for (const pid of started) {
        for (const target of [-pid, pid]) {
            try {
                process.kill(target, "SIGKILL");
            } catch {
                // gone
            }
        }
    }
    await sleep(50);
    fs.rmSync(dir, { recursive: true, force: true });
});

/** The first line `child` prints on stdout. */
function firstLine(child: ChildProcess): Promise<string> {
    return new Promise((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => {
            out += d.toString("utf8");
            if (out.includes("\n")) resolve(out.slice(0, out.indexOf("\n")));
        });
        child.once("exit", (code, signal) =>
            reject(new Error(`exited (${code ?? signal}) before printing a line: ${out}`)),
        );
    });
}

const exited = (child: ChildProcess): Promise<{ code: number | null; signal: string | null }> =>
    child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
        : new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

/** A pid no process can have: above the kernel's limit. */
const impossiblePid = () => Number(fs.readFileSync("/proc/sys/kernel/pid_max", "utf8").trim()) + 1;

/** Waits (at most 15 s) until none of `pids` is alive; fails naming those that still are. */
async function allGone(pids: readonly number[], what: string): Promise<void> {
    await waitFor(
        async () => {
            const alive = pids.filter(isAlive);
            if (alive.length > 0) throw new Error(`still alive: ${alive.join(", ")}`);
            return true;
        },
        15_000,
        what,
    );
}

describe("terminate: a child of ours", { timeout: 120_000 }, () => {
    it("SIGTERM stops a child that honours it; the signal can be chosen", async () => {
        const a = spawn("sleep", ["300"], { stdio: "ignore" });
        const b = spawn("sleep", ["300"], { stdio: "ignore" });
        started.add(a.pid!).add(b.pid!);
        await terminate(a);
        await terminate(b, { signal: "SIGINT" });
        assert.equal(a.signalCode, "SIGTERM");
        assert.equal(b.signalCode, "SIGINT");
    });

    it("SIGKILL once the grace period is over, for a child that ignores SIGTERM", async () => {
        const stubborn = spawn(
            process.execPath,
            [
                "-e",
                "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);",
            ],
            { stdio: ["ignore", "pipe", "ignore"] },
        );
        started.add(stubborn.pid!);
        assert.equal(await firstLine(stubborn), "ready");
        stubborn.unref(); // terminate must still wait for it
        await terminate(stubborn, { graceMs: 300 });
        assert.equal(stubborn.signalCode, "SIGKILL");
        assert.equal(isAlive(stubborn.pid!), false);
    });

    it("a child that has already exited: nothing to do", async () => {
        const done = spawn("true");
        await exited(done);
        await terminate(done);
        assert.equal(done.exitCode, 0, "its exit status is left as it was");
    });
});

describe(
    "terminatePid: a process, or a process group, not necessarily ours",
    { timeout: 120_000 },
    () => {
        /** A shell leading a group of its own, its `sleep` child in the group; `sh` options first. */
        async function group(script: string): Promise<{ leader: number; member: number }> {
            const sh = spawn("sh", ["-c", `${script}; sleep 300 & echo $!; wait`], {
                detached: true,
                stdio: ["ignore", "pipe", "ignore"],
            });
            started.add(sh.pid!);
            const member = Number(await firstLine(sh));
            sh.unref();
            sh.stdout!.destroy();
            return { leader: sh.pid!, member };
        }

        it("a group whose members ignore SIGTERM is SIGKILLed once the grace period is over", async () => {
            // An ignored signal stays ignored across fork and exec: `sleep` ignores it too.
            const g = await group("trap '' TERM");
            process.kill(-g.leader, "SIGTERM");
            await sleep(200);
            assert.ok(isAlive(g.leader) && isAlive(g.member), "SIGTERM alone does not stop them");
            assert.equal(await terminatePid(g.leader, { group: true, graceMs: 300 }), true);
            assert.equal(isAlive(g.leader), false, "the leader is gone");
            assert.equal(isAlive(g.member), false, "its group's member is gone");
            assert.equal(
                await terminatePid(g.leader, { group: true }),
                false,
                "nothing is left in the group to stop",
            );
        });

        it("a group that honours SIGTERM stops with it", async () => {
            const g = await group("true");
            assert.equal(await terminatePid(g.leader, { group: true }), true);
            assert.equal(isAlive(g.member), false);
        });

        it("a single process; false when there is none (or only a zombie)", async () => {
            const lone = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
            started.add(lone.pid!);
            lone.unref();
            assert.equal(await terminatePid(lone.pid!), true);
            assert.equal(isAlive(lone.pid!), false);
            assert.equal(await terminatePid(impossiblePid()), false);
            assert.equal(await terminatePid(impossiblePid(), { group: true }), false);
        });
    },
);

describe("zombies", { timeout: 120_000 }, () => {
    it("an exited process its parent never reaps is not alive, and not listed", async () => {
        // The inner shell exits once its parent has become `sleep` (exec), which never reaps it.
        const inner = `while [ "$(cat /proc/$PPID/comm)" != sleep ]; do sleep 0.05; done`;
        const parent = spawn("sh", ["-c", `sh -c '${inner}' & echo $!; exec sleep 300`], {
            stdio: ["ignore", "pipe", "ignore"],
        });
        started.add(parent.pid!);
        const zombie = Number(await firstLine(parent));
        await pollUntil(
            `process ${zombie} to be a zombie`,
            async () => procInfo(zombie)?.state,
            (s) => s === "Z",
            15_000,
        );
        process.kill(zombie, 0); // the kernel still has it: signalling it does not throw
        assert.equal(isAlive(zombie), false);
        assert.ok(!listProcesses().some((p) => p.pid === zombie));
        assert.ok(listProcesses().some((p) => p.pid === parent.pid));
        assert.equal(await terminatePid(zombie), false);
        await terminate(parent);
    });
});

describe("what dies with this process", { timeout: 120_000 }, () => {
    /**
     * Runs a Node process that uses process.ts: it tracks a child and a process of another parent,
     * stops tracking a third, owns one directory and releases another, prints what it made, then
     * does `mode`: "exit" (exits normally) or "wait" (until the test signals it).
     */
    async function tracker(mode: "exit" | "wait") {
        const script = `
            const p = require(${JSON.stringify(PROCESS_TS)});
            const { spawn } = require("node:child_process");
            const fs = require("node:fs");
            const [mode, dir] = process.argv.slice(1);
            const detachedSleep = () => {
                const c = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
                c.unref();
                return c.pid;
            };
            const child = spawn("sleep", ["300"], { stdio: "ignore" });
            p.trackChild(child);
            const other = detachedSleep();
            p.trackPids(() => [other]);
            const spared = detachedSleep();
            const untrack = p.trackPids(() => [spared]);
            untrack();
            const owned = fs.mkdtempSync(dir + "/owned-");
            p.ownDir(owned);
            const kept = fs.mkdtempSync(dir + "/kept-");
            p.ownDir(kept);
            p.releaseDir(kept);
            p.installExitHooks();
            console.log(JSON.stringify({ killed: [child.pid, other], spared, owned, kept }));
            if (mode === "exit") process.exit(0);
            setInterval(() => {}, 1000);`;
        const proc = spawn(process.execPath, ["--import", "tsx", "-e", script, mode, dir], {
            cwd: path.resolve(__dirname, "../.."),
            stdio: ["ignore", "pipe", "inherit"],
        });
        started.add(proc.pid!);
        const made = JSON.parse(await firstLine(proc)) as {
            killed: number[];
            spared: number;
            owned: string;
            kept: string;
        };
        for (const pid of [...made.killed, made.spared]) started.add(pid);
        return { proc, made };
    }

    async function check(made: Awaited<ReturnType<typeof tracker>>["made"]) {
        await allGone(made.killed, "the tracked processes to be killed");
        assert.equal(isAlive(made.spared), true, "a process no longer tracked is left alone");
        assert.equal(fs.existsSync(made.owned), false, "the owned directory is removed");
        assert.equal(fs.existsSync(made.kept), true, "a released directory is kept");
    }

    it("on a normal exit", async () => {
        const { proc, made } = await tracker("exit");
        assert.deepEqual(await exited(proc), { code: 0, signal: null });
        await check(made);
    });

    it("on SIGTERM, which still ends the process as SIGTERM does", async () => {
        const { proc, made } = await tracker("wait");
        proc.kill("SIGTERM");
        assert.deepEqual(await exited(proc), { code: null, signal: "SIGTERM" });
        await check(made);
    });

    it("the watchdog kills its process even when this one is SIGKILLed", async () => {
        const script = `
            const p = require(${JSON.stringify(PROCESS_TS)});
            const { spawn } = require("node:child_process");
            const sleeper = () => {
                const c = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
                c.unref();
                return c.pid;
            };
            const watched = sleeper();
            const unwatched = sleeper();
            p.watchdog(watched);
            console.log(JSON.stringify({ watched, unwatched }));
            process.kill(process.pid, "SIGKILL");`;
        const proc = spawn(process.execPath, ["--import", "tsx", "-e", script], {
            cwd: path.resolve(__dirname, "../.."),
            stdio: ["ignore", "pipe", "inherit"],
        });
        started.add(proc.pid!);
        const { watched, unwatched } = JSON.parse(await firstLine(proc)) as {
            watched: number;
            unwatched: number;
        };
        started.add(watched).add(unwatched);
        assert.equal((await exited(proc)).signal, "SIGKILL");
        await allGone([watched], "the watchdog to kill the watched process");
        assert.equal(isAlive(unwatched), true, "a process without a watchdog survives (control)");
    });

    it("a watchdog goes away with the process it watches", async () => {
        const watched = spawn("sleep", ["300"], { stdio: "ignore" });
        started.add(watched.pid!);
        watchdog(watched.pid!);
        const dogs = () =>
            listProcesses()
                .filter((p) => p.command.join(" ").includes(`kill -0 ${watched.pid} `))
                .map((p) => p.pid);
        await pollUntil(
            "the watchdog to start",
            async () => dogs(),
            (d) => d.length === 1,
            15_000,
        );
        const [dog] = dogs();
        await terminate(watched);
        await allGone([dog!], "the watchdog to exit");
    });
});

describe("the process recorder, and runFile", { timeout: 120_000 }, () => {
    it("runFile returns stdout, feeds stdin, passes env; the recorder sees the child start and exit", async () => {
        const seen: string[] = [];
        setProcessRecorder({
            started: (pid, command) => seen.push(`started ${pid} ${command.join(" ")}`),
            exited: (pid) => seen.push(`exited ${pid}`),
        });
        let out: string;
        try {
            out = await runFile("sh", ["-c", 'cat; echo " $KCS_WORD"'], {
                input: "hello",
                env: { PATH: process.env["PATH"], KCS_WORD: "world" },
            });
        } finally {
            setProcessRecorder(undefined);
        }
        assert.equal(out, "hello world\n");
        assert.equal(seen.length, 2, seen.join("; "));
        const pid = /^started (\d+) /.exec(seen[0]!)?.[1];
        assert.equal(seen[0], `started ${pid} sh -c cat; echo " $KCS_WORD"`);
        assert.equal(seen[1], `exited ${pid}`);
        // After setProcessRecorder(undefined), nobody is told.
        const child = spawn("true");
        trackChild(child);
        await exited(child);
        assert.equal(seen.length, 2);
    });

    it("a failure names the command and carries its stderr; a child over its time is killed", async () => {
        await assert.rejects(
            runFile("sh", ["-c", "echo 'no such topic' >&2; exit 3"]),
            (e: Error) =>
                /^sh -c .* failed: /.test(e.message) && e.message.endsWith("no such topic"),
        );
        await assert.rejects(
            runFile("sleep", ["30"], { timeoutMs: 200 }),
            /^Error: sleep 30 failed: /,
        );
    });
});

describe("ports", () => {
    it("freePort gives a port nothing listens on; canConnect tells when something does", async () => {
        const port = await freePort();
        assert.ok(port > 0 && port < 65536);
        assert.equal(await canConnect(port), false);
        const server = net.createServer().listen(port, "127.0.0.1");
        await new Promise<void>((resolve) => server.once("listening", () => resolve()));
        try {
            assert.equal(await canConnect(port), true);
        } finally {
            await new Promise<void>((resolve) => server.close(() => resolve()));
        }
    });
});

describe("logs", () => {
    const log = path.join(dir, "server.log");

    it("logSince reads what was appended after an offset; readTail the last bytes", () => {
        fs.writeFileSync(log, "starting\n");
        const offset = fs.statSync(log).size;
        fs.appendFileSync(log, "listening on 8123\n");
        assert.equal(logSince(log, offset), "listening on 8123\n");
        assert.equal(logSince(log, 0), "starting\nlistening on 8123\n");
        assert.equal(logSince(log, 10_000), "");
        assert.equal(readTail(log, 5), "8123\n");
        assert.equal(readTail(log), "starting\nlistening on 8123\n");
    });

    it("a missing log: nothing since, and '(no log)' as its tail", () => {
        const missing = path.join(dir, "never-written.log");
        assert.equal(logSince(missing, 0), "");
        assert.equal(readTail(missing), "(no log)");
    });
});

describe("polling", () => {
    it("pollUntil returns the first value that satisfies, else fails with the last one", async () => {
        let n = 0;
        assert.equal(
            await pollUntil(
                "n to reach 2",
                async () => ++n,
                (v) => v >= 2,
                10_000,
            ),
            2,
        );
        await assert.rejects(
            pollUntil(
                "the topic to exist",
                async () => ({ topics: [] }),
                () => false,
                0,
            ),
            /^Error: the topic to exist: not reached within 0 ms; last: \{"topics":\[\]\}$/,
        );
    });

    it("waitFor counts a throw as not yet, and fails with the last error", async () => {
        let n = 0;
        await waitFor(
            async () => {
                if (++n < 2) throw new Error("connection refused");
                return true;
            },
            10_000,
            "the server",
        );
        assert.equal(n, 2);
        await assert.rejects(
            waitFor(
                async () => {
                    throw new Error("connection refused");
                },
                100,
                "the server",
            ),
            /^Error: timed out after 100 ms waiting for the server: connection refused$/,
        );
        await assert.rejects(
            waitFor(async () => false, 100, "the server"),
            /^Error: timed out after 100 ms waiting for the server$/,
        );
    });
});
