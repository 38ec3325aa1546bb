/**
 * A ClickHouse HTTP server backed by chdb (ClickHouse in-process), run as its own process by
 * runtime/chserver.ts. It owns one chdb data directory for its whole life, so Kafka engine
 * consumers keep running in the background, and speaks enough of ClickHouse's HTTP interface for
 * the stock `@clickhouse/client` to work against it unchanged.
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
 *
 * What it implements of the HTTP interface:
 * - GET/HEAD /ping and /replicas_status, and GET / without a query: "Ok.\n" (no authentication).
 * - Queries from the `query` URL parameter and/or the POST body (the body is appended after a
 *   newline, as ClickHouse does); GET runs with readonly=2 unless the request sets readonly.
 * - `param_<name>` URL parameters (and multipart/form-data bodies carrying `query` and `param_*`
 *   parts), bound by the engine from the text the client sent.
 * - Every other URL parameter that is not an HTTP control parameter is a setting (SET before the
 *   query, on a connection of its own, so nothing leaks into the next request).
 * - `database`, `default_format`, `query_id` (echoed; chdb has no query ids of its own).
 * - Authentication: Basic, X-ClickHouse-User/X-ClickHouse-Key, or user/password URL parameters.
 * - Request bodies compressed with gzip, deflate or br (zstd when this Node has it); responses
 *   compressed when `enable_http_compression=1` and the client accepts gzip, deflate or br.
 * - Errors: `Code: N. DB::Exception: ... (TYPE) (version V)` with X-ClickHouse-Exception-Code, and
 *   ClickHouse's own HTTP status for the code (400, 403, 404, ..., else 500).
 * - X-ClickHouse-Query-Id, -Format, -Timezone, -Server-Display-Name and -Summary headers.
 * - Inserts whose data follows the URL query (what `client.insert` sends) are fed to chdb's raw
 *   insert; line-delimited formats (JSONEachRow, JSONCompactEachRow, TabSeparated) are cut into
 *   chunks (--insert-chunk-bytes, 64 MiB) at row boundaries and inserted while the rest of the
 *   body is still arriving. Each chunk is its own insert: one that fails part-way keeps the chunks
 *   before the failure, as a real server keeps the blocks it has written (bodies under the chunk
 *   size are all-or-nothing). Other formats are inserted whole.
 * Not implemented: sessions (session_id is refused), streaming of results (a result is buffered
 * whole before it is sent, so an error never arrives mid-stream), progress headers, ClickHouse's
 * own `compress`/`decompress` block format, query cancellation.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { Readable } from "node:stream";
import * as zlib from "node:zlib";

// ---------------------------------------------------------------------------------------------
// The engine: chdb's public Session keeps the data path open for the life of the process; every
// request runs on a fresh native connection to the same path (connections on one path share the
// engine and its data but each has its own settings and current database).

interface NativeQueryResult {
    readonly bytes: Uint8Array;
    readonly elapsed: number;
    readonly rowsRead: number;
    readonly bytesRead: number;
}
interface NativeInsertResult {
    readonly elapsed: number;
    readonly rowsWritten: number;
    readonly bytesWritten: number;
    readonly rowsSent?: number;
}
type NativeConnection = object;
/** The addon behind chdb's public API (chdb/dist/loader.js); used for what the API wraps away. */
interface ChdbNative {
    CreateConnection(path: string, args?: readonly string[]): NativeConnection;
    CloseConnection(conn: NativeConnection): void;
    QueryAsyncConnection(
        conn: NativeConnection,
        sql: string,
        format: string,
        params?: Record<string, string>,
    ): Promise<NativeQueryResult>;
    InsertRawAsyncConnection(
        conn: NativeConnection,
        prefix: string,
        data: Buffer,
        countLines: boolean,
    ): Promise<NativeInsertResult>;
}
interface ChdbSession {
    readonly connection: unknown;
    query(sql: string, format?: string): string;
    close(): void;
}
interface ChdbModule {
    Session: new (path: string, opts?: { connectionArgs?: readonly string[] }) => ChdbSession;
}

// ---------------------------------------------------------------------------------------------
// Options

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

function parseArgs(argv: readonly string[]): Options {
    const flags = new Map<string, string>();
    const switches = new Set<string>();
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i]!;
        if (!a.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
        if (a === "--parent-stdin" || a === "--allow-multi-statements") switches.add(a);
        else {
            const v = argv[++i];
            if (v === undefined) throw new Error(`${a} needs a value`);
            flags.set(a, v);
        }
    }
    const num = (k: string, d: number) => {
        const v = flags.get(k);
        if (v === undefined) return d;
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new Error(`${k} must be a non-negative integer`);
        return n;
    };
    const dataDir = flags.get("--data-dir");
    if (!dataDir) throw new Error("--data-dir is required");
    const password = process.env.KCS_CHSERVER_PASSWORD;
    // Nothing this process starts (the engine, librdkafka) needs to see it.
    delete process.env.KCS_CHSERVER_PASSWORD;
    return {
        dataDir: path.resolve(dataDir),
        port: num("--port", 0),
        username: flags.get("--user") ?? "default",
        password: password === undefined || password === "" ? undefined : password,
        insertChunkBytes: num("--insert-chunk-bytes", 64 << 20),
        maxConcurrent: Math.max(1, num("--max-concurrent", 12)),
        parentStdin: switches.has("--parent-stdin"),
        logFile: flags.get("--log-file"),
        allowMultiStatements: switches.has("--allow-multi-statements"),
        debug: process.env.KCS_CHSERVER_DEBUG === "1" || process.env.KCS_CHSERVER_DEBUG === "true",
    };
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A ClickHouse exception: code, type name and message, as the HTTP interface reports them. */
class ChError extends Error {
    constructor(
        readonly code: number,
        readonly type: string,
        message: string,
    ) {
        super(message);
    }
}

