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
import { serveEngine, type ServerTls } from "../../runtime/chserver-http";

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
    /** `http://127.0.0.1:<port>`, or `https://` with `tls` */
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

/**
 * The ClickHouse HTTP interface of the local runtime (runtime/chserver-http.ts) in front of this
 * process's embedded engine, on a loopback port, accepting one user: it lets tests exercise the
 * real HTTP transport and its credentials end to end, and records every request. With `tls` it
 * speaks HTTPS with that certificate, as ClickHouse's `https_port`.
 */
export async function serveHttp(
    ch: EmbeddedClickHouse,
    credentials: { username: string; password: string },
    tls?: ServerTls,
): Promise<HttpFront> {
    const requests: Array<{
        url: string;
        headers: Record<string, string | string[] | undefined>;
        body: string;
    }> = [];
    const served = await serveEngine(
        ch.path,
        credentials,
        (req) => {
            const chunks: Buffer[] = [];
            requests.push({
                url: req.url ?? "",
                headers: req.headers,
                get body() {
                    return Buffer.concat(chunks).toString("utf8");
                },
            });
            // Paused first, so listening does not start the flow: the front end reads the body at
            // its own pace and every chunk it reads is seen here too.
            req.pause();
            req.on("data", (c: Buffer) => chunks.push(c));
        },
        tls,
    );
    return { url: served.url, port: served.port, requests, close: () => served.close() };
}
