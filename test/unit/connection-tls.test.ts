/**
 * What a connection spec must say about transport security: `http` refuses `http://` unless
 * `allowInsecureHttp`, a CA source has one of its three forms, and a port-forward over TLS names
 * the CA and the server name. (The handshakes themselves: test/integration/tls.test.ts.)
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connectionProblems } from "../../components/ingestion/connection";
import { certificateError } from "../../components/ingestion/connection-tls";

const secretCa = {
    fromKubernetesSecret: { namespace: "db", name: "clickhouse-tls", key: "ca.crt" },
};

describe("connection specs and TLS", () => {
    it("refuses http:// without allowInsecureHttp, naming the key and the fix", () => {
        const problems = connectionProblems({ kind: "http", url: "http://ch.db.svc:8123" });
        assert.equal(problems.length, 1);
        assert.match(
            problems[0]!,
            /^connection\.url http:\/\/ch\.db\.svc:8123 is plain http:\/\/: .*use https:\/\/ \(with connection\.ca .*\), or set connection\.allowInsecureHttp: true/,
        );
        assert.deepEqual(
            connectionProblems({
                kind: "http",
                url: "http://127.0.0.1:8123",
                allowInsecureHttp: true,
            }),
            [],
        );
        assert.match(
            connectionProblems({
                kind: "http",
                url: "http://127.0.0.1:8123",
                allowInsecureHttp: "yes",
            }).join(),
            /connection\.allowInsecureHttp must be a boolean/,
        );
        assert.deepEqual(connectionProblems({ kind: "http", url: "https://ch:8443" }), []);
    });

    const cases: Array<[string, unknown, RegExp | null]> = [
        ["a file", { fromFile: "/etc/ca.crt" }, null],
        ["an environment variable", { fromEnv: "CLICKHOUSE_CA" }, null],
        ["a Kubernetes Secret", secretCa, null],
        ["a PEM as a plain value", "-----BEGIN CERTIFICATE-----", /connection\.ca must be/],
        ["a stack config key", { fromConfig: "ca" }, /connection\.ca must be/],
        [
            "a Secret reference without its key",
            { fromKubernetesSecret: { namespace: "db", name: "x" } },
            /connection\.ca must be \{ fromFile: path \}, \{ fromEnv: VAR \} or \{ fromKubernetesSecret/,
        ],
    ];
    for (const [title, ca, problem] of cases) {
        it(`ca from ${title}: ${problem ? "refused" : "accepted"}`, () => {
            const problems = connectionProblems({ kind: "http", url: "https://ch:8443", ca });
            if (problem) assert.match(problems.join(), problem);
            else assert.deepEqual(problems, []);
        });
    }

    it("a port-forward over TLS needs a CA source and the certificate's server name", () => {
        const base = { kind: "port-forward", namespace: "db", service: "clickhouse" };
        assert.deepEqual(
            connectionProblems({
                ...base,
                tls: { ca: secretCa, serverName: "clickhouse.db.svc" },
            }),
            [],
        );
        assert.match(
            connectionProblems({ ...base, tls: { ca: secretCa } }).join(),
            /connection\.tls\.serverName must be the DNS name the server's certificate is made for/,
        );
        assert.match(
            connectionProblems({ ...base, tls: { serverName: "clickhouse.db.svc" } }).join(),
            /connection\.tls\.ca must be/,
        );
        assert.match(connectionProblems({ ...base, tls: true }).join(), /connection\.tls must be/);
    });

    it("only certificate failures are phrased as CA verification; others are left to the client", () => {
        const target = {
            host: "ch",
            port: 8443,
            caDescription: "connection.ca X",
            describe: "https://ch:8443",
            timeoutMs: 1,
        };
        const verify = Object.assign(new Error("unable to verify the first certificate"), {
            code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        });
        assert.match(
            certificateError(verify, target)!.message,
            /^TLS: the certificate of https:\/\/ch:8443 failed CA verification \(UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate\); check that connection\.ca X is the CA/,
        );
        const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
        assert.equal(certificateError(refused, target), undefined);
        assert.equal(certificateError(undefined, target), undefined);
    });
});