const CH_MESSAGE = /^Code: (\d+)\. DB::Exception: ([\s\S]*?)\s*$/;
const CH_TYPE_AT_END = /\(([A-Z][A-Z0-9_]{2,})\)\s*$/;

/** The ClickHouse code, type and message of whatever chdb threw (code 1000 when it has none). */
function toChError(e: unknown): ChError {
    if (e instanceof ChError) return e;
    const raw = e instanceof Error ? e.message : String(e);
    const m = CH_MESSAGE.exec(raw);
    if (m) {
        // chdb sometimes nests the server's own text: "Code: 108. DB::Exception: Code: 108. ..."
        let body = m[2]!;
        const inner = CH_MESSAGE.exec(body);
        if (inner && inner[1] === m[1]) body = inner[2]!;
        body = body.replace(/ \(version [^)]*\)\.?(?=\s*\([A-Z0-9_]+\)\s*$)/, "");
        const t = CH_TYPE_AT_END.exec(body);
        if (!t) return new ChError(Number(m[1]), "UNKNOWN_EXCEPTION", body);
        const type = t[1]!;
        let message = body.slice(0, t.index).replace(/\s+$/, "");
        // "... (TYPE) (version V). (TYPE)": the inner marker repeats the outer one
        if (message.endsWith(`(${type})`))
            message = message.slice(0, -type.length - 2).replace(/\s+$/, "");
        return new ChError(Number(m[1]), type, message.replace(/\.$/, ""));
    }
    return new ChError(1000, "POCO_EXCEPTION", raw);
}

/** ClickHouse's HTTP status for an exception (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp). */
function httpStatusOf(type: string): number {
    switch (type) {
        case "REQUIRED_PASSWORD":
            return 401;
        case "UNKNOWN_USER":
        case "WRONG_PASSWORD":
        case "AUTHENTICATION_FAILED":
        case "SET_NON_GRANTED_ROLE":
        case "ACCESS_DENIED":
            return 403;
        case "BAD_ARGUMENTS":
        case "CANNOT_COMPILE_REGEXP":
        case "CANNOT_PARSE_TEXT":
        case "CANNOT_PARSE_ESCAPE_SEQUENCE":
        case "CANNOT_PARSE_QUOTED_STRING":
        case "CANNOT_PARSE_DATE":
        case "CANNOT_PARSE_DATETIME":
        case "CANNOT_PARSE_NUMBER":
        case "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING":
        case "CANNOT_PARSE_IPV4":
        case "CANNOT_PARSE_IPV6":
        case "CANNOT_PARSE_INPUT_ASSERTION_FAILED":
        case "CANNOT_PARSE_UUID":
        case "DUPLICATE_COLUMN":
        case "ILLEGAL_COLUMN":
        case "UNKNOWN_ELEMENT_IN_AST":
        case "UNKNOWN_TYPE_OF_AST_NODE":
        case "THERE_IS_NO_COLUMN":
        case "TOO_DEEP_AST":
        case "TOO_BIG_AST":
        case "UNEXPECTED_AST_STRUCTURE":
        case "SYNTAX_ERROR":
        case "INCORRECT_DATA":
        case "TYPE_MISMATCH":
        case "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE":
            return 400;
        case "UNKNOWN_TABLE":
        case "UNKNOWN_FUNCTION":
        case "UNKNOWN_IDENTIFIER":
        case "UNKNOWN_TYPE":
        case "UNKNOWN_STORAGE":
        case "UNKNOWN_DATABASE":
        case "UNKNOWN_SETTING":
        case "UNKNOWN_DIRECTION_OF_SORTING":
        case "UNKNOWN_AGGREGATE_FUNCTION":
        case "UNKNOWN_FORMAT":
        case "UNKNOWN_DATABASE_ENGINE":
        case "UNKNOWN_TYPE_OF_QUERY":
        case "UNKNOWN_ROLE":
            return 404;
        case "QUERY_IS_TOO_LARGE":
            return 413;
        case "NOT_IMPLEMENTED":
            return 501;
        case "SOCKET_TIMEOUT":
        case "CANNOT_OPEN_FILE":
        case "CANNOT_SCHEDULE_TASK":
            return 503;
        case "HTTP_LENGTH_REQUIRED":
            return 411;
        case "TIMEOUT_EXCEEDED":
            return 408;
        case "UNSUPPORTED_MEDIA_TYPE":
            return 415;
        default:
            return 500;
    }
}

