/**
 * The dynamic provider, called the way the Pulumi engine calls it (configure, check, diff, create,
 * update, read, delete), against the real engine behind the real HTTP transport with a password.
 * Acceptance 5 (diff returns what update runs; read reports drift) and 6 (no password anywhere),
 * closure serialization, and the port-forward connection through a Kubernetes API stand-in.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { WebSocketServer } from "ws";
import { loadStreams } from "../../schemas/loader";
import { StreamSpec } from "../../schemas/model";
import {
    streamIngestionProvider,
    StreamIngestionInputs,
    StreamIngestionOutputs,
} from "../../components/ingestion/provider";
import { ConnectionSpec, openClient } from "../../components/ingestion/connection";
import { loadKubeconfig } from "../../components/ingestion/kube";
import {
    EmbeddedClickHouse,
    HttpFront,
    openEmbedded,
    queryRows,
    serveHttp,
} from "../harness/clickhouse";
import { bridgePortForward, writeTokenKubeconfig } from "../harness/fake-kube";

const PROJECT = "kafka-clickhouse-stack";
const PASSWORD = "Ch-p4ss!word'\"\\-secret";
const USER = "ingest_admin";
// The real class the dynamic provider host passes to configure (project-namespaced keys).
const { Config } = require("@pulumi/pulumi/cmd/dynamic-provider/config") as {
    Config: new (raw: Record<string, string>, project: string) => pulumi.dynamic.Config;
};

let ch: EmbeddedClickHouse;
let front: HttpFront;
const provider = streamIngestionProvider as Required<pulumi.dynamic.ResourceProvider>;
const orders = (): StreamSpec =>
    structuredClone(loadStreams().find((s) => s.spec.name === "orders")!.spec);

before(async () => {
    ch = await openEmbedded();
    front = await serveHttp(ch, { username: USER, password: PASSWORD });
    await provider.configure({
        config: new Config({ [`${PROJECT}:clickhousePassword`]: PASSWORD }, PROJECT),
    });
});
after(async () => {
    await front?.close();
    await ch?.close();
});

const httpConnection = (): ConnectionSpec => ({
    kind: "http",
    url: front.url,
    // The local front end on loopback speaks plain HTTP (test/integration/tls.test.ts: HTTPS).
    allowInsecureHttp: true,
    username: USER,
    password: { fromConfig: "clickhousePassword" },
});
const inputs = (over: Partial<StreamIngestionInputs> = {}): StreamIngestionInputs => ({
    stream: orders(),
    database: "prov",
    kafkaBrokers: "127.0.0.1:1",
    connection: httpConnection(),
    allowDestructiveChanges: false,
    dropTargetOnDelete: false,
    ...over,
});

/** Everything a run exposes that must never hold the password. */
const exposed: unknown[] = [];
const record = <T>(v: T): T => {
    exposed.push(v);
    return v;
};

async function checked(
    news: StreamIngestionInputs,
    olds: Partial<StreamIngestionInputs> = {},
): Promise<StreamIngestionInputs> {
    const r = record(await provider.check(olds, news));
    assert.deepEqual(r.failures ?? [], [], JSON.stringify(r.failures));
    return r.inputs as StreamIngestionInputs;
}

