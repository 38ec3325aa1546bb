/**
 * ClickHouse's HTTP interface in front of a chdb engine (runtime/chserver-engine.ts): enough of it
 * for the stock `@clickhouse/client` to work unchanged. The one front end of the project: the
 * runtime's server process (runtime/chserver-main.ts), the tests' in-process front of their
 * embedded engine (test/harness/clickhouse.ts) and the benchmark's counting front
 * (bench/cases/plan-cost.ts) all serve through `createHandler`.
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
 *   chunks (`insertChunkBytes`) at row boundaries and inserted while the rest of the body is
 *   still arriving. Each chunk is its own insert: one that fails part-way keeps the chunks before
 *   the failure, as a real server keeps the blocks it has written (bodies under the chunk size are
 *   all-or-nothing). Other formats are inserted whole.
 * Not implemented: sessions (session_id is refused), streaming of results (a result is buffered
 * whole before it is sent, so an error never arrives mid-stream), progress headers, ClickHouse's
 * own `compress`/`decompress` block format, query cancellation.
 */
import * as crypto from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import type { Readable } from "node:stream";
import * as zlib from "node:zlib";
import { ChdbEngine, ENGINE_DEFAULTS, EngineFacts, Outcome } from "./chserver-engine";
import { ChError, httpStatusOf, notImplemented, toChError } from "./chserver-errors";
import { insertDataFormat, isBinaryFormat, redact } from "./chserver-sql";

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

const TSV_TYPE = "text/tab-separated-values; charset=UTF-8";
const CONTENT_TYPES: Record<string, string> = {
    tabseparated: TSV_TYPE,
    tsv: TSV_TYPE,
    tabseparatedwithnames: TSV_TYPE,
    tsvwithnames: TSV_TYPE,
    tabseparatedwithnamesandtypes: TSV_TYPE,
    tsvwithnamesandtypes: TSV_TYPE,
    csv: "text/csv; charset=UTF-8; header=absent",
    csvwithnames: "text/csv; charset=UTF-8; header=present",
    csvwithnamesandtypes: "text/csv; charset=UTF-8; header=present",
};

function contentTypeOf(format: string | undefined): string {
    if (!format) return "text/plain; charset=UTF-8";
    const f = format.toLowerCase();
    if (CONTENT_TYPES[f]) return CONTENT_TYPES[f]!;
    if (f.startsWith("json")) return "application/json; charset=UTF-8";
    if (isBinaryFormat(f)) return "application/octet-stream";
    return "text/plain; charset=UTF-8";
}

function sha256(s: string): Buffer {
    return crypto.createHash("sha256").update(s, "utf8").digest();
}

export interface FrontOptions {
    /** The one user the front end accepts. */
    readonly username: string;
    /** Its password; undefined or "" for none. */
    readonly password: string | undefined;
    /** One line per request through `log` (query truncated, secrets masked). */
    readonly debug: boolean;
    readonly log: (msg: string) => void;
}

export interface Front {
    /** Answers one request (never rejects for a ClickHouse error: that is the response). */
    handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
    /** From now on every request is answered with an error (a shutdown has begun). */
    refuseRequests(): void;
}

/** The credentials of a request: Basic, X-ClickHouse-User/Key, or user/password URL parameters. */
function credentialsOf(
    req: http.IncomingMessage,
    url: URL,
): ChError | { user: string; password: string } {
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
        return {
            user: colon < 0 ? decoded : decoded.slice(0, colon),
            password: colon < 0 ? "" : decoded.slice(colon + 1),
        };
    }
    if (
        req.headers["x-clickhouse-user"] !== undefined ||
        req.headers["x-clickhouse-key"] !== undefined
    ) {
        return {
            user: String(req.headers["x-clickhouse-user"] ?? "default"),
            password: String(req.headers["x-clickhouse-key"] ?? ""),
        };
    }
    return {
        user: url.searchParams.get("user") ?? "default",
        password: url.searchParams.get("password") ?? "",
    };
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
        typeof (zlib as unknown as Record<string, unknown>)["createZstdDecompress"] === "function"
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

