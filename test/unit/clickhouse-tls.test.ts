/**
 * TLS on ClickHouse's listeners (issue 12): the rendered config.d files, the pod, the Services,
 * the cert-manager Certificate, and the DDL provider's connection for the stack, through the
 * stack program under mocks (test/unit/mocks.ts).
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderNetworkConfig, renderTlsConfig, TLS_DIR } from "../../components/clickhouse/render";
import { certificate, tlsServerNames } from "../../components/clickhouse/tls";
import { ofType, runStack, type Recorded } from "./mocks";

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" });

const only = (resources: Recorded[], type: string): any => {
    const found = ofType(resources, type);
    assert.equal(found.length, 1, `${type}: ${found.length} registered`);
    return found[0]!.inputs;
};
const clientService = (resources: Recorded[]): any =>
    ofType(resources, "kubernetes:core/v1:Service").find(
        (s) => !(s.inputs as any).metadata.name.endsWith("-headless"),
    )!.inputs;
const CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate";
const INGESTION = "pulumi-nodejs:dynamic/ingestion:StreamIngestion";

describe("ClickHouse TLS config files", () => {
    it("tls.xml opens HTTPS and secure native with the mounted certificate, no client certificates", () => {
        const xml = renderTlsConfig();
        assert.equal(XMLValidator.validate(xml), true);
        const ch = parser.parse(xml).clickhouse;
        assert.equal(ch.https_port, 8443);
        assert.equal(ch.tcp_port_secure, 9440);
        const server = ch.openSSL.server;
        assert.equal(server.certificateFile, `${TLS_DIR}/tls.crt`);
        assert.equal(server.privateKeyFile, `${TLS_DIR}/tls.key`);
        assert.equal(server.verificationMode, "none");
        assert.equal(server.disableProtocols, "sslv2,sslv3,tlsv1,tlsv1_1");
    });

    it("network.xml with TLS removes plain HTTP and native, so no listener takes a password in clear", () => {
        const plain = parser.parse(renderNetworkConfig(false)).clickhouse;
        assert.equal(plain.http_port, 8123);
        assert.equal(plain.tcp_port, 9000);
        const tls = parser.parse(renderNetworkConfig(true)).clickhouse;
        assert.equal(tls.http_port["@remove"], "remove");
        assert.equal(tls.tcp_port["@remove"], "remove");
        assert.deepEqual(
            Object.keys(tls).filter((k) => k.endsWith("_port") && tls[k]["@remove"] === undefined),
            [],
            "network.xml opens nothing with TLS on (tls.xml does)",
        );
    });

    it("the Certificate names the Service, its namespace forms and every pod", () => {
        const cert = certificate(
            { name: "ch-tls", namespace: "db", labels: { app: "ch" } },
            { source: "cert-manager", issuer: { name: "ca", kind: "Issuer" } },
            "ch",
        );
        assert.equal(cert.apiVersion, "cert-manager.io/v1");
        assert.equal(cert.kind, "Certificate");
        const spec = cert["spec"] as any;
        assert.equal(spec.secretName, "ch-tls");
        assert.deepEqual(spec.issuerRef, { name: "ca", kind: "Issuer", group: "cert-manager.io" });
        assert.deepEqual(spec.dnsNames, tlsServerNames("ch", "db"));
        assert.ok(spec.dnsNames.includes("ch.db.svc"));
        assert.ok(spec.dnsNames.includes("*.ch-headless.db.svc"));
        assert.ok(spec.usages.includes("server auth"));
    });
});

const configData = (resources: Recorded[]): Record<string, string> =>
    (
        ofType(resources, "kubernetes:core/v1:ConfigMap").find(
            (c) => (c.inputs as any).data["network.xml"] !== undefined,
        )!.inputs as any
    ).data;
const container = (resources: Recorded[]): any =>
    only(resources, "kubernetes:apps/v1:StatefulSet").spec.template.spec.containers[0];
const podVolumes = (resources: Recorded[]): any[] =>
    only(resources, "kubernetes:apps/v1:StatefulSet").spec.template.spec.volumes;
const connection = (resources: Recorded[]): any =>
    (ofType(resources, INGESTION)[0]!.inputs as any).connection;

describe("ClickHouse TLS in the stack", () => {
    it("dev: TLS off, plain ports, no Certificate, port-forward over HTTP", async () => {
        const { resources, outputs } = await runStack("dev");
        assert.equal(ofType(resources, CERTIFICATE).length, 0);
        assert.equal(configData(resources)["tls.xml"], undefined);
        const c = container(resources);
        assert.deepEqual(
            c.ports.map((p: any) => [p.name, p.containerPort]),
            [
                ["http", 8123],
                ["native", 9000],
            ],
        );
        assert.equal(c.readinessProbe.httpGet.scheme, undefined, "HTTP, the default");
        assert.ok(!podVolumes(resources).some((v) => v.name === "tls"));
        assert.deepEqual(
            clientService(resources).spec.ports.map((p: any) => p.port),
            [8123, 9000],
        );
        assert.equal(connection(resources).port, 8123);
        assert.equal(connection(resources).tls, undefined);
        assert.match(
            String(outputs["clickhouseEndpoint"]),
            /^http:\/\/clickhouse\.kcs-dev\.svc:8123$/,
        );
    });

    it("prod: a cert-manager Certificate, HTTPS and secure native only, the provider verifying CA and name", async () => {
        const { resources, outputs } = await runStack("prod");
        const cert = only(resources, CERTIFICATE);
        assert.deepEqual(cert.spec.issuerRef, {
            name: "clickhouse-ca",
            kind: "ClusterIssuer",
            group: "cert-manager.io",
        });
        assert.equal(cert.spec.secretName, "clickhouse-tls");
        assert.ok(cert.spec.dnsNames.includes("clickhouse.kcs-prod.svc"));

        const files = configData(resources);
        assert.equal(files["tls.xml"], renderTlsConfig());
        assert.equal(files["network.xml"], renderNetworkConfig(true));

        const c = container(resources);
        assert.deepEqual(
            c.ports.map((p: any) => [p.name, p.containerPort]),
            [
                ["https", 8443],
                ["native-tls", 9440],
            ],
        );
        for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe])
            assert.deepEqual(probe.httpGet, { path: "/ping", port: "https", scheme: "HTTPS" });
        assert.deepEqual(
            podVolumes(resources).find((v) => v.name === "tls"),
            { name: "tls", secret: { secretName: "clickhouse-tls", defaultMode: 0o440 } },
        );
        assert.deepEqual(
            c.volumeMounts.find((m: any) => m.name === "tls"),
            { name: "tls", mountPath: TLS_DIR, readOnly: true },
        );
        for (const svc of ofType(resources, "kubernetes:core/v1:Service"))
            assert.deepEqual(
                (svc.inputs as any).spec.ports,
                [
                    { name: "https", port: 8443, targetPort: "https" },
                    { name: "native-tls", port: 9440, targetPort: "native-tls" },
                ],
                svc.name,
            );

        assert.deepEqual(connection(resources).tls, {
            ca: {
                fromKubernetesSecret: {
                    namespace: "kcs-prod",
                    name: "clickhouse-tls",
                    key: "ca.crt",
                },
            },
            serverName: "clickhouse.kcs-prod.svc",
        });
        assert.equal(connection(resources).port, 8443);
        assert.equal(outputs["clickhouseEndpoint"], "https://clickhouse.kcs-prod.svc:8443");
    });

    it("the ingress NetworkPolicy admits the clients on the TLS ports only", async () => {
        const clients = '[{"namespace":"apps","podLabels":{"app":"dashboard"}}]';
        const ports = async (overrides: Record<string, string>) => {
            const { resources } = await runStack("prod", {
                clickhouseClients: clients,
                ...overrides,
            });
            const ingress = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
                .map((r) => r.inputs as any)
                .find((p) => p.spec.policyTypes.includes("Ingress"));
            return ingress.spec.ingress[0].ports.map((p: any) => p.port);
        };
        assert.deepEqual(await ports({}), [8443, 9440]);
        assert.deepEqual(await ports({ clickhouseTls: "off" }), [8123, 9000]);
    });

    it("a user Secret: mounted, no Certificate", async () => {
        const { resources } = await runStack("dev", {
            clickhouseTls: "secret",
            clickhouseTlsSecret: "my-clickhouse-tls",
        });
        assert.equal(ofType(resources, CERTIFICATE).length, 0);
        assert.equal(
            podVolumes(resources).find((v) => v.name === "tls").secret.secretName,
            "my-clickhouse-tls",
        );
        assert.equal(connection(resources).tls.ca.fromKubernetesSecret.name, "my-clickhouse-tls");
    });

    it("url mode: the stack's CA for its own Service's name, the system's CAs for another", async () => {
        const tls = { clickhouseTls: "secret", clickhouseTlsSecret: "my-clickhouse-tls" };
        const url = (ingestionUrl: string) =>
            runStack("dev", { ...tls, ingestionConnection: "url", ingestionUrl });
        const own = connection((await url("https://clickhouse.kcs-dev.svc:8443")).resources);
        assert.deepEqual(own.ca, {
            fromKubernetesSecret: {
                namespace: "kcs-dev",
                name: "my-clickhouse-tls",
                key: "ca.crt",
            },
        });
        assert.equal(own.allowInsecureHttp, undefined);
        const other = connection((await url("https://clickhouse.example.com")).resources);
        assert.equal(other.ca, undefined);
        const insecure = connection(
            (
                await runStack("dev", {
                    ingestionConnection: "url",
                    ingestionUrl: "http://127.0.0.1:8123",
                    ingestionAllowInsecureHttp: "true",
                })
            ).resources,
        );
        assert.equal(insecure.allowInsecureHttp, true);
    });
});