describe("check", () => {
    it("reports stream schema problems with the property path", async () => {
        const bad = { ...orders(), columns: [{ name: "order_id", type: "UInt65" }] };
        const r = await provider.check({}, inputs({ stream: bad as never }));
        assert.ok(
            r.failures!.some(
                (f) =>
                    f.property === "stream" &&
                    /columns\[0\]\.type: unknown ClickHouse type 'UInt65'/.test(f.reason),
            ),
            JSON.stringify(r.failures),
        );
    });

    it("rejects a hostile database name before any SQL", async () => {
        const before = front.requests.length;
        const r = await provider.check({}, inputs({ database: "prov`; DROP DATABASE system; --" }));
        assert.equal(r.failures![0]!.property, "database");
        assert.match(r.failures![0]!.reason, /lower-case snake_case/);
        assert.equal(front.requests.length, before, "nothing was sent to ClickHouse");
    });

    it("rejects a password given as a plain value and credentials in the URL", async () => {
        const r = await provider.check(
            {},
            inputs({
                connection: {
                    kind: "http",
                    url: `http://${USER}:hunter2@127.0.0.1:1`,
                    password: PASSWORD as never,
                },
            }),
        );
        const reasons = r.failures!.map((f) => f.reason).join("\n");
        assert.match(reasons, /connection.url must not contain credentials/);
        assert.match(reasons, /connection.password must not be a plain value: use \{ fromConfig/);
    });

    it("fails clearly when the stack secret is missing", async () => {
        const r = await provider.check(
            { database: "prov" },
            inputs({
                connection: {
                    ...httpConnection(),
                    password: { fromConfig: "missingKey" },
                } as ConnectionSpec,
            }),
        );
        assert.deepEqual(r.failures, [
            {
                property: "connection",
                reason: "stack config key 'missingKey' is not set; run: pulumi config set --secret missingKey <value>",
            },
        ]);
    });

    it("an existing stream whose server is unreachable is planned at apply time, saying why", async () => {
        const r = await provider.check(
            { database: "prov" },
            inputs({
                connection: { ...httpConnection(), url: "http://127.0.0.1:1" } as ConnectionSpec,
            }),
        );
        assert.equal(r.failures, undefined);
        assert.match(
            (r.inputs as StreamIngestionInputs).plannedStatements![0]!,
            /^-- ClickHouse not reachable during check \(.*\); the plan is made when the update runs$/,
        );
    });

    it("plans against the live server: a create plan for a new stream", async () => {
        const news = await checked(inputs());
        assert.equal(news.plannedStatements!.length, 8);
        assert.match(
            news.plannedStatements![0]!,
            /^\[create\] CREATE DATABASE IF NOT EXISTS `prov`$/,
        );
        assert.match(
            news.plannedStatements!.at(-1)!,
            /^\[create\] CREATE TABLE IF NOT EXISTS `prov`.`orders_kafka` .* ENGINE = Kafka/,
        );
    });

    it("during a preview with unknown inputs, leaves the plan unknown and diff undecided", async () => {
        const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
        const r = await provider.check({}, inputs({ kafkaBrokers: unknown }));
        assert.equal((r.inputs as Record<string, unknown>)["plannedStatements"], unknown);
        const d = await provider.diff(
            "prov.orders",
            { ...(inputs() as StreamIngestionOutputs), streamName: "orders" },
            r.inputs,
        );
        assert.equal(d.changes, undefined);
    });

    it("for a new stream on a server not reachable yet, shows the create plan with a note", async () => {
        const r = await provider.check(
            {},
            inputs({
                connection: {
                    kind: "http",
                    url: "http://127.0.0.1:1",
                    allowInsecureHttp: true,
                    password: { fromConfig: "clickhousePassword" },
                },
            }),
        );
        const news = r.inputs as StreamIngestionInputs;
        assert.equal(news.plannedStatements!.length, 8);
        assert.ok(news.planSummary!.some((l) => /not reachable during preview/.test(l)));
    });
});

describe("lifecycle (acceptance 5)", () => {
    let outs: StreamIngestionOutputs;

    it("create runs exactly the statements check planned", async () => {
        const news = await checked(inputs());
        const r = record(await provider.create(news));
        outs = r.outs as StreamIngestionOutputs;
        assert.equal(r.id, "prov.orders");
        assert.deepEqual(outs.appliedStatements, news.plannedStatements);
        assert.deepEqual(outs.plannedStatements, []);
        assert.equal(outs.objects.kafka, "prov.orders_kafka");
        assert.equal(outs.observed.kafka!.engine, "Kafka");
    });

    it("nothing changed: an empty plan and no diff", async () => {
        const news = await checked(inputs(), outs);
        assert.deepEqual(news.plannedStatements, []);
        const d = await provider.diff("prov.orders", outs, news);
        assert.equal(d.changes, false);
    });

    it("a schema change: diff returns the statements, update runs exactly those", async () => {
        const changed = orders();
        changed.columns.push({ name: "channel", type: "LowCardinality(String)", default: "'web'" });
        changed.consumer = { ...changed.consumer, flushIntervalMs: 750 };
        const news = await checked(inputs({ stream: changed }), outs);
        const d = (await provider.diff("prov.orders", outs, news)) as pulumi.dynamic.DiffResult & {
            plannedStatements: string[];
        };
        assert.equal(d.changes, true);
        assert.deepEqual(d.replaces, []);
        assert.ok(
            d.plannedStatements.some((s) =>
                /^\[in-place\] ALTER TABLE `prov`.`orders` ADD COLUMN IF NOT EXISTS `channel`/.test(
                    s,
                ),
            ),
        );
        const r = record(await provider.update("prov.orders", outs, news));
        outs = r.outs as StreamIngestionOutputs;
        assert.deepEqual(outs.appliedStatements, d.plannedStatements);
        assert.ok(
            outs.observed.target!.columns.includes("channel LowCardinality(String) DEFAULT 'web'"),
        );
    });

    it("a destructive change is refused at check, naming the setting; allowed when set", async () => {
        const narrower = outs.stream.columns.filter((c) => c.name !== "channel");
        const refused = await provider.check(
            outs,
            inputs({ stream: { ...outs.stream, columns: narrower } }),
        );
        assert.equal(refused.failures!.length, 1);
        assert.equal(refused.failures![0]!.property, "allowDestructiveChanges");
        assert.match(
            refused.failures![0]!.reason,
            /dropping column 'channel' of orders deletes its data .* set allowDestructiveChanges: true \(or a list including "dropColumn"\)/s,
        );
        assert.match(
            refused.failures![0]!.reason,
            /\[destructive\] ALTER TABLE `prov`.`orders` DROP COLUMN IF EXISTS `channel`/,
        );
        const news = await checked(
            inputs({
                stream: { ...outs.stream, columns: narrower },
                allowDestructiveChanges: ["dropColumn"],
            }),
            outs,
        );
        outs = record(await provider.update("prov.orders", outs, news))
            .outs as StreamIngestionOutputs;
        assert.ok(!outs.observed.target!.columns.some((c) => c.startsWith("channel ")));
    });

    it("read reports a column added by hand as drift, with the statements that would undo it", async () => {
        await ch.client.command({ query: "ALTER TABLE prov.orders ADD COLUMN note String" });
        const r = record(await provider.read("prov.orders", outs));
        const props = r.props as StreamIngestionOutputs;
        assert.equal(r.id, "prov.orders");
        assert.ok(props.observed.target!.columns.includes("note String"));
        assert.ok(
            props.drift.some((l) => /^\[destructive\] drop column note \(String\)$/.test(l)),
            props.drift.join("\n"),
        );
        assert.deepEqual(props.plannedStatements, [
            "[destructive] ALTER TABLE `prov`.`orders` DROP COLUMN IF EXISTS `note`",
        ]);
        // The next preview refuses to drop it unless allowed.
        const next = await provider.check(props, inputs({ stream: outs.stream }));
        assert.equal(next.failures![0]!.property, "allowDestructiveChanges");
        await ch.client.command({ query: "ALTER TABLE prov.orders DROP COLUMN note" });
        outs = (await provider.read("prov.orders", outs)).props as StreamIngestionOutputs;
        assert.deepEqual(outs.drift, []);
    });

    it("update refuses destructive statements the reviewed plan did not show", async () => {
        const news = await checked(
            inputs({ stream: outs.stream, allowDestructiveChanges: true }),
            outs,
        );
        assert.deepEqual(news.plannedStatements, []);
        await ch.client.command({ query: "ALTER TABLE prov.orders ADD COLUMN sneaky UInt8" }); // after the preview
        await assert.rejects(
            provider.update("prov.orders", outs, news),
            /ClickHouse changed since the plan was shown; these destructive statements were not in it:\n  \[destructive\] ALTER TABLE `prov`.`orders` DROP COLUMN IF EXISTS `sneaky`/,
        );
        await ch.client.command({ query: "ALTER TABLE prov.orders DROP COLUMN sneaky" });
    });

    it("renaming the stream or moving it to another database replaces it, deleting first", async () => {
        const renamed = await provider.diff("prov.orders", outs, {
            ...inputs(),
            stream: { ...outs.stream, name: "orders_v2" },
        });
        assert.deepEqual(renamed.replaces, ["stream"]);
        assert.equal(renamed.deleteBeforeReplace, true);
        const moved = await provider.diff("prov.orders", outs, { ...inputs(), database: "other" });
        assert.deepEqual(moved.replaces, ["database"]);
    });

    it("delete stops ingestion and keeps the target and dead-letter tables by default", async () => {
        await ch.client.command({
            query: "INSERT INTO prov.orders (order_id, version, customer_id, status, total, updated_at) VALUES (1, 1, 7, 'paid', 9.99, now())",
        });
        await provider.delete("prov.orders", outs);
        const names = (
            await queryRows<{ name: string }>(
                ch.client,
                "SELECT name FROM system.tables WHERE database = 'prov' ORDER BY name",
            )
        ).map((r) => r.name);
        assert.deepEqual(names, ["orders", "orders_dlq"]);
        assert.equal(
            (
                await queryRows<{ n: string }>(
                    ch.client,
                    "SELECT toString(count()) AS n FROM prov.orders",
                )
            )[0]!.n,
            "1",
        );
        assert.equal(
            (await provider.read("prov.orders", outs)).id,
            "prov.orders",
            "tables kept: the resource still reads",
        );
    });

    it("with dropTargetOnDelete, delete removes everything", async () => {
        const news = await checked(inputs({ dropTargetOnDelete: true }));
        const created = (await provider.create(news)).outs as StreamIngestionOutputs;
        await provider.delete("prov.orders", created);
        assert.deepEqual(
            await queryRows(ch.client, "SELECT name FROM system.tables WHERE database = 'prov'"),
            [],
        );
        assert.equal(
            (await provider.read("prov.orders", created)).id,
            "",
            "nothing left: refresh drops the resource",
        );
    });
});

describe("no password anywhere (acceptance 6)", () => {
    it("the password was used on the wire, in the Authorization header only", () => {
        const authorized = front.requests.filter(
            (r) =>
                r.headers["authorization"] ===
                `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`,
        );
        assert.ok(authorized.length > 10);
        for (const r of front.requests) {
            assert.ok(
                !r.body.includes(PASSWORD) && !decodeURIComponent(r.url).includes(PASSWORD),
                "never in a query or URL",
            );
        }
    });

    it("is in no check result, provider output or DDL statement", () => {
        assert.ok(exposed.length >= 8);
        const text = JSON.stringify(exposed);
        assert.ok(text.includes("CREATE TABLE"), "the recorded outputs hold the DDL");
        assert.ok(!text.includes(PASSWORD));
        assert.ok(!text.includes(Buffer.from(PASSWORD).toString("base64")));
    });

    // Exactly what pulumi.dynamic.Resource does with the provider it is given.
    const serializeProvider = () => {
        const p = streamIngestionProvider;
        return pulumi.runtime.serializeFunction(() => p, { allowSecrets: true });
    };

    it("is not in the serialized provider, which captures only the stub", async () => {
        const sf = await serializeProvider();
        assert.ok(!sf.text.includes(PASSWORD));
        assert.equal(sf.containsSecrets, false);
        assert.ok(sf.text.length < 8000, `serialized provider is ${sf.text.length} chars`);
        assert.ok(
            sf.text.includes("providerImplementation"),
            "loads the implementation at run time",
        );
        assert.ok(
            !/CREATE TABLE|planStream|createChdbConnection/.test(sf.text),
            "no implementation code captured",
        );
    });

    it("the serialized provider runs in a plain Node process, as the Pulumi dynamic provider host runs it", async () => {
        const sf = await serializeProvider();
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-serialized-"));
        try {
            const file = path.join(dir, "provider.js");
            fs.writeFileSync(file, sf.text);
            const news = inputs({
                connection: { kind: "embedded", path: path.join(dir, "chdb") },
                database: "serialized",
            });
            const script = `
                const requireFromString = require("require-from-string");
                const provider = requireFromString(require("fs").readFileSync(process.argv[1], "utf8")).handler();
                (async () => {
                    await provider.configure({ config: { get: () => undefined } });
                    const checked = await provider.check({}, JSON.parse(process.argv[2]));
                    const created = await provider.create(checked.inputs);
                    const read = await provider.read(created.id, created.outs);
                    await provider.delete(created.id, created.outs);
                    process.stdout.write(JSON.stringify({ planned: checked.inputs.plannedStatements.length, id: created.id, applied: created.outs.appliedStatements.length, engine: read.props.observed.kafka.engine }));
                })().catch((e) => { console.error(e); process.exit(1); });`;
            const out = await new Promise<string>((resolve, reject) =>
                childProcess.execFile(
                    process.execPath,
                    ["-e", script, file, JSON.stringify(news)],
                    {
                        cwd: path.resolve(__dirname, "../.."),
                        timeout: 60_000,
                        env: { ...process.env, NODE_OPTIONS: "" },
                    },
                    (err, stdout, stderr) =>
                        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
                ),
            );
            assert.deepEqual(JSON.parse(out), {
                planned: 8,
                id: "serialized.orders",
                applied: 8,
                engine: "Kafka",
            });
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

// ---------------------------------------------------------------------------------------------
// Port-forward through a stand-in for the Kubernetes API: services, pods, secrets, and the
// portforward subresource over WebSocket (v4.channel.k8s.io: every message starts with its channel
// byte, 0 data and 1 error, and the first message of each channel carries the port), served with
// the ws package.
// ---------------------------------------------------------------------------------------------

interface FakeKube {
    readonly url: string;
    readonly upgrades: string[];
    readonly tokens: string[];
    close(): Promise<void>;
}

async function fakeKube(
    token: string,
    clickhousePort: number,
    secretPassword: string,
): Promise<FakeKube> {
    const upgrades: string[] = [];
    const tokens: string[] = [];
    const json = (res: http.ServerResponse, code: number, body: unknown) => {
        res.writeHead(code, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
    };
    const server = http.createServer((req, res) => {
        tokens.push(String(req.headers["authorization"]));
        if (req.headers["authorization"] !== `Bearer ${token}`)
            return json(res, 401, { kind: "Status", message: "Unauthorized" });
        const url = new URL(req.url ?? "/", "http://x");
        // clickhouse: two pods, one ready; clickhouse-down: none ready; clickhouse-noport: a
        // target port no container names.
        const services: Record<string, { app: string; targetPort: string }> = {
            clickhouse: { app: "clickhouse", targetPort: "http" },
            "clickhouse-down": { app: "down", targetPort: "http" },
            "clickhouse-noport": { app: "clickhouse", targetPort: "metrics" },
        };
        const service = /^\/api\/v1\/namespaces\/db\/services\/([^/]+)$/.exec(url.pathname);
        if (service && services[service[1]!]) {
            const { app, targetPort } = services[service[1]!]!;
            return json(res, 200, {
                spec: { selector: { app }, ports: [{ port: 8123, targetPort }] },
            });
        }
        if (url.pathname === "/api/v1/namespaces/db/pods") {
            const pod = (name: string, ready: string) => ({
                metadata: { name },
                spec: {
                    containers: [
                        {
                            ports: [
                                { name: "native", containerPort: 9000 },
                                { name: "http", containerPort: 8123 },
                            ],
                        },
                    ],
                },
                status: { phase: "Running", conditions: [{ type: "Ready", status: ready }] },
            });
            const selector = url.searchParams.get("labelSelector");
            if (selector === "app=clickhouse")
                return json(res, 200, {
                    items: [pod("clickhouse-0", "False"), pod("clickhouse-1", "True")],
                });
            if (selector === "app=down") return json(res, 200, { items: [pod("down-0", "False")] });
        }
        if (url.pathname === "/api/v1/namespaces/db/secrets/clickhouse-auth") {
            return json(res, 200, {
                data: { password: Buffer.from(secretPassword).toString("base64") },
            });
        }
        json(res, 404, { kind: "Status", message: `${url.pathname} not found` });
    });
    const wss = new WebSocketServer({
        noServer: true,
        handleProtocols: (offered) =>
            offered.has("v4.channel.k8s.io") ? "v4.channel.k8s.io" : false,
    });
    server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        upgrades.push(req.url ?? "");
        const protocols = String(req.headers["sec-websocket-protocol"] ?? "").split(/,\s*/);
        if (
            req.headers["authorization"] !== `Bearer ${token}` ||
            !protocols.includes("v4.channel.k8s.io")
        ) {
            socket.end(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n" +
                    JSON.stringify({ message: "pods/portforward is forbidden" }),
            );
            return;
        }
        const m = /^\/api\/v1\/namespaces\/db\/pods\/([^/]+)\/portforward\?ports=(\d+)$/.exec(
            req.url ?? "",
        );
        if (!m || m[1] !== "clickhouse-1" || m[2] !== "8123") {
            socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
            return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
            bridgePortForward(ws, 8123, clickhousePort);
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return {
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        upgrades,
        tokens,
        close: () =>
            new Promise<void>((resolve) => {
                for (const ws of wss.clients) ws.terminate();
                wss.close();
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

describe("embedded connection", () => {
    it("shares the process's engine, and refuses a second data directory with a clear message", async () => {
        const same = await openClient({ kind: "embedded", path: ch.path });
        await same.close(); // a no-op for the shared engine: it stays up for the process
        assert.equal((await queryRows<{ x: number }>(ch.client, "SELECT 1 AS x"))[0]!.x, 1);
        await assert.rejects(
            openClient({ kind: "embedded", path: path.join(os.tmpdir(), "kcs-other-engine") }),
            /chdb runs one engine per process: .* is open, .*kcs-other-engine was asked for/,
        );
        await assert.rejects(
            openClient({ kind: "embedded", path: ch.path, configFile: "/nonexistent/other.xml" }),
            /chdb runs one engine per process/,
        );
    });
});

describe("port-forward connection", () => {
    let kube: FakeKube;
    let kubeconfig: string;
    const TOKEN = "kube-token-abc";

    before(async () => {
        kube = await fakeKube(TOKEN, front.port, PASSWORD);
        kubeconfig = writeTokenKubeconfig(kube.url, TOKEN, "kcs-kube-");
    });
    after(async () => {
        await kube?.close();
        if (kubeconfig) fs.rmSync(path.dirname(kubeconfig), { recursive: true, force: true });
    });

    const spec = (): ConnectionSpec => ({
        kind: "port-forward",
        kubeconfig: { fromFile: kubeconfig },
        namespace: "db",
        service: "clickhouse",
        port: 8123,
        username: USER,
        password: {
            fromKubernetesSecret: { namespace: "db", name: "clickhouse-auth", key: "password" },
        },
    });

    it("reaches ClickHouse through a ready pod behind the service, password from a Kubernetes Secret", async () => {
        const opened = await openClient(spec());
        try {
            const rows = await (
                await opened.client.query({ query: "SELECT version() AS v", format: "JSONEachRow" })
            ).json<{ v: string }>();
            assert.match(rows[0]!.v, /^\d+\.\d+/);
            assert.equal(opened.describe, "pod db/clickhouse-1:8123 (port-forward)");
            // Responses larger than one frame (64-bit length frames) and many of them.
            const big = await (
                await opened.client.query({
                    query: "SELECT number, repeat('x', 100) AS pad FROM numbers(5000)",
                    format: "JSONEachRow",
                })
            ).json();
            assert.equal(big.length, 5000);
        } finally {
            await opened.close();
        }
        assert.ok(
            kube.upgrades.every(
                (u) => u === "/api/v1/namespaces/db/pods/clickhouse-1/portforward?ports=8123",
            ),
        );
        assert.ok(kube.tokens.every((t) => t === `Bearer ${TOKEN}`));
    });

    it("the provider creates a stream through it", async () => {
        const news = await checked(inputs({ database: "forwarded", connection: spec() }));
        const created = (await provider.create(news)).outs as StreamIngestionOutputs;
        assert.equal(created.observed.kafka!.engine, "Kafka");
        assert.ok(!JSON.stringify(created).includes(PASSWORD));
        assert.ok(!JSON.stringify(created).includes(TOKEN));
    });

    it("a refused upgrade fails with the API's message", async () => {
        const wrong = path.join(path.dirname(kubeconfig), "wrong");
        fs.writeFileSync(wrong, fs.readFileSync(kubeconfig, "utf8").replace(TOKEN, "bad-token"));
        await assert.rejects(
            openClient({ ...spec(), kubeconfig: { fromFile: wrong } } as ConnectionSpec),
            /Kubernetes API GET \/api\/v1\/namespaces\/db\/secrets\/clickhouse-auth: 401 Unauthorized/,
        );
        await assert.rejects(
            openClient({
                ...spec(),
                pod: "clickhouse-9",
                service: undefined,
                password: undefined,
            } as ConnectionSpec),
            /port-forward upgrade refused: 404/,
        );
    });

    it("a service without a ready pod, or whose target port no container names, fails naming it", async () => {
        await assert.rejects(
            openClient({ ...spec(), service: "clickhouse-down" } as ConnectionSpec),
            /no ready pod behind service db\/clickhouse-down \(selector app=down\)/,
        );
        await assert.rejects(
            openClient({ ...spec(), service: "clickhouse-noport" } as ConnectionSpec),
            /pod clickhouse-1 has no container port named 'metrics'/,
        );
    });

    it("kubeconfig: client certificates, CA and an exec credential plugin", async () => {
        const certs = path.join(path.dirname(kubeconfig), "certs");
        fs.writeFileSync(
            certs,
            [
                "current-context: c",
                "contexts: [{ name: c, context: { cluster: k, user: u } }]",
                `clusters: [{ name: k, cluster: { server: "https://10.0.0.1:6443/", certificate-authority-data: ${Buffer.from("CA").toString("base64")} } }]`,
                `users: [{ name: u, user: { client-certificate-data: ${Buffer.from("CERT").toString("base64")}, client-key-data: ${Buffer.from("KEY").toString("base64")} } }]`,
            ].join("\n"),
        );
        const k = loadKubeconfig({ fromFile: certs });
        const tls: https.RequestOptions = {};
        await k.applyToHTTPSOptions(tls);
        assert.equal(k.getCurrentCluster()!.server, "https://10.0.0.1:6443");
        assert.equal(String(tls.ca), "CA");
        assert.equal(String(tls.cert), "CERT");
        assert.equal(String(tls.key), "KEY");
        const exec = path.join(path.dirname(kubeconfig), "exec");
        fs.writeFileSync(
            exec,
            fs
                .readFileSync(kubeconfig, "utf8")
                .replace(
                    `user: { token: ${TOKEN} }`,
                    `user: { exec: { command: "${process.execPath}", args: ["-e", "console.log(JSON.stringify({ kind: 'ExecCredential', status: { token: '${TOKEN}' } }))"] } }`,
                ),
        );
        const opened = await openClient({
            ...spec(),
            kubeconfig: { fromFile: exec },
        } as ConnectionSpec);
        try {
            assert.equal((await queryRows<{ x: number }>(opened.client, "SELECT 1 AS x"))[0]!.x, 1);
        } finally {
            await opened.close();
        }
    });
});

describe("StreamIngestion resource (Pulumi mocks)", () => {
    it("registers one dynamic resource with the stream's spec, safe defaults and the stub provider", async () => {
        const recorded: pulumi.runtime.MockResourceArgs[] = [];
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => {
                    recorded.push(args);
                    return {
                        id: `${args.name}-id`,
                        state: {
                            ...args.inputs,
                            plannedStatements: ["[create] CREATE DATABASE IF NOT EXISTS `ingest`"],
                        },
                    };
                },
                call: (args) => {
                    throw new Error(`unexpected call ${args.token}`);
                },
            },
            PROJECT,
            "test",
            true,
        );
        const { StreamIngestion } = await import("../../components/ingestion");
        const loaded = loadStreams().find((s) => s.spec.name === "orders")!;
        const r = new StreamIngestion("ingestion-orders", {
            stream: loaded,
            database: "ingest",
            kafkaBrokers: "kafka:9092",
            connection: {
                kind: "http",
                url: "http://ch:8123",
                password: { fromConfig: "clickhouseAdminPassword" },
            },
        });
        const planned = await new Promise<string[]>((resolve) =>
            r.plannedStatements.apply(resolve),
        );
        assert.deepEqual(planned, ["[create] CREATE DATABASE IF NOT EXISTS `ingest`"]);
        assert.equal(recorded.length, 1);
        const { type, name, inputs: props } = recorded[0]!;
        assert.equal(type, "pulumi-nodejs:dynamic/ingestion:StreamIngestion");
        assert.equal(name, "ingestion-orders");
        assert.deepEqual(props["stream"], JSON.parse(JSON.stringify(loaded.spec)));
        assert.equal(props["allowDestructiveChanges"], false);
        assert.equal(props["dropTargetOnDelete"], false);
        assert.deepEqual(props["connection"], {
            kind: "http",
            url: "http://ch:8123",
            password: { fromConfig: "clickhouseAdminPassword" },
        });
        assert.equal(typeof props["__provider"], "string");
        assert.ok((props["__provider"] as string).length < 8000);
        assert.ok(!(props["__provider"] as string).includes(PASSWORD));
    });
});
