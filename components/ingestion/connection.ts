/**
 * How the provider reaches ClickHouse: a `@clickhouse/client` client over
 *
 * - `http`: a URL (credentials never in it); `https://` verified against `ca` (else the system's
 *   CAs), `http://` refused unless `allowInsecureHttp` accepts the password crossing in clear,
 * - `port-forward`: the Kubernetes API's portforward subresource to a ClickHouse pod (or a pod
 *   behind a service), for when ClickHouse is only reachable inside the cluster (see `kube.ts`);
 *   with `tls`, HTTPS through the tunnel, the certificate verified against the CA and the name
 *   it is made for (the Service's), not the loopback address the tunnel listens on,
 * - `embedded`: the chdb engine in-process (local loop, tests), loaded only for this kind.
 *
 * Credentials are never values in a connection spec, only references resolved at run time: a stack
 * secret (through the dynamic provider's `configure`), an environment variable, or a Kubernetes
 * Secret. A spec therefore carries nothing secret: Pulumi inputs, outputs and state never hold a
 * password, and `read`/`delete` (which Pulumi calls with outputs only) can still authenticate.
 *
 * Heavy modules (`@clickhouse/client`, `chdb`, the Kubernetes client in `kube.ts`) are required
 * inside functions, so loading this module costs nothing and chdb's 180 MB engine loads only for
 * `embedded`.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- heavy and optional modules load on
   first use: chdb (180 MB native engine) only for `embedded`, the HTTP client and the Kubernetes
   client only when a connection is opened, so importing this module (the Pulumi program does)
   costs nothing. */
import type { ClickHouseClient } from "@clickhouse/client";
import type { KubeConfig } from "@kubernetes/client-node";
import * as fs from "node:fs";
import type * as https from "node:https";
import { claimEngine, releaseEngine } from "../../schemas/engine";
import { ConnectionError, type KubeconfigSource } from "./connection-errors";
import { serverIdentity, verifyServerCertificate } from "./connection-tls";

export { ConnectionError, type KubeconfigSource } from "./connection-errors";

/** Kubernetes access (kubeconfig, Secrets, port-forward), loaded when a connection needs it. */
const kube = () => require("./kube") as typeof import("./kube");

// ---------------------------------------------------------------------------------------------
// Spec
// ---------------------------------------------------------------------------------------------

/** A key of a Kubernetes Secret, read through the connection's kubeconfig. */
interface FromKubernetesSecret {
    readonly fromKubernetesSecret: {
        readonly namespace: string;
        readonly name: string;
        readonly key: string;
    };
}

/** Where a secret comes from. */
export type SecretSource =
    /** A stack config key holding a secret (`pulumi config set --secret <key> ...`). */
    | { readonly fromConfig: string }
    /** An environment variable of the process running Pulumi. */
    | { readonly fromEnv: string }
    | FromKubernetesSecret;

/**
 * Where the PEM of a CA certificate comes from (not secret, but often kept beside secrets, e.g.
 * the `ca.crt` key of a TLS Secret).
 */
export type CaSource =
    /** A PEM file on the machine running Pulumi. */
    | { readonly fromFile: string }
    /** An environment variable holding the PEM text. */
    | { readonly fromEnv: string }
    /** `ca.crt` of a cert-manager or kubernetes.io/tls Secret, for example. */
    | FromKubernetesSecret;

