/**
 * Acceptance 3, provider side: each bad stream of the corpus (test/fixtures/bad-streams) goes to
 * the real dynamic provider (`providerImplementation`: check, then create as `pulumi up` would run
 * it) against the ClickHouse HTTP front end, which records every request. The provider must fail,
 * naming the key, and the server must see no statement at all: not even CREATE DATABASE, and no
 * request other than read-only introspection.
 *
 * Not sent: cases the provider can never receive. `document` cases are refused as text by the
 * program's loader before any resource exists (the provider gets parsed objects), and `collision`
 * cases are about a set of files (the provider sees one stream); test/unit/program.test.ts runs
 * both kinds through the stack program.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import {
    StreamIngestionInputs,
    providerImplementation as provider,
} from "../../components/ingestion/provider";
import { ConnectionSpec } from "../../components/ingestion/connection";
import { askEngine } from "../../schemas/engine";
import { loadStreams } from "../../schemas/loader";
import { EmbeddedClickHouse, HttpFront, openEmbedded, serveHttp } from "../harness/clickhouse";
import { BadStreamCase, caseText, readCorpus } from "../fixtures/bad-streams";

const PROJECT = "kafka-clickhouse-stack";
const USER = "corpus_admin";
const PASSWORD = "corpus-Pa55";
const { Config } = require("@pulumi/pulumi/cmd/dynamic-provider/config") as {
    Config: new (raw: Record<string, string>, project: string) => pulumi.dynamic.Config;
};

const SENT = readCorpus().filter((c) => c.cls !== "document" && c.cls !== "collision");

let ch: EmbeddedClickHouse;
let front: HttpFront;

before(async () => {
    ch = await openEmbedded();
    front = await serveHttp(ch, { username: USER, password: PASSWORD });
    await provider.configure({
        config: new Config({ [`${PROJECT}:clickhousePassword`]: PASSWORD }, PROJECT),
    } as pulumi.dynamic.ConfigureRequest);
});
after(async () => {
    await front?.close();
    await ch?.close();
});

const inputs = (stream: unknown): StreamIngestionInputs => ({
    stream: stream as StreamIngestionInputs["stream"],
    database: "corpus",
    kafkaBrokers: "127.0.0.1:1",
    connection: {
        kind: "http",
        url: front.url,
        allowInsecureHttp: true, // the local front end on loopback
        username: USER,
        password: { fromConfig: "clickhousePassword" },
    } as ConnectionSpec,
    allowDestructiveChanges: false,
});

/** The text of a recorded request: URL query parameter and body. */
const statementOf = (r: { url: string; body: string }): string =>
    `${new URL(r.url, "http://x").searchParams.get("query") ?? ""}\n${r.body}`.trim();
const READ_ONLY = /^(SELECT|WITH|DESCRIBE|SHOW|EXISTS|EXPLAIN)\b/i;

describe("bad streams never reach the server", () => {
    it("the engine answers the loader while this process serves ClickHouse from it", () => {
        // The loader asks the embedded engine through a second session on the same directory.
        assert.deepEqual(askEngine("SELECT 1 AS one"), { ok: true, rows: [{ one: 1 }] });
    });

    it("positive control: a valid stream is created, and the front end records its statements", async () => {
        const orders = loadStreams().find((s) => s.spec.name === "orders")!.spec;
        const before = front.requests.length;
        const checked = await provider.check({}, inputs(orders));
        assert.deepEqual(checked.failures ?? [], [], JSON.stringify(checked.failures));
        await provider.create(checked.inputs as StreamIngestionInputs);
        const seen = front.requests.slice(before).map(statementOf);
        assert.ok(
            seen.some((s) => /^CREATE DATABASE/.test(s)),
            seen.join("\n"),
        );
        assert.ok(seen.filter((s) => !READ_ONLY.test(s)).length >= 5);
    });

    it(`${SENT.length} corpus files: check fails naming the key, create throws, no statement is sent`, async (t) => {
        assert.ok(SENT.length >= 100, `${SENT.length} cases sent`);
        const started = Date.now();
        let requests = 0;
        for (const c of SENT) {
            const before = front.requests.length;
            const raw: unknown = YAML.parse(caseText(c));
            const checked = await provider.check({}, inputs(raw));
            const reasons = (checked.failures ?? []).map((f) => `${f.property}: ${f.reason}`);
            assert.ok(reasons.length > 0, `${c.file}: check accepted it`);
            assert.ok(
                reasons.some((r) => namesKey(r, c)),
                `${c.file}: no failure names '${c.key}':\n${reasons.join("\n")}`,
            );
            await assert.rejects(provider.create(inputs(raw)), `${c.file}: create ran`);
            const sent = front.requests.slice(before).map(statementOf);
            requests += sent.length;
            const writes = sent.filter((s) => !READ_ONLY.test(s));
            assert.deepEqual(writes, [], `${c.file}: the server saw statements`);
        }
        const ms = Date.now() - started;
        t.diagnostic(
            `${SENT.length} cases in ${ms} ms (${(ms / SENT.length).toFixed(1)} ms each); ${requests} read-only requests, 0 statements`,
        );
    });
});

/** A check failure names the case's key: `stream` failures start with the key path. */
function namesKey(reason: string, c: BadStreamCase): boolean {
    if (c.key === "") return true;
    return reason.startsWith(`stream: ${c.key}: `) || reason.startsWith(`stream: ${c.key}`);
}
