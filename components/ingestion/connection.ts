/**
 * How the provider reaches ClickHouse: a `@clickhouse/client` client over
 *
 * - `http`: a URL (credentials never in it),
 * - `port-forward`: the Kubernetes API's portforward subresource to a ClickHouse pod (or a pod
 *   behind a service), spoken over WebSocket with Node built-ins only, for when ClickHouse is only
 *   reachable inside the cluster,
 * - `embedded`: the chdb engine in-process (local loop, tests), loaded only for this kind.
 *
 * Credentials are never values in a connection spec, only references resolved at run time: a stack
 * secret (through the dynamic provider's `configure`), an environment variable, or a Kubernetes
 * Secret. A spec therefore carries nothing secret: Pulumi inputs, outputs and state never hold a
 * password, and `read`/`delete` (which Pulumi calls with outputs only) can still authenticate.
 *
 * Heavy modules (`@clickhouse/client`, `chdb`, `yaml`) are required inside functions, so loading
 * this module costs nothing and chdb's 180 MB engine loads only for `embedded`.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- heavy and optional modules load on
   first use: chdb (180 MB native engine) only for `embedded`, the HTTP client and YAML only when
   a connection is opened, so importing this module (the Pulumi program does) costs nothing. */
import type { ClickHouseClient } from "@clickhouse/client";
import * as crypto from "node:crypto";
import type * as http from "node:http";
import * as net from "node:net";
import { claimEngine, releaseEngine } from "../../schemas/engine";

// ---------------------------------------------------------------------------------------------
// Spec
// ---------------------------------------------------------------------------------------------

/** Where a secret comes from. */
export type SecretSource =
    /** A stack config key holding a secret (`pulumi config set --secret <key> ...`). */
    | { readonly fromConfig: string }
    /** An environment variable of the process running Pulumi. */
    | { readonly fromEnv: string }
    /** A key of a Kubernetes Secret, read through the connection's kubeconfig. */
    | {
          readonly fromKubernetesSecret: {
              readonly namespace: string;
              readonly name: string;
              readonly key: string;
          };
      };

/** Where a kubeconfig comes from. @default `$KUBECONFIG`, else `~/.kube/config`, else in-cluster */
export type KubeconfigSource =
    | { readonly fromConfig: string }
    | { readonly fromEnv: string }
    | { readonly fromFile: string }
    | { readonly inCluster: true };

export interface HttpConnection {
    readonly kind: "http";
    /** `http(s)://host:port`, without credentials. */
    readonly url: string;
    /** @default "default" */
    readonly username?: string;
    /** @default none (passwordless user) */
    readonly password?: SecretSource;
    /** Only for a password `fromKubernetesSecret`. */
    readonly kubeconfig?: KubeconfigSource;
    /** @default 300000 */
    readonly requestTimeoutMs?: number;
}

export interface PortForwardConnection {
    readonly kind: "port-forward";
    readonly kubeconfig?: KubeconfigSource;
    readonly namespace: string;
    /** A ClickHouse pod; or give `service` and a ready pod behind it is picked. */
    readonly pod?: string;
    readonly service?: string;
    /** ClickHouse HTTP port (of the service when `service` is given). @default 8123 */
    readonly port?: number;
    /** @default "default" */
    readonly username?: string;
    readonly password?: SecretSource;
    /** @default 300000 */
    readonly requestTimeoutMs?: number;
}

export interface EmbeddedConnection {
    readonly kind: "embedded";
    /** Data directory of the chdb engine. One per process: chdb refuses a second path. */
    readonly path: string;
    /**
     * Server config passed as `--config-file` (e.g. the `<kafka>` section with SASL settings, or
     * named collections). @default none; chdb then reads `./config.xml` if the working directory
     * has one
     */
    readonly configFile?: string;
}

export type ConnectionSpec = HttpConnection | PortForwardConnection | EmbeddedConnection;

/** Run-time context: the stack config handed to the dynamic provider's `configure`. */
export interface ConnectionContext {
    readonly config?: { get(key: string): string | undefined };
}

export interface OpenedClient {
    readonly client: ClickHouseClient;
    /** Where the client points, for messages (never contains credentials). */
    readonly describe: string;
    close(): Promise<void>;
}

