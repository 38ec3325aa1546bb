/**
 * A ClickHouse HTTP server backed by chdb (ClickHouse in-process), run as its own process by
 * runtime/chserver.ts. It owns one chdb data directory for its whole life, so Kafka engine
 * consumers keep running in the background, and serves ClickHouse's HTTP interface
 * (runtime/chserver-http.ts: what it implements) for the stock `@clickhouse/client`.
 *
 *   node --import tsx runtime/chserver-main.ts --data-dir DIR [--port N] [--user NAME]
 *        [--insert-chunk-bytes N] [--max-concurrent N] [--parent-stdin] [--log-file F]
 *        [--allow-multi-statements]
 *
 *   env KCS_CHSERVER_PASSWORD   password of the user (never on the command line); none when unset
 *   env KCS_CHSERVER_DEBUG=1    one line per request on stderr (query truncated, secrets masked)
 *
 * Layout of DIR (the same as test/harness/clickhouse.ts `openEmbedded`):
 *   DIR/data          the chdb data path
 *   DIR/config.xml    server config, passed as --config-file (written empty when missing)
 *   DIR/chserver.pid  our pid;  DIR/chserver.json  { pid, port, url, ... } once we serve
 */
import * as fs from "node:fs";
import type * as http from "node:http";
import * as path from "node:path";
import { parseArgs as parseCommandLine } from "node:util";
import { ChdbEngine, ENGINE_DEFAULTS } from "./chserver-engine";
import { createHandler, Front, listen } from "./chserver-http";

interface Options {
    readonly dataDir: string;
    readonly port: number;
    readonly username: string;
    readonly password: string | undefined;
    readonly insertChunkBytes: number;
    readonly maxConcurrent: number;
    readonly parentStdin: boolean;
    readonly logFile: string | undefined;
    readonly allowMultiStatements: boolean;
    readonly debug: boolean;
}

const USAGE = `usage: node --import tsx runtime/chserver-main.ts --data-dir DIR [--port N] [--user NAME]
       [--insert-chunk-bytes N] [--max-concurrent N] [--parent-stdin] [--log-file F]
       [--allow-multi-statements]`;

/** Thrown for a bad command line: the message names the flag; usage is printed with it. */
class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
    let values;
    try {
        ({ values } = parseCommandLine({
            args: argv,
            strict: true,
            allowPositionals: false,
            options: {
                "data-dir": { type: "string" },
                port: { type: "string" },
                user: { type: "string" },
                "insert-chunk-bytes": { type: "string" },
                "max-concurrent": { type: "string" },
                "parent-stdin": { type: "boolean" },
                "log-file": { type: "string" },
                "allow-multi-statements": { type: "boolean" },
            },
        }));
    } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
    }
    const num = (k: keyof typeof values, d: number) => {
        const v = values[k];
        if (v === undefined) return d;
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0)
            throw new UsageError(`--${k} must be a non-negative integer`);
        return n;
    };
    const dataDir = values["data-dir"];
    if (!dataDir) throw new UsageError("--data-dir is required");
    const password = process.env.KCS_CHSERVER_PASSWORD;
    // Nothing this process starts (the engine, librdkafka) needs to see it.
    delete process.env.KCS_CHSERVER_PASSWORD;
    return {
        dataDir: path.resolve(dataDir),
        port: num("port", 0),
        username: values.user ?? "default",
        password: password === undefined || password === "" ? undefined : password,
        insertChunkBytes: num("insert-chunk-bytes", ENGINE_DEFAULTS.insertChunkBytes),
        maxConcurrent: Math.max(1, num("max-concurrent", ENGINE_DEFAULTS.maxConcurrent)),
        parentStdin: values["parent-stdin"] ?? false,
        logFile: values["log-file"],
        allowMultiStatements: values["allow-multi-statements"] ?? false,
        debug: process.env.KCS_CHSERVER_DEBUG === "1" || process.env.KCS_CHSERVER_DEBUG === "true",
    };
}

const log = (msg: string) =>
    process.stderr.write(`[chserver ${new Date().toISOString()}] ${msg}\n`);

interface Files {
    readonly chdbPath: string;
    readonly configFile: string;
    readonly pidFile: string;
    readonly stateFile: string;
}

