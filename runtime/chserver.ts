/**
 * ClickHouse as a server for tests, the sandbox and benchmarks: the real engine (chdb, ClickHouse
 * 26.x) in a long-lived child process that owns its data directory, keeps Kafka engine consumers
 * running, and serves ClickHouse's HTTP interface on a loopback port (runtime/chserver-main.ts),
 * so the stock `@clickhouse/client` and the provider's `http` connection work against it unchanged.
 *
 *   const ch = await startClickHouseServer({ password: "secret" });
 *   const client = ch.client();                  // @clickhouse/client on ch.url
 *   await client.command({ query: "CREATE TABLE ..." });
 *   await ch.restart();                          // SIGKILL, then the same data and port again
 *   await ch.stop();                             // SIGTERM, SIGKILL after a grace period
 *
 * A server dies with the process that started it (exit, SIGINT/SIGTERM/SIGHUP, and SIGKILL through
 * a watchdog and its stdin pipe), unless it was started `detached`: then it has its own process
 * group, logs to `<dataDir>/chserver.log`, and a later command finds it again with
 * `connectExisting(<dataDir>/chserver.pid)` or stops it with `stopDetached(dataDir)`.
 *
 * The password reaches the server in its environment (KCS_CHSERVER_PASSWORD), never on its command
 * line, and is not written to any file: `connectExisting` takes it as an option or from that same
 * environment variable of the calling process.
 */
import { ClickHouseClient, createClient } from "@clickhouse/client";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import {
    isAlive,
    logSince,
    ownDir,
    releaseDir,
    sleep,
    terminate,
    terminatePid,
    trackChild,
    watchdog,
} from "./process";

export interface StartClickHouseServerOptions {
    /**
     * Directory of the server: the chdb data path is `<dataDir>/data` (the layout of
     * `openEmbedded`), plus config.xml, chserver.log, chserver.pid and chserver.json.
     * Kept after stop() when given.
     * @default a fresh temporary directory, removed by stop()
     */
    readonly dataDir?: string;
    /**
     * Server config (`<clickhouse>...</clickhouse>`), written to `<dataDir>/config.xml` and passed
     * as `--config-file`: e.g. a `<kafka>` section with SASL settings, or named collections.
     * @default the config.xml already in dataDir, else an empty config
     */
    readonly configXml?: string;
    /** Loopback port to listen on. @default a free port, chosen once and kept by restart() */
    readonly port?: number;
    /** @default "default" */
    readonly username?: string;
    /** Password of the user; clients must present it. @default none (an empty password) */
    readonly password?: string;
    /**
     * Where the server's stdout and stderr go: a file (appended), or "inherit" for this process's
     * stderr. Detached servers always log to a file.
     * @default `<dataDir>/chserver.log`
     */
    readonly log?: string | "inherit";
    /** Log every request (query truncated, secrets masked) to the server's log. @default false */
    readonly debug?: boolean;
    /**
     * Start the server in its own process group, outliving this process, with a pid file, for the
     * sandbox. @default false
     */
    readonly detached?: boolean;
    /**
     * Inserts in line-delimited formats are cut at row boundaries into chunks of this size and
     * inserted while the rest of the body arrives; 0 inserts every body whole.
     * @default 64 MiB
     */
    readonly insertChunkBytes?: number;
    /** Allow several `;`-separated statements per request (real ClickHouse refuses them). @default false */
    readonly allowMultiStatements?: boolean;
    /** How long to wait for the server to answer /ping. @default 60000 */
    readonly startTimeoutMs?: number;
    /**
     * Extra environment of the server, e.g. a secret its config.xml reads with `from_env`.
     * (It also inherits this process's environment.)
     */
    readonly env?: Readonly<Record<string, string>>;
}

/** Options for {@link ClickHouseServer.client}: anything `createClient` takes. */
export type ClientOptions = NonNullable<Parameters<typeof createClient>[0]>;

