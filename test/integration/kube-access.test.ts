/**
 * components/ingestion/kube.ts against a stand-in for the Kubernetes API (HTTP and HTTPS, the
 * portforward subresource over WebSocket with `ws`): how a kubeconfig is found (`$KUBECONFIG`,
 * `~/.kube/config`, the in-cluster service account), credentials from an exec plugin and from the
 * service account's token file, the API's errors, and the port-forward's error channel.
 *
 * The stand-in answers in namespace `db`: Secret `auth` (key `password`), Secret `locked` (403 with
 * a Status), Secret `broken` (500, plain text), service `headless` (no selector), and the
 * portforward of pod `echo-0`: port 7000 echoes, port 7001 answers the first bytes with an error
 * frame (as the kubelet does when nothing listens on the pod's port).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as diagnostics from "node:diagnostics_channel";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { WebSocketServer } from "ws";
import {
    loadKubeconfig,
    readSecretKey,
    resolvePortForwardTarget,
    startPortForward,
} from "../../components/ingestion/kube";
import { withTransportReason } from "../../components/ingestion/connection";
import { ConnectionError } from "../../components/ingestion/connection-errors";

const PASSWORD = "s3cret-from-the-secret";
const ECHO_PORT = 7000;
const REFUSED_PORT = 7001;
const FORWARD_ERROR = `error forwarding port ${REFUSED_PORT} to pod echo-0, uid : failed to connect to localhost:${REFUSED_PORT} inside namespace "db": connection refused`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-kube-access-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// The stand-in

interface FakeKube {
    readonly url: string;
    /** The Authorization header of every request and upgrade, in order. */
    readonly auth: string[];
    /** Resolves once a portforward WebSocket that carried an error frame has been closed. */
    erroredForwardClosed(): Promise<void>;
    close(): Promise<void>;
}