export interface HttpConnection {
    readonly kind: "http";
    /** `https://host:port` (or `http://` with `allowInsecureHttp`), without credentials. */
    readonly url: string;
    /** The CA that issued the server's certificate. @default the system's CAs */
    readonly ca?: CaSource;
    /**
     * Accept an `http://` url: the password and every query cross the network in clear. For a
     * server on loopback (the local runtime) or behind a tunnel that encrypts. @default false
     */
    readonly allowInsecureHttp?: boolean;
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
    /**
     * ClickHouse HTTP port, or HTTPS port with `tls` (of the service when `service` is given).
     * @default 8123, 8443 with `tls`
     */
    readonly port?: number;
    /** Speak HTTPS through the tunnel, verifying the server's certificate. @default plain HTTP */
    readonly tls?: {
        /** The CA that issued the server's certificate. */
        readonly ca: CaSource;
        /** The name the certificate is made for, e.g. `<service>.<namespace>.svc`. */
        readonly serverName: string;
    };
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
    /**
     * What the transport last reported about a dropped connection (a port-forward's error
     * channel: the kubelet's reason, naming the pod and port); undefined when it reported nothing.
     */
    transportError?(): string | undefined;
    close(): Promise<void>;
}

/**
 * `e` with the transport's reason added when there is one: a dropped port-forward shows in the
 * client only as "socket hang up", while the API server said why (naming the pod and port).
 */
export function withTransportReason(opened: OpenedClient, e: unknown): unknown {
    const reason = opened.transportError?.();
    if (!reason || !(e instanceof Error) || e.message.includes(reason)) return e;
    return new Error(`${e.message} (${reason})`, { cause: e });
}

const NAME_1123 = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Problems with a connection spec (empty when valid), phrased with the setting to fix. */
export function connectionProblems(raw: unknown): string[] {
    if (typeof raw !== "object" || raw === null)
        return ["connection must be an object with a kind: http, port-forward or embedded"];
    const c = raw as Record<string, unknown>;
    switch (c["kind"]) {
        case "http":
            return [
                ...urlProblems(c["url"], c["allowInsecureHttp"]),
                ...(c["ca"] === undefined ? [] : caProblems(c["ca"], "connection.ca")),
                ...credentialProblems(c),
            ];
        case "port-forward":
            return [...podProblems(c), ...tlsProblems(c["tls"]), ...credentialProblems(c)];
        case "embedded":
            return nonEmpty(c["path"]) ? [] : ["connection.path is required for kind 'embedded'"];
        default:
            return [
                `connection.kind must be 'http', 'port-forward' or 'embedded', not ${JSON.stringify(c["kind"])}`,
            ];
    }
}

const nonEmpty = (v: unknown): v is string => typeof v === "string" && v.length > 0;

function urlProblems(url: unknown, allowInsecureHttp: unknown): string[] {
    if (!nonEmpty(url)) return ["connection.url is required for kind 'http'"];
    let u: URL;
    try {
        u = new URL(url);
    } catch {
        return [`connection.url ${JSON.stringify(url)} is not a URL`];
    }
    const p: string[] = [];
    if (u.protocol !== "http:" && u.protocol !== "https:")
        p.push("connection.url must be http:// or https://");
    if (allowInsecureHttp !== undefined && typeof allowInsecureHttp !== "boolean")
        p.push("connection.allowInsecureHttp must be a boolean");
    if (u.protocol === "http:" && allowInsecureHttp !== true)
        p.push(
            `connection.url ${u.origin} is plain http://: the password and every query would cross the network unencrypted; use https:// (with connection.ca naming the CA that issued the server's certificate), or set connection.allowInsecureHttp: true to accept that (stack config: ingestionAllowInsecureHttp)`,
        );
    if (u.username || u.password)
        p.push(
            "connection.url must not contain credentials; use connection.username and connection.password: { fromConfig: ... }",
        );
    return p;
}

function podProblems(c: Record<string, unknown>): string[] {
    const p: string[] = [];
    if (!nonEmpty(c["namespace"]) || !NAME_1123.test(c["namespace"]))
        p.push("connection.namespace must be a Kubernetes namespace name");
    if (nonEmpty(c["pod"]) === nonEmpty(c["service"]))
        p.push("connection: give exactly one of pod or service");
    for (const k of ["pod", "service"]) {
        const v = c[k];
        if (nonEmpty(v) && !NAME_1123.test(v))
            p.push(`connection.${k} is not a valid Kubernetes name`);
    }
    const port = c["port"];
    if (port !== undefined && !(Number.isInteger(port) && Number(port) > 0 && Number(port) < 65536))
        p.push("connection.port must be a TCP port number");
    return p;
}

