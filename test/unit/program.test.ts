import * as pulumi from "@pulumi/pulumi";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../../infra/config";
import { asUserError } from "../../infra/user-errors";
import { askEngine } from "../../schemas/engine";
import { StreamSchemaError } from "../../schemas/loader";
import { NO_ENGINE, ROOT, installMocks, stackFileConfig } from "./mocks";
import { CORPUS_DIR, caseText, readCorpus } from "../fixtures/bad-streams";

const ENTRY = path.join(ROOT, "infra", "index.ts");

/** Runs the real entry point (infra/index.ts) under mocks with the given config. */
async function runProgram(
    config: Record<string, string>,
): Promise<{ registered: number; error?: Error }> {
    const recorded = installMocks("dev");
    pulumi.runtime.setAllConfig(
        Object.fromEntries(
            Object.entries(config).map(([k, v]) => [`kafka-clickhouse-stack:${k}`, v]),
        ),
    );
    for (const key of Object.keys(require.cache))
        if (key.startsWith(path.join(ROOT, "infra"))) delete require.cache[key];
    let error: Error | undefined;
    try {
        require(ENTRY);
    } catch (e) {
        error = e as Error;
    }
    await new Promise((r) => setTimeout(r, 100));
    return { registered: recorded.length, ...(error ? { error } : {}) };
}

function streamsDirWith(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-streams-"));
    for (const f of fs.readdirSync(path.join(ROOT, "schemas/streams"))) {
        fs.copyFileSync(path.join(ROOT, "schemas/streams", f), path.join(dir, f));
    }
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
}

describe("the program validates everything before registering a resource", () => {
    it("positive control: the dev stack registers its resources", async () => {
        const { registered, error } = await runProgram(stackFileConfig("dev"));
        assert.equal(error, undefined);
        assert.ok(registered > 15, `registered ${registered}`);
    });

    it("an unknown config key stops the program with nothing registered", async () => {
        const { registered, error } = await runProgram({
            ...stackFileConfig("dev"),
            clickhouseReplica: "1",
        });
        assert.match(
            String(error?.message),
            /stack 'dev'.*\n.*kafka-clickhouse-stack:clickhouseReplica: unknown key; did you mean 'clickhouseReplicas'/,
        );
        assert.ok(pulumi.RunError.isInstance(error), "reported as Pulumi's clean error");
        assert.equal(registered, 0);
    });

    it("a bad stream file stops the program with nothing registered, naming the file", async () => {
        const dir = streamsDirWith({
            "clicks.yaml":
                "name: clicks\ntopic: { name: clicks, partitions: 0 }\ncolumns: [{ name: a, type: Strnig }]\norderBy: [a]\n",
        });
        const { registered, error } = await runProgram({
            ...stackFileConfig("dev"),
            streamsDir: dir,
        });
        assert.match(
            String(error?.message),
            /clicks\.yaml: topic\.partitions: a topic needs at least 1 partition/,
        );
        assert.ok(pulumi.RunError.isInstance(error), "reported as Pulumi's clean error");
        assert.equal(registered, 0);
    });
});

describe("bad-stream corpus files stop the program with nothing registered", () => {
    // Two cases of every class (test/fixtures/bad-streams), among the shipped streams: the
    // document and collision classes, which the provider never sees, are caught here.
    const cases = readCorpus();
    const sample = [...new Set(cases.map((c) => c.cls))].flatMap((cls) =>
        cases.filter((c) => c.cls === cls).slice(0, 2),
    );
    const extra = cases.filter((c) =>
        /billion|huge|default-overflow|setting-unknown|cross-name-kafka/.test(c.file),
    );
    const engine = askEngine("SELECT 1") !== undefined;
    for (const c of [...new Set([...sample, ...extra])]) {
        it(`${c.file} (${c.cls})`, async () => {
            // A missing engine fails the cases that need it (never a skip): chdb is a dependency.
            if (c.needsEngine) assert.ok(engine, NO_ENGINE);
            const files: Record<string, string> = { [c.file]: caseText(c) };
            for (const p of c.with)
                files[path.basename(p)] = fs.readFileSync(path.join(CORPUS_DIR, p), "utf8");
            const { registered, error } = await runProgram({
                ...stackFileConfig("dev"),
                streamsDir: streamsDirWith(files),
            });
            const escaped = c.file.replace(/\./g, "\\.");
            assert.match(
                String(error?.message),
                new RegExp(`${escaped}${c.key ? `: ${c.key.replace(/[.[\]]/g, "\\$&")}` : ""}: `),
            );
            assert.ok(pulumi.RunError.isInstance(error), "reported as Pulumi's clean error");
            assert.equal(registered, 0);
        });
    }
});

describe("validation errors reach the user as Pulumi's clean error; bugs keep their stack", () => {
    const configError = new ConfigError("dev", ["kafka-clickhouse-stack:x: unknown key"]);
    const streamError = new StreamSchemaError([{ file: "a.yaml", path: "name", message: "bad" }]);
    for (const [what, error] of [
        ["a config error", configError],
        ["a stream file error", streamError],
    ] as const) {
        it(`${what} becomes a RunError with the same message`, () => {
            const reported = asUserError(error);
            assert.ok(pulumi.RunError.isInstance(reported));
            assert.equal((reported as Error).message, error.message);
        });
    }
    for (const [what, error] of [
        ["a TypeError", new TypeError("cannot read properties of undefined")],
        ["a plain Error", new Error("boom")],
        ["a thrown string", "not an error"],
    ] as const) {
        it(`${what} passes through unchanged (a bug keeps its stack trace)`, () => {
            const reported = asUserError(error);
            assert.equal(reported, error);
            assert.equal(pulumi.RunError.isInstance(reported), false);
        });
    }
});
