/**
 * The provider's connection over TLS (issue 12, acceptance 5): the local ClickHouse HTTP front
 * end serves HTTPS with a certificate this test makes (a CA and a server certificate from the
 * openssl CLI), and the provider's own `openClient` connects to it with the CA, refuses another
 * CA or a certificate made for another name with a message naming the CA verification, and
 * refuses plain `http://` unless `allowInsecureHttp` says so.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConnectionSpec, openClient } from "../../components/ingestion/connection";
import {
    EmbeddedClickHouse,
    HttpFront,
    openEmbedded,
    queryRows,
    serveHttp,
} from "../harness/clickhouse";

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