export interface ClickHouseServer {
    /** `http://127.0.0.1:<port>` (no credentials). */
    readonly url: string;
    readonly port: number;
    readonly username: string;
    readonly dataDir: string;
    /** The chdb data path (`<dataDir>/data`). */
    readonly chdbPath: string;
    readonly configFile: string;
    readonly logFile: string | undefined;
    readonly pidFile: string;
    readonly detached: boolean;
    /** Process id of the server while it runs. */
    readonly pid: number | undefined;
    readonly running: boolean;
    /**
     * A `@clickhouse/client` on this server with its credentials; `opts` override or add to them.
     * Clients made here are closed by stop().
     */
    client(opts?: ClientOptions): ClickHouseClient;
    /**
     * SIGKILL (or, with `graceful`, SIGTERM and SIGKILL after `graceMs`), then start again on the
     * same data directory and port. After a SIGKILL, Kafka engine consumers of the old process
     * stay members of their groups until the broker's session timeout expires (librdkafka's
     * default is 45 s), so consumption resumes only then; a graceful stop leaves the groups.
     */
    restart(opts?: { graceful?: boolean; graceMs?: number }): Promise<void>;
    /**
     * Graceful stop: SIGTERM (the server finishes running requests and closes the engine), then
     * SIGKILL after `graceMs`. Removes the directory when it was a temporary one.
     */
    stop(opts?: { graceMs?: number }): Promise<void>;
}

/** What a running server writes to `<dataDir>/chserver.json`. */
interface ServerState {
    readonly pid: number;
    readonly port: number;
    readonly url: string;
    readonly username: string;
    readonly dataDir: string;
    readonly chdbPath: string;
    readonly configFile: string;
    readonly logFile?: string;
    readonly insertChunkBytes?: number;
    readonly allowMultiStatements?: boolean;
    readonly debug?: boolean;
}

const PID_FILE = "chserver.pid";
const STATE_FILE = "chserver.json";
const LOG_FILE = "chserver.log";

/** The server's entry: the .ts file under tsx, or its compiled .js when this module is compiled. */
function entryCommand(): string[] {
    const ts = path.join(__dirname, "chserver-main.ts");
    // tsx by absolute URL: the server runs in its data directory, where "tsx" does not resolve.
    if (fs.existsSync(ts)) return ["--import", pathToFileURL(require.resolve("tsx")).href, ts];
    return [path.join(__dirname, "chserver-main.js")];
}

function readState(dataDir: string): ServerState | undefined {
    try {
        return JSON.parse(fs.readFileSync(path.join(dataDir, STATE_FILE), "utf8")) as ServerState;
    } catch {
        return undefined;
    }
}

function ping(port: number, timeoutMs = 2000): Promise<boolean> {
    return new Promise((resolve) => {
        const req = http.get(
            { host: "127.0.0.1", port, path: "/ping", timeout: timeoutMs, agent: false },
            (res) => {
                let body = "";
                res.setEncoding("utf8");
                res.on("data", (d: string) => (body += d));
                res.on("end", () => resolve(res.statusCode === 200 && body === "Ok.\n"));
                res.on("error", () => resolve(false));
            },
        );
        req.on("timeout", () => req.destroy());
        req.on("error", () => resolve(false));
    });
}

interface Launch {
    readonly dataDir: string;
    readonly port: number;
    readonly username: string;
    readonly password: string | undefined;
    readonly log: string | "inherit";
    readonly debug: boolean;
    readonly detached: boolean;
    readonly insertChunkBytes: number | undefined;
    readonly allowMultiStatements: boolean;
    readonly startTimeoutMs: number;
    readonly env: Readonly<Record<string, string>>;
}

