/**
 * Issue 13, acceptance 1 and 3: the exact request a Job sends (JOB_SCRIPT with the arguments
 * `requestArgs` generates from a declared query file, run by the real `curl` through `/bin/sh`, as
 * the container runs it) against the local ClickHouse HTTP interface: a result, a SQL error, an
 * authentication error and a timeout (server-side and client-side) each end as the Job would
 * report them; credentials and secrets never reach a URL or an argument. Export then import of a
 * 100,000-row table with awkward values round-trips with an equal fingerprint (count and a hash of
 * every column) through a volume in four formats (one gzip-compressed), from a URL, and through
 * object storage (an S3 endpoint stand-in that stores what `s3()` PUTs and serves it back).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import {
    CLIENT_GRACE_SECONDS,
    JOB_SCRIPT,
    JOB_SCRIPT_NAME,
    JobPaths,
    S3_SECRET_KEYS,
    queryStep,
    requestArgs,
} from "../../components/jobs/http";
import { parseQuery } from "../../schemas/queries";
import { runJobLocally } from "../../scripts/sandbox-jobs";
import { EmbeddedClickHouse, HttpFront, openEmbedded, serveHttp } from "../harness/clickhouse";

const USER = "job_runner";
const PASSWORD = "job-test-password-5f1e";
const S3_KEY_ID = "AKIAKCSTESTKEY";
const S3_SECRET = "s3-secret-value-9c2b";
const DB = "jobs";

let dir: string;
let paths: JobPaths;
let ch: EmbeddedClickHouse;
let front: HttpFront;

interface Run {
    readonly code: number | null;
    readonly stdout: string;
    readonly stderr: string;
    readonly argv: readonly string[];
}

/**
 * Runs the container's command line (`/bin/sh -c JOB_SCRIPT kcs-job <args>`), the credentials in
 * files as the Job's Secret volume holds them.
 */
async function runJob(args: readonly string[], password = PASSWORD): Promise<Run> {
    const r = await runJobLocally(args, { user: USER, password });
    return { ...r, argv: ["-c", JOB_SCRIPT, JOB_SCRIPT_NAME, ...args] };
}

/** A declared query file's request, as its Job sends it. */
function declared(yaml: string, target = front.url): string[] {
    const q = parseQuery(yaml, "test-query.yaml");
    return requestArgs(queryStep(q.spec, DB, paths), { url: target, database: DB }, paths);
}

async function sql(statement: string): Promise<string> {
    const rs = await ch.client.query({ query: statement, format: "TabSeparated" });
    return (await rs.text()).trim();
}

/** Count and an order-independent hash of every column. */
function fingerprint(table: string): Promise<string> {
    return sql(`SELECT count(), sum(cityHash64(*)) FROM ${DB}.${table}`);
}

function assertNoSecretsOnTheWire(run: Run): void {
    for (const arg of run.argv) {
        assert.ok(!arg.includes(PASSWORD), `the password is in an argument: ${arg}`);
        assert.ok(!arg.includes(S3_SECRET), `the S3 secret is in an argument: ${arg}`);
    }
    for (const r of front.requests) {
        assert.ok(!r.url.includes(PASSWORD), `the password is in a URL: ${r.url}`);
        assert.ok(!r.url.includes(S3_SECRET), `the S3 secret is in a URL: ${r.url}`);
    }
}

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-jobs-"));
    paths = {
        credentialsDir: path.join(dir, "credentials"),
        dataDir: path.join(dir, "data"),
        s3SecretDir: path.join(dir, "s3"),
        caFile: path.join(dir, "ca.crt"),
    };
    fs.mkdirSync(paths.s3SecretDir);
    fs.writeFileSync(path.join(paths.s3SecretDir, S3_SECRET_KEYS.accessKeyId), S3_KEY_ID);
    fs.writeFileSync(path.join(paths.s3SecretDir, S3_SECRET_KEYS.secretAccessKey), S3_SECRET);
    ch = await openEmbedded();
    front = await serveHttp(ch, { username: USER, password: PASSWORD });
    await sql(`CREATE DATABASE ${DB}`);
    await sql(
        `CREATE TABLE ${DB}.events (id UInt64, name String, city LowCardinality(String), amount Decimal(18, 4), score Nullable(Float64), at DateTime64(3, 'UTC'), tags Array(String)) ENGINE = MergeTree ORDER BY id`,
    );
    // Quotes, tabs, newlines, commas, backslashes, non-ASCII and NULLs: what text formats escape.
    await sql(
        `INSERT INTO ${DB}.events SELECT number, concat('name "', toString(number), '"\\t,\\n\\\\ é'), ['Köln', 'Zürich', 'a,b', ''][number % 4 + 1], number / 7, if(number % 5 = 0, NULL, number * 0.25), toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + number, arrayMap(x -> toString(x), range(number % 3)) FROM numbers(100000)`,
    );
});

