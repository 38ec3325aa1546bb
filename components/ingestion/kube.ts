/**
 * The Kubernetes side of a connection, on `@kubernetes/client-node`: loading a kubeconfig (file,
 * text, `$KUBECONFIG`, `~/.kube/config` or the in-cluster service account; tokens, client
 * certificates and exec credential plugins are the library's), reading a key of a Secret, and
 * port-forwarding a loopback port to a ClickHouse pod (or a ready pod behind a service).
 *
 * Every failure is a `ConnectionError` naming what failed: the API request and the API's message,
 * the kubeconfig, or the refused port-forward.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- @kubernetes/client-node 1.x is ESM-only:
   Node 20.19+ loads it through require(), here on first use so that loading this module (and the
   dynamic provider that requires it) costs nothing until a connection needs Kubernetes. */
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough, type Readable, Writable } from "node:stream";
import { ConnectionError, type KubeconfigSource } from "./connection-errors";

const k8s = () => require("@kubernetes/client-node") as typeof import("@kubernetes/client-node");

/** A kubeconfig source whose secret references are resolved: a file, text, or in-cluster. */
export type KubeconfigInput =
    | Extract<KubeconfigSource, { fromFile: string } | { inCluster: true }>
    | { readonly text: string };

/**
 * Loads a kubeconfig (its current context, else its first). With no source: the first file of
 * `$KUBECONFIG` that exists, else `~/.kube/config`, else the in-cluster service account.
 *
 * In-cluster, the service account's files are read under `/var/run/secrets/kubernetes.io/...`;
 * `inClusterPathPrefix` (tests only) is a directory put in front of that path.
 */
export function loadKubeconfig(
    source: KubeconfigInput | undefined,
    { inClusterPathPrefix = "" }: { readonly inClusterPathPrefix?: string } = {},
): KubeConfig {
    const kc = new (k8s().KubeConfig)();
    if (source === undefined) {
        const file =
            (process.env["KUBECONFIG"] ?? "")
                .split(path.delimiter)
                .find((f) => f && fs.existsSync(f)) ?? path.join(os.homedir(), ".kube", "config");
        if (!fs.existsSync(file)) return inCluster(kc, inClusterPathPrefix);
        source = { fromFile: file };
    }
    if ("inCluster" in source) return inCluster(kc, inClusterPathPrefix);
    const where = "fromFile" in source ? `kubeconfig ${source.fromFile}` : "kubeconfig";
    try {
        if ("fromFile" in source) kc.loadFromFile(source.fromFile);
        else kc.loadFromString(source.text);
    } catch (e) {
        throw new ConnectionError(`${where}: ${message(e)}`, { cause: e });
    }
    return currentContext(kc);
}

function inCluster(kc: KubeConfig, pathPrefix: string): KubeConfig {
    if (!process.env["KUBERNETES_SERVICE_HOST"])
        throw new ConnectionError(
            "no kubeconfig found and not running inside a cluster; set connection.kubeconfig",
        );
    kc.loadFromCluster(pathPrefix);
    return kc;
}

/** Checks the current context (defaulting to the first) and its cluster. */
function currentContext(kc: KubeConfig): KubeConfig {
    // `getCurrentContext` is typed string but is undefined when the kubeconfig names none.
    const name = (kc.getCurrentContext() as string | undefined) ?? kc.getContexts()[0]?.name;
    const context = name === undefined ? null : kc.getContextObject(name);
    if (!context) throw new ConnectionError(`kubeconfig has no context ${JSON.stringify(name)}`);
    if (!kc.getCluster(context.cluster))
        throw new ConnectionError(`kubeconfig cluster '${context.cluster}' has no server`);
    kc.loadFromOptions({
        // The library refuses plain http unless TLS verification is "skipped"; there is no TLS to
        // verify on http (e.g. `kubectl proxy`), so such a server is used as given.
        clusters: kc
            .getClusters()
            .map((c) => (c.server.startsWith("http:") ? { ...c, skipTLSVerify: true } : c)),
        contexts: kc.getContexts(),
        users: kc.getUsers(),
        currentContext: context.name,
    });
    return kc;
}

const message = (e: unknown): string =>
    e instanceof Error || (typeof e === "object" && e !== null && "message" in e)
        ? String((e as { message: unknown }).message)
        : String(e);

