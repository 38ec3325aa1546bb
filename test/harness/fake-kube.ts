/**
 * Pieces of the fake Kubernetes API servers the integration tests stand up (`ws` for the
 * port-forward subresource): the kubeconfig that points at one, and the port-forward bridge.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { WebSocket } from "ws";

/** Writes a kubeconfig for `server` with a bearer token into a new temporary folder; returns its path. */
export function writeTokenKubeconfig(server: string, token: string, prefix: string): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), prefix)), "config");
    fs.writeFileSync(
        file,
        [
            "apiVersion: v1",
            "kind: Config",
            "current-context: test",
            "contexts: [{ name: test, context: { cluster: fake, user: robot } }]",
            `clusters: [{ name: fake, cluster: { server: "${server}" } }]`,
            `users: [{ name: robot, user: { token: ${token} } }]`,
        ].join("\n"),
    );
    return file;
}

/**
 * Serves one port-forward WebSocket as the kubelet does: the pod port on the data (0) and error
 * (1) channels first, then channel 0 both ways to `upstreamPort` on loopback.
 */
export function bridgePortForward(ws: WebSocket, podPort: number, upstreamPort: number): void {
    const port = Buffer.alloc(2);
    port.writeUInt16LE(podPort);
    ws.send(Buffer.concat([Buffer.from([0]), port]));
    ws.send(Buffer.concat([Buffer.from([1]), port]));
    const upstream = net.connect(upstreamPort, "127.0.0.1");
    ws.on("message", (data: Buffer, isBinary) => {
        if (isBinary && data[0] === 0) upstream.write(data.subarray(1));
    });
    upstream.on("data", (d: Buffer) => ws.send(Buffer.concat([Buffer.from([0]), d])));
    upstream.on("close", () => ws.close());
    upstream.on("error", () => ws.close());
    ws.on("close", () => upstream.end());
    ws.on("error", () => upstream.destroy());
}
