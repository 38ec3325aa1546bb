/**
 * The provider's connection over TLS (issue 12, acceptance 5): the local ClickHouse HTTP front
 * end serves HTTPS with a certificate this test makes (a CA and a server certificate from the
 * openssl CLI), and the provider's own `openClient` connects to it with the CA, refuses another
 * CA or a certificate made for another name with a message naming the CA verification, and
 * refuses plain `http://` unless `allowInsecureHttp` says so. The port-forward connection reaches
 * the same front end through a Kubernetes API stand-in (services, pods, Secrets and the
 * portforward subresource over WebSocket, as in provider.test.ts) and checks the certificate
 * against the Service's name, with the CA read from the TLS Secret's ca.crt.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { WebSocketServer } from "ws";
import { ConnectionSpec, openClient } from "../../components/ingestion/connection";
import {
    EmbeddedClickHouse,
    HttpFront,
    openEmbedded,
    queryRows,
    serveHttp,
} from "../harness/clickhouse";
import { bridgePortForward, writeTokenKubeconfig } from "../harness/fake-kube";

const USER = "ingest_admin";
const PASSWORD = "tls-test-password";

let dir: string;
let ch: EmbeddedClickHouse;
/** HTTPS with a certificate for 127.0.0.1 and clickhouse.db.svc, signed by the test's CA. */
let secure: HttpFront;
/** The same engine over plain HTTP. */
let plain: HttpFront;

function openssl(...args: string[]): void {
    const r = childProcess.spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.error)
        throw new Error(`openssl is needed to make the test's certificates: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${r.stderr}`);
}

/** A self-signed CA: `<name>.crt`, `<name>.key`. */
function makeCa(name: string): void {
    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        `/CN=${name}`,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.crt`,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    );
}

/** A server certificate for `sans`, signed by `ca`: `<name>.crt`, `<name>.key`. */
function makeServerCert(name: string, ca: string, sans: string): void {
    openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        `/CN=${name}`,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
    );
    fs.writeFileSync(
        path.join(dir, `${name}.ext`),
        `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
    );
    openssl(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        `${ca}.crt`,
        "-CAkey",
        `${ca}.key`,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        `${name}.ext`,
        "-out",
        `${name}.crt`,
    );
}

