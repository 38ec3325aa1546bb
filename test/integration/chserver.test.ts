/**
 * The ClickHouse HTTP server of runtime/chserver.ts (chdb in a child process) driven by the
 * stock `@clickhouse/client` over HTTP: DDL, inserts, bound parameters, formats, errors with their
 * ClickHouse codes, authentication, per-request settings, restart on the same data, detached mode.
 *
 * KCS_CHSERVER_BENCH=1 adds a measurement: one 1,000,000-row JSONEachRow insert (~210 B rows)
 * through the server vs. the same bytes inserted in-process through chdb.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import {
    ClickHouseClient,
    ClickHouseError,
    ClickHouseLogLevel,
    createClient,
} from "@clickhouse/client";
import {
    ClickHouseServer,
    connectExisting,
    startClickHouseServer,
    stopDetached,
} from "../../runtime/chserver";
import { canConnect, isAlive, sleep } from "../../runtime/process";
import { queryRows } from "../harness/clickhouse";

const USER = "kcs_writer";
const PASSWORD = "Ch-p4ss!word'\"\\-secret%&+=";
const SASL_SECRET = "sasl-Pa55-never-logged";

let ch: ClickHouseServer;
let client: ClickHouseClient;

before(async () => {
    // Small insert chunks, so a 10,000-row insert is cut at row boundaries many times.
    ch = await startClickHouseServer({
        username: USER,
        password: PASSWORD,
        debug: true,
        insertChunkBytes: 64 * 1024,
    });
    // Failures are asserted here; the client need not also log each one.
    client = ch.client({ log: { level: ClickHouseLogLevel.OFF } });
});
after(async () => {
    await ch?.stop();
});

/** Rows of a query as objects. */
function rows<T = Record<string, unknown>>(
    query: string,
    params: Record<string, unknown> = {},
    c = client,
): Promise<T[]> {
    return queryRows<T>(c, query, params);
}

/** The ClickHouseError a promise rejects with. */
async function chError(p: Promise<unknown>): Promise<ClickHouseError> {
    try {
        await p;
    } catch (e) {
        assert.ok(e instanceof ClickHouseError, `expected a ClickHouseError, got ${String(e)}`);
        return e;
    }
    assert.fail("expected the request to fail");
}

async function text(stream: Readable): Promise<string> {
    const parts: Buffer[] = [];
    for await (const p of stream) parts.push(Buffer.from(p as Buffer));
    return Buffer.concat(parts).toString("utf8");
}

/** A raw HTTP request with this server's credentials. */
function raw(pathAndQuery: string, init: RequestInit = {}, auth = true): Promise<Response> {
    const headers = new Headers(init.headers);
    if (auth)
        headers.set(
            "Authorization",
            `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`,
        );
    return fetch(`${ch.url}${pathAndQuery}`, { ...init, headers });
}

const row = (i: number) => ({
    id: i,
    name: `user-${i}`,
    score: i * 1.5,
    tags: [`t${i % 7}`, `u${i % 3}`],
});