async function fakeKube(
    tokens: readonly string[],
    tls?: { key: string; cert: string },
): Promise<FakeKube> {
    const auth: string[] = [];
    const allowed = (req: http.IncomingMessage) => {
        auth.push(String(req.headers["authorization"]));
        return tokens.some((t) => req.headers["authorization"] === `Bearer ${t}`);
    };
    const json = (res: http.ServerResponse, code: number, body: unknown) => {
        res.writeHead(code, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
    };
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        if (!allowed(req)) return json(res, 401, { kind: "Status", message: "Unauthorized" });
        switch (new URL(req.url ?? "/", "http://x").pathname) {
            case "/api/v1/namespaces/db/secrets/auth":
                return json(res, 200, {
                    data: { password: Buffer.from(PASSWORD).toString("base64") },
                });
            case "/api/v1/namespaces/db/secrets/locked":
                return json(res, 403, {
                    kind: "Status",
                    message: `secrets "locked" is forbidden: User "robot" cannot get resource "secrets" in namespace "db"`,
                });
            case "/api/v1/namespaces/db/secrets/broken":
                res.writeHead(500, { "Content-Type": "text/plain" });
                return res.end("etcdserver: request timed out");
            case "/api/v1/namespaces/db/services/headless":
                return json(res, 200, { spec: { ports: [{ port: ECHO_PORT }] } });
        }
        json(res, 404, { kind: "Status", message: "not found" });
    };
    const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    let erroredClosed: () => void = () => {};
    const erroredForwardClosed = new Promise<void>((resolve) => (erroredClosed = resolve));
    const wss = new WebSocketServer({
        noServer: true,
        handleProtocols: (offered) =>
            offered.has("v4.channel.k8s.io") ? "v4.channel.k8s.io" : false,
    });
    server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
        const m = /^\/api\/v1\/namespaces\/db\/pods\/echo-0\/portforward\?ports=(\d+)$/.exec(
            req.url ?? "",
        );
        if (!allowed(req) || !m) {
            socket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
            return;
        }
        const port = Number(m[1]);
        wss.handleUpgrade(req, socket, head, (ws) => {
            // v4.channel.k8s.io: each frame starts with its channel (0 data, 1 error); the first
            // frame of each channel carries the port, little-endian.
            const frame = (channel: number, data: Buffer) =>
                ws.send(Buffer.concat([Buffer.from([channel]), data]));
            const portBytes = Buffer.alloc(2);
            portBytes.writeUInt16LE(port);
            frame(0, portBytes);
            frame(1, portBytes);
            let sentError = false;
            ws.on("message", (data: Buffer, isBinary) => {
                if (!isBinary || data[0] !== 0 || data.length < 2) return;
                if (port === ECHO_PORT) return frame(0, data.subarray(1));
                frame(1, Buffer.from(FORWARD_ERROR));
                sentError = true;
            });
            ws.on("close", () => {
                if (sentError) erroredClosed();
            });
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const { port } = server.address() as net.AddressInfo;
    return {
        url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
        auth,
        erroredForwardClosed: () => erroredForwardClosed,
        close: () =>
            new Promise<void>((resolve) => {
                for (const ws of wss.clients) ws.terminate();
                wss.close();
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

/** A kubeconfig (YAML text) for `server` whose user is `user` (a flow mapping). */
const kubeconfigText = (server: string, user: string, userName = "robot") =>
    [
        "apiVersion: v1",
        "kind: Config",
        "current-context: test",
        `contexts: [{ name: test, context: { cluster: fake, user: ${userName} } }]`,
        `clusters: [{ name: fake, cluster: { server: "${server}" } }]`,
        `users: [{ name: ${userName}, user: ${user} }]`,
    ].join("\n");

/** Sets environment variables for the length of `body`, then restores them. */
async function withEnv<T>(
    vars: Record<string, string | undefined>,
    body: () => Promise<T> | T,
): Promise<T> {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    const set = (v: Record<string, string | undefined>) => {
        for (const [k, value] of Object.entries(v)) {
            if (value === undefined) delete process.env[k];
            else process.env[k] = value;
        }
    };
    set(vars);
    try {
        return await body();
    } finally {
        set(saved);
    }
}

// ---------------------------------------------------------------------------------------------

describe("kubeconfig without a source", () => {
    const home = path.join(dir, "home");
    const server = (n: number) => `http://127.0.0.1:${n}`;

    it("takes the first file of $KUBECONFIG that exists", async () => {
        const first = path.join(dir, "kc-first");
        fs.writeFileSync(first, kubeconfigText(server(1001), "{ token: t }"));
        const missing = path.join(dir, "kc-missing");
        const kc = await withEnv(
            { KUBECONFIG: [missing, first].join(path.delimiter), HOME: home },
            () => loadKubeconfig(undefined),
        );
        assert.equal(kc.getCurrentCluster()?.server, server(1001));
    });

    it("else ~/.kube/config", async () => {
        fs.mkdirSync(path.join(home, ".kube"), { recursive: true });
        fs.writeFileSync(
            path.join(home, ".kube", "config"),
            kubeconfigText(server(1002), "{ token: t }"),
        );
        const kc = await withEnv(
            { KUBECONFIG: path.join(dir, "kc-missing"), HOME: home, KUBERNETES_SERVICE_HOST: "" },
            () => loadKubeconfig(undefined),
        );
        assert.equal(kc.getCurrentCluster()?.server, server(1002));
    });

    it("else, outside a cluster, fails saying to set connection.kubeconfig", async () => {
        const empty = path.join(dir, "empty-home");
        fs.mkdirSync(empty, { recursive: true });
        await withEnv(
            { KUBECONFIG: undefined, HOME: empty, KUBERNETES_SERVICE_HOST: undefined },
            () =>
                assert.throws(
                    () => loadKubeconfig(undefined),
                    (e: Error) =>
                        e instanceof ConnectionError &&
                        /no kubeconfig found and not running inside a cluster; set connection\.kubeconfig/.test(
                            e.message,
                        ),
                ),
        );
    });

    it("a file or text that is not a kubeconfig fails naming the file", () => {
        const bad = path.join(dir, "kc-bad");
        fs.writeFileSync(bad, "clusters: [unclosed");
        assert.throws(
            () => loadKubeconfig({ fromFile: bad }),
            /^ConnectionError: kubeconfig .*kc-bad: /,
        );
        assert.throws(
            () => loadKubeconfig({ fromFile: path.join(dir, "kc-absent") }),
            /kubeconfig .*kc-absent: .*ENOENT/,
        );
        assert.throws(
            () => loadKubeconfig({ text: "clusters: [unclosed" }),
            /^ConnectionError: kubeconfig: /,
        );
    });
});

describe("exec credential plugin", () => {
    const TOKEN = "token-from-the-plugin";
    let kube: FakeKube;
    // The plugin: prints an ExecCredential, or fails as its first argument says.
    const plugin = path.join(dir, "credential-plugin.js");
    const execUser = (mode: string) =>
        `{ exec: { apiVersion: client.authentication.k8s.io/v1, command: "${process.execPath}", args: ["${plugin}", "${mode}"] } }`;

    before(async () => {
        kube = await fakeKube([TOKEN]);
        fs.writeFileSync(
            plugin,
            [
                "const mode = process.argv[2];",
                "if (mode === 'expired') { process.stderr.write('refresh token expired; run the login command again'); process.exit(1); }",
                "if (mode === 'silent') process.exit(3);",
                `process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: ${JSON.stringify(TOKEN)} } }));`,
            ].join("\n"),
        );
    });
    after(() => kube?.close());

    it("its token authenticates the Secret read", async () => {
        const kc = loadKubeconfig({ text: kubeconfigText(kube.url, execUser("ok"), "ok") });
        kube.auth.length = 0;
        const value = await readSecretKey(kc, { namespace: "db", name: "auth", key: "password" });
        assert.equal(value, PASSWORD);
        assert.deepEqual(kube.auth, [`Bearer ${TOKEN}`]);
    });

    it("a plugin that fails is named, with what it printed on stderr", async () => {
        const kc = loadKubeconfig({
            text: kubeconfigText(kube.url, execUser("expired"), "expired"),
        });
        kube.auth.length = 0;
        await assert.rejects(
            readSecretKey(kc, { namespace: "db", name: "auth", key: "password" }),
            (e: Error) =>
                e instanceof ConnectionError &&
                e.message ===
                    `kubeconfig exec plugin ${process.execPath} failed: refresh token expired; run the login command again`,
        );
        assert.deepEqual(kube.auth, [], "no request is sent without credentials");
    });

    it("a plugin that fails silently is named too, and the port-forward handshake says so", async () => {
        const kc = loadKubeconfig({
            text: kubeconfigText(kube.url, execUser("silent"), "silent"),
        });
        const expected = `kubeconfig exec plugin ${process.execPath} failed: it exited non-zero and printed nothing on stderr`;
        await assert.rejects(
            readSecretKey(kc, { namespace: "db", name: "auth", key: "password" }),
            (e: Error) => e.message === expected,
        );
        await assert.rejects(
            startPortForward(kc, "db", { pod: "echo-0" }, ECHO_PORT),
            (e: Error) => e instanceof ConnectionError && e.message === expected,
        );
    });
});

describe("in-cluster service account", () => {
    const TOKEN = "service-account-token";
    const prefix = path.join(dir, "pod-root");
    const account = path.join(prefix, "var", "run", "secrets", "kubernetes.io", "serviceaccount");
    let kube: FakeKube;
    let serverPort: string;

    /** A self-signed certificate for 127.0.0.1 (openssl), as PEM key and certificate. */
    function selfSigned(name: string): { key: string; cert: string } {
        const key = path.join(dir, `${name}.key`);
        const cert = path.join(dir, `${name}.crt`);
        // An EC key: quick to make, unlike RSA.
        try {
            execFileSync(
                "openssl",
                [
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    key,
                    "-out",
                    cert,
                    "-days",
                    "1",
                    "-subj",
                    `/CN=${name}`,
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ],
                { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 },
            );
        } catch (e) {
            throw new Error(
                `openssl could not make a test certificate (install openssl): ${(e as Error).message}`,
            );
        }
        return { key: fs.readFileSync(key, "utf8"), cert: fs.readFileSync(cert, "utf8") };
    }

    before(async () => {
        const tls = selfSigned("kcs-test-apiserver");
        kube = await fakeKube([TOKEN], tls);
        serverPort = new URL(kube.url).port;
        fs.mkdirSync(account, { recursive: true });
        fs.writeFileSync(path.join(account, "token"), TOKEN);
        fs.writeFileSync(path.join(account, "ca.crt"), tls.cert);
        fs.writeFileSync(path.join(account, "namespace"), "db");
    });
    after(() => kube?.close());

    const inClusterEnv = () => ({
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: serverPort,
    });

    it("reads a Secret over TLS with the token file, verifying the API server against ca.crt", async () => {
        const kc = await withEnv(inClusterEnv(), () =>
            loadKubeconfig({ inCluster: true }, { inClusterPathPrefix: prefix }),
        );
        assert.equal(kc.getCurrentCluster()?.server, `https://127.0.0.1:${serverPort}`);
        assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, "db");
        kube.auth.length = 0;
        const value = await readSecretKey(kc, { namespace: "db", name: "auth", key: "password" });
        assert.equal(value, PASSWORD);
        assert.deepEqual(kube.auth, [`Bearer ${TOKEN}`]);
    });

    it("is the last resort when no kubeconfig file exists", async () => {
        const empty = path.join(dir, "no-kube-home");
        fs.mkdirSync(empty, { recursive: true });
        const kc = await withEnv({ ...inClusterEnv(), KUBECONFIG: undefined, HOME: empty }, () =>
            loadKubeconfig(undefined, { inClusterPathPrefix: prefix }),
        );
        assert.equal(
            await readSecretKey(kc, { namespace: "db", name: "auth", key: "password" }),
            PASSWORD,
        );
    });

    it("refuses an API server its ca.crt did not sign, naming the server", async () => {
        const otherRoot = path.join(dir, "other-pod-root");
        const otherAccount = account.replace(prefix, otherRoot);
        fs.mkdirSync(otherAccount, { recursive: true });
        fs.writeFileSync(path.join(otherAccount, "token"), TOKEN);
        fs.writeFileSync(path.join(otherAccount, "ca.crt"), selfSigned("kcs-test-other-ca").cert);
        const kc = await withEnv(inClusterEnv(), () =>
            loadKubeconfig({ inCluster: true }, { inClusterPathPrefix: otherRoot }),
        );
        kube.auth.length = 0;
        await assert.rejects(
            readSecretKey(kc, { namespace: "db", name: "auth", key: "password" }),
            (e: Error) =>
                e instanceof ConnectionError &&
                e.message.startsWith(`Kubernetes API https://127.0.0.1:${serverPort}: `) &&
                /self[- ]signed|unable to verify|certificate/i.test(e.message),
        );
        assert.deepEqual(kube.auth, [], "nothing reached the server");
    });

    it("outside a cluster (no KUBERNETES_SERVICE_HOST) fails before reading any file", async () => {
        await withEnv({ KUBERNETES_SERVICE_HOST: undefined }, () =>
            assert.throws(
                () => loadKubeconfig({ inCluster: true }, { inClusterPathPrefix: prefix }),
                /not running inside a cluster/,
            ),
        );
    });
});

describe("API errors and the port-forward's error channel", () => {
    const TOKEN = "plain-token";
    let kube: FakeKube;
    let kc: ReturnType<typeof loadKubeconfig>;

    before(async () => {
        kube = await fakeKube([TOKEN]);
        kc = loadKubeconfig({ text: kubeconfigText(kube.url, `{ token: ${TOKEN} }`) });
    });
    after(() => kube?.close());

    it("an API error carries the status and the Status message, or the body when it is not JSON", async () => {
        await assert.rejects(
            readSecretKey(kc, { namespace: "db", name: "locked", key: "password" }),
            (e: Error) =>
                e.message ===
                `Kubernetes API GET /api/v1/namespaces/db/secrets/locked: 403 secrets "locked" is forbidden: User "robot" cannot get resource "secrets" in namespace "db"`,
        );
        await assert.rejects(
            readSecretKey(kc, { namespace: "db", name: "broken", key: "password" }),
            (e: Error) =>
                e.message ===
                "Kubernetes API GET /api/v1/namespaces/db/secrets/broken: 500 etcdserver: request timed out",
        );
        await assert.rejects(
            readSecretKey(kc, { namespace: "db", name: "auth", key: "user" }),
            /Kubernetes Secret db\/auth has no key 'user'/,
        );
    });

    it("a service without a selector asks for a pod instead", async () => {
        await assert.rejects(
            resolvePortForwardTarget(kc, "db", { service: "headless" }, ECHO_PORT),
            /service db\/headless has no selector; give connection\.pod instead/,
        );
    });

    /**
     * Connects to the forward's local port, sends `data`, and returns what came back and the
     * error the forward destroyed its side of the connection with (seen through node's
     * `net.server.socket` diagnostics channel, which hands out every accepted socket).
     */
    async function exchange(
        localPort: number,
        data: string,
    ): Promise<{ received: string; serverSideError: Error | undefined }> {
        let serverSideError: Error | undefined;
        const onAccept = (msg: unknown) => {
            const socket = (msg as { socket: net.Socket }).socket;
            if (socket.localPort === localPort) socket.on("error", (e) => (serverSideError = e));
        };
        diagnostics.subscribe("net.server.socket", onAccept);
        try {
            const client = net.connect(localPort, "127.0.0.1");
            let received = "";
            client.on("data", (d: Buffer) => {
                received += d.toString("utf8");
                if (received === data) client.end();
            });
            client.write(data);
            await new Promise<void>((resolve) => {
                client.on("close", () => resolve());
                client.on("error", () => resolve());
            });
            return { received, serverSideError };
        } finally {
            diagnostics.unsubscribe("net.server.socket", onAccept);
        }
    }

    it("bytes go through the forward and back (the control for the next test)", async () => {
        const forward = await startPortForward(kc, "db", { pod: "echo-0" }, ECHO_PORT);
        try {
            assert.equal(forward.describe, `pod db/echo-0:${ECHO_PORT}`);
            const { received, serverSideError } = await exchange(forward.localPort, "ping");
            assert.equal(received, "ping");
            assert.equal(serverSideError, undefined);
            assert.equal(forward.lastError(), undefined);
        } finally {
            await forward.close();
        }
    });

    it(
        "an error frame from the API server ends the connection with that error and closes the WebSocket",
        { timeout: 60_000 },
        async () => {
            // The handshake succeeds: the kubelet reports a refused pod port only once bytes flow.
            const forward = await startPortForward(kc, "db", { pod: "echo-0" }, REFUSED_PORT);
            try {
                const { received, serverSideError } = await exchange(forward.localPort, "ping");
                assert.equal(received, "", "no bytes come back");
                assert.ok(serverSideError instanceof ConnectionError, String(serverSideError));
                const named = `port-forward to pod db/echo-0:${REFUSED_PORT}: ${FORWARD_ERROR}`;
                assert.equal(serverSideError.message, named);
                assert.equal(forward.lastError(), named, "kept for the client's error");
                // What the provider throws when the client saw only a dropped connection.
                const opened = {
                    client: undefined as never,
                    describe: forward.describe,
                    transportError: forward.lastError,
                    close: async () => {},
                };
                const wrapped = withTransportReason(opened, new Error("socket hang up"));
                assert.ok(wrapped instanceof Error);
                assert.equal(wrapped.message, `socket hang up (${named})`);
                const other = new Error(`failed: ${named}`);
                assert.equal(withTransportReason(opened, other), other, "not added twice");
                assert.equal(
                    withTransportReason({ ...opened, transportError: undefined }, other),
                    other,
                );
                // The forward closes its WebSocket (were it left open, this would time out).
                await kube.erroredForwardClosed();
            } finally {
                await forward.close();
            }
        },
    );
});
