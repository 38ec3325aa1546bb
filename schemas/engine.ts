/**
 * The embedded ClickHouse engine (chdb, an optional dependency) as the loader's oracle: what a
 * default casts to, which settings and time zones exist. chdb's standalone `query` is synchronous,
 * so the loader stays synchronous. Queries are read-only SELECTs over no data (`null()` tables,
 * `system.*`); nothing here touches a server.
 *
 * chdb binds one engine per process. While this process has one open on a data directory (an
 * `embedded` connection, the provider's rehearsal engine, a test's engine), chdb refuses standalone
 * queries; the question then goes to that engine through a second, short-lived session on the same
 * directory (chdb allows several), with `readonly = 1`. The engine is unavailable when chdb is not
 * installed or `KCS_NO_LOCAL_ENGINE=1`; callers then fall back to what they can check without it.
 */

/** An engine answer: rows (JSONEachRow), or the engine's error message. */
export type EngineAnswer =
    | { readonly ok: true; readonly rows: ReadonlyArray<Record<string, unknown>> }
    | { readonly ok: false; readonly error: string };

type ChdbSession = { query(sql: string, format?: string): string; close(): void };
type Chdb = {
    query(sql: string, format?: string): string;
    Session: new (path: string, options?: { connectionArgs?: string[] }) => ChdbSession;
};

/**
 * The process's one chdb engine. chdb binds one data directory per process, and an engine that was
 * shut down (or replaced by one on another directory) can no longer create Kafka tables ("Shutdown
 * was called"). So every user in a process shares one: the first to ask decides the directory (an
 * `embedded` connection or a test harness names it; the loader and the rehearsal take a temporary
 * one), and it stays open until `releaseEngine`.
 */
export interface ProcessEngine {
    readonly path: string;
    readonly configFile: string;
    /** Opened by the loader or the rehearsal (a temporary directory), not by a connection. */
    readonly implicit: boolean;
}
let processEngine: (ProcessEngine & { readonly session: ChdbSession }) | undefined;

/** The process engine, if one is open. */
export function currentEngine(): ProcessEngine | undefined {
    return processEngine;
}

/**
 * Opens the process engine on `dataPath` (with a server config file), or returns the open one.
 * Without a path, any open engine serves, else one in a temporary directory. Throws when another
 * directory (or config) is open: chdb cannot switch within a process.
 */
export function claimEngine(dataPath?: string, configFile = ""): ProcessEngine {
    if (processEngine) {
        if (
            dataPath === undefined ||
            (processEngine.path === dataPath &&
                (!configFile || processEngine.configFile === configFile))
        )
            return processEngine;
        throw new Error(
            `chdb runs one engine per process: ${processEngine.path}${processEngine.configFile ? ` (config ${processEngine.configFile})` : ""} is open, ` +
                `${dataPath}${configFile ? ` (config ${configFile})` : ""} was asked for; use one embedded path per process`,
        );
    }
    const engine = load();
    if (!engine)
        throw new Error(
            "the embedded engine needs the optional dependency chdb (npm install chdb)",
        );
    /* eslint-disable @typescript-eslint/no-require-imports -- Node built-ins, loaded on first use */
    const fs = require("node:fs") as typeof import("node:fs");
    const os = require("node:os") as typeof import("node:os");
    const path = require("node:path") as typeof import("node:path");
    /* eslint-enable @typescript-eslint/no-require-imports */
    const dir =
        dataPath ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kcs-engine-")), "data");
    const session = new engine.Session(
        dir,
        configFile ? { connectionArgs: [`--config-file=${configFile}`] } : undefined,
    );
    processEngine = { path: dir, configFile, implicit: dataPath === undefined, session };
    return processEngine;
}

/**
 * Runs one statement of any kind on the process engine's own session (state such as `USE` and
 * `SET param_x` carries over to the next), or returns undefined without an engine. For callers
 * that build scratch objects of their own (the query check, components/jobs/check.ts); throws the
 * engine's error.
 */
export function runOnEngine(sql: string, format = "TabSeparated"): string | undefined {
    if (!load()) return undefined;
    claimEngine();
    return processEngine!.session.query(sql, format);
}

/** Closes the process engine (tests, before deleting its directory). */
export function releaseEngine(): void {
    const e = processEngine;
    processEngine = undefined;
    e?.session.close();
}

let chdb: Chdb | null | undefined;
const answers = new Map<string, EngineAnswer | undefined>();

function load(): Chdb | null {
    if (chdb !== undefined) return chdb;
    if (process.env["KCS_NO_LOCAL_ENGINE"] === "1") return (chdb = null);
    try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional, loaded on first use
        chdb = require("chdb") as Chdb;
    } catch {
        chdb = null;
    }
    return chdb;
}

/**
 * Runs one read-only query (a SELECT without SETTINGS; `settings` are added to its SETTINGS
 * clause) on the embedded engine. Returns undefined when the engine is not available (see above).
 * Answers are cached per query text: stream files repeat few queries.
 */
export function askEngine(select: string, settings = ""): EngineAnswer | undefined {
    const sql = `${select} SETTINGS ${settings ? `${settings}, ` : ""}readonly = 1, max_execution_time = 10`;
    if (answers.has(sql)) return answers.get(sql);
    const engine = load();
    if (!engine) return undefined;
    let answer: EngineAnswer | undefined;
    try {
        const text = run(engine, sql);
        answer = {
            ok: true,
            rows: text
                .split("\n")
                .filter((l) => l.trim() !== "")
                .map((l) => JSON.parse(l) as Record<string, unknown>),
        };
    } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        // chdb's own refusals are not answers about the query.
        if (!/Code: \d+/.test(message)) return undefined;
        answer = { ok: false, error: engineMessage(message) };
    }
    answers.set(sql, answer);
    return answer;
}

function run(engine: Chdb, sql: string): string {
    try {
        claimEngine();
    } catch {
        return engine.query(sql, "JSONEachRow"); // surfaces chdb's own refusal
    }
    return processEngine!.session.query(sql, "JSONEachRow");
}

/** The engine's message without the code prefix, the query echo and the version suffix. */
export function engineMessage(raw: string): string {
    return raw
        .split("\n")[0]!
        .replace(/^.*?(Code: \d+\. DB::Exception: )+/, "")
        .replace(/: In scope .*$/, "")
        .replace(/ \(version [^)]*\)/, "")
        .replace(/(\s*\([A-Z_]+\)\.?)+\s*$/, "")
        .replace(/\.\s*$/, "")
        .slice(0, 300);
}

/** The set of names a one-column query returns, or undefined without the engine. */
export function engineNames(sql: string, column: string): ReadonlySet<string> | undefined {
    const answer = askEngine(sql);
    if (!answer?.ok) return undefined;
    return new Set(answer.rows.map((r) => String(r[column])));
}