/** Spawns the server and resolves with its pid and port once it answers /ping. */
async function launch(
    l: Launch,
): Promise<{ child: ChildProcess | undefined; pid: number; port: number }> {
    const statePath = path.join(l.dataDir, STATE_FILE);
    fs.rmSync(statePath, { force: true });
    const logFile = l.log === "inherit" ? undefined : l.log;
    const args = [
        ...entryCommand(),
        "--data-dir",
        l.dataDir,
        "--port",
        String(l.port),
        "--user",
        l.username,
    ];
    if (logFile) args.push("--log-file", logFile);
    if (l.insertChunkBytes !== undefined)
        args.push("--insert-chunk-bytes", String(l.insertChunkBytes));
    if (l.allowMultiStatements) args.push("--allow-multi-statements");
    if (!l.detached) args.push("--parent-stdin");
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "16",
        ...l.env,
    };
    delete env.KCS_CHSERVER_PASSWORD;
    delete env.KCS_CHSERVER_DEBUG;
    if (l.password !== undefined && l.password !== "") env.KCS_CHSERVER_PASSWORD = l.password;
    if (l.debug) env.KCS_CHSERVER_DEBUG = "1";
    const logStart = logFile && fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    const fd = logFile ? fs.openSync(logFile, "a") : undefined;
    let child: ChildProcess;
    try {
        child = spawn(process.execPath, args, {
            cwd: l.dataDir,
            env,
            detached: l.detached,
            // "inherit" means this process's stderr for both: its stdout may carry a test protocol.
            stdio: [l.detached ? "ignore" : "pipe", fd ?? 2, fd ?? 2],
        });
    } finally {
        if (fd !== undefined) fs.closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined)
        throw new Error(
            `could not start the ClickHouse server (${process.execPath} ${args.join(" ")})`,
        );
    let exited: string | undefined;
    child.once("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));
    child.once("error", (e) => (exited = `failed: ${e.message}`));
    if (l.detached) child.unref();
    else {
        trackChild(child);
        watchdog(pid);
        // Neither the child nor the pipe it holds keeps this process alive; the exit hooks kill it.
        child.unref();
        (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    }
    const logTail = () =>
        logFile
            ? logSince(logFile, logStart).slice(-6000)
            : "(the server logged to this process's stderr)";
    const deadline = Date.now() + l.startTimeoutMs;
    for (;;) {
        if (exited) throw new Error(`ClickHouse server ${exited} while starting:\n${logTail()}`);
        if (Date.now() > deadline) {
            if (l.detached) await terminatePid(pid, { signal: "SIGKILL" });
            else await terminate(child, { signal: "SIGKILL" });
            throw new Error(
                `ClickHouse server did not answer /ping within ${l.startTimeoutMs} ms:\n${logTail()}`,
            );
        }
        const state = readState(l.dataDir);
        if (state && state.pid === pid && (await ping(state.port)))
            return { child: l.detached ? undefined : child, pid, port: state.port };
        await sleep(50);
    }
}

/** Starts a server (see {@link StartClickHouseServerOptions}); resolves once it answers /ping. */
export async function startClickHouseServer(
    opts: StartClickHouseServerOptions = {},
): Promise<ClickHouseServer> {
    const ownsDir = opts.dataDir === undefined;
    const dataDir = path.resolve(
        opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "kcs-chserver-")),
    );
    fs.mkdirSync(dataDir, { recursive: true });
    if (ownsDir && !opts.detached) ownDir(dataDir);
    const running = readState(dataDir);
    if (running && isAlive(running.pid) && (await ping(running.port))) {
        throw new Error(
            `a ClickHouse server (pid ${running.pid}, ${running.url}) already serves ${dataDir}: stop it first (stopDetached) or connectExisting()`,
        );
    }
    const configFile = path.join(dataDir, "config.xml");
    if (opts.configXml !== undefined) fs.writeFileSync(configFile, opts.configXml, { mode: 0o600 });
    else if (!fs.existsSync(configFile))
        fs.writeFileSync(configFile, "<clickhouse></clickhouse>\n");
    const detached = opts.detached ?? false;
    const log =
        detached || opts.log === undefined
            ? path.join(dataDir, LOG_FILE)
            : opts.log === "inherit"
              ? "inherit"
              : path.resolve(opts.log);
    const l: Launch = {
        dataDir,
        port: opts.port ?? 0,
        username: opts.username ?? "default",
        password: opts.password,
        log,
        debug: opts.debug ?? false,
        detached,
        insertChunkBytes: opts.insertChunkBytes,
        allowMultiStatements: opts.allowMultiStatements ?? false,
        startTimeoutMs: opts.startTimeoutMs ?? 60_000,
        env: opts.env ?? {},
    };
    let started: Awaited<ReturnType<typeof launch>>;
    try {
        started = await launch(l);
    } catch (e) {
        if (ownsDir && !detached) {
            fs.rmSync(dataDir, { recursive: true, force: true });
            releaseDir(dataDir);
        }
        throw e;
    }
    return makeHandle({ ...l, port: started.port }, started, ownsDir && !detached);
}