export class ConnectionError extends Error {
    /**
     * True when the stack's own settings are at fault (a missing stack secret or environment
     * variable): waiting will not help, unlike a server or Secret that does not exist yet.
     */
    readonly configProblem: boolean;
    constructor(message: string, options?: { cause?: unknown; configProblem?: boolean }) {
        super(message, options);
        this.name = "ConnectionError";
        this.configProblem = options?.configProblem ?? false;
    }
}

const NAME_1123 = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Problems with a connection spec (empty when valid), phrased with the setting to fix. */
export function connectionProblems(raw: unknown): string[] {
    const p: string[] = [];
    if (typeof raw !== "object" || raw === null)
        return ["connection must be an object with a kind: http, port-forward or embedded"];
    const c = raw as Record<string, unknown>;
    const str = (k: string) => typeof c[k] === "string" && (c[k] as string).length > 0;
    const secret = (k: string) => {
        if (c[k] === undefined) return;
        if (typeof c[k] === "string") {
            p.push(
                `connection.${k} must not be a plain value: use { fromConfig: "<stack secret key>" }, { fromEnv: "VAR" } or { fromKubernetesSecret: { namespace, name, key } }`,
            );
            return;
        }
        p.push(...secretSourceProblems(c[k], `connection.${k}`));
    };
    const kube = () => {
        if (c["kubeconfig"] === undefined) return;
        const k = c["kubeconfig"] as Record<string, unknown>;
        if (
            typeof k !== "object" ||
            k === null ||
            !(
                typeof k["fromConfig"] === "string" ||
                typeof k["fromEnv"] === "string" ||
                typeof k["fromFile"] === "string" ||
                k["inCluster"] === true
            )
        ) {
            p.push(
                "connection.kubeconfig must be { fromConfig }, { fromEnv }, { fromFile } or { inCluster: true }",
            );
        }
    };
    switch (c["kind"]) {
        case "http": {
            if (!str("url")) p.push("connection.url is required for kind 'http'");
            else {
                try {
                    const u = new URL(c["url"] as string);
                    if (u.protocol !== "http:" && u.protocol !== "https:")
                        p.push("connection.url must be http:// or https://");
                    if (u.username || u.password)
                        p.push(
                            "connection.url must not contain credentials; use connection.username and connection.password: { fromConfig: ... }",
                        );
                } catch {
                    p.push(`connection.url ${JSON.stringify(c["url"])} is not a URL`);
                }
            }
            secret("password");
            kube();
            break;
        }
        case "port-forward": {
            if (!str("namespace") || !NAME_1123.test(c["namespace"] as string))
                p.push("connection.namespace must be a Kubernetes namespace name");
            if (str("pod") === str("service"))
                p.push("connection: give exactly one of pod or service");
            for (const k of ["pod", "service"])
                if (str(k) && !NAME_1123.test(c[k] as string))
                    p.push(`connection.${k} is not a valid Kubernetes name`);
            if (
                c["port"] !== undefined &&
                !(
                    Number.isInteger(c["port"]) &&
                    (c["port"] as number) > 0 &&
                    (c["port"] as number) < 65536
                )
            ) {
                p.push("connection.port must be a TCP port number");
            }
            secret("password");
            kube();
            break;
        }
        case "embedded":
            if (!str("path")) p.push("connection.path is required for kind 'embedded'");
            break;
        default:
            p.push(
                `connection.kind must be 'http', 'port-forward' or 'embedded', not ${JSON.stringify(c["kind"])}`,
            );
    }
    return p;
}

function secretSourceProblems(raw: unknown, where: string): string[] {
    const s = raw as Record<string, unknown>;
    if (typeof s !== "object" || s === null) return [`${where} must be a secret source object`];
    if (typeof s["fromConfig"] === "string" || typeof s["fromEnv"] === "string") return [];
    const k = s["fromKubernetesSecret"] as Record<string, unknown> | undefined;
    if (
        k &&
        typeof k["namespace"] === "string" &&
        typeof k["name"] === "string" &&
        typeof k["key"] === "string"
    )
        return [];
    return [
        `${where} must be { fromConfig: key }, { fromEnv: VAR } or { fromKubernetesSecret: { namespace, name, key } }`,
    ];
}

// ---------------------------------------------------------------------------------------------
// Opening a client
// ---------------------------------------------------------------------------------------------