describe("ClickHouse HTTP server (chdb)", () => {
    it("answers /ping, and ping() of the client", async () => {
        const res = await fetch(`${ch.url}/ping`);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), "Ok.\n");
        assert.deepEqual(await client.ping(), { success: true });
        const state = JSON.parse(
            fs.readFileSync(path.join(ch.dataDir, "chserver.json"), "utf8"),
        ) as { pid: number; port: number };
        assert.equal(state.pid, ch.pid);
        assert.equal(state.port, ch.port);
        assert.equal(fs.readFileSync(ch.pidFile, "utf8").trim(), String(ch.pid));
    });

    it("runs DDL through command() and reports it in system tables", async () => {
        await client.command({ query: "CREATE DATABASE IF NOT EXISTS app" });
        await client.command({
            query: "CREATE TABLE app.users (id UInt64, name String, score Float64, tags Array(String)) ENGINE = MergeTree ORDER BY id",
        });
        const t = await rows<{ engine: string; sorting_key: string }>(
            "SELECT engine, sorting_key FROM system.tables WHERE database = 'app' AND name = 'users'",
        );
        assert.deepEqual(t, [{ engine: "MergeTree", sorting_key: "id" }]);
    });

    it("inserts 10,000 JSONEachRow rows, cut into chunks, and every row lands once", async () => {
        const values = Array.from({ length: 10_000 }, (_, i) => row(i + 1));
        const r = await client.insert({ table: "app.users", values, format: "JSONEachRow" });
        assert.equal(r.summary?.written_rows, "10000");
        const [agg] = await rows<{ n: number; u: number; s: number; total: number; tags: string }>(
            "SELECT count() AS n, uniqExact(id) AS u, sum(id) AS s, sum(score) AS total, arrayStringConcat(groupUniqArrayArray(tags), ',') AS tags FROM app.users",
        );
        assert.equal(agg!.n, 10_000);
        assert.equal(agg!.u, 10_000);
        assert.equal(agg!.s, (10_000 * 10_001) / 2);
        assert.equal(agg!.total, (1.5 * 10_000 * 10_001) / 2);
        assert.deepEqual(agg!.tags.split(",").sort(), [
            "t0",
            "t1",
            "t2",
            "t3",
            "t4",
            "t5",
            "t6",
            "u0",
            "u1",
            "u2",
        ]);
        const one = await rows("SELECT * FROM app.users WHERE id = 4242");
        assert.deepEqual(one, [{ id: 4242, name: "user-4242", score: 6363, tags: ["t0", "u0"] }]);
    });

    it("inserts an object stream and a raw body whose JSON rows span several lines", async () => {
        await client.command({
            query: "CREATE TABLE app.events (id UInt32, body String) ENGINE = MergeTree ORDER BY id",
        });
        const stream = Readable.from(
            (function* () {
                for (let i = 0; i < 3000; i++) yield { id: i, body: `line ${i}\nwith } { braces` };
            })(),
        );
        await client.insert({ table: "app.events", values: stream, format: "JSONEachRow" });
        // Pretty-printed objects: a cut at any newline but the ones between rows would break a row.
        const pretty =
            Array.from({ length: 3000 }, (_, i) =>
                JSON.stringify({ id: 10_000 + i, body: "x".repeat(i % 50) }, null, 2),
            ).join("\n") + "\n";
        const r = await client.exec({
            query: "INSERT INTO app.events FORMAT JSONEachRow",
            values: Readable.from([Buffer.from(pretty)], { objectMode: false }),
        });
        r.stream.resume();
        assert.equal(r.summary?.written_rows, "3000");
        const [agg] = await rows<{ n: number; s: number; ok: number }>(
            "SELECT count() AS n, sum(id) AS s, countIf(id < 3000 AND body = concat('line ', toString(id), '\\nwith } { braces')) AS ok FROM app.events",
        );
        assert.equal(agg!.n, 6000);
        assert.equal(agg!.s, (2999 * 3000) / 2 + 3000 * 10_000 + (2999 * 3000) / 2);
        assert.equal(agg!.ok, 3000);
    });

    it("binds query parameters server-side; a hostile string round-trips byte for byte", async () => {
        const hostile =
            "it's \"quoted\" \\ back\\\\slash \\' \\N \n\t\r end; DROP TABLE app.users; -- {x:String} $$ % & + = ?a=b#frag ü 🚀 \b";
        const [r] = await rows<{
            s: string;
            len: number;
            n: number | null;
            a: string[];
            big: string;
            hit: number;
        }>(
            "SELECT {s:String} AS s, length({s:String}) AS len, {n:Nullable(Int64)} AS n, {a:Array(String)} AS a, toString({big:UInt64}) AS big, " +
                "(SELECT count() FROM app.users WHERE id = {id:UInt64} AND name = {name:String}) AS hit",
            {
                s: hostile,
                n: null,
                a: ["a'b", "c\\d", 'e"f'],
                big: "18446744073709551615",
                id: 7,
                name: "user-7",
            },
        );
        assert.equal(r!.s, hostile);
        assert.equal(r!.len, Buffer.byteLength(hostile));
        assert.equal(r!.n, null);
        assert.deepEqual(r!.a, ["a'b", "c\\d", 'e"f']);
        assert.equal(r!.big, "18446744073709551615");
        assert.equal(r!.hit, 1);
        // The same through a multipart/form-data body, as the client sends long parameters.
        const long = hostile.repeat(300);
        const m = await client.query({
            query: "SELECT {s:String} AS s",
            query_params: { s: long },
            format: "JSONEachRow",
            use_multipart_params: true,
        });
        assert.deepEqual(await m.json(), [{ s: long }]);
        // The table the hostile text names is still there.
        assert.deepEqual(await rows("SELECT count() AS n FROM app.users"), [{ n: 10_000 }]);
    });

    it("reports errors with the ClickHouse code, type and message", async () => {
        const unknown = await chError(
            client.query({ query: "SELECT * FROM app.nope", format: "JSONEachRow" }),
        );
        assert.equal(unknown.code, "60");
        assert.equal(unknown.type, "UNKNOWN_TABLE");
        assert.match(unknown.message, /nope/);
        const syntax = await chError(
            client.command({ query: "CREATE TABEL x (a UInt8) ENGINE = Memory" }),
        );
        assert.equal(syntax.code, "62");
        assert.equal(syntax.type, "SYNTAX_ERROR");
        const thrown = await chError(
            client.query({
                query: "SELECT throwIf(number = 3, 'boom at three') FROM numbers(5)",
                format: "JSONEachRow",
            }),
        );
        assert.equal(thrown.code, "395");
        assert.match(thrown.message, /boom at three/);
        const badParam = await chError(
            client.query({
                query: "SELECT {v:UInt8} AS v",
                query_params: { v: "not a number" },
                format: "JSONEachRow",
            }),
        );
        assert.equal(badParam.code, "457");
        assert.equal(badParam.type, "BAD_QUERY_PARAMETER");
        // A bad row: nothing of that insert lands.
        const bad = await chError(
            client.insert({
                table: "app.users",
                values: [row(20_001), { id: "x", name: 1 }],
                format: "JSONEachRow",
            }),
        );
        assert.match(bad.type ?? "", /^(CANNOT_PARSE_\w+|INCORRECT_DATA|TYPE_MISMATCH)$/);
        assert.deepEqual(await rows("SELECT count() AS n FROM app.users"), [{ n: 10_000 }]);
        // Real ClickHouse refuses several statements in one HTTP request; so does this server.
        const multi = await chError(
            client.command({
                query: "CREATE TABLE app.m1 (a UInt8) ENGINE = Memory; CREATE TABLE app.m2 (a UInt8) ENGINE = Memory",
            }),
        );
        assert.equal(multi.code, "62");
        assert.match(multi.message, /Multi-statements/);
        assert.deepEqual(
            await rows(
                "SELECT name FROM system.tables WHERE database = 'app' AND name IN ('m1', 'm2')",
            ),
            [],
        );
        // The HTTP status of the code is ClickHouse's own, and the body is its error text.
        const res = await raw("/?query=" + encodeURIComponent("SELECT * FROM app.nope"));
        assert.equal(res.status, 404);
        assert.equal(res.headers.get("x-clickhouse-exception-code"), "60");
        assert.match(
            await res.text(),
            /^Code: 60\. DB::Exception: .*\(UNKNOWN_TABLE\) \(version \d+\.[\d.]+\)\n$/s,
        );
    });

    it("rejects a wrong password or user with 516 AUTHENTICATION_FAILED", async () => {
        for (const [username, password] of [
            [USER, "wrong"],
            [USER, ""],
            ["default", PASSWORD],
        ] as const) {
            const other = createClient({
                url: ch.url,
                username,
                password,
                log: { level: ClickHouseLogLevel.OFF },
            });
            try {
                const e = await chError(other.query({ query: "SELECT 1", format: "JSONEachRow" }));
                assert.equal(e.code, "516");
                assert.equal(e.type, "AUTHENTICATION_FAILED");
                assert.match(e.message, new RegExp(`^${username}: Authentication failed`));
                assert.ok(!e.message.includes(PASSWORD));
            } finally {
                await other.close();
            }
        }
        const res = await raw("/?query=SELECT+1", {}, false);
        assert.equal(res.status, 403);
        assert.equal(res.headers.get("x-clickhouse-exception-code"), "516");
        // X-ClickHouse-User/Key headers and user/password URL parameters authenticate too.
        const viaHeaders = await raw(
            "/?query=SELECT+42",
            { headers: { "X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD } },
            false,
        );
        assert.equal(await viaHeaders.text(), "42\n");
        const viaParams = await raw(
            `/?query=SELECT+43&user=${USER}&password=${encodeURIComponent(PASSWORD)}`,
            {},
            false,
        );
        assert.equal(await viaParams.text(), "43\n");
    });

    it("applies settings and database per request, without leaking into the next one", async () => {
        const [a] = await rows<{ v: number }>(
            "SELECT getSetting('max_result_rows') AS v",
            {},
            client,
        );
        const withSetting = await client.query({
            query: "SELECT getSetting('max_result_rows') AS v",
            format: "JSONEachRow",
            clickhouse_settings: { max_result_rows: "12345" },
        });
        assert.deepEqual(await withSetting.json(), [{ v: 12345 }]);
        assert.deepEqual(await rows("SELECT getSetting('max_result_rows') AS v"), [a]);
        assert.notEqual(a!.v, 12345);
        const unknown = await chError(
            client.query({
                query: "SELECT 1",
                format: "JSONEachRow",
                clickhouse_settings: { no_such_setting_x: 1 } as never,
            }),
        );
        assert.equal(unknown.type, "UNKNOWN_SETTING");
        const inApp = ch.client({ database: "app" });
        assert.deepEqual(
            await rows("SELECT currentDatabase() AS d, count() AS n FROM users", {}, inApp),
            [{ d: "app", n: 10_000 }],
        );
        assert.deepEqual(await rows("SELECT currentDatabase() AS d"), [{ d: "default" }]);
        // GET is read-only, as on a real server.
        const get = await raw(
            "/?query=" + encodeURIComponent("INSERT INTO app.events VALUES (1, 'x')"),
        );
        assert.equal(get.headers.get("x-clickhouse-exception-code"), "164");
    });

    it("serves the client's formats, query ids, summaries and compression", async () => {
        const json = await client.query({
            query: "SELECT number AS n, toString(number) AS s FROM numbers(3)",
            format: "JSON",
            query_id: "my-query-id-1",
        });
        assert.equal(json.query_id, "my-query-id-1");
        assert.equal(json.response_headers["x-clickhouse-query-id"], "my-query-id-1");
        assert.equal(json.response_headers["x-clickhouse-format"], "JSON");
        const doc = await json.json<{ n: number; s: string }>();
        assert.deepEqual(doc.data, [
            { n: 0, s: "0" },
            { n: 1, s: "1" },
            { n: 2, s: "2" },
        ]);
        assert.equal(doc.rows, 3);
        const csv = await client.query({
            query: "SELECT 1 AS a, 'x,y' AS b",
            format: "CSVWithNames",
        });
        assert.equal(await csv.text(), '"a","b"\n1,"x,y"\n');
        const compact = await client.query({
            query: "SELECT 1 AS a, [2, 3] AS b",
            format: "JSONCompactEachRow",
        });
        assert.deepEqual(await compact.json(), [[1, [2, 3]]]);
        let streamed = 0;
        const rs = await client.query({
            query: "SELECT number FROM numbers(25000)",
            format: "JSONEachRow",
        });
        for await (const batch of rs.stream<{ number: number }>())
            for (const r of batch) streamed += r.json().number;
        assert.equal(streamed, (24_999 * 25_000) / 2);
        const tsv = await client.exec({ query: "SELECT 'a\tb' AS s" });
        assert.equal(await text(tsv.stream), "a\\tb\n");

        const zipped = ch.client({ compression: { request: true, response: true } });
        await zipped.insert({
            table: "app.users",
            values: Array.from({ length: 500 }, (_, i) => row(50_001 + i)),
            format: "JSONEachRow",
        });
        const z = await zipped.query({
            query: "SELECT count() AS n FROM app.users WHERE id > 50000",
            format: "JSONEachRow",
        });
        assert.equal(z.response_headers["content-encoding"], "gzip");
        assert.deepEqual(await z.json(), [{ n: 500 }]);
        await client.command({ query: "DELETE FROM app.users WHERE id > 50000" });
    });

    it("runs concurrent requests, bound and unbound, each with its own answer", async () => {
        const answers = await Promise.all(
            Array.from({ length: 24 }, (_, i) =>
                i % 2 === 0
                    ? rows<{ v: string; n: number }>(
                          "SELECT {v:String} AS v, count() AS n FROM app.users WHERE id % 24 = {m:UInt8}",
                          { v: `v${i}`, m: i },
                      )
                    : rows<{ v: string; n: number }>(
                          `SELECT 'v${i}' AS v, count() AS n FROM app.users WHERE id % 24 = ${i}`,
                      ),
            ),
        );
        answers.forEach((a, i) =>
            assert.deepEqual(a, [{ v: `v${i}`, n: i === 0 ? 416 : i <= 16 ? 417 : 416 }]),
        );
    });

    it("logs queries only with secrets masked, never the password", async () => {
        await client.command({
            query: `CREATE TABLE app.kq (a UInt8) ENGINE = Kafka SETTINGS kafka_broker_list = '127.0.0.1:1', kafka_topic_list = 't', kafka_group_name = 'g', kafka_format = 'JSONEachRow', kafka_sasl_password = '${SASL_SECRET}'`,
        });
        await client.command({ query: "DROP TABLE app.kq SYNC" });
        const log = fs.readFileSync(ch.logFile!, "utf8");
        assert.match(log, /CREATE TABLE app\.kq/);
        assert.match(log, /kafka_sasl_password = '\[HIDDEN\]'/);
        assert.ok(!log.includes(SASL_SECRET), "the SASL password is in the log");
        assert.ok(!log.includes(PASSWORD), "the server password is in the log");
        assert.ok(
            !log.includes(Buffer.from(`${USER}:${PASSWORD}`).toString("base64")),
            "the auth header is in the log",
        );
    });

    it("restart() kills the server and starts it on the same port and data", async () => {
        const before = ch.pid!;
        await ch.restart();
        assert.notEqual(ch.pid, before);
        assert.ok(!isAlive(before));
        assert.deepEqual(await rows("SELECT count() AS n, sum(id) AS s FROM app.users"), [
            { n: 10_000, s: (10_000 * 10_001) / 2 },
        ]);
        assert.deepEqual(await rows("SELECT count() AS n FROM app.events"), [{ n: 6000 }]);
        await client.insert({ table: "app.users", values: [row(10_001)], format: "JSONEachRow" });
        assert.deepEqual(await rows("SELECT name FROM app.users WHERE id = 10001"), [
            { name: "user-10001" },
        ]);
    });
});

