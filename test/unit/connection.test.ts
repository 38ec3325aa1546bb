/**
 * Connection specs as the DDL provider's `check` sees them: every malformed spec gets a message
 * naming the setting and the fix, and secret sources resolve or say exactly what is missing.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    ConnectionError,
    connectionProblems,
    openClient,
    resolveSecret,
    shutdownEmbedded,
} from "../../components/ingestion/connection";
import { claimEngine, currentEngine } from "../../schemas/engine";
import { NO_ENGINE } from "./mocks";

describe("connection specs", () => {
    it("an unknown kind names the kinds there are", () => {
        assert.deepEqual(connectionProblems({ kind: "ssh" }), [
            `connection.kind must be 'http', 'port-forward' or 'embedded', not "ssh"`,
        ]);
        assert.deepEqual(connectionProblems({}), [
            `connection.kind must be 'http', 'port-forward' or 'embedded', not undefined`,
        ]);
    });

    it("a url that does not parse is quoted back", () => {
        assert.deepEqual(connectionProblems({ kind: "http", url: "https://[ch.example" }), [
            'connection.url "https://[ch.example" is not a URL',
        ]);
        assert.deepEqual(connectionProblems({ kind: "http" }), [
            "connection.url is required for kind 'http'",
        ]);
    });

    it("a kubeconfig source must be one of the known forms", () => {
        for (const kubeconfig of [{}, null, { fromFile: 7 }, { inCluster: "yes" }]) {
            assert.match(
                connectionProblems({
                    kind: "port-forward",
                    namespace: "db",
                    pod: "ch-0",
                    kubeconfig,
                }).join(),
                /connection\.kubeconfig must be \{ fromConfig \}, \{ fromEnv \}, \{ fromFile \} or \{ inCluster: true \}/,
                JSON.stringify(kubeconfig),
            );
        }
        for (const kubeconfig of [{ fromEnv: "KUBECONFIG" }, { inCluster: true }])
            assert.deepEqual(
                connectionProblems({
                    kind: "port-forward",
                    namespace: "db",
                    pod: "ch-0",
                    kubeconfig,
                }),
                [],
            );
    });

    it("an embedded connection needs its data folder", () => {
        assert.deepEqual(connectionProblems({ kind: "embedded" }), [
            "connection.path is required for kind 'embedded'",
        ]);
    });
});

describe("secret sources", () => {
    it("fromEnv: the variable's value, or an error naming the variable", async () => {
        const name = "KCS_TEST_CONNECTION_SECRET";
        delete process.env[name];
        await assert.rejects(
            resolveSecret({ fromEnv: name }, {}),
            (e: unknown) =>
                e instanceof ConnectionError &&
                e.message === `environment variable ${name} is not set`,
        );
        process.env[name] = "s3cret";
        try {
            assert.equal(await resolveSecret({ fromEnv: name }, {}), "s3cret");
        } finally {
            delete process.env[name];
        }
    });

    it("fromConfig: the stack key's value, or the command that sets it", async () => {
        const config = { get: (k: string) => (k === "pw" ? "from-config" : undefined) };
        assert.equal(await resolveSecret({ fromConfig: "pw" }, { config }), "from-config");
        await assert.rejects(
            resolveSecret({ fromConfig: "other" }, { config }),
            /stack config key 'other' is not set; run: pulumi config set --secret other <value>/,
        );
    });
});

describe("the embedded engine's lifetime", () => {
    it("shutdownEmbedded frees the one engine a process may hold, with or without a client on it", async () => {
        assert.ok(
            fs.existsSync(path.join(__dirname, "..", "..", "node_modules", "chdb")),
            NO_ENGINE,
        );
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-conn-"));
        try {
            // An engine claimed without a client (as the stream loader does) ...
            claimEngine(path.join(dir, "a"));
            await assert.rejects(
                openClient({ kind: "embedded", path: path.join(dir, "b") }, {}),
                /chdb runs one engine per process/,
            );
            await shutdownEmbedded();
            assert.equal(currentEngine(), undefined);
            // ... and one with a client: both are released, and another path opens.
            const opened = await openClient({ kind: "embedded", path: path.join(dir, "b") }, {});
            const rows = await opened.client.query({
                query: "SELECT 1 AS one",
                format: "JSONEachRow",
            });
            assert.deepEqual(await rows.json(), [{ one: 1 }]);
            await shutdownEmbedded();
            assert.equal(currentEngine(), undefined);
        } finally {
            await shutdownEmbedded();
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