/** The layout of the data directory, with the config and the pid file written. */
function prepareDataDir(dataDir: string): Files {
    fs.mkdirSync(dataDir, { recursive: true });
    const files = {
        chdbPath: path.join(dataDir, "data"),
        configFile: path.join(dataDir, "config.xml"),
        pidFile: path.join(dataDir, "chserver.pid"),
        stateFile: path.join(dataDir, "chserver.json"),
    };
    if (!fs.existsSync(files.configFile))
        fs.writeFileSync(files.configFile, "<clickhouse></clickhouse>\n");
    fs.writeFileSync(files.pidFile, `${process.pid}\n`);
    return files;
}

/** chdb's public Session: it keeps the data path open for the life of the process. */
interface ChdbModule {
    Session: new (path: string, opts?: { connectionArgs?: readonly string[] }) => { close(): void };
}

function writeState(files: Files, opts: Options, port: number, version: string): string {
    const state = {
        pid: process.pid,
        port,
        url: `http://127.0.0.1:${port}`,
        username: opts.username,
        dataDir: opts.dataDir,
        chdbPath: files.chdbPath,
        configFile: files.configFile,
        logFile: opts.logFile,
        insertChunkBytes: opts.insertChunkBytes,
        allowMultiStatements: opts.allowMultiStatements,
        debug: opts.debug,
        version,
        startedAt: new Date().toISOString(),
    };
    fs.writeFileSync(`${files.stateFile}.tmp`, JSON.stringify(state, null, 2) + "\n");
    fs.renameSync(`${files.stateFile}.tmp`, files.stateFile);
    return state.url;
}

interface Running {
    readonly server: http.Server;
    readonly front: Front;
    readonly engine: ChdbEngine;
    readonly session: { close(): void };
    readonly files: Files;
}

/** Stops taking requests, waits for those in flight (15 s at most), closes chdb and exits. */
async function shutdown(r: Running, why: string): Promise<void> {
    log(`shutting down (${why})`);
    r.front.refuseRequests();
    const hard = setTimeout(() => {
        log("shutdown took too long; exiting");
        process.exit(1);
    }, 20_000);
    r.server.close();
    r.server.closeIdleConnections();
    const deadline = Date.now() + 15_000;
    while (r.engine.inflight.size > 0 && Date.now() < deadline)
        await Promise.race([
            Promise.allSettled([...r.engine.inflight]),
            new Promise((done) => setTimeout(done, 500)),
        ]);
    r.server.closeAllConnections();
    try {
        r.session.close();
    } catch (e) {
        log(`closing chdb: ${String(e)}`);
    }
    for (const f of [r.files.stateFile, r.files.pidFile]) {
        try {
            if (fs.readFileSync(f, "utf8").includes(String(process.pid))) fs.rmSync(f);
        } catch {
            // not there
        }
    }
    clearTimeout(hard);
    log("stopped");
    process.exit(0);
}

async function main(): Promise<void> {
    const opts = parseArgs(process.argv.slice(2));
    const files = prepareDataDir(opts.dataDir);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- chdb's types need node16 resolution
    const chdb = require("chdb") as ChdbModule;
    // One explicit --config-file, so a config.xml in the working directory cannot change anything.
    const session = new chdb.Session(files.chdbPath, {
        connectionArgs: [`--config-file=${files.configFile}`],
    });
    const engine = new ChdbEngine(files.chdbPath, opts);
    const facts = await engine.facts();
    log(`chdb ${facts.version} opened ${files.chdbPath}`);
    const front = createHandler(engine, facts, { ...opts, log });
    const { server, port } = await listen(front, opts.port, log);
    const url = writeState(files, opts, port, facts.version);
    log(`serving ${url} (pid ${process.pid})`);

    const running: Running = { server, front, engine, session, files };
    let stopping = false;
    const stop = (why: string) => {
        if (stopping) return;
        stopping = true;
        void shutdown(running, why);
    };
    for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => stop(sig));
    if (opts.parentStdin) {
        // The parent holds the other end of stdin: end of file means it is gone.
        process.stdin.on("end", () => stop("parent exited"));
        process.stdin.on("error", () => stop("parent exited"));
        process.stdin.resume();
    }
}

main().catch((e: unknown) => {
    if (e instanceof UsageError) {
        process.stderr.write(`[chserver] ${e.message}\n${USAGE}\n`);
        process.exit(2);
    }
    process.stderr.write(
        `[chserver] failed to start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
});