/** One API request, its failure phrased as `Kubernetes API <method> <path>: <status> <message>`. */
async function api<T>(kc: KubeConfig, request: string, call: () => Promise<T>): Promise<T> {
    try {
        return await call();
    } catch (e) {
        throw apiError(kc, request, e);
    }
}

function apiError(kc: KubeConfig, request: string, e: unknown): ConnectionError {
    if (e instanceof k8s().ApiException) {
        let text = http.STATUS_CODES[e.code] ?? "";
        if (typeof e.body === "string" && e.body) {
            try {
                text = (JSON.parse(e.body) as { message?: string }).message ?? e.body;
            } catch {
                text = e.body;
            }
        }
        return new ConnectionError(`Kubernetes API ${request}: ${e.code} ${text}`, { cause: e });
    }
    // Credentials come before any request: an exec plugin's failure is a plain Error; the
    // request's own failures are node-fetch's FetchError or the WebSocket's error event.
    const exec = kc.getCurrentUser()?.exec?.command;
    if (exec && e instanceof Error && e.name !== "FetchError")
        return new ConnectionError(
            `kubeconfig exec plugin ${exec} failed: ${e.message || "it exited non-zero and printed nothing on stderr"}`,
            { cause: e },
        );
    const server = kc.getCurrentCluster()?.server;
    return new ConnectionError(`Kubernetes API ${server}: ${message(e)}`, { cause: e });
}

