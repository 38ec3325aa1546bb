/**
 * The engine behind the ClickHouse HTTP front end (runtime/chserver-http.ts): chdb's native addon,
 * one fresh native connection per request on a data path some chdb `Session` keeps open
 * (connections on one path share the engine and its data but each has its own settings and
 * current database).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ChError, toChError } from "./chserver-errors";
import {
    boundaryFor,
    firstKeyword,
    hasSecondStatement,
    isBinaryFormat,
    trailingFormat,
} from "./chserver-sql";

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

function loadNative(): ChdbNative {
    // chdb's loader is no public entry (no types, not in its exports map): resolve it by path.
    /* eslint-disable @typescript-eslint/no-require-imports -- see above */
    const chdbDir = path.dirname(require.resolve("chdb"));
    const loader = require(path.join(chdbDir, "dist", "loader.js")) as {
        loadNative(): ChdbNative;
    };
    /* eslint-enable @typescript-eslint/no-require-imports */
    return loader.loadNative();
}

export interface Summary {
    read_rows: number;
    read_bytes: number;
    written_rows: number;
    written_bytes: number;
    result_rows: number;
    result_bytes: number;
    elapsed_ns: number;
}

/** What a statement returned: the body in its format (undefined: no result set), and figures. */
export interface Outcome {
    readonly body: Buffer;
    readonly format: string | undefined;
    readonly summary: Summary;
}

export type Settings = ReadonlyArray<[string, string]>;

export interface EngineOptions {
    /** Line-delimited insert bodies are inserted in chunks of about this size (0: whole). */
    readonly insertChunkBytes: number;
    /** Requests running on the engine at once; the rest wait. */
    readonly maxConcurrent: number;
    /** Refuse texts holding a second statement after a top-level `;` unless true. */
    readonly allowMultiStatements: boolean;
}

/** The server's defaults: 64 MiB insert chunks, 12 requests at once, one statement a request. */
export const ENGINE_DEFAULTS: EngineOptions = {
    insertChunkBytes: 64 << 20,
    maxConcurrent: 12,
    allowMultiStatements: false,
};

/** What the server reports about itself in its headers and error texts. */
export interface EngineFacts {
    readonly version: string;
    readonly timezone: string;
    readonly displayName: string;
}

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

const RESULT_KEYWORDS = new Set([
    "SELECT",
    "WITH",
    "SHOW",
    "DESCRIBE",
    "DESC",
    "EXISTS",
    "EXPLAIN",
]);

const quoteValue = (v: string) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

/** Statements run on a chdb data path that a `Session` of this process keeps open. */
export class ChdbEngine {
    /** Requests running or waiting (a shutdown waits for them). */
    readonly inflight = new Set<Promise<unknown>>();
    private readonly native = loadNative();
    private readonly gate: Gate;
    // Parameterized queries one at a time: chdb documents that binding state is not isolated per
    // connection in every libchdb build (two bound queries at once could clobber each other).
    private readonly paramGate = new Gate(1);
    private readonly key: string;

    constructor(
        dataPath: string,
        private readonly opts: EngineOptions,
    ) {
        this.key = path.resolve(dataPath);
        this.gate = new Gate(opts.maxConcurrent);
    }

    /** Version, time zone and host name, as the server reports them. */
    async facts(): Promise<EngineFacts> {
        const r = await this.onConnection(undefined, [], (conn) =>
            this.native.QueryAsyncConnection(
                conn,
                "SELECT version(), timezone(), hostName()",
                "TSV",
            ),
        );
        const [version = "", timezone = "UTC", displayName = "chdb"] = Buffer.from(r.bytes)
            .toString("utf8")
            .trim()
            .split("\t");
        return { version, timezone, displayName };
    }