after(async () => {
    await front?.close();
    await ch?.close();
    fs.rmSync(dir, { recursive: true, force: true });
});

describe("a Job's request against the local HTTP interface", () => {
    it("runs a query with its parameters as values, prints the result and the summary", async () => {
        const run = await runJob(
            declared(`
name: city-report
schedule: { cron: "0 6 * * *", timeZone: Europe/Berlin }
sql: |
  SELECT city, count() AS n FROM events
  WHERE id < {below:UInt64} AND name != {not_this:String}
  GROUP BY city ORDER BY city
parameters: { below: 1000, not_this: "x'; DROP TABLE events; --" }
`),
        );
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(run.stdout.trimEnd().split("\n"), [
            "\t250",
            "Köln\t250",
            "Zürich\t250",
            "a,b\t250",
        ]);
        const summary = /summary: (\{.*\})/.exec(run.stderr);
        assert.ok(summary, `no summary line: ${run.stderr}`);
        const readRows = Number((JSON.parse(summary[1]!) as { read_rows: string }).read_rows);
        assert.ok(readRows > 0, `read_rows in the summary: ${summary[1]}`);
        assert.match(run.stderr, /HTTP 200/);
        assert.equal(await fingerprint("events").then((f) => f.split("\t")[0]), "100000");
        const req = front.requests.at(-1)!;
        assert.equal(req.headers["x-clickhouse-user"], USER);
        assert.equal(req.headers["x-clickhouse-key"], PASSWORD);
        assert.match(req.url, /param_not_this=x%27%3[Bb]/);
        assertNoSecretsOnTheWire(run);
    });

    it("exits non-zero with ClickHouse's message and exception code on a SQL error", async () => {
        const run = await runJob(
            declared(`
name: broken
schedule: once
sql: SELECT no_such_column FROM events
`),
        );
        assert.equal(run.code, 22);
        assert.match(run.stdout, /Code: 47\. DB::Exception: .*no_such_column/);
        assert.match(run.stderr, /HTTP 404, exception code: 47/);
    });

    it("exits non-zero on an authentication error, with the password nowhere on the wire", async () => {
        const run = await runJob(
            declared("name: auth\nschedule: once\nsql: SELECT 1\n"),
            "wrong-password",
        );
        assert.equal(run.code, 22);
        assert.match(run.stdout, /Code: 516\..*Authentication failed/);
        assert.match(run.stderr, /HTTP 403, exception code: 516/);
        assertNoSecretsOnTheWire(run);
    });

    it("stops at timeoutSeconds on the server (TIMEOUT_EXCEEDED), and on the client when the server is silent", async () => {
        const slow = await runJob(
            declared(`
name: slow
schedule: once
user: admin
timeoutSeconds: 1
sql: SELECT sleepEachRow(1) FROM numbers(5) SETTINGS max_block_size = 1
`),
        );
        assert.equal(slow.code, 22, slow.stderr);
        assert.match(slow.stdout, /Code: 159\..*Timeout exceeded/);
        assert.match(slow.stderr, /exception code: 159/);

        // A server that accepts and never answers: curl's own limit (timeout + grace) ends it.
        const silent = net.createServer(() => undefined);
        await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
        const port = (silent.address() as net.AddressInfo).port;
        const started = Date.now();
        try {
            const hung = await runJob(
                declared(
                    "name: hung\nschedule: once\ntimeoutSeconds: 1\nsql: SELECT 1\n",
                    `http://127.0.0.1:${port}`,
                ),
            );
            assert.equal(hung.code, 28, hung.stderr);
            assert.match(hung.stderr, /timed out/i);
            assert.ok(Date.now() - started >= (1 + CLIENT_GRACE_SECONDS) * 1000 - 500);
        } finally {
            silent.close();
        }
    });
});