/** A query request's URL, read: parameters, settings, database, default format. */
interface QueryRequest {
    readonly params: Record<string, string>;
    readonly settings: Array<[string, string]>;
    readonly database: string | undefined;
    readonly defaultFormat: string;
    readonly urlQuery: string | null;
}

function parseQueryUrl(url: URL, isGet: boolean): QueryRequest {
    if (url.searchParams.has("session_id")) throw notImplemented("session_id (HTTP sessions)");
    if (url.searchParams.get("compress") === "1" || url.searchParams.get("decompress") === "1")
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
    if (isGet && !settings.some(([k]) => k === "readonly")) settings.push(["readonly", "2"]);
    return {
        params,
        settings,
        database: url.searchParams.get("database") ?? undefined,
        defaultFormat: url.searchParams.get("default_format") || "TabSeparated",
        urlQuery: url.searchParams.get("query"),
    };
}

/** The statement text of a request whose body is not streamed into an insert, and its params. */
async function statementText(
    q: QueryRequest,
    body: Readable | undefined,
    contentType: string,
): Promise<string> {
    let urlQuery = q.urlQuery;
    let bodyText = "";
    if (body) {
        const buf = await readAll(body);
        if (contentType.toLowerCase().startsWith("multipart/form-data")) {
            for (const [k, v] of parseMultipart(buf, contentType)) {
                if (k === "query") urlQuery = urlQuery === null ? v : `${urlQuery}\n${v}`;
                else if (k.startsWith("param_")) q.params[k.slice(6)] = v;
            }
        } else bodyText = buf.toString("utf8");
    }
    if (urlQuery === null) return bodyText;
    return bodyText.length > 0 ? `${urlQuery}\n${bodyText}` : urlQuery;
}

/** The response body, compressed when the request asked for it and the client accepts it. */
function compressed(
    req: http.IncomingMessage,
    settings: ReadonlyArray<[string, string]>,
    payload: Buffer,
): { payload: Buffer; encoding?: string } {
    const setting = (name: string) => settings.find(([k]) => k === name)?.[1];
    if (setting("enable_http_compression") !== "1" || payload.length === 0) return { payload };
    const accept = String(req.headers["accept-encoding"] ?? "").toLowerCase();
    const level = Number(setting("http_zlib_compression_level") ?? 3);
    if (/\bgzip\b/.test(accept))
        return { payload: zlib.gzipSync(payload, { level }), encoding: "gzip" };
    if (/\bdeflate\b/.test(accept))
        return { payload: zlib.deflateSync(payload, { level }), encoding: "deflate" };
    if (/\bbr\b/.test(accept)) return { payload: zlib.brotliCompressSync(payload), encoding: "br" };
    return { payload };
}

function outcomeHeaders(outcome: Outcome): Record<string, string> {
    const summary = { ...outcome.summary, total_rows_to_read: outcome.summary.read_rows };
    const headers: Record<string, string> = {
        "Content-Type": contentTypeOf(outcome.format),
        "X-ClickHouse-Summary": JSON.stringify(
            Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, String(v)])),
        ),
    };
    if (outcome.format) headers["X-ClickHouse-Format"] = outcome.format;
    return headers;
}

/**
 * Answers the paths that are no query: health checks ("Ok.") and unknown paths (404). The status
 * answered, or undefined for a query.
 */
function answerNonQuery(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    method: string,
): number | undefined {
    const isGet = method === "GET" || method === "HEAD";
    if (
        url.pathname === "/ping" ||
        url.pathname === "/replicas_status" ||
        (url.pathname === "/" && isGet && !url.searchParams.has("query"))
    ) {
        if (!isGet && url.pathname !== "/")
            throw new ChError(36, "BAD_ARGUMENTS", `${method} is not allowed for ${url.pathname}`);
        req.resume();
        res.writeHead(200, { "Content-Type": "text/html; charset=UTF-8", "Content-Length": "4" });
        res.end(method === "HEAD" ? undefined : "Ok.\n");
        return 200;
    }
    if (url.pathname === "/") return undefined;
    req.resume();
    const text = `There is no handle ${url.pathname}\n\nUse / or /ping for health checks.\n`;
    res.writeHead(404, {
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Length": String(Buffer.byteLength(text)),
    });
    res.end(text);
    return 404;
}

