/**
 * ClickHouse for tests: the real engine (chdb, ClickHouse 26.x in-process) behind the real
 * `@clickhouse/client`, opened the same way the provider opens an `embedded` connection.
 *
 * chdb binds one data directory per process and node:test runs each test file in its own process,
 * so each file opens one engine (once, in `before`) and isolates cases by database name.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openClient, shutdownEmbedded } from "../../components/ingestion/connection";

export interface EmbeddedClickHouse {
    readonly client: ClickHouseClient;
    /** The chdb data directory (pass it to an `embedded` connection to share this engine). */
    readonly path: string;
    /** The server config file the engine was started with. */
    readonly configFile: string;
    /**
     * Shuts the engine down and deletes the directory. Once per process: after chdb has shut an
     * engine down, a new one in the same process cannot create Kafka tables.
     */
    close(): Promise<void>;
}

/**
 * Opens chdb on a fresh directory (or `dir`, created if missing). The engine always gets an
 * explicit `--config-file` (by default an empty one), so a `config.xml` in the working directory,
 * which chdb would otherwise read, cannot change test behaviour.
 */
export async function openEmbedded(
    dir?: string,
    options: { configXml?: string } = {},
): Promise<EmbeddedClickHouse> {
    const root = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "kcs-chdb-"));
    fs.mkdirSync(root, { recursive: true });
    const dataPath = path.join(root, "data");
    const configFile = path.join(root, "config.xml");
    fs.writeFileSync(configFile, options.configXml ?? "<clickhouse></clickhouse>\n");
    const opened = await openClient({ kind: "embedded", path: dataPath, configFile });
    return {
        client: opened.client,
        path: dataPath,
        configFile,
        close: async () => {
            try {
                await opened.close();
                await shutdownEmbedded();
            } finally {
                fs.rmSync(root, { recursive: true, force: true });
            }
        },
    };
}

/** Rows of a query as objects (values bound as parameters): the product's own helper. */
export { queryRows } from "../../components/ingestion/introspect";

export interface HttpFront {
    /** `http://127.0.0.1:<port>` */
    readonly url: string;
    readonly port: number;
    /** Every request's headers, URL and body, as received (to check what went over the wire). */
    readonly requests: ReadonlyArray<{
        url: string;
        headers: Record<string, string | string[] | undefined>;
        body: string;
    }>;
    close(): Promise<void>;
}

/** URL parameters of the ClickHouse HTTP interface that are not settings. */
const HTTP_CONTROL_PARAMS = new Set([
    "query",
    "query_id",
    "database",
    "session_id",
    "session_timeout",
    "session_check",
    "default_format",
    "user",
    "password",
    "role",
]);

/**
 * The ClickHouse HTTP interface in front of an embedded engine, on a loopback port, with basic or
 * X-ClickHouse-User/Key authentication: enough of the protocol for `@clickhouse/client` (POSTed
 * query, `param_*` query parameters, settings as URL parameters, errors as `Code: N. ...`).
 * It lets tests exercise the real HTTP transport and its credentials end to end.
 */
export async function serveHttp(
    client: ClickHouseClient,
    credentials: { username: string; password: string },
): Promise<HttpFront> {
    const http = await import("node:http");
    const requests: Array<{
        url: string;
        headers: Record<string, string | string[] | undefined>;
        body: string;
    }> = [];
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            requests.push({ url: req.url ?? "", headers: req.headers, body });
            const url = new URL(req.url ?? "/", "http://localhost");
            if (url.pathname === "/ping") {
                res.end("Ok.\n");
                return;
            }
            let user = req.headers["x-clickhouse-user"] as string | undefined;
            let key = req.headers["x-clickhouse-key"] as string | undefined;
            const auth = req.headers["authorization"];
            if (auth?.startsWith("Basic ")) {
                const decoded = Buffer.from(auth.slice(6), "base64").toString("utf8");
                user = decoded.slice(0, decoded.indexOf(":"));
                key = decoded.slice(decoded.indexOf(":") + 1);
            }
            if (user !== credentials.username || key !== credentials.password) {
                res.writeHead(401, { "X-ClickHouse-Exception-Code": "516" });
                res.end(
                    `Code: 516. DB::Exception: ${user ?? "default"}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n`,
                );
                return;
            }
            const params: Record<string, string> = {};
            const settings: Record<string, string> = {};
            for (const [k, v] of url.searchParams) {
                if (k.startsWith("param_")) params[k.slice(6)] = v;
                else if (!HTTP_CONTROL_PARAMS.has(k)) settings[k] = v;
            }
            const sql = url.searchParams.has("query")
                ? `${url.searchParams.get("query")}\n${body}`
                : body;
            // HTTP sends parameters in their text form; `SET param_x` takes exactly that form
            // (chdb's own binder would quote it a second time).
            const literal = (v: string) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
            const query = [
                ...Object.entries(params).map(([k, v]) => `SET param_${k} = ${literal(v)}`),
                sql,
            ].join(";\n");
            client
                .exec({ query, clickhouse_settings: settings })
                .then(async (r) => {
                    const out: Buffer[] = [];
                    for await (const c of r.stream) out.push(Buffer.from(c as Buffer));
                    res.writeHead(200, {
                        "X-ClickHouse-Query-Id": r.query_id,
                        "X-ClickHouse-Summary": "{}",
                        "Content-Type": "text/plain; charset=UTF-8",
                    });
                    res.end(Buffer.concat(out));
                })
                .catch((e: { code?: string; type?: string; message?: string }) => {
                    res.writeHead(500, { "X-ClickHouse-Exception-Code": String(e.code ?? 1002) });
                    res.end(
                        `Code: ${e.code ?? 1002}. DB::Exception: ${e.message}. (${e.type ?? "UNKNOWN_EXCEPTION"})\n`,
                    );
                });
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const port = (server.address() as { port: number }).port;
    return {
        url: `http://127.0.0.1:${port}`,
        port,
        requests,
        close: () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}