describe("detached server", () => {
    it("outlives its handle, is found by its pid file and stopped by its directory", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-chserver-detached-"));
        try {
            const started = await startClickHouseServer({
                dataDir: dir,
                detached: true,
                password: "detached-pw",
            });
            assert.equal(started.detached, true);
            assert.equal(started.logFile, path.join(dir, "chserver.log"));
            const c1 = started.client();
            await c1.command({
                query: "CREATE TABLE kept (a UInt8) ENGINE = MergeTree ORDER BY a",
            });
            await c1.insert({ table: "kept", values: [{ a: 7 }], format: "JSONEachRow" });
            await c1.close();
            // Another command, knowing only the pid file (and the password from its environment).
            await assert.rejects(startClickHouseServer({ dataDir: dir }), /already serves/);
            const found = await connectExisting(path.join(dir, "chserver.pid"), {
                password: "detached-pw",
            });
            assert.equal(found.pid, started.pid);
            assert.equal(found.url, started.url);
            assert.deepEqual(await rows("SELECT a FROM kept", {}, found.client()), [{ a: 7 }]);
            const pid = found.pid!;
            assert.equal(await stopDetached(dir), true);
            assert.ok(!isAlive(pid));
            assert.equal(await canConnect(found.port), false);
            assert.ok(!fs.existsSync(path.join(dir, "chserver.pid")));
            assert.equal(await stopDetached(dir), false);
            await assert.rejects(connectExisting(path.join(dir, "chserver.pid")), /ENOENT/);
            assert.match(fs.readFileSync(path.join(dir, "chserver.log"), "utf8"), /stopped/);
        } finally {
            await stopDetached(dir);
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("stop() of a temporary server removes its directory and frees its port", async () => {
        const s = await startClickHouseServer();
        assert.deepEqual(await rows("SELECT 1 AS one", {}, s.client()), [{ one: 1 }]);
        await s.stop();
        assert.equal(s.running, false);
        assert.ok(!fs.existsSync(s.dataDir));
        await sleep(50);
        assert.equal(await canConnect(s.port), false);
    });
});

describe(
    "insert throughput",
    { skip: process.env.KCS_CHSERVER_BENCH !== "1" && "set KCS_CHSERVER_BENCH=1 to measure" },
    () => {
        it("1,000,000 JSONEachRow rows through the server vs. in-process chdb", async () => {
            const N = 1_000_000;
            const lines: string[] = [];
            for (let i = 0; i < N; i++) {
                lines.push(
                    JSON.stringify({
                        id: i,
                        ts: `2024-05-01 12:${String(i % 60).padStart(2, "0")}:00`,
                        user_id: `user_${i % 100_000}`,
                        event: ["click", "view", "purchase", "scroll"][i % 4],
                        url: `https://example.com/products/category/item-${i % 5000}?ref=campaign`,
                        value: (i % 1000) / 7,
                        country: "DE",
                        session: `s-${((i * 2654435761) % 4294967296).toString(16)}`,
                    }),
                );
            }
            const body = Buffer.from(lines.join("\n") + "\n");
            lines.length = 0;
            const ddl = (db: string) =>
                `CREATE TABLE ${db}.ev (id UInt64, ts DateTime, user_id String, event LowCardinality(String), url String, value Float64, country LowCardinality(String), session String) ENGINE = MergeTree ORDER BY (event, id)`;
            const rounds = 3;

            const server = await startClickHouseServer();
            const http: number[] = [];
            let peakRssMb = 0;
            try {
                const c = server.client({ request_timeout: 60_000 });
                for (let r = 0; r < rounds; r++) {
                    await c.command({ query: `DROP TABLE IF EXISTS default.ev` });
                    await c.command({ query: ddl("default") });
                    const slices = function* () {
                        for (let o = 0; o < body.length; o += 1 << 20)
                            yield body.subarray(o, Math.min(body.length, o + (1 << 20)));
                    };
                    const t = process.hrtime.bigint();
                    const res = await c.exec({
                        query: "INSERT INTO default.ev FORMAT JSONEachRow",
                        values: Readable.from(slices(), { objectMode: false }),
                    });
                    res.stream.resume();
                    http.push(Number(process.hrtime.bigint() - t) / 1e9);
                    assert.equal(res.summary?.written_rows, String(N));
                }
                assert.deepEqual(await rows("SELECT count() AS n FROM default.ev", {}, c), [
                    { n: N },
                ]);
                const status = fs.readFileSync(`/proc/${server.pid}/status`, "utf8");
                peakRssMb = Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
            } finally {
                await server.stop();
            }

            // In this process: chdb's raw insert of the same bytes (no HTTP, no second process).
            const { Session } = require("chdb") as {
                Session: new (p: string) => {
                    connection: unknown;
                    query(q: string, f?: string): string;
                    insert(p: object): Promise<{ rowsWritten: number }>;
                    close(): void;
                };
            };
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-chdb-bench-"));
            const inproc: number[] = [];
            const session = new Session(path.join(dir, "data"));
            try {
                for (let r = 0; r < rounds; r++) {
                    session.query("DROP TABLE IF EXISTS default.ev");
                    session.query(ddl("default"));
                    const t = process.hrtime.bigint();
                    const res = await session.insert({
                        table: "default.ev",
                        values: body,
                        format: "JSONEachRow",
                    });
                    inproc.push(Number(process.hrtime.bigint() - t) / 1e9);
                    assert.equal(res.rowsWritten, N);
                }
            } finally {
                session.close();
                fs.rmSync(dir, { recursive: true, force: true });
            }
            const best = (xs: number[]) => Math.min(...xs);
            const rate = (s: number) => Math.round(N / s).toLocaleString("en-US");
            const mb = (body.length / 1e6).toFixed(0);
            console.error(
                `[bench] ${N} rows, ${mb} MB JSONEachRow (${(body.length / N).toFixed(0)} B/row)\n` +
                    `[bench]   HTTP server : ${http.map((s) => s.toFixed(2)).join("s, ")}s -> best ${rate(best(http))} rows/s (server peak RSS ${peakRssMb} MB)\n` +
                    `[bench]   in-process  : ${inproc.map((s) => s.toFixed(2)).join("s, ")}s -> best ${rate(best(inproc))} rows/s`,
            );
            // The server must not be the bottleneck: within a factor of two of the engine alone.
            assert.ok(
                best(http) <= 2 * best(inproc),
                `HTTP ${best(http)}s vs in-process ${best(inproc)}s`,
            );
        });
    },
);