/** Waits until the client has sent its whole body: answering mid-upload breaks its pipe instead. */
async function drain(req: http.IncomingMessage, body: Readable | undefined): Promise<void> {
    if (req.readableEnded || req.destroyed) return;
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

/** One request's progress, for the error answer and the debug line. */
interface Exchange {
    readonly queryId: string;
    readonly baseHeaders: Record<string, string>;
    status: number;
    rows: number;
    logged: string;
    body?: Readable;
    settings?: ReadonlyArray<[string, string]>;
}

/** The one user the front end accepts. */
interface Who {
    readonly username: string;
    readonly passwordHash: Buffer;
}

function authenticate(req: http.IncomingMessage, url: URL, who: Who): void {
    const c = credentialsOf(req, url);
    if (c instanceof ChError) throw c;
    const userOk = c.user === who.username;
    const passwordOk = crypto.timingSafeEqual(sha256(c.password), who.passwordHash);
    if (userOk && passwordOk) return;
    throw new ChError(
        516,
        "AUTHENTICATION_FAILED",
        `${c.user}: Authentication failed: password is incorrect, or there is no user with such name`,
    );
}

/** Runs the request's statement: a streamed insert of the body, or a text held whole. */
async function execute(
    engine: ChdbEngine,
    who: Who,
    req: http.IncomingMessage,
    url: URL,
    x: Exchange,
): Promise<Outcome> {
    const method = req.method ?? "GET";
    const isGet = method === "GET" || method === "HEAD";
    if (!isGet && method !== "POST")
        throw new ChError(36, "BAD_ARGUMENTS", `HTTP method ${method} is not supported`);
    authenticate(req, url, who);
    const q = parseQueryUrl(url, isGet);
    x.settings = q.settings;
    const contentType = String(req.headers["content-type"] ?? "");
    x.body = isGet ? undefined : bodyStream(req);
    const dataFormat = q.urlQuery !== null ? insertDataFormat(q.urlQuery) : undefined;
    if (
        x.body &&
        q.urlQuery !== null &&
        dataFormat !== undefined &&
        Object.keys(q.params).length === 0 &&
        !contentType.toLowerCase().startsWith("multipart/form-data")
    ) {
        x.logged = q.urlQuery;
        return engine.runStreamedInsert(q.urlQuery, dataFormat, x.body, q.database, q.settings);
    }
    const text = await statementText(q, x.body, contentType);
    x.logged = text;
    return engine.runText(text, q.params, q.defaultFormat, q.database, q.settings);
}

function sendOutcome(req: http.IncomingMessage, res: http.ServerResponse, x: Exchange, o: Outcome) {
    x.rows = o.summary.written_rows || o.summary.read_rows;
    const { payload, encoding } = compressed(req, x.settings ?? [], o.body);
    const headers = { ...x.baseHeaders, ...outcomeHeaders(o) };
    if (encoding) headers["Content-Encoding"] = encoding;
    headers["Content-Length"] = String(payload.length);
    res.writeHead(200, headers);
    res.end(req.method === "HEAD" ? undefined : payload);
}

async function sendError(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    x: Exchange,
    e: unknown,
    version: string,
) {
    const err = toChError(e);
    x.status = httpStatusOf(err.type);
    await drain(req, x.body);
    if (res.headersSent || res.destroyed) return;
    const text = `Code: ${err.code}. DB::Exception: ${err.message}. (${err.type}) (version ${version})\n`;
    res.writeHead(x.status, {
        ...x.baseHeaders,
        "X-ClickHouse-Exception-Code": String(err.code),
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Length": String(Buffer.byteLength(text)),
    });
    res.end(text);
}

/** The request handler of the HTTP interface over `engine`. */
export function createHandler(engine: ChdbEngine, facts: EngineFacts, opts: FrontOptions): Front {
    const who: Who = { username: opts.username, passwordHash: sha256(opts.password ?? "") };
    let refusing = false;
    async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const started = process.hrtime.bigint();
        const url = new URL(req.url ?? "/", "http://127.0.0.1");
        const method = req.method ?? "GET";
        const queryId = url.searchParams.get("query_id") || crypto.randomUUID();
        const x: Exchange = {
            queryId,
            status: 200,
            rows: 0,
            logged: "",
            baseHeaders: {
                "X-ClickHouse-Server-Display-Name": facts.displayName,
                "X-ClickHouse-Query-Id": queryId,
                "X-ClickHouse-Timezone": facts.timezone,
            },
        };
        try {
            if (refusing) throw new ChError(1000, "POCO_EXCEPTION", "the server is shutting down");
            const answered = answerNonQuery(req, res, url, method);
            if (answered !== undefined) {
                x.status = answered;
                return;
            }
            sendOutcome(req, res, x, await execute(engine, who, req, url, x));
        } catch (e) {
            await sendError(req, res, x, e, facts.version);
        } finally {
            if (opts.debug && url.pathname !== "/ping") {
                const ms = Number(process.hrtime.bigint() - started) / 1e6;
                const q = redact(x.logged).replace(/\s+/g, " ").trim();
                opts.log(
                    `${queryId} ${method} ${x.status} ${ms.toFixed(1)}ms rows=${x.rows} ${q.length > 300 ? q.slice(0, 300) + "…" : q}`,
                );
            }
        }
    }

    return { handle, refuseRequests: () => (refusing = true) };
}