const file = (name: string) => path.join(dir, name);

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-tls-"));
    makeCa("ca");
    makeCa("other-ca");
    makeServerCert("server", "ca", "IP:127.0.0.1,DNS:clickhouse.db.svc");
    ch = await openEmbedded();
    const credentials = { username: USER, password: PASSWORD };
    secure = await serveHttp(ch, credentials, {
        cert: fs.readFileSync(file("server.crt")),
        key: fs.readFileSync(file("server.key")),
    });
    plain = await serveHttp(ch, credentials);
});
after(async () => {
    await secure?.close();
    await plain?.close();
    await ch?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const https = (over: Partial<Extract<ConnectionSpec, { kind: "http" }>> = {}): ConnectionSpec => ({
    kind: "http",
    url: secure.url,
    username: USER,
    password: { fromEnv: "KCS_TLS_TEST_PASSWORD" },
    ca: { fromFile: file("ca.crt") },
    ...over,
});

before(() => {
    process.env["KCS_TLS_TEST_PASSWORD"] = PASSWORD;
});

async function version(spec: ConnectionSpec): Promise<string> {
    const opened = await openClient(spec);
    try {
        return (await queryRows<{ v: string }>(opened.client, "SELECT version() AS v"))[0]!.v;
    } finally {
        await opened.close();
    }
}

describe("url connection over TLS", () => {
    it("connects with the CA that issued the server's certificate, from a file or the environment", async () => {
        assert.match(secure.url, /^https:\/\/127\.0\.0\.1:\d+$/);
        const before = secure.requests.length;
        assert.match(await version(https()), /^\d+\.\d+/);
        process.env["KCS_TLS_TEST_CA"] = fs.readFileSync(file("ca.crt"), "utf8");
        assert.match(await version(https({ ca: { fromEnv: "KCS_TLS_TEST_CA" } })), /^\d+\.\d+/);
        // The queries went to the HTTPS front end, authenticated.
        const sent = secure.requests.slice(before);
        assert.ok(sent.length >= 2);
        assert.ok(
            sent.every(
                (r) => r.headers["x-clickhouse-user"] === USER || r.headers["authorization"],
            ),
        );
    });

    it("refuses a certificate another CA issued, naming the CA verification and the source", async () => {
        const before = secure.requests.length;
        await assert.rejects(
            openClient(https({ ca: { fromFile: file("other-ca.crt") } })),
            (e: Error) => {
                assert.equal(e.name, "ConnectionError");
                assert.match(
                    e.message,
                    /^TLS: the certificate of https:\/\/127\.0\.0\.1:\d+ failed CA verification \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: .*\); check that connection\.ca \{"fromFile":".*other-ca\.crt"\} is the CA that issued the server's certificate/,
                );
                return true;
            },
        );
        // Without a CA, the system's store does not know the test's CA either.
        await assert.rejects(
            openClient(https({ ca: undefined })),
            /failed CA verification .*the system's CA store \(connection\.ca is not set\)/,
        );
        assert.equal(secure.requests.length, before, "no request (and no password) was sent");
    });

    it("refuses a certificate made for another name", async () => {
        // The same certificate, reached by a name it does not carry.
        const byName = secure.url.replace("127.0.0.1", "localhost");
        await assert.rejects(
            openClient(https({ url: byName })),
            /failed CA verification \(ERR_TLS_CERT_ALTNAME_INVALID: .*\); the certificate is not made for 'localhost'/,
        );
    });

    it("a CA source that holds no certificate is named", async () => {
        fs.writeFileSync(file("not-a-ca.crt"), "hello");
        await assert.rejects(
            openClient(https({ ca: { fromFile: file("not-a-ca.crt") } })),
            /connection\.ca \{"fromFile":".*not-a-ca\.crt"\} holds no PEM certificate/,
        );
        await assert.rejects(
            openClient(https({ ca: { fromFile: file("missing.crt") } })),
            /connection\.ca: cannot read CA file .*missing\.crt/,
        );
    });

    it("refuses plain http:// unless allowInsecureHttp is set, and then connects", async () => {
        const before = plain.requests.length;
        await assert.rejects(
            openClient(https({ url: plain.url, ca: undefined })),
            /connection\.url http:\/\/127\.0\.0\.1:\d+ is plain http:\/\/: .*set connection\.allowInsecureHttp: true .*ingestionAllowInsecureHttp/,
        );
        assert.equal(plain.requests.length, before, "nothing was sent");
        assert.match(
            await version(https({ url: plain.url, ca: undefined, allowInsecureHttp: true })),
            /^\d+\.\d+/,
        );
        assert.ok(plain.requests.length > before);
    });
});

// ---------------------------------------------------------------------------------------------
// Port-forward over TLS through a Kubernetes API stand-in: the service `clickhouse` in `db` with
// its https port, one ready pod, the Secrets `clickhouse-tls` (ca.crt of the test's CA),
// `other-tls` (another CA) and `clickhouse-auth`, and the pod's portforward subresource
// (v4.channel.k8s.io: each message starts with its channel byte, 0 data and 1 error, and the
// first message of each channel carries the port) piped to the HTTPS front end.
// ---------------------------------------------------------------------------------------------

const TOKEN = "tls-test-token";

async function kubeStandIn(): Promise<{ url: string; close(): Promise<void> }> {
    const json = (res: http.ServerResponse, code: number, body: unknown) => {
        res.writeHead(code, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
    };
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const secrets: Record<string, Record<string, string>> = {
        "clickhouse-tls": { "ca.crt": b64(fs.readFileSync(file("ca.crt"), "utf8")) },
        "other-tls": { "ca.crt": b64(fs.readFileSync(file("other-ca.crt"), "utf8")) },
        "clickhouse-auth": { password: b64(PASSWORD) },
    };
    const server = http.createServer((req, res) => {
        if (req.headers["authorization"] !== `Bearer ${TOKEN}`)
            return json(res, 401, { kind: "Status", message: "Unauthorized" });
        const url = new URL(req.url ?? "/", "http://x");
        if (url.pathname === "/api/v1/namespaces/db/services/clickhouse")
            return json(res, 200, {
                spec: {
                    selector: { app: "clickhouse" },
                    ports: [{ port: 8443, targetPort: "https" }],
                },
            });
        if (
            url.pathname === "/api/v1/namespaces/db/pods" &&
            url.searchParams.get("labelSelector") === "app=clickhouse"
        )
            return json(res, 200, {
                items: [
                    {
                        metadata: { name: "clickhouse-0" },
                        spec: { containers: [{ ports: [{ name: "https", containerPort: 8443 }] }] },
                        status: {
                            phase: "Running",
                            conditions: [{ type: "Ready", status: "True" }],
                        },
                    },
                ],
            });
        const secret = /^\/api\/v1\/namespaces\/db\/secrets\/([^/]+)$/.exec(url.pathname);
        if (secret && secrets[secret[1]!]) return json(res, 200, { data: secrets[secret[1]!] });
        json(res, 404, { kind: "Status", message: `${url.pathname} not found` });
    });
    const wss = new WebSocketServer({
        noServer: true,
        handleProtocols: (offered) =>
            offered.has("v4.channel.k8s.io") ? "v4.channel.k8s.io" : false,
    });
    server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        if (
            req.headers["authorization"] !== `Bearer ${TOKEN}` ||
            req.url !== "/api/v1/namespaces/db/pods/clickhouse-0/portforward?ports=8443"
        ) {
            socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
            return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
            bridgePortForward(ws, 8443, secure.port);
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return {
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        close: () =>
            new Promise<void>((resolve) => {
                for (const ws of wss.clients) ws.terminate();
                wss.close();
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

describe("port-forward connection over TLS", () => {
    let kube: Awaited<ReturnType<typeof kubeStandIn>>;
    let kubeconfig: string;

    before(async () => {
        kube = await kubeStandIn();
        kubeconfig = writeTokenKubeconfig(kube.url, TOKEN, "kcs-tls-kube-");
    });
    after(async () => {
        await kube?.close();
        if (kubeconfig) fs.rmSync(path.dirname(kubeconfig), { recursive: true, force: true });
    });

    const forward = (secret: string, serverName: string): ConnectionSpec => ({
        kind: "port-forward",
        kubeconfig: { fromFile: kubeconfig },
        namespace: "db",
        service: "clickhouse",
        username: USER,
        password: {
            fromKubernetesSecret: { namespace: "db", name: "clickhouse-auth", key: "password" },
        },
        tls: {
            ca: { fromKubernetesSecret: { namespace: "db", name: secret, key: "ca.crt" } },
            serverName,
        },
    });

    it("connects through the tunnel, verifying the CA from the Secret and the Service's name", async () => {
        const before = secure.requests.length;
        const opened = await openClient(forward("clickhouse-tls", "clickhouse.db.svc"));
        try {
            assert.equal(opened.describe, "pod db/clickhouse-0:8443 (port-forward, TLS)");
            const rows = await queryRows<{ v: string }>(opened.client, "SELECT version() AS v");
            assert.match(rows[0]!.v, /^\d+\.\d+/);
        } finally {
            await opened.close();
        }
        assert.ok(secure.requests.length > before, "the query went to the HTTPS front end");
    });

    it("refuses a certificate not made for the name, or not issued by the Secret's CA", async () => {
        const before = secure.requests.length;
        await assert.rejects(
            openClient(forward("clickhouse-tls", "clickhouse.other.svc")),
            /^ConnectionError: TLS: the certificate of pod db\/clickhouse-0:8443 \(port-forward, TLS\) as clickhouse\.other\.svc failed CA verification \(ERR_TLS_CERT_ALTNAME_INVALID: .*\); the certificate is not made for 'clickhouse\.other\.svc'/,
        );
        await assert.rejects(
            openClient(forward("other-tls", "clickhouse.db.svc")),
            /failed CA verification \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: .*\); check that connection\.tls\.ca \{"fromKubernetesSecret":\{"namespace":"db","name":"other-tls","key":"ca\.crt"\}\} is the CA/,
        );
        assert.equal(secure.requests.length, before, "no request (and no password) was sent");
    });
});