const notImplemented = (what: string) =>
    new ChError(
        48,
        "NOT_IMPLEMENTED",
        `${what} is not supported by this test server (runtime/chserver-main.ts)`,
    );

// ---------------------------------------------------------------------------------------------
// SQL text: just enough lexing to find statement boundaries, the first keyword and FORMAT clauses

/** Index just past whitespace and comments starting at `i`. */
function skipBlank(s: string, i: number): number {
    for (;;) {
        const c = s.charCodeAt(i);
        if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) i++;
        else if (c === 45 && s.charCodeAt(i + 1) === 45) {
            const nl = s.indexOf("\n", i);
            i = nl < 0 ? s.length : nl + 1;
        } else if (c === 35 && (s.charCodeAt(i + 1) === 32 || s.charCodeAt(i + 1) === 33)) {
            const nl = s.indexOf("\n", i);
            i = nl < 0 ? s.length : nl + 1;
        } else if (c === 47 && s.charCodeAt(i + 1) === 42) {
            const end = s.indexOf("*/", i + 2);
            i = end < 0 ? s.length : end + 2;
        } else return i;
    }
}

/** The first keyword of a statement, upper-cased: "" for an empty text, "?" when no word opens it. */
function firstKeyword(s: string): string {
    const i = skipBlank(s, 0);
    if (i >= s.length) return "";
    const m = /^[A-Za-z_]+/.exec(s.slice(i, i + 32));
    return m ? m[0].toUpperCase() : "?";
}

/** Index past a quoted token opened at `i` by `q` (backslash escapes, doubled quotes). */
function skipQuoted(s: string, i: number, q: number): number {
    for (let j = i + 1; j < s.length; j++) {
        const c = s.charCodeAt(j);
        if (c === 92) j++;
        else if (c === q) {
            if (s.charCodeAt(j + 1) === q) j++;
            else return j + 1;
        }
    }
    return s.length;
}

/** True when `s` holds a second statement after a top-level `;`. */
function hasSecondStatement(s: string): boolean {
    let i = 0;
    while (i < s.length) {
        i = skipBlank(s, i);
        if (i >= s.length) return false;
        const c = s.charCodeAt(i);
        if (c === 39 || c === 34 || c === 96) i = skipQuoted(s, i, c);
        else if (c === 36 && s.charCodeAt(i + 1) === 36) {
            const end = s.indexOf("$$", i + 2);
            i = end < 0 ? s.length : end + 2;
        } else if (c === 59) {
            let j = skipBlank(s, i + 1);
            while (s.charCodeAt(j) === 59) j = skipBlank(s, j + 1);
            return j < s.length;
        } else i++;
    }
    return false;
}

/** The format named by a trailing `FORMAT <name>` clause, if any. */
function trailingFormat(s: string): string | undefined {
    return /\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$/i.exec(s.slice(-200))?.[1];
}

/**
 * For an INSERT whose data follows its text (`... FORMAT X` or `... VALUES`), the data format;
 * undefined when the statement takes no data (INSERT ... SELECT) or is no INSERT.
 */
function insertDataFormat(s: string): string | undefined {
    if (firstKeyword(s) !== "INSERT") return undefined;
    const tail = s.slice(-200);
    const f = /\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*$/i.exec(tail);
    if (f) return f[1];
    return /\bVALUES\s*$/i.test(tail) ? "Values" : undefined;
}

/** Masks string literals that follow password-like settings or IDENTIFIED ... BY, for logs. */
function redact(sql: string): string {
    const lit = String.raw`'(?:[^'\\]|\\.|'')*'`;
    return sql
        .replace(
            new RegExp(
                String.raw`(\b\w*(?:password|passwd|secret|token|_key)\w*\s*=\s*)${lit}`,
                "gi",
            ),
            "$1'[HIDDEN]'",
        )
        .replace(new RegExp(String.raw`(\bIDENTIFIED\b[^']*?\bBY\s+)${lit}`, "gi"), "$1'[HIDDEN]'");
}

// ---------------------------------------------------------------------------------------------
// Chunked inserts: where a line-delimited body may be cut so both halves are valid inserts

type Boundary = (buf: Buffer, from: number) => number;

/**
 * Finds the last row boundary at or before `from` in `buf` for the format, as the index just past
 * the newline (so `buf[0, i)` is whole rows); -1 when there is none. JSON rows are cut only where
 * a newline sits between `}` and `{` (or `]` and `[`), which cannot happen inside a row even when
 * a client pretty-prints its objects over several lines.
 */