/** Opens a client for a connection spec. The caller closes it (that also ends a port-forward). */
export async function openClient(
    spec: ConnectionSpec,
    ctx: ConnectionContext = {},
): Promise<OpenedClient> {
    const problems = connectionProblems(spec);
    if (problems.length > 0) throw new ConnectionError(problems.join("; "));
    switch (spec.kind) {
        case "embedded":
            return openEmbeddedClient(spec);
        case "http": {
            const password = spec.password
                ? await resolveSecret(spec.password, ctx, spec.kubeconfig)
                : "";
            return openHttpClient(
                spec.url,
                spec.username ?? "default",
                password,
                spec.requestTimeoutMs,
                spec.url,
            );
        }
        case "port-forward": {
            const kube = await loadKubeconfig(spec.kubeconfig, ctx);
            const password = spec.password
                ? await resolveSecret(spec.password, ctx, spec.kubeconfig, kube)
                : "";
            const forward = await startPortForward(
                kube,
                spec.namespace,
                spec.pod ? { pod: spec.pod } : { service: spec.service! },
                spec.port ?? 8123,
            );
            const opened = openHttpClient(
                `http://127.0.0.1:${forward.localPort}`,
                spec.username ?? "default",
                password,
                spec.requestTimeoutMs,
                `${forward.describe} (port-forward)`,
            );
            return {
                client: opened.client,
                describe: opened.describe,
                close: async () => {
                    try {
                        await opened.close();
                    } finally {
                        await forward.close();
                    }
                },
            };
        }
    }
}

function openHttpClient(
    url: string,
    username: string,
    password: string,
    timeout: number | undefined,
    describe: string,
): OpenedClient {
    const { createClient, ClickHouseLogLevel } =
        require("@clickhouse/client") as typeof import("@clickhouse/client");
    const client = createClient({
        url,
        username,
        password,
        request_timeout: timeout ?? 300_000,
        application: "kafka-clickhouse-stack",
        // Rebuilds (INSERT ... SELECT) and mutations can run for minutes: progress headers keep
        // idle-timeout proxies from cutting the connection.
        clickhouse_settings: {
            send_progress_in_http_headers: 1,
            http_headers_progress_interval_ms: "60000",
        },
        // Failures are thrown to the provider, which reports them; no second copy on the console.
        log: { level: ClickHouseLogLevel.OFF },
    });
    return { client, describe, close: () => client.close() };
}

/** The client on the process's chdb engine (see `claimEngine`: one data directory per process). */
let embeddedEngine: { path: string; client: ClickHouseClient; close(): Promise<void> } | undefined;

/**
 * chdb runs in-process, one engine per process bound to one data directory. The engine stays open
 * until the process ends (or `shutdownEmbedded`): once chdb has shut an engine down, a new one in
 * the same process can no longer create Kafka tables ("Shutdown was called"), and the provider
 * host opens a connection per call. A `--config-file` can only be given when the engine starts,
 * through a chdb `Session`; the `@clickhouse/client` connection on the same path shares it.
 */
function openEmbeddedClient(spec: EmbeddedConnection): OpenedClient {
    const path = require("node:path") as typeof import("node:path");
    const dataPath = path.resolve(spec.path);
    const configFile = spec.configFile ? path.resolve(spec.configFile) : "";
    const describe = `chdb ${dataPath}`;
    try {
        // No config file named: share the engine as it was started.
        claimEngine(dataPath, configFile);
    } catch (e) {
        throw new ConnectionError(e instanceof Error ? e.message : String(e), { cause: e });
    }
    if (embeddedEngine?.path === dataPath)
        return { client: embeddedEngine.client, describe, close: async () => {} };
    const { createClient } = require("@clickhouse/client") as typeof import("@clickhouse/client");
    type ClientConnection = NonNullable<
        NonNullable<Parameters<typeof createClient>[0]>["connection"]
    >;
    // chdb/connection's types need node16 module resolution; its one function is typed here.
    let chdbConnection: { createChdbConnection(options: { path: string }): ClientConnection };
    try {
        chdbConnection = require("chdb/connection");
    } catch (e) {
        throw new ConnectionError(
            "connection kind 'embedded' needs the optional dependency chdb (npm install chdb)",
            { cause: e },
        );
    }
    const client = createClient({
        connection: chdbConnection.createChdbConnection({ path: dataPath }),
    });
    embeddedEngine = {
        path: dataPath,
        client,
        close: async () => {
            try {
                await client.close();
            } finally {
                releaseEngine();
            }
        },
    };
    return { client, describe, close: async () => {} };
}