/** A certificate and its private key (PEM): the front end then speaks HTTPS, as `https_port`. */
export interface ServerTls {
    readonly cert: string | Buffer;
    readonly key: string | Buffer;
}

/**
 * An HTTP server (HTTPS with `tls`) on 127.0.0.1:`port` (0: any free port) answering with
 * `front`; `log` gets internal errors (a handler bug, not a ClickHouse error).
 */
export async function listen(
    front: Front,
    port: number,
    log: (msg: string) => void,
    tls?: ServerTls,
): Promise<{ server: http.Server; port: number }> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        front.handle(req, res).catch((e: unknown) => {
            log(`internal error: ${e instanceof Error ? e.stack : String(e)}`);
            if (!res.headersSent) res.writeHead(500);
            res.end();
        });
    };
    // https.Server is an http.Server (a tls.Server underneath) with the same request events.
    const server: http.Server = tls
        ? https.createServer({ cert: tls.cert, key: tls.key }, handler)
        : http.createServer(handler);
    server.keepAliveTimeout = 10_000;
    server.headersTimeout = 60_000;
    server.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => {
            server.removeListener("error", reject);
            resolve();
        });
    });
    return { server, port: (server.address() as { port: number }).port };
}

/** A front end served in this process (tests, the benchmark). */
export interface ServedEngine {
    /** `http://127.0.0.1:<port>`, or `https://` with `tls` */
    readonly url: string;
    readonly port: number;
    readonly server: http.Server;
    close(): Promise<void>;
}

/**
 * The HTTP interface, with the server's defaults, over the chdb data path that a `Session` of
 * this process keeps open, on a free loopback port (HTTPS with `tls`). `onRequest` sees every
 * request before it is handled (to record or count what went over the wire).
 */
export async function serveEngine(
    dataPath: string,
    user: { readonly username: string; readonly password: string },
    onRequest?: (req: http.IncomingMessage) => void,
    tls?: ServerTls,
): Promise<ServedEngine> {
    const engine = new ChdbEngine(dataPath, ENGINE_DEFAULTS);
    const log = (msg: string) => process.stderr.write(`[chserver-http] ${msg}\n`);
    const front = createHandler(engine, await engine.facts(), { ...user, debug: false, log });
    const { server, port } = await listen(
        {
            ...front,
            handle: (req, res) => {
                onRequest?.(req);
                return front.handle(req, res);
            },
        },
        0,
        log,
        tls,
    );
    return {
        url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
        port,
        server,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}