function boundaryFor(format: string): Boundary | undefined {
    const between =
        (close: number, open: number): Boundary =>
        (buf, from) => {
            let nl = buf.lastIndexOf(0x0a, from);
            while (nl > 0) {
                let p = nl - 1;
                if (buf[p] === 0x0d) p--;
                if (nl + 1 < buf.length && buf[p] === close && buf[nl + 1] === open) return nl + 1;
                nl = buf.lastIndexOf(0x0a, nl - 1);
            }
            return -1;
        };
    switch (format.toLowerCase()) {
        case "jsoneachrow":
        case "jsonstringseachrow":
        case "jsonlines":
        case "jsonl":
        case "ndjson":
            return between(0x7d, 0x7b);
        case "jsoncompacteachrow":
        case "jsoncompactstringseachrow":
            return between(0x5d, 0x5b);
        case "tabseparated":
        case "tsv": {
            return (buf, from) => {
                const nl = buf.lastIndexOf(0x0a, from);
                return nl < 0 || nl + 1 >= buf.length ? -1 : nl + 1;
            };
        }
        default:
            return undefined;
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/** At most `limit` holders at a time; the rest wait in arrival order. */
class Gate {
    private active = 0;
    private readonly waiting: Array<() => void> = [];
    constructor(private readonly limit: number) {}
    async run<T>(f: () => Promise<T>): Promise<T> {
        if (this.active < this.limit) this.active++;
        else await new Promise<void>((r) => this.waiting.push(r));
        try {
            return await f();
        } finally {
            const next = this.waiting.shift();
            if (next) next();
            else this.active--;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server

/** URL parameters of the HTTP interface that are not settings. */
const CONTROL_PARAMS = new Set([
    "query",
    "query_id",
    "database",
    "default_format",
    "user",
    "password",
    "quota_key",
    "session_id",
    "session_timeout",
    "session_check",
    "close_session",
    "stacktrace",
    "role",
    "buffer_size",
    "wait_end_of_query",
    "compress",
    "decompress",
    "client_protocol_version",
]);

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface Summary {
    read_rows: number;
    read_bytes: number;
    written_rows: number;
    written_bytes: number;
    result_rows: number;
    result_bytes: number;
    elapsed_ns: number;
}

interface Outcome {
    readonly body: Buffer;
    readonly format: string | undefined;
    readonly summary: Summary;
}

const CONTENT_TYPES: Record<string, string> = {
    tabseparated: "text/tab-separated-values; charset=UTF-8",
    tsv: "text/tab-separated-values; charset=UTF-8",
    tabseparatedwithnames: "text/tab-separated-values; charset=UTF-8",
    tsvwithnames: "text/tab-separated-values; charset=UTF-8",
    tabseparatedwithnamesandtypes: "text/tab-separated-values; charset=UTF-8",
    tsvwithnamesandtypes: "text/tab-separated-values; charset=UTF-8",
    csv: "text/csv; charset=UTF-8; header=absent",
    csvwithnames: "text/csv; charset=UTF-8; header=present",
    csvwithnamesandtypes: "text/csv; charset=UTF-8; header=present",
};

function contentTypeOf(format: string | undefined): string {
    if (!format) return "text/plain; charset=UTF-8";
    const f = format.toLowerCase();
    if (CONTENT_TYPES[f]) return CONTENT_TYPES[f]!;
    if (f.startsWith("json")) return "application/json; charset=UTF-8";
    if (
        f.startsWith("rowbinary") ||
        f === "native" ||
        f === "parquet" ||
        f === "arrow" ||
        f === "arrowstream" ||
        f === "orc" ||
        f === "avro" ||
        f === "msgpack"
    ) {
        return "application/octet-stream";
    }
    return "text/plain; charset=UTF-8";
}

function sha256(s: string): Buffer {
    return crypto.createHash("sha256").update(s, "utf8").digest();
}

async function main(): Promise<void> {
    const opts = parseArgs(process.argv.slice(2));
    const log = (msg: string) =>
        process.stderr.write(`[chserver ${new Date().toISOString()}] ${msg}\n`);

    fs.mkdirSync(opts.dataDir, { recursive: true });
    const chdbPath = path.join(opts.dataDir, "data");
    const configFile = path.join(opts.dataDir, "config.xml");
    const pidFile = path.join(opts.dataDir, "chserver.pid");
    const stateFile = path.join(opts.dataDir, "chserver.json");
    if (!fs.existsSync(configFile)) fs.writeFileSync(configFile, "<clickhouse></clickhouse>\n");
    fs.writeFileSync(pidFile, `${process.pid}\n`);

    const chdbDir = path.dirname(require.resolve("chdb"));
    const chdb = require("chdb") as ChdbModule;
    const native = (
        require(path.join(chdbDir, "dist", "loader.js")) as { loadNative(): ChdbNative }
    ).loadNative();
    // One explicit --config-file, so a config.xml in the working directory cannot change anything.
    const session = new chdb.Session(chdbPath, { connectionArgs: [`--config-file=${configFile}`] });
    const key = path.resolve(chdbPath);
    const [version = "", timezone = "UTC", displayName = "chdb"] = session
        .query("SELECT version(), timezone(), hostName()", "TSV")
        .trim()
        .split("\t");
    log(`chdb ${version} opened ${chdbPath}`);

    const gate = new Gate(opts.maxConcurrent);
    // Parameterized queries one at a time: chdb documents that binding state is not isolated per
    // connection in every libchdb build (two bound queries at once could clobber each other).
    const paramGate = new Gate(1);
    const inflight = new Set<Promise<unknown>>();
    const passwordHash = sha256(opts.password ?? "");
    let shuttingDown = false;

    /** Runs `f` on a fresh connection with the request's database and settings applied. */
    function onConnection<T>(
        database: string | undefined,
        settings: ReadonlyArray<[string, string]>,
        f: (conn: NativeConnection) => Promise<T>,
    ): Promise<T> {
        const p = gate.run(async () => {
            let conn: NativeConnection;
            try {
                conn = native.CreateConnection(key);
            } catch (e) {
                throw toChError(e);
            }
            try {
                const prelude: string[] = [];
                if (settings.length > 0) {
                    const parts = settings.map(
                        ([k, v]) => `${k} = '${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`,
                    );
                    prelude.push(`SET ${parts.join(", ")}`);
                }
                if (database !== undefined && database !== "")
                    prelude.push(`USE \`${database.replace(/\\/g, "\\\\").replace(/`/g, "\\`")}\``);
                for (const sql of prelude)
                    await native.QueryAsyncConnection(conn, sql, "TabSeparated");
                return await f(conn);
            } catch (e) {
                throw toChError(e);
            } finally {
                native.CloseConnection(conn);
            }
        });
        inflight.add(p);
        const done = () => inflight.delete(p);
        p.then(done, done);
        return p;
    }

    /** Runs a statement held whole in memory. */
    async function runText(
        text: string,
        params: Record<string, string>,
        defaultFormat: string,
        database: string | undefined,
        settings: ReadonlyArray<[string, string]>,
    ): Promise<Outcome> {
        const keyword = firstKeyword(text);
        if (keyword === "") throw new ChError(62, "SYNTAX_ERROR", "Empty query");
        if (keyword !== "INSERT" && !opts.allowMultiStatements && hasSecondStatement(text)) {
            throw new ChError(62, "SYNTAX_ERROR", "Multi-statements are not allowed");
        }
        const hasParams = Object.keys(params).length > 0;
        if (keyword === "INSERT" && !hasParams) {
            // The raw insert entry reports rows written (the query entry does not).
            const r = await onConnection(database, settings, (conn) =>
                native.InsertRawAsyncConnection(conn, text, Buffer.from("\n"), false),
            );
            return {
                body: Buffer.alloc(0),
                format: undefined,
                summary: writeSummary(r.rowsWritten, r.bytesWritten, r.elapsed),
            };
        }
        const run = (conn: NativeConnection) =>
            hasParams
                ? native.QueryAsyncConnection(conn, text, defaultFormat, params)
                : native.QueryAsyncConnection(conn, text, defaultFormat);
        const r = await (hasParams
            ? paramGate.run(() => onConnection(database, settings, run))
            : onConnection(database, settings, run));
        const body = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
        return {
            body,
            format:
                keyword === "SELECT" ||
                keyword === "WITH" ||
                keyword === "SHOW" ||
                keyword === "DESCRIBE" ||
                keyword === "DESC" ||
                keyword === "EXISTS" ||
                keyword === "EXPLAIN"
                    ? (trailingFormat(text) ?? defaultFormat)
                    : undefined,
            summary: {
                read_rows: r.rowsRead,
                read_bytes: r.bytesRead,
                written_rows: 0,
                written_bytes: 0,
                result_rows: 0,
                result_bytes: body.length,
                elapsed_ns: Math.round(r.elapsed * 1e9),
            },
        };
    }

    /**
     * An INSERT whose data is the request body: raw inserts of the body, cut at row boundaries into
     * chunks of about `insertChunkBytes` for line-delimited formats (the next chunk is read while
     * the previous one is inserted), or one insert of the whole body for any other format.
     */
    async function runStreamedInsert(
        prefix: string,
        format: string,
        body: Readable,
        database: string | undefined,
        settings: ReadonlyArray<[string, string]>,
    ): Promise<Outcome> {
        const boundary = boundaryFor(format);
        const lineDelimited = boundary !== undefined;
        return onConnection(database, settings, async (conn) => {
            let written = 0;
            let writtenBytes = 0;
            let elapsed = 0;
            let chunks = 0;
            let failure: unknown;
            let pending: Promise<void> | undefined;
            const insert = (data: Buffer): Promise<void> => {
                chunks++;
                const p = native
                    .InsertRawAsyncConnection(conn, prefix, data, lineDelimited)
                    .then((r) => {
                        written += r.rowsWritten;
                        writtenBytes += r.bytesWritten;
                        elapsed += r.elapsed;
                    });
                p.catch((e: unknown) => (failure ??= e));
                return p;
            };
            let acc: Buffer[] = [];
            let accBytes = 0;
            let nextCut = opts.insertChunkBytes;
            // Never leave this loop early: that would destroy the request and its socket, and the
            // error could not be answered. After a failure the rest of the body is read and dropped.
            for await (const piece of body) {
                if (failure !== undefined) continue;
                const b = piece as Buffer;
                acc.push(b);
                accBytes += b.length;
                if (boundary && opts.insertChunkBytes > 0 && accBytes >= nextCut) {
                    const whole = acc.length === 1 ? acc[0]! : Buffer.concat(acc, accBytes);
                    const cut = boundary(whole, whole.length - 1);
                    if (cut > 0) {
                        if (pending) await pending.catch(() => undefined);
                        if (failure !== undefined) {
                            acc = [];
                            accBytes = 0;
                            continue;
                        }
                        pending = insert(whole.subarray(0, cut));
                        const rest = whole.subarray(cut);
                        acc = rest.length > 0 ? [rest] : [];
                        accBytes = rest.length;
                        nextCut = opts.insertChunkBytes;
                    } else {
                        acc = [whole];
                        nextCut = accBytes + opts.insertChunkBytes;
                    }
                }
            }
            if (pending) await pending.catch(() => undefined);
            if (failure !== undefined) throw failure;
            const rest = acc.length === 1 ? acc[0]! : Buffer.concat(acc, accBytes);
            // No data at all still runs the statement (so a missing table is reported), with a
            // lone newline that the engine accepts as zero rows; whitespace after earlier chunks
            // is not worth an insert.
            if (chunks === 0 && rest.length === 0) await insert(Buffer.from("\n"));
            else if (
                rest.length > 0 &&
                (chunks === 0 || rest.length > 256 || /\S/.test(rest.toString("latin1")))
            )
                await insert(rest);
            if (failure !== undefined) throw failure;
            return {
                body: Buffer.alloc(0),
                format: undefined,
                summary: writeSummary(written, writtenBytes, elapsed),
            };
        });
    }

    function writeSummary(rows: number, bytes: number, elapsed: number): Summary {
        return {
            read_rows: rows,
            read_bytes: bytes,
            written_rows: rows,
            written_bytes: bytes,
            result_rows: rows,
            result_bytes: bytes,
            elapsed_ns: Math.round(elapsed * 1e9),
        };
    }

    function authenticate(req: http.IncomingMessage, url: URL): ChError | undefined {
        let user: string | undefined;
        let password: string | undefined;
        const auth = req.headers["authorization"];
        if (typeof auth === "string" && auth.length > 0) {
            const sp = auth.indexOf(" ");
            const scheme = (sp < 0 ? auth : auth.slice(0, sp)).toLowerCase();
            if (scheme !== "basic")
                return new ChError(
                    516,
                    "AUTHENTICATION_FAILED",
                    `Authentication scheme ${JSON.stringify(scheme)} is not supported by this server: use Basic or X-ClickHouse-User/X-ClickHouse-Key`,
                );
            const decoded = Buffer.from(auth.slice(sp + 1).trim(), "base64").toString("utf8");
            const colon = decoded.indexOf(":");
            user = colon < 0 ? decoded : decoded.slice(0, colon);
            password = colon < 0 ? "" : decoded.slice(colon + 1);
        } else if (
            req.headers["x-clickhouse-user"] !== undefined ||
            req.headers["x-clickhouse-key"] !== undefined
        ) {
            user = String(req.headers["x-clickhouse-user"] ?? "default");
            password = String(req.headers["x-clickhouse-key"] ?? "");
        } else {
            user = url.searchParams.get("user") ?? "default";
            password = url.searchParams.get("password") ?? "";
        }
        const userOk = user === opts.username;
        const passwordOk = crypto.timingSafeEqual(sha256(password), passwordHash);
        if (userOk && passwordOk) return undefined;
        return new ChError(
            516,
            "AUTHENTICATION_FAILED",
            `${user}: Authentication failed: password is incorrect, or there is no user with such name`,
        );
    }

    /** The request body, decompressed per Content-Encoding. */
    function bodyStream(req: http.IncomingMessage): Readable {
        const enc = String(req.headers["content-encoding"] ?? "")
            .trim()
            .toLowerCase();
        if (enc === "" || enc === "identity") return req;
        let d: NodeJS.ReadWriteStream;
        if (enc === "gzip" || enc === "x-gzip") d = zlib.createGunzip();
        else if (enc === "deflate") d = zlib.createInflate();
        else if (enc === "br") d = zlib.createBrotliDecompress();
        else if (
            enc === "zstd" &&
            typeof (zlib as unknown as Record<string, unknown>)["createZstdDecompress"] ===
                "function"
        ) {
            d = (
                zlib as unknown as { createZstdDecompress(): NodeJS.ReadWriteStream }
            ).createZstdDecompress();
        } else throw notImplemented(`Content-Encoding ${JSON.stringify(enc)}`);
        const out = req.pipe(d as unknown as NodeJS.WritableStream) as unknown as Readable;
        req.on("error", (e) => out.destroy(e));
        return out;
    }

    async function readAll(s: Readable): Promise<Buffer> {
        const parts: Buffer[] = [];
        for await (const p of s) parts.push(p as Buffer);
        return Buffer.concat(parts);
    }

    /** Parts of a multipart/form-data body, by name (query, param_*). */
    function parseMultipart(body: Buffer, contentType: string): Map<string, string> {
        const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
        if (!m) throw new ChError(36, "BAD_ARGUMENTS", "multipart/form-data without a boundary");
        const delim = `--${m[1] ?? m[2]}`;
        const parts = new Map<string, string>();
        const text = body.toString("utf8");
        for (const raw of text.split(delim).slice(1)) {
            if (raw.startsWith("--")) break;
            const sep = raw.indexOf("\r\n\r\n");
            if (sep < 0) continue;
            const headers = raw.slice(0, sep);
            const name = /name="([^"]*)"/i.exec(headers)?.[1];
            if (name === undefined) continue;
            let value = raw.slice(sep + 4);
            if (value.endsWith("\r\n")) value = value.slice(0, -2);
            parts.set(name, value);
        }
        return parts;
    }

    async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const started = process.hrtime.bigint();
        const url = new URL(req.url ?? "/", "http://127.0.0.1");
        const method = req.method ?? "GET";
        const queryId = url.searchParams.get("query_id") || crypto.randomUUID();
        let logged = "";
        let status = 200;
        let rows = 0;
        const baseHeaders: Record<string, string> = {
            "X-ClickHouse-Server-Display-Name": displayName,
            "X-ClickHouse-Query-Id": queryId,
            "X-ClickHouse-Timezone": timezone,
        };
        let body: Readable | undefined;
        const sendError = async (e: unknown) => {
            const err = toChError(e);
            status = httpStatusOf(err.type);
            // Let the client finish sending: answering mid-upload breaks its pipe instead.
            if (!req.readableEnded && !req.destroyed) {
                const ended = new Promise<void>((r) => {
                    req.once("end", r);
                    req.once("close", r);
                    req.once("error", () => r());
                });
                if (body && body !== req) {
                    body.on("error", () => req.resume());
                    body.resume();
                }
                req.resume();
                await ended;
            }
            if (res.headersSent || res.destroyed) return;
            const text = `Code: ${err.code}. DB::Exception: ${err.message}. (${err.type}) (version ${version})\n`;
            res.writeHead(status, {
                ...baseHeaders,
                "X-ClickHouse-Exception-Code": String(err.code),
                "Content-Type": "text/plain; charset=UTF-8",
                "Content-Length": String(Buffer.byteLength(text)),
            });
            res.end(text);
        };
        try {
            if (shuttingDown)
                throw new ChError(1000, "POCO_EXCEPTION", "the server is shutting down");
            const isGet = method === "GET" || method === "HEAD";
            if (
                url.pathname === "/ping" ||
                url.pathname === "/replicas_status" ||
                (url.pathname === "/" && isGet && !url.searchParams.has("query"))
            ) {
                if (!isGet && url.pathname !== "/")
                    throw new ChError(
                        36,
                        "BAD_ARGUMENTS",
                        `${method} is not allowed for ${url.pathname}`,
                    );
                req.resume();
                res.writeHead(200, {
                    "Content-Type": "text/html; charset=UTF-8",
                    "Content-Length": "4",
                });
                res.end(method === "HEAD" ? undefined : "Ok.\n");
                return;
            }
            if (url.pathname !== "/") {
                status = 404;
                req.resume();
                const text = `There is no handle ${url.pathname}\n\nUse / or /ping for health checks.\n`;
                res.writeHead(404, {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "Content-Length": String(Buffer.byteLength(text)),
                });
                res.end(text);
                return;
            }
            if (!isGet && method !== "POST")
                throw new ChError(36, "BAD_ARGUMENTS", `HTTP method ${method} is not supported`);
            const authError = authenticate(req, url);
            if (authError) throw authError;
            if (url.searchParams.has("session_id"))
                throw notImplemented("session_id (HTTP sessions)");
            if (
                url.searchParams.get("compress") === "1" ||
                url.searchParams.get("decompress") === "1"
            )
                throw notImplemented("ClickHouse's compress/decompress block format");

            const params: Record<string, string> = {};
            const settings: Array<[string, string]> = [];
            for (const [k, v] of url.searchParams) {
                if (k.startsWith("param_")) params[k.slice(6)] = v;
                else if (!CONTROL_PARAMS.has(k)) {
                    if (!SETTING_NAME.test(k))
                        throw new ChError(115, "UNKNOWN_SETTING", `Unknown setting '${k}'`);
                    settings.push([k, v]);
                }
            }
            if (isGet && !settings.some(([k]) => k === "readonly"))
                settings.push(["readonly", "2"]);
            const database = url.searchParams.get("database") ?? undefined;
            const defaultFormat = url.searchParams.get("default_format") || "TabSeparated";
            let urlQuery = url.searchParams.get("query");
            const setting = (name: string) => settings.find(([k]) => k === name)?.[1];

            let outcome: Outcome;
            const contentType = String(req.headers["content-type"] ?? "");
            body = isGet ? undefined : bodyStream(req);
            const dataFormat = urlQuery !== null ? insertDataFormat(urlQuery) : undefined;
            if (
                body &&
                urlQuery !== null &&
                dataFormat !== undefined &&
                Object.keys(params).length === 0 &&
                !contentType.toLowerCase().startsWith("multipart/form-data")
            ) {
                logged = urlQuery;
                outcome = await runStreamedInsert(urlQuery, dataFormat, body, database, settings);
            } else {
                let bodyText = "";
                if (body) {
                    const buf = await readAll(body);
                    if (contentType.toLowerCase().startsWith("multipart/form-data")) {
                        const parts = parseMultipart(buf, contentType);
                        for (const [k, v] of parts) {
                            if (k === "query")
                                urlQuery = urlQuery === null ? v : `${urlQuery}\n${v}`;
                            else if (k.startsWith("param_")) params[k.slice(6)] = v;
                        }
                    } else bodyText = buf.toString("utf8");
                }
                const text =
                    urlQuery !== null
                        ? bodyText.length > 0
                            ? `${urlQuery}\n${bodyText}`
                            : urlQuery
                        : bodyText;
                logged = text;
                outcome = await runText(text, params, defaultFormat, database, settings);
            }
            rows = outcome.summary.written_rows || outcome.summary.read_rows;

            const headers: Record<string, string> = {
                ...baseHeaders,
                "Content-Type": contentTypeOf(outcome.format),
                "X-ClickHouse-Summary": JSON.stringify(
                    Object.fromEntries(
                        Object.entries({
                            ...outcome.summary,
                            total_rows_to_read: outcome.summary.read_rows,
                        }).map(([k, v]) => [k, String(v)]),
                    ),
                ),
            };
            if (outcome.format) headers["X-ClickHouse-Format"] = outcome.format;
            let payload = outcome.body;
            if (setting("enable_http_compression") === "1" && payload.length > 0) {
                const accept = String(req.headers["accept-encoding"] ?? "").toLowerCase();
                const level = Number(setting("http_zlib_compression_level") ?? 3);
                if (/\bgzip\b/.test(accept)) {
                    payload = zlib.gzipSync(payload, { level });
                    headers["Content-Encoding"] = "gzip";
                } else if (/\bdeflate\b/.test(accept)) {
                    payload = zlib.deflateSync(payload, { level });
                    headers["Content-Encoding"] = "deflate";
                } else if (/\bbr\b/.test(accept)) {
                    payload = zlib.brotliCompressSync(payload);
                    headers["Content-Encoding"] = "br";
                }
            }
            headers["Content-Length"] = String(payload.length);
            res.writeHead(200, headers);
            res.end(method === "HEAD" ? undefined : payload);
        } catch (e) {
            await sendError(e);
        } finally {
            if (opts.debug && url.pathname !== "/ping") {
                const ms = Number(process.hrtime.bigint() - started) / 1e6;
                const q = redact(logged).replace(/\s+/g, " ").trim();
                log(
                    `${queryId} ${method} ${status} ${ms.toFixed(1)}ms rows=${rows} ${q.length > 300 ? q.slice(0, 300) + "…" : q}`,
                );
            }
        }
    }

    const server = http.createServer((req, res) => {
        handle(req, res).catch((e: unknown) => {
            log(`internal error: ${e instanceof Error ? e.stack : String(e)}`);
            if (!res.headersSent) res.writeHead(500);
            res.end();
        });
    });
    server.keepAliveTimeout = 10_000;
    server.headersTimeout = 60_000;
    server.requestTimeout = 0;

    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(opts.port, "127.0.0.1", () => {
            server.removeListener("error", reject);
            resolve();
        });
    });
    const port = (server.address() as { port: number }).port;
    const state = {
        pid: process.pid,
        port,
        url: `http://127.0.0.1:${port}`,
        username: opts.username,
        dataDir: opts.dataDir,
        chdbPath,
        configFile,
        logFile: opts.logFile,
        insertChunkBytes: opts.insertChunkBytes,
        allowMultiStatements: opts.allowMultiStatements,
        debug: opts.debug,
        version,
        startedAt: new Date().toISOString(),
    };
    fs.writeFileSync(`${stateFile}.tmp`, JSON.stringify(state, null, 2) + "\n");
    fs.renameSync(`${stateFile}.tmp`, stateFile);
    log(`serving ${state.url} (pid ${process.pid})`);

    async function shutdown(why: string): Promise<void> {
        if (shuttingDown) return;
        shuttingDown = true;
        log(`shutting down (${why})`);
        const hard = setTimeout(() => {
            log("shutdown took too long; exiting");
            process.exit(1);
        }, 20_000);
        server.close();
        server.closeIdleConnections();
        const deadline = Date.now() + 15_000;
        while (inflight.size > 0 && Date.now() < deadline)
            await Promise.race([
                Promise.allSettled([...inflight]),
                new Promise((r) => setTimeout(r, 500)),
            ]);
        server.closeAllConnections();
        try {
            session.close();
        } catch (e) {
            log(`closing chdb: ${String(e)}`);
        }
        for (const f of [stateFile, pidFile]) {
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
    for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const)
        process.on(sig, () => void shutdown(sig));
    if (opts.parentStdin) {
        // The parent holds the other end of stdin: end of file means it is gone.
        process.stdin.on("end", () => void shutdown("parent exited"));
        process.stdin.on("error", () => void shutdown("parent exited"));
        process.stdin.resume();
    }
}

main().catch((e: unknown) => {
    process.stderr.write(
        `[chserver] failed to start: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
});