function caProblems(raw: unknown, where: string): string[] {
    const s = raw as Record<string, unknown> | null;
    const valid =
        typeof s === "object" &&
        s !== null &&
        (typeof s["fromFile"] === "string" ||
            typeof s["fromEnv"] === "string" ||
            ("fromKubernetesSecret" in s && secretSourceProblems(s, where).length === 0));
    return valid
        ? []
        : [
              `${where} must be { fromFile: path }, { fromEnv: VAR } or { fromKubernetesSecret: { namespace, name, key } }`,
          ];
}

function tlsProblems(raw: unknown): string[] {
    if (raw === undefined) return [];
    const t = raw as Record<string, unknown> | null;
    if (typeof t !== "object" || t === null) return ["connection.tls must be { ca, serverName }"];
    const p = caProblems(t["ca"], "connection.tls.ca");
    if (!nonEmpty(t["serverName"]) || !NAME_1123.test(t["serverName"]))
        p.push(
            "connection.tls.serverName must be the DNS name the server's certificate is made for, e.g. clickhouse.<namespace>.svc",
        );
    return p;
}

/** `password` and `kubeconfig`, shared by the kinds that talk to a server. */
function credentialProblems(c: Record<string, unknown>): string[] {
    const p: string[] = [];
    if (typeof c["password"] === "string")
        p.push(
            `connection.password must not be a plain value: use { fromConfig: "<stack secret key>" }, { fromEnv: "VAR" } or { fromKubernetesSecret: { namespace, name, key } }`,
        );
    else if (c["password"] !== undefined)
        p.push(...secretSourceProblems(c["password"], "connection.password"));
    const k = c["kubeconfig"] as Record<string, unknown> | null | undefined;
    if (
        k !== undefined &&
        (typeof k !== "object" ||
            k === null ||
            !(
                typeof k["fromConfig"] === "string" ||
                typeof k["fromEnv"] === "string" ||
                typeof k["fromFile"] === "string" ||
                k["inCluster"] === true
            ))
    )
        p.push(
            "connection.kubeconfig must be { fromConfig }, { fromEnv }, { fromFile } or { inCluster: true }",
        );
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
        case "http":
            return openUrlClient(spec, ctx);
        case "port-forward": {
            const kc = await loadKubeconfig(spec.kubeconfig, ctx);
            const password = spec.password
                ? await resolveSecret(spec.password, ctx, spec.kubeconfig, kc)
                : "";
            const tls = spec.tls;
            const ca = tls ? await resolveCa(tls.ca, "connection.tls.ca", ctx, undefined, kc) : "";
            const forward = await kube().startPortForward(
                kc,
                spec.namespace,
                spec.pod ? { pod: spec.pod } : { service: spec.service! },
                spec.port ?? (tls ? 8443 : 8123),
            );
            const describe = `${forward.describe} (port-forward${tls ? ", TLS" : ""})`;
            let agent: https.Agent | undefined;
            if (tls) {
                try {
                    await verifyServerCertificate({
                        host: "127.0.0.1",
                        port: forward.localPort,
                        serverName: tls.serverName,
                        ca: Buffer.from(ca),
                        caDescription: `connection.tls.ca ${JSON.stringify(tls.ca)}`,
                        describe: `${describe} as ${tls.serverName}`,
                        timeoutMs: HANDSHAKE_TIMEOUT_MS,
                    });
                } catch (e) {
                    await forward.close();
                    throw e;
                }
                // The tunnel listens on 127.0.0.1; the certificate is checked against the name it
                // is made for. The client's own `tls` option cannot name it, an agent can.
                const { Agent } = require("node:https") as typeof import("node:https");
                agent = new Agent({ keepAlive: true, ca, ...serverIdentity(tls.serverName) });
            }
            const opened = openHttpClient(
                `${tls ? "https" : "http"}://127.0.0.1:${forward.localPort}`,
                spec.username ?? "default",
                password,
                spec.requestTimeoutMs,
                describe,
                agent ? { agent } : {},
            );
            return {
                client: opened.client,
                describe: opened.describe,
                transportError: forward.lastError,
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

/** Waits this long for the TLS handshake that checks the certificate before the client is used. */
const HANDSHAKE_TIMEOUT_MS = 30_000;

/** A `http` spec: the URL as given; for https://, the certificate checked up front. */
async function openUrlClient(spec: HttpConnection, ctx: ConnectionContext): Promise<OpenedClient> {
    const password = spec.password ? await resolveSecret(spec.password, ctx, spec.kubeconfig) : "";
    const url = new URL(spec.url);
    let ca: string | undefined;
    if (url.protocol === "https:") {
        ca = spec.ca ? await resolveCa(spec.ca, "connection.ca", ctx, spec.kubeconfig) : undefined;
        await verifyServerCertificate({
            host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
            port: Number(url.port || 443),
            ...(ca ? { ca: Buffer.from(ca) } : {}),
            caDescription: spec.ca
                ? `connection.ca ${JSON.stringify(spec.ca)}`
                : "the system's CA store (connection.ca is not set)",
            describe: url.origin,
            timeoutMs: HANDSHAKE_TIMEOUT_MS,
        });
    }
    return openHttpClient(
        spec.url,
        spec.username ?? "default",
        password,
        spec.requestTimeoutMs,
        spec.url,
        ca ? { ca } : {},
    );
}

function openHttpClient(
    url: string,
    username: string,
    password: string,
    timeout: number | undefined,
    describe: string,
    tls: { readonly ca?: string; readonly agent?: https.Agent },
): OpenedClient {
    const { createClient, ClickHouseLogLevel } =
        require("@clickhouse/client") as typeof import("@clickhouse/client");
    const client = createClient({
        url,
        username,
        password,
        ...(tls.ca ? { tls: { ca_cert: Buffer.from(tls.ca) } } : {}),
        ...(tls.agent ? { http_agent: tls.agent } : {}),
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
    kc?: KubeConfig,
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
    return kube().readSecretKey(
        kc ?? (await loadKubeconfig(kubeconfig, ctx)),
        source.fromKubernetesSecret,
    );
}

/** The PEM text of a CA, checked to hold a certificate. Messages name the source, not the text. */
async function resolveCa(
    source: CaSource,
    where: string,
    ctx: ConnectionContext,
    kubeconfig?: KubeconfigSource,
    kc?: KubeConfig,
): Promise<string> {
    let pem: string;
    if ("fromFile" in source) {
        try {
            pem = fs.readFileSync(source.fromFile, "utf8");
        } catch (e) {
            throw new ConnectionError(
                `${where}: cannot read CA file ${source.fromFile}: ${e instanceof Error ? e.message : String(e)}`,
                { cause: e, configProblem: true },
            );
        }
    } else pem = await resolveSecret(source, ctx, kubeconfig, kc);
    if (!pem.includes("-----BEGIN CERTIFICATE-----"))
        throw new ConnectionError(
            `${where} ${JSON.stringify(source)} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA certificate, e.g. the ca.crt key of the TLS Secret`,
            { configProblem: true },
        );
    return pem;
}

/** Loads a kubeconfig; one held in a stack secret or an environment variable is resolved first. */
async function loadKubeconfig(
    source: KubeconfigSource | undefined,
    ctx: ConnectionContext,
): Promise<KubeConfig> {
    if (source !== undefined && ("fromConfig" in source || "fromEnv" in source))
        return kube().loadKubeconfig({ text: await resolveSecret(source, ctx) });
    return kube().loadKubeconfig(source);
}