/** Shuts the process's embedded engine down (tests, before deleting its directory). */
export async function shutdownEmbedded(): Promise<void> {
    const engine = embeddedEngine;
    embeddedEngine = undefined;
    if (engine) await engine.close();
    else releaseEngine();
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/** Resolves a secret reference at run time. Error messages name the reference, never the value. */
export async function resolveSecret(
    source: SecretSource,
    ctx: ConnectionContext,
    kubeconfig?: KubeconfigSource,
    kube?: Kubeconfig,
): Promise<string> {
    if ("fromConfig" in source) {
        const v = ctx.config?.get(source.fromConfig);
        if (v === undefined) {
            throw new ConnectionError(
                `stack config key '${source.fromConfig}' is not set; run: pulumi config set --secret ${source.fromConfig} <value>`,
                { configProblem: true },
            );
        }
        return v;
    }
    if ("fromEnv" in source) {
        const v = process.env[source.fromEnv];
        if (v === undefined)
            throw new ConnectionError(`environment variable ${source.fromEnv} is not set`, {
                configProblem: true,
            });
        return v;
    }
    const { namespace, name, key } = source.fromKubernetesSecret;
    const k = kube ?? (await loadKubeconfig(kubeconfig, ctx));
    const secret = (await kubeRequest(
        k,
        "GET",
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`,
    )) as { data?: Record<string, string> };
    const value = secret.data?.[key];
    if (value === undefined)
        throw new ConnectionError(`Kubernetes Secret ${namespace}/${name} has no key '${key}'`);
    return Buffer.from(value, "base64").toString("utf8");
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: kubeconfig, requests, port-forward over WebSocket
// ---------------------------------------------------------------------------------------------

/** What is needed to talk to one API server (the kubeconfig's current context). */
export interface Kubeconfig {
    readonly server: string;
    readonly ca?: Buffer;
    readonly cert?: Buffer;
    readonly key?: Buffer;
    readonly token?: string;
    readonly basic?: { readonly username: string; readonly password: string };
    readonly insecure: boolean;
    readonly exec?: {
        readonly command: string;
        readonly args: readonly string[];
        readonly env: Readonly<Record<string, string>>;
    };
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Loads the current context of a kubeconfig (or the in-cluster service account). */
export async function loadKubeconfig(
    source: KubeconfigSource | undefined,
    ctx: ConnectionContext,
): Promise<Kubeconfig> {
    const fs = require("node:fs") as typeof import("node:fs");
    const path = require("node:path") as typeof import("node:path");
    const os = require("node:os") as typeof import("node:os");
    const inCluster = (): Kubeconfig => {
        const host = process.env["KUBERNETES_SERVICE_HOST"];
        const port = process.env["KUBERNETES_SERVICE_PORT"] ?? "443";
        if (!host)
            throw new ConnectionError(
                "no kubeconfig found and not running inside a cluster; set connection.kubeconfig",
            );
        return {
            server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
            ca: fs.readFileSync(path.join(SA_DIR, "ca.crt")),
            token: fs.readFileSync(path.join(SA_DIR, "token"), "utf8").trim(),
            insecure: false,
        };
    };
    let text: string;
    let baseDir = process.cwd();
    if (source === undefined) {
        const file =
            (process.env["KUBECONFIG"] ?? "")
                .split(path.delimiter)
                .find((f) => f && fs.existsSync(f)) ?? path.join(os.homedir(), ".kube", "config");
        if (!fs.existsSync(file)) return inCluster();
        text = fs.readFileSync(file, "utf8");
        baseDir = path.dirname(file);
    } else if ("inCluster" in source) {
        return inCluster();
    } else if ("fromFile" in source) {
        text = fs.readFileSync(source.fromFile, "utf8");
        baseDir = path.dirname(path.resolve(source.fromFile));
    } else {
        text = await resolveSecret(source, ctx);
    }
    return parseKubeconfig(text, baseDir);
}

/** Parses kubeconfig YAML (current context only). File references resolve against `baseDir`. */
export function parseKubeconfig(text: string, baseDir: string): Kubeconfig {
    const YAML = require("yaml") as typeof import("yaml");
    const fs = require("node:fs") as typeof import("node:fs");
    const path = require("node:path") as typeof import("node:path");
    type Named<T> = Array<{ name: string } & T>;
    const doc = YAML.parse(text) as {
        "current-context"?: string;
        contexts?: Named<{ context: { cluster: string; user: string } }>;
        clusters?: Named<{ cluster: Record<string, unknown> }>;
        users?: Named<{ user: Record<string, unknown> }>;
    };
    const current = doc["current-context"] ?? doc.contexts?.[0]?.name;
    const context = doc.contexts?.find((c) => c.name === current)?.context;
    if (!context) throw new ConnectionError(`kubeconfig has no context ${JSON.stringify(current)}`);
    const cluster = doc.clusters?.find((c) => c.name === context.cluster)?.cluster;
    if (!cluster || typeof cluster["server"] !== "string")
        throw new ConnectionError(`kubeconfig cluster '${context.cluster}' has no server`);
    const user = doc.users?.find((u) => u.name === context.user)?.user ?? {};
    const data = (
        obj: Record<string, unknown>,
        dataKey: string,
        fileKey: string,
    ): Buffer | undefined => {
        if (typeof obj[dataKey] === "string") return Buffer.from(obj[dataKey] as string, "base64");
        if (typeof obj[fileKey] === "string")
            return fs.readFileSync(path.resolve(baseDir, obj[fileKey] as string));
        return undefined;
    };
    if (user["auth-provider"])
        throw new ConnectionError(
            "kubeconfig auth-provider plugins are not supported; use a token, client certificate or exec credential plugin",
        );
    const exec = user["exec"] as
        | { command?: string; args?: string[]; env?: Array<{ name: string; value: string }> }
        | undefined;
    const tokenFile =
        typeof user["tokenFile"] === "string"
            ? fs.readFileSync(path.resolve(baseDir, user["tokenFile"] as string), "utf8").trim()
            : undefined;
    const ca = data(cluster, "certificate-authority-data", "certificate-authority");
    const cert = data(user, "client-certificate-data", "client-certificate");
    const key = data(user, "client-key-data", "client-key");
    const token = typeof user["token"] === "string" ? (user["token"] as string) : tokenFile;
    return {
        server: (cluster["server"] as string).replace(/\/+$/, ""),
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        ...(token ? { token } : {}),
        ...(typeof user["username"] === "string"
            ? {
                  basic: {
                      username: user["username"] as string,
                      password: String(user["password"] ?? ""),
                  },
              }
            : {}),
        insecure: cluster["insecure-skip-tls-verify"] === true,
        ...(exec?.command
            ? {
                  exec: {
                      command: exec.command,
                      args: exec.args ?? [],
                      env: Object.fromEntries((exec.env ?? []).map((e) => [e.name, e.value])),
                  },
              }
            : {}),
    };
}

/** Credentials for one request: static ones, or those an exec plugin prints (ExecCredential). */
async function credentials(
    k: Kubeconfig,
): Promise<{ headers: Record<string, string>; cert?: Buffer; key?: Buffer }> {
    const headers: Record<string, string> = {};
    let cert = k.cert;
    let key = k.key;
    if (k.exec) {
        const { execFile } = require("node:child_process") as typeof import("node:child_process");
        const out = await new Promise<string>((resolve, reject) =>
            execFile(
                k.exec!.command,
                [...k.exec!.args],
                { env: { ...process.env, ...k.exec!.env } },
                (err, stdout) =>
                    err
                        ? reject(
                              new ConnectionError(
                                  `kubeconfig exec plugin ${k.exec!.command} failed: ${err.message}`,
                              ),
                          )
                        : resolve(stdout),
            ),
        );
        const status =
            (
                JSON.parse(out) as {
                    status?: {
                        token?: string;
                        clientCertificateData?: string;
                        clientKeyData?: string;
                    };
                }
            ).status ?? {};
        if (status.token) headers["Authorization"] = `Bearer ${status.token}`;
        if (status.clientCertificateData) cert = Buffer.from(status.clientCertificateData);
        if (status.clientKeyData) key = Buffer.from(status.clientKeyData);
    } else if (k.token) {
        headers["Authorization"] = `Bearer ${k.token}`;
    } else if (k.basic) {
        headers["Authorization"] =
            `Basic ${Buffer.from(`${k.basic.username}:${k.basic.password}`).toString("base64")}`;
    }
    return { headers, ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

async function requestOptions(
    k: Kubeconfig,
    method: string,
    path: string,
    extraHeaders: Record<string, string> = {},
): Promise<{ mod: typeof http; options: http.RequestOptions }> {
    const url = new URL(k.server + path);
    const tls = url.protocol === "https:";
    const mod = (tls ? require("node:https") : require("node:http")) as typeof http;
    const creds = await credentials(k);
    const options: http.RequestOptions & Record<string, unknown> = {
        method,
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port || (tls ? 443 : 80),
        path: url.pathname + url.search,
        headers: { Accept: "application/json", ...creds.headers, ...extraHeaders },
        ...(tls
            ? { ca: k.ca, cert: creds.cert, key: creds.key, rejectUnauthorized: !k.insecure }
            : {}),
    };
    return { mod, options };
}

/** A JSON request to the Kubernetes API. Errors carry the API's message. */
export async function kubeRequest(k: Kubeconfig, method: string, path: string): Promise<unknown> {
    const { mod, options } = await requestOptions(k, method, path);
    return new Promise((resolve, reject) => {
        const req = mod.request(options, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
                const body = Buffer.concat(chunks).toString("utf8");
                if ((res.statusCode ?? 0) >= 300) {
                    let message = body;
                    try {
                        message = (JSON.parse(body) as { message?: string }).message ?? body;
                    } catch {
                        /* not JSON */
                    }
                    reject(
                        new ConnectionError(
                            `Kubernetes API ${method} ${path}: ${res.statusCode} ${message}`,
                        ),
                    );
                    return;
                }
                try {
                    resolve(JSON.parse(body));
                } catch (e) {
                    reject(
                        new ConnectionError(`Kubernetes API ${method} ${path}: invalid JSON`, {
                            cause: e,
                        }),
                    );
                }
            });
        });
        req.on("error", (e) =>
            reject(new ConnectionError(`Kubernetes API ${k.server}: ${e.message}`, { cause: e })),
        );
        req.end();
    });
}

interface PodInfo {
    metadata: { name: string };
    spec?: { containers?: Array<{ ports?: Array<{ name?: string; containerPort: number }> }> };
    status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
}

/** The pod and its port for a pod name, or for a service (a ready pod behind it, like kubectl). */
export async function resolvePortForwardTarget(
    k: Kubeconfig,
    namespace: string,
    target: { pod: string } | { service: string },
    port: number,
): Promise<{ pod: string; port: number }> {
    const ns = encodeURIComponent(namespace);
    if ("pod" in target) return { pod: target.pod, port };
    const svc = (await kubeRequest(
        k,
        "GET",
        `/api/v1/namespaces/${ns}/services/${encodeURIComponent(target.service)}`,
    )) as {
        spec?: {
            selector?: Record<string, string>;
            ports?: Array<{ port: number; targetPort?: number | string }>;
        };
    };
    const selector = svc.spec?.selector ?? {};
    if (Object.keys(selector).length === 0)
        throw new ConnectionError(
            `service ${namespace}/${target.service} has no selector; give connection.pod instead`,
        );
    const svcPort = svc.spec?.ports?.find((p) => p.port === port);
    if (!svcPort)
        throw new ConnectionError(`service ${namespace}/${target.service} has no port ${port}`);
    const labelSelector = Object.entries(selector)
        .map(([key, v]) => `${key}=${v}`)
        .join(",");
    const pods = (await kubeRequest(
        k,
        "GET",
        `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(labelSelector)}`,
    )) as { items?: PodInfo[] };
    const ready = (pods.items ?? []).filter(
        (p) =>
            p.status?.phase === "Running" &&
            p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
    const pod = ready.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
    if (!pod)
        throw new ConnectionError(
            `no ready pod behind service ${namespace}/${target.service} (selector ${labelSelector})`,
        );
    const tp = svcPort.targetPort ?? port;
    if (typeof tp === "number") return { pod: pod.metadata.name, port: tp };
    if (/^\d+$/.test(tp)) return { pod: pod.metadata.name, port: Number(tp) };
    const named = pod.spec?.containers?.flatMap((c) => c.ports ?? []).find((p) => p.name === tp);
    if (!named)
        throw new ConnectionError(`pod ${pod.metadata.name} has no container port named '${tp}'`);
    return { pod: pod.metadata.name, port: named.containerPort };
}

export interface PortForward {
    readonly localPort: number;
    readonly describe: string;
    close(): Promise<void>;
}

/**
 * Listens on a loopback port and forwards each accepted TCP connection to the pod's port through
 * its own WebSocket to `pods/<pod>/portforward` (protocol `v4.channel.k8s.io`: the first byte of
 * every message is the channel, 0 data and 1 error; the first message of each channel carries the
 * port number).
 */
export async function startPortForward(
    k: Kubeconfig,
    namespace: string,
    target: { pod: string } | { service: string },
    port: number,
): Promise<PortForward> {
    const resolved = await resolvePortForwardTarget(k, namespace, target, port);
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(resolved.pod)}/portforward?ports=${resolved.port}`;
    // One handshake up front, so RBAC or a missing pod fails here with the API's message rather
    // than later as a bare "socket hang up" in the ClickHouse client.
    (await openWebSocket(k, path, ["v4.channel.k8s.io"])).close();
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.pause();
        openWebSocket(k, path, ["v4.channel.k8s.io"]).then(
            (ws) => bridge(socket, ws),
            (e: Error) => socket.destroy(e),
        );
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address() as net.AddressInfo;
    return {
        localPort: address.port,
        describe: `pod ${namespace}/${resolved.pod}:${resolved.port}`,
        close: () =>
            new Promise<void>((resolve) => {
                for (const s of sockets) s.destroy();
                server.close(() => resolve());
            }),
    };
}

function bridge(socket: net.Socket, ws: WebSocketConnection): void {
    const prefixLeft = [2, 2]; // port-number bytes still expected at the start of channels 0 and 1
    ws.onMessage((msg) => {
        if (msg.length === 0) return;
        const channel = msg[0]!;
        let payload = msg.subarray(1);
        if (channel > 1) return;
        const skip = Math.min(prefixLeft[channel]!, payload.length);
        prefixLeft[channel]! -= skip;
        payload = payload.subarray(skip);
        if (payload.length === 0) return;
        if (channel === 0) socket.write(payload);
        else socket.destroy(new ConnectionError(`port-forward error: ${payload.toString("utf8")}`));
    });
    ws.onClose(() => socket.end());
    socket.on("data", (chunk: Buffer) => ws.send(Buffer.concat([Buffer.from([0]), chunk])));
    socket.on("end", () => ws.close());
    socket.on("error", () => ws.close());
    socket.on("close", () => ws.close());
    socket.resume();
}

// ---- a minimal WebSocket client (RFC 6455): binary messages, ping/pong, close ----

export interface WebSocketConnection {
    readonly protocol: string;
    send(data: Buffer): void;
    onMessage(listener: (data: Buffer) => void): void;
    onClose(listener: () => void): void;
    close(): void;
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Opens a WebSocket to the API server (auth and TLS from the kubeconfig). */
export async function openWebSocket(
    k: Kubeconfig,
    path: string,
    protocols: readonly string[],
): Promise<WebSocketConnection> {
    const wsKey = crypto.randomBytes(16).toString("base64");
    const { mod, options } = await requestOptions(k, "GET", path, {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": wsKey,
        "Sec-WebSocket-Protocol": protocols.join(", "),
    });
    return new Promise((resolve, reject) => {
        const req = mod.request(options);
        req.on("response", (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
                reject(
                    new ConnectionError(
                        `port-forward upgrade refused: ${res.statusCode} ${Buffer.concat(chunks).toString("utf8").slice(0, 500)}`,
                    ),
                ),
            );
        });
        req.on("upgrade", (res, socket, head) => {
            const expected = crypto
                .createHash("sha1")
                .update(wsKey + WS_GUID)
                .digest("base64");
            if (res.headers["sec-websocket-accept"] !== expected) {
                socket.destroy();
                reject(new ConnectionError("port-forward upgrade: bad Sec-WebSocket-Accept"));
                return;
            }
            resolve(
                wrapSocket(
                    socket as net.Socket,
                    head,
                    String(res.headers["sec-websocket-protocol"] ?? ""),
                ),
            );
        });
        req.on("error", (e) =>
            reject(new ConnectionError(`port-forward to ${k.server}: ${e.message}`, { cause: e })),
        );
        req.end();
    });
}

/** Encodes one frame. Client frames are masked (RFC 6455 5.3); `mask` false is for servers. */
export function encodeFrame(opcode: number, payload: Buffer, mask = true): Buffer {
    const len = payload.length;
    const header: number[] = [0x80 | opcode];
    const m = mask ? 0x80 : 0;
    if (len < 126) header.push(m | len);
    else if (len < 65536) header.push(m | 126, len >> 8, len & 0xff);
    else {
        header.push(m | 127);
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(len));
        header.push(...b);
    }
    if (!mask) return Buffer.concat([Buffer.from(header), payload]);
    const maskKey = crypto.randomBytes(4);
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i]! ^ maskKey[i & 3]!;
    return Buffer.concat([Buffer.from(header), maskKey, body]);
}