function makeHandle(
    l: Launch,
    started: { child: ChildProcess | undefined; pid: number; port: number },
    removeOnStop: boolean,
): ClickHouseServer {
    let child = started.child;
    let pid: number | undefined = started.pid;
    let stopped = false;
    const clients = new Set<ClickHouseClient>();
    const url = `http://127.0.0.1:${started.port}`;

    async function kill(signal: NodeJS.Signals, graceMs: number): Promise<void> {
        const c = child;
        const p = pid;
        child = undefined;
        pid = undefined;
        if (c) await terminate(c, { signal, graceMs });
        else if (p !== undefined) await terminatePid(p, { signal, graceMs });
    }

    const handle: ClickHouseServer = {
        url,
        port: started.port,
        username: l.username,
        dataDir: l.dataDir,
        chdbPath: path.join(l.dataDir, "data"),
        configFile: path.join(l.dataDir, "config.xml"),
        logFile: l.log === "inherit" ? undefined : l.log,
        pidFile: path.join(l.dataDir, PID_FILE),
        detached: l.detached,
        get pid() {
            return pid;
        },
        get running() {
            if (child) return child.exitCode === null && child.signalCode === null;
            return pid !== undefined && isAlive(pid);
        },
        client(opts = {}) {
            const c = createClient({
                url,
                username: l.username,
                password: l.password ?? "",
                request_timeout: 60_000,
                ...opts,
            });
            clients.add(c);
            return c;
        },
        async restart(o = {}) {
            if (stopped) throw new Error("the server was stopped; start a new one");
            if (o.graceful) await kill("SIGTERM", o.graceMs ?? 30_000);
            else await kill("SIGKILL", 0);
            const again = await launch({ ...l, port: started.port });
            child = again.child;
            pid = again.pid;
        },
        async stop(o = {}) {
            if (stopped) return;
            stopped = true;
            await Promise.allSettled([...clients].map((c) => c.close()));
            clients.clear();
            await kill("SIGTERM", o.graceMs ?? 30_000);
            for (const f of [PID_FILE, STATE_FILE])
                fs.rmSync(path.join(l.dataDir, f), { force: true });
            if (removeOnStop) {
                fs.rmSync(l.dataDir, { recursive: true, force: true });
                releaseDir(l.dataDir);
            }
        },
    };
    return handle;
}

/**
 * A handle on a server started earlier (typically `detached`, by another command), found by its
 * pid file. The password comes from `opts.password`, else this process's KCS_CHSERVER_PASSWORD;
 * `env` is what restart() gives the server beyond this process's environment (it is not stored).
 * Throws when the server is not running or does not answer /ping.
 */
export async function connectExisting(
    pidFile: string,
    opts: { password?: string; debug?: boolean; env?: Readonly<Record<string, string>> } = {},
): Promise<ClickHouseServer> {
    const dataDir = path.dirname(path.resolve(pidFile));
    const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
    const state = readState(dataDir);
    if (!isServerProcess(pid, dataDir))
        throw new Error(`no ClickHouse server is running for ${pidFile}`);
    if (!state || state.pid !== pid)
        throw new Error(
            `the ClickHouse server of ${pidFile} (pid ${pid}) is not serving yet (no ${STATE_FILE})`,
        );
    if (!(await ping(state.port)))
        throw new Error(
            `the ClickHouse server of ${pidFile} (pid ${pid}) does not answer on ${state.url}/ping`,
        );
    const l: Launch = {
        dataDir,
        port: state.port,
        username: state.username,
        password: opts.password ?? process.env.KCS_CHSERVER_PASSWORD,
        log: state.logFile ?? path.join(dataDir, LOG_FILE),
        debug: opts.debug ?? state.debug ?? false,
        detached: true,
        insertChunkBytes: state.insertChunkBytes,
        allowMultiStatements: state.allowMultiStatements ?? false,
        startTimeoutMs: 60_000,
        env: opts.env ?? {},
    };
    return makeHandle(l, { child: undefined, pid, port: state.port }, false);
}

/**
 * True when `pid` runs this server on `dataDir`. A pid file can outlive its process and the pid be
 * reused by an unrelated one, which must not be signalled: on Linux the command line must name
 * the server's entry and directory (elsewhere the pid alone is trusted).
 */
function isServerProcess(pid: number, dataDir: string): boolean {
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
    let cmdline: string;
    try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
        return process.platform !== "linux";
    }
    const argv = cmdline.split("\0");
    const at = argv.indexOf("--data-dir");
    return (
        argv.some((a) => /chserver-main\.(ts|js)$/.test(a)) &&
        at >= 0 &&
        path.resolve(argv[at + 1] ?? "") === dataDir
    );
}

/**
 * Stops the detached server of `dataDir` (SIGTERM, SIGKILL after `graceMs`) and removes its pid
 * and state files. Resolves to false when none was running.
 */
export async function stopDetached(
    dataDir: string,
    opts: { graceMs?: number } = {},
): Promise<boolean> {
    const dir = path.resolve(dataDir);
    const pidPath = path.join(dir, PID_FILE);
    let pid: number | undefined;
    try {
        pid = Number(fs.readFileSync(pidPath, "utf8").trim());
    } catch {
        pid = readState(dir)?.pid;
    }
    const wasRunning =
        pid !== undefined &&
        isServerProcess(pid, dir) &&
        (await terminatePid(pid, { graceMs: opts.graceMs ?? 30_000 }));
    for (const f of [PID_FILE, STATE_FILE]) fs.rmSync(path.join(dir, f), { force: true });
    return wasRunning;
}