    /** Runs `f` on a fresh connection with the request's database and settings applied. */
    onConnection<T>(
        database: string | undefined,
        settings: Settings,
        f: (conn: NativeConnection) => Promise<T>,
    ): Promise<T> {
        const p = this.gate.run(async () => {
            let conn: NativeConnection;
            try {
                conn = this.native.CreateConnection(this.key);
            } catch (e) {
                throw toChError(e);
            }
            try {
                const prelude: string[] = [];
                if (settings.length > 0)
                    prelude.push(
                        `SET ${settings.map(([k, v]) => `${k} = ${quoteValue(v)}`).join(", ")}`,
                    );
                if (database !== undefined && database !== "")
                    prelude.push(`USE \`${database.replace(/\\/g, "\\\\").replace(/`/g, "\\`")}\``);
                for (const sql of prelude)
                    await this.native.QueryAsyncConnection(conn, sql, "TabSeparated");
                return await f(conn);
            } catch (e) {
                throw toChError(e);
            } finally {
                this.native.CloseConnection(conn);
            }
        });
        this.inflight.add(p);
        const done = () => this.inflight.delete(p);
        p.then(done, done);
        return p;
    }

    /** Runs a statement held whole in memory. */
    async runText(
        text: string,
        params: Record<string, string>,
        defaultFormat: string,
        database: string | undefined,
        settings: Settings,
    ): Promise<Outcome> {
        const keyword = firstKeyword(text);
        if (keyword === "") throw new ChError(62, "SYNTAX_ERROR", "Empty query");
        if (keyword !== "INSERT" && !this.opts.allowMultiStatements && hasSecondStatement(text)) {
            throw new ChError(62, "SYNTAX_ERROR", "Multi-statements are not allowed");
        }
        const hasParams = Object.keys(params).length > 0;
        if (keyword === "INSERT" && !hasParams) {
            // The raw insert entry reports rows written (the query entry does not).
            const r = await this.onConnection(database, settings, (conn) =>
                this.native.InsertRawAsyncConnection(conn, text, Buffer.from("\n"), false),
            );
            const summary = writeSummary(r.rowsWritten, r.bytesWritten, r.elapsed);
            return { body: Buffer.alloc(0), format: undefined, summary };
        }
        const run = (conn: NativeConnection) =>
            hasParams
                ? this.native.QueryAsyncConnection(conn, text, defaultFormat, params)
                : this.native.QueryAsyncConnection(conn, text, defaultFormat);
        const r = await (hasParams
            ? this.paramGate.run(() => this.onConnection(database, settings, run))
            : this.onConnection(database, settings, run));
        const body = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
        return {
            body,
            format: RESULT_KEYWORDS.has(keyword)
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
    async runStreamedInsert(
        prefix: string,
        format: string,
        body: Readable,
        database: string | undefined,
        settings: Settings,
    ): Promise<Outcome> {
        if (isBinaryFormat(format))
            return this.runSpooledInsert(prefix, format, body, database, settings);
        return this.onConnection(database, settings, async (conn) => {
            const insert = new ChunkedInsert(
                (data, countLines) =>
                    this.native.InsertRawAsyncConnection(conn, prefix, data, countLines),
                boundaryFor(format),
                this.opts.insertChunkBytes,
            );
            // Never leave this loop early: that would destroy the request and its socket, and the
            // error could not be answered. After a failure the rest of the body is read and dropped.
            for await (const piece of body) await insert.add(piece as Buffer);
            return { body: Buffer.alloc(0), format: undefined, summary: await insert.finish() };
        });
    }
    /**
     * A binary-format insert body (isBinaryFormat): the addon's raw insert loses such bodies
     * part-way (Parquet and Native bodies arrive cut short), so the body is written to a file and
     * inserted with `FROM INFILE`, which reads it as the server reads a body.
     */
    private async runSpooledInsert(
        prefix: string,
        format: string,
        body: Readable,
        database: string | undefined,
        settings: Settings,
    ): Promise<Outcome> {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-chserver-insert-"));
        try {
            const file = path.join(dir, "body");
            await pipeline(body, fs.createWriteStream(file));
            const head = prefix.replace(/\bFORMAT\s+[A-Za-z][A-Za-z0-9_]*\s*$/i, "");
            const sql = `${head} FROM INFILE '${file}' FORMAT ${format}`;
            return await this.onConnection(database, settings, async (conn) => {
                const r = await this.native.InsertRawAsyncConnection(
                    conn,
                    sql,
                    Buffer.from("\n"),
                    false,
                );
                return {
                    body: Buffer.alloc(0),
                    format: undefined,
                    summary: writeSummary(r.rowsWritten, r.bytesWritten, r.elapsed),
                };
            });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }
}

/** One streamed insert body fed to raw inserts, chunk by chunk at row boundaries. */
class ChunkedInsert {
    private written = 0;
    private writtenBytes = 0;
    private elapsed = 0;
    private chunks = 0;
    private failure: unknown;
    private pending: Promise<void> | undefined;
    private acc: Buffer[] = [];
    private accBytes = 0;
    private nextCut: number;

    constructor(
        private readonly rawInsert: (
            data: Buffer,
            countLines: boolean,
        ) => Promise<NativeInsertResult>,
        private readonly boundary: ReturnType<typeof boundaryFor>,
        private readonly chunkBytes: number,
    ) {
        this.nextCut = chunkBytes;
    }

    private insert(data: Buffer): Promise<void> {
        this.chunks++;
        const p = this.rawInsert(data, this.boundary !== undefined).then((r) => {
            this.written += r.rowsWritten;
            this.writtenBytes += r.bytesWritten;
            this.elapsed += r.elapsed;
        });
        p.catch((e: unknown) => (this.failure ??= e));
        return p;
    }

    /** Takes the next piece of the body; inserts whole rows once a chunk's worth has arrived. */
    async add(b: Buffer): Promise<void> {
        if (this.failure !== undefined) return;
        this.acc.push(b);
        this.accBytes += b.length;
        if (!this.boundary || this.chunkBytes <= 0 || this.accBytes < this.nextCut) return;
        const whole = this.acc.length === 1 ? this.acc[0]! : Buffer.concat(this.acc, this.accBytes);
        const cut = this.boundary(whole, whole.length - 1);
        if (cut <= 0) {
            this.acc = [whole];
            this.nextCut = this.accBytes + this.chunkBytes;
            return;
        }
        if (this.pending) await this.pending.catch(() => undefined);
        if (this.failure !== undefined) {
            this.acc = [];
            this.accBytes = 0;
            return;
        }
        this.pending = this.insert(whole.subarray(0, cut));
        const rest = whole.subarray(cut);
        this.acc = rest.length > 0 ? [rest] : [];
        this.accBytes = rest.length;
        this.nextCut = this.chunkBytes;
    }

    /** Inserts what is left and returns the figures, or throws the first failure. */
    async finish(): Promise<Summary> {
        if (this.pending) await this.pending.catch(() => undefined);
        if (this.failure !== undefined) throw this.failure;
        const rest = this.acc.length === 1 ? this.acc[0]! : Buffer.concat(this.acc, this.accBytes);
        // No data at all still runs the statement (so a missing table is reported), with a
        // lone newline that the engine accepts as zero rows; whitespace after earlier chunks
        // is not worth an insert.
        if (this.chunks === 0 && rest.length === 0) await this.insert(Buffer.from("\n"));
        else if (
            rest.length > 0 &&
            (this.chunks === 0 || rest.length > 256 || /\S/.test(rest.toString("latin1")))
        )
            await this.insert(rest);
        if (this.failure !== undefined) throw this.failure;
        return writeSummary(this.written, this.writtenBytes, this.elapsed);
    }
}