/** Incremental frame decoder: feed bytes, get complete frames. */
export class FrameDecoder {
    private buf: Buffer = Buffer.alloc(0);
    push(chunk: Buffer): Array<{ fin: boolean; opcode: number; payload: Buffer }> {
        this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
        const frames: Array<{ fin: boolean; opcode: number; payload: Buffer }> = [];
        for (;;) {
            if (this.buf.length < 2) break;
            const b0 = this.buf[0]!;
            const b1 = this.buf[1]!;
            let len = b1 & 0x7f;
            let off = 2;
            if (len === 126) {
                if (this.buf.length < 4) break;
                len = this.buf.readUInt16BE(2);
                off = 4;
            } else if (len === 127) {
                if (this.buf.length < 10) break;
                len = Number(this.buf.readBigUInt64BE(2));
                off = 10;
            }
            const masked = (b1 & 0x80) !== 0;
            const maskKey = masked ? this.buf.subarray(off, off + 4) : undefined;
            if (masked) off += 4;
            if (this.buf.length < off + len) break;
            const payload = Buffer.from(this.buf.subarray(off, off + len));
            if (maskKey)
                for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ maskKey[i & 3]!;
            frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
            this.buf = this.buf.subarray(off + len);
        }
        return frames;
    }
}

function wrapSocket(socket: net.Socket, head: Buffer, protocol: string): WebSocketConnection {
    const decoder = new FrameDecoder();
    const messageListeners: Array<(d: Buffer) => void> = [];
    const closeListeners: Array<() => void> = [];
    const pending: Buffer[] = [];
    let fragments: Buffer[] = [];
    let closed = false;
    const finish = () => {
        if (closed) return;
        closed = true;
        for (const l of closeListeners) l();
    };
    const deliver = (msg: Buffer) => {
        if (messageListeners.length === 0) pending.push(msg);
        for (const l of messageListeners) l(msg);
    };
    const onData = (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
            if (f.opcode === 0x8) {
                if (!socket.destroyed) socket.end(encodeFrame(0x8, Buffer.alloc(0)));
                finish();
                return;
            }
            if (f.opcode === 0x9) {
                if (!socket.destroyed) socket.write(encodeFrame(0xa, f.payload));
                continue;
            }
            if (f.opcode === 0xa) continue;
            fragments.push(f.payload);
            if (f.fin) {
                deliver(fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments));
                fragments = [];
            }
        }
    };
    socket.on("data", onData);
    socket.on("close", finish);
    socket.on("error", finish);
    if (head.length) onData(head);
    return {
        protocol,
        send: (data) => {
            if (!closed && !socket.destroyed) socket.write(encodeFrame(0x2, data));
        },
        onMessage: (l) => {
            messageListeners.push(l);
            for (const m of pending.splice(0)) l(m);
        },
        onClose: (l) => {
            if (closed) l();
            else closeListeners.push(l);
        },
        close: () => {
            if (closed) return;
            if (!socket.destroyed) socket.end(encodeFrame(0x8, Buffer.from([0x03, 0xe8])));
            finish();
        },
    };
}