const resourcePath = (namespace: string, resource: string, name = "") =>
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}${name ? `/${encodeURIComponent(name)}` : ""}`;

/** The value of one key of a Secret, decoded. */
export async function readSecretKey(
    kc: KubeConfig,
    ref: { readonly namespace: string; readonly name: string; readonly key: string },
): Promise<string> {
    const { namespace, name, key } = ref;
    const core = kc.makeApiClient(k8s().CoreV1Api);
    const secret = await api(kc, `GET ${resourcePath(namespace, "secrets", name)}`, () =>
        core.readNamespacedSecret({ name, namespace }),
    );
    const value = secret.data?.[key];
    if (value === undefined)
        throw new ConnectionError(`Kubernetes Secret ${namespace}/${name} has no key '${key}'`);
    return Buffer.from(value, "base64").toString("utf8");
}

export type PortForwardTarget = { readonly pod: string } | { readonly service: string };

/** The pod and its port for a pod name, or for a service (a ready pod behind it, like kubectl). */
export async function resolvePortForwardTarget(
    kc: KubeConfig,
    namespace: string,
    target: PortForwardTarget,
    port: number,
): Promise<{ pod: string; port: number }> {
    if ("pod" in target) return { pod: target.pod, port };
    const name = target.service;
    const core = kc.makeApiClient(k8s().CoreV1Api);
    const svc = await api(kc, `GET ${resourcePath(namespace, "services", name)}`, () =>
        core.readNamespacedService({ name, namespace }),
    );
    const selector = svc.spec?.selector ?? {};
    if (Object.keys(selector).length === 0)
        throw new ConnectionError(
            `service ${namespace}/${name} has no selector; give connection.pod instead`,
        );
    const svcPort = svc.spec?.ports?.find((p) => p.port === port);
    if (!svcPort) throw new ConnectionError(`service ${namespace}/${name} has no port ${port}`);
    const labelSelector = Object.entries(selector)
        .map(([key, v]) => `${key}=${v}`)
        .join(",");
    const pods = await api(
        kc,
        `GET ${resourcePath(namespace, "pods")}?labelSelector=${encodeURIComponent(labelSelector)}`,
        () => core.listNamespacedPod({ namespace, labelSelector }),
    );
    const pod = pods.items.filter(isReady).sort((a, b) => podName(a).localeCompare(podName(b)))[0];
    if (!pod)
        throw new ConnectionError(
            `no ready pod behind service ${namespace}/${name} (selector ${labelSelector})`,
        );
    return { pod: podName(pod), port: podPort(pod, svcPort.targetPort ?? port) };
}

const podName = (p: V1Pod): string => p.metadata?.name ?? "";

const isReady = (p: V1Pod): boolean =>
    p.status?.phase === "Running" &&
    (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

/** A service's target port on a pod: a number, or the name of a container port. */
function podPort(pod: V1Pod, targetPort: number | string): number {
    if (typeof targetPort === "number") return targetPort;
    if (/^\d+$/.test(targetPort)) return Number(targetPort);
    const named = pod.spec?.containers
        .flatMap((c) => c.ports ?? [])
        .find((p) => p.name === targetPort);
    if (!named)
        throw new ConnectionError(
            `pod ${podName(pod)} has no container port named '${targetPort}'`,
        );
    return named.containerPort;
}

export interface PortForward {
    readonly localPort: number;
    readonly describe: string;
    /**
     * The last error the API server sent on a forwarded connection's error channel (the kubelet's
     * reason, e.g. a refused pod port), naming the pod and port; undefined while there was none.
     * A client whose connection was dropped adds it to its own error.
     */
    lastError(): string | undefined;
    close(): Promise<void>;
}

/** What this module uses of the WebSocket the library's port-forward returns. */
interface ForwardSocket {
    close(): void;
    on(event: "close", listener: () => void): unknown;
}

/**
 * Listens on a loopback port and forwards each accepted TCP connection to the pod's port through a
 * port-forward WebSocket of its own (the library's `PortForward`, protocol `v4.channel.k8s.io`).
 */
export async function startPortForward(
    kc: KubeConfig,
    namespace: string,
    target: PortForwardTarget,
    port: number,
): Promise<PortForward> {
    const resolved = await resolvePortForwardTarget(kc, namespace, target, port);
    const forwarder = new (k8s().PortForward)(kc);
    const open = async (output: Writable, errors: Writable, input: Readable) => {
        try {
            const ws = await forwarder.portForward(
                namespace,
                resolved.pod,
                [resolved.port],
                output,
                errors,
                input,
            );
            return ws as unknown as ForwardSocket;
        } catch (e) {
            throw forwardError(kc, namespace, resolved.pod, e);
        }
    };
    // One handshake up front, so RBAC or a missing pod fails here with a clear message rather
    // than later as a bare "socket hang up" in the ClickHouse client.
    (await open(new PassThrough(), new PassThrough(), new PassThrough())).close();
    const sockets = new Set<net.Socket>();
    const describe = `pod ${namespace}/${resolved.pod}:${resolved.port}`;
    let lastError: string | undefined;
    const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        forwardConnection(socket, open, (text) => {
            lastError = `port-forward to ${describe}: ${text}`;
            return lastError;
        });
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    return {
        localPort: (server.address() as net.AddressInfo).port,
        describe,
        lastError: () => lastError,
        close: () =>
            new Promise<void>((resolve) => {
                for (const s of sockets) s.destroy();
                server.close(() => resolve());
            }),
    };
}

/**
 * Bridges one accepted connection: channel 0 both ways, channel 1 (errors) ends it with the
 * message `describeError` makes of the API server's text.
 */
function forwardConnection(
    socket: net.Socket,
    open: (output: Writable, errors: Writable, input: Readable) => Promise<ForwardSocket>,
    describeError: (text: string) => string,
): void {
    socket.pause(); // until the WebSocket is open; the library reads it from then on
    let ws: ForwardSocket | undefined;
    const stop = () => ws?.close();
    socket.on("error", stop);
    socket.on("close", stop);
    const output = new Writable({
        write(chunk: Buffer, _encoding, done) {
            if (chunk.length > 0 && !socket.destroyed) socket.write(chunk);
            done();
        },
    });
    const errors = new Writable({
        write(chunk: Buffer, _encoding, done) {
            if (chunk.length > 0)
                socket.destroy(new ConnectionError(describeError(chunk.toString("utf8"))));
            done();
        },
    });
    open(output, errors, socket).then(
        (opened) => {
            ws = opened;
            if (socket.destroyed) return opened.close();
            opened.on("close", () => socket.end());
            socket.resume();
        },
        (e: Error) => socket.destroy(e),
    );
}

function forwardError(kc: KubeConfig, namespace: string, pod: string, e: unknown): Error {
    if (e instanceof ConnectionError) return e;
    const refused = /Unexpected server response: (\d+)/.exec(message(e));
    if (!refused) return apiError(kc, `port-forward to pod ${namespace}/${pod}`, e);
    const status = Number(refused[1]);
    return new ConnectionError(
        `port-forward upgrade refused: ${status} ${http.STATUS_CODES[status] ?? ""} for pod ${namespace}/${pod}; check that the pod exists and runs, and that the kubeconfig's user may create pods/portforward in namespace ${namespace}`,
        { cause: e },
    );
}