describe("export then import", () => {
    const formats: Array<[string, string]> = [
        ["Parquet", "none"],
        ["Native", "gzip"],
        ["CSVWithNames", "none"],
        ["JSONEachRow", "gzip"],
    ];
    for (const [format, compression] of formats) {
        it(`round-trips 100,000 rows through a volume in ${format} (${compression})`, async () => {
            const file = `exports/events.${format.toLowerCase()}${compression === "gzip" ? ".gz" : ""}`;
            const exported = await runJob(
                declared(`
name: export-events
schedule: once
user: ${compression === "none" ? "readonly" : "admin"}
sql: SELECT * FROM events
export: { format: ${format}, compression: ${compression}, to: { volume: { claim: exports, path: ${file} } } }
`),
            );
            assert.equal(exported.code, 0, exported.stderr + exported.stdout);
            const bytes = fs.readFileSync(path.join(paths.dataDir, file));
            if (compression === "gzip") assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b]);
            const table = `events_${format.toLowerCase()}`;
            await sql(`CREATE TABLE ${DB}.${table} AS ${DB}.events`);
            const imported = await runJob(
                declared(`
name: import-events
schedule: once
user: admin
import: { table: ${table}, format: ${format}, compression: ${compression}, from: { volume: { claim: exports, path: ${file} } } }
`),
            );
            assert.equal(imported.code, 0, imported.stderr + imported.stdout);
            assert.match(imported.stderr, /"written_rows":"100000"/);
            assert.equal(await fingerprint(table), await fingerprint("events"));
        });
    }

    it("imports from a URL (the url() table function, the address sent as a parameter)", async () => {
        const body = fs.readFileSync(path.join(paths.dataDir, "exports/events.parquet"));
        const server = http.createServer((_req, res) => res.end(body));
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        const port = (server.address() as net.AddressInfo).port;
        try {
            await sql(`CREATE TABLE ${DB}.events_url AS ${DB}.events`);
            const run = await runJob(
                declared(`
name: import-url
schedule: once
user: admin
import: { table: events_url, format: Parquet, from: { url: "http://127.0.0.1:${port}/events.parquet" } }
`),
            );
            assert.equal(run.code, 0, run.stderr + run.stdout);
            assert.equal(await fingerprint("events_url"), await fingerprint("events"));
        } finally {
            server.close();
        }
    });

    it("round-trips through object storage (s3()), the keys read from the Secret's files", async () => {
        const { server, objects, authorizations } = await s3StandIn();
        const port = (server.address() as net.AddressInfo).port;
        const url = `http://127.0.0.1:${port}/bucket/exports/events.parquet.gz`;
        try {
            const exported = await runJob(
                declared(`
name: export-s3
schedule: once
user: admin
sql: SELECT * FROM events WHERE id % {every:UInt64} = 0
parameters: { every: 3 }
export: { format: Parquet, compression: gzip, to: { s3: { url: "${url}", secret: object-store } } }
`),
            );
            assert.equal(exported.code, 0, exported.stderr + exported.stdout);
            assert.ok(objects.has("/bucket/exports/events.parquet.gz"), [...objects.keys()].join());
            assert.ok(
                authorizations.length > 0 &&
                    authorizations.every((a) => a.includes(`Credential=${S3_KEY_ID}/`)),
            );
            await sql(`CREATE TABLE ${DB}.events_s3 AS ${DB}.events`);
            const imported = await runJob(
                declared(`
name: import-s3
schedule: once
user: admin
import: { table: events_s3, format: Parquet, compression: gzip, from: { s3: { url: "${url}", secret: object-store } } }
`),
            );
            assert.equal(imported.code, 0, imported.stderr + imported.stdout);
            assert.equal(
                await fingerprint("events_s3"),
                await sql(`SELECT count(), sum(cityHash64(*)) FROM ${DB}.events WHERE id % 3 = 0`),
            );
            assertNoSecretsOnTheWire(exported);
            assertNoSecretsOnTheWire(imported);
        } finally {
            server.close();
        }
    });
});

/**
 * Enough of an S3 endpoint for `s3()`: PUT stores an object, HEAD and GET (with Range) serve it,
 * a listing answers empty. It records the Authorization headers, to see the key id arrive.
 */
async function s3StandIn(): Promise<{
    server: http.Server;
    objects: Map<string, Buffer>;
    authorizations: string[];
}> {
    const objects = new Map<string, Buffer>();
    const authorizations: string[] = [];
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            authorizations.push(String(req.headers.authorization ?? ""));
            const key = new URL(req.url ?? "/", "http://x").pathname;
            if (req.method === "PUT") {
                objects.set(key, Buffer.concat(chunks));
                res.writeHead(200, { ETag: '"1"' }).end();
                return;
            }
            const object = objects.get(key);
            if (!object) {
                res.writeHead(404, { "Content-Type": "application/xml" }).end(
                    "<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>",
                );
                return;
            }
            const range = /bytes=(\d+)-(\d*)/.exec(String(req.headers.range ?? ""));
            const start = range ? Number(range[1]) : 0;
            const end = range && range[2] ? Number(range[2]) : object.length - 1;
            const body = object.subarray(start, end + 1);
            res.writeHead(range ? 206 : 200, {
                "Content-Length": String(req.method === "HEAD" ? object.length : body.length),
                "Last-Modified": new Date(0).toUTCString(),
                ETag: '"1"',
                ...(range ? { "Content-Range": `bytes ${start}-${end}/${object.length}` } : {}),
            });
            res.end(req.method === "HEAD" ? undefined : body);
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { server, objects, authorizations };
}
