/**
 * Password rotation end to end (issue 12, acceptance 4): the stack program (under the unit tests'
 * mocks) renders the credentials Secret and the StatefulSet for an old and a new admin password;
 * a stand-in for the Kubernetes API serves the Secret as the stack last wrote it, and a stand-in
 * for the StatefulSet controller restarts the pod only when the pod template changed, the new pod
 * accepting the password the Secret held when it started (the local HTTP front end over the real
 * engine, accepting one user). The DDL provider's connection code reads the password from the
 * Secret each time, as it does in a stack: after the rotation it connects with the new password,
 * and the old one is refused.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { SECRET_KEYS } from "../../schemas/naming";
import { ConnectionSpec, openClient } from "../../components/ingestion/connection";
import {
    EmbeddedClickHouse,
    HttpFront,
    openEmbedded,
    queryRows,
    serveHttp,
} from "../harness/clickhouse";
import { ofType, runStack } from "../unit/mocks";
import { writeTokenKubeconfig } from "../harness/fake-kube";

const TOKEN = "rotation-kube-token";
const OLD = "old-admin-pw-Zq81";
const NEW = "new-admin-pw-Kd40";

/** What the stack renders for an admin password: the credentials Secret and the pod template. */
async function render(admin: string): Promise<{
    secretName: string;
    data: Record<string, string>;
    template: unknown;
}> {
    const { resources } = await runStack(
        "dev",
        {},
        { clickhouseAdminPassword: pulumi.secret(admin) },
    );
    const secret = ofType(resources, "kubernetes:core/v1:Secret").find(
        (s) => s.name === "clickhouse-credentials",
    )!;
    const stringData = secret.inputs.stringData as Record<string, unknown>;
    const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
    return {
        secretName: secret.inputs.metadata.name as string,
        // Secret-wrapped under the mocks: { <signature>, value }.
        data: (stringData.value ?? stringData) as Record<string, string>,
        template: sts!.inputs.spec.template,
    };
}

/** The Kubernetes API as the provider uses it here: GET of one Secret, with a bearer token. */
async function kubeApi(secret: () => { name: string; data: Record<string, string> }) {
    const reads: string[] = [];
    const server = http.createServer((req, res) => {
        const reply = (code: number, body: unknown) => {
            res.writeHead(code, { "Content-Type": "application/json" });
            res.end(JSON.stringify(body));
        };
        if (req.headers.authorization !== `Bearer ${TOKEN}`)
            return reply(401, { kind: "Status", message: "Unauthorized" });
        const { name, data } = secret();
        const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/?]+)$/.exec(req.url ?? "");
        if (!m || m[2] !== name)
            return reply(404, { kind: "Status", message: `${req.url} not found` });
        reads.push(m[2]!);
        const encoded = Object.fromEntries(
            Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
        );
        reply(200, { kind: "Secret", metadata: { name, namespace: m[1] }, data: encoded });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    return {
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        reads,
        close: () =>
            new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
    };
}

/** A stable address in front of whichever pod is current, as a Service is. */
async function service(target: () => number) {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
        const upstream = net.connect(target(), "127.0.0.1");
        for (const s of [client, upstream]) {
            sockets.add(s);
            s.on("close", () => sockets.delete(s));
            s.on("error", () => [client, upstream].forEach((x) => x.destroy()));
        }
        client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    return {
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        close: () =>
            new Promise<void>((r) => {
                sockets.forEach((s) => s.destroy());
                server.close(() => r());
            }),
    };
}

describe("admin password rotation: the pods roll and the provider connects with the new password", () => {
    let ch: EmbeddedClickHouse;
    let pod: HttpFront;
    let applied: Awaited<ReturnType<typeof render>>;
    let api: Awaited<ReturnType<typeof kubeApi>>;
    let svc: Awaited<ReturnType<typeof service>>;
    let kubeconfig: string;
    let restarts = 0;

    /** The StatefulSet controller: a new pod when the template changed, with the Secret of now. */
    async function rollout(next: Awaited<ReturnType<typeof render>>) {
        const changed = JSON.stringify(next.template) !== JSON.stringify(applied.template);
        applied = next;
        if (!changed) return;
        await pod.close();
        pod = await serveHttp(ch, {
            username: "admin",
            password: next.data[SECRET_KEYS.adminPassword]!,
        });
        restarts++;
    }

    /** The connection the stack hands the DDL provider (url mode), password from the Secret. */
    const connection = (): ConnectionSpec => ({
        kind: "http",
        url: svc.url,
        allowInsecureHttp: true,
        username: "admin",
        password: {
            fromKubernetesSecret: {
                namespace: "kafka-clickhouse",
                name: applied.secretName,
                key: SECRET_KEYS.adminPassword,
            },
        },
        kubeconfig: { fromFile: kubeconfig },
    });
    const whoAmI = async (spec: ConnectionSpec) => {
        const opened = await openClient(spec);
        try {
            return (await queryRows<{ ok: number }>(opened.client, "SELECT 1 AS ok"))[0]!.ok;
        } finally {
            await opened.close();
        }
    };

    before(async () => {
        ch = await openEmbedded();
        applied = await render(OLD);
        pod = await serveHttp(ch, {
            username: "admin",
            password: applied.data[SECRET_KEYS.adminPassword]!,
        });
        api = await kubeApi(() => ({ name: applied.secretName, data: applied.data }));
        svc = await service(() => pod.port);
        kubeconfig = writeTokenKubeconfig(api.url, TOKEN, "kcs-rotation-");
    });
    after(async () => {
        await svc?.close();
        await api?.close();
        await pod?.close();
        await ch?.close();
        if (kubeconfig) fs.rmSync(path.dirname(kubeconfig), { recursive: true, force: true });
    });

    it("before: the provider connects with the password the Secret holds", async () => {
        assert.equal(applied.data[SECRET_KEYS.adminPassword], OLD);
        assert.equal(await whoAmI(connection()), 1);
        assert.ok(api.reads.length > 0, "the password was read from the Secret");
    });

    it("the same password again: nothing rolls", async () => {
        await rollout(await render(OLD));
        assert.equal(restarts, 0);
        assert.equal(await whoAmI(connection()), 1);
    });

    it("a new password: the Secret changes, a pod still on the old one refuses the provider", async () => {
        const next = await render(NEW);
        assert.equal(next.data[SECRET_KEYS.adminPassword], NEW);
        assert.notEqual(
            next.data[SECRET_KEYS.adminPasswordSha256],
            applied.data[SECRET_KEYS.adminPasswordSha256],
        );
        // What happened before the pod template carried a checksum of the Secret: the Secret is
        // updated, the pod is not restarted, and the provider (reading the new password) fails.
        const stale = applied;
        applied = { ...next, template: stale.template };
        await assert.rejects(whoAmI(connection()), /Authentication failed/);
        applied = stale;
    });

    it("a new password: the template changes, the pod rolls, the provider connects with the new one and the old is refused", async () => {
        await rollout(await render(NEW));
        assert.equal(restarts, 1, "the changed credentials checksum rolled the pod");
        assert.equal(await whoAmI(connection()), 1);
        process.env.KCS_ROTATION_OLD = OLD;
        await assert.rejects(
            whoAmI({
                kind: "http",
                url: svc.url,
                allowInsecureHttp: true,
                username: "admin",
                password: { fromEnv: "KCS_ROTATION_OLD" },
            }),
            /Authentication failed/,
        );
    });
});
