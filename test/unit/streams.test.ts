import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import Ajv2020 from "ajv/dist/2020";
import * as YAML from "yaml";
import { StreamSchemaError, loadStreams, parseStream } from "../../schemas/loader";
import { ROOT } from "./mocks";

const VALID = `
name: clicks
topic: { name: site.clicks, partitions: 2 }
columns:
  - { name: ts, type: "DateTime64(3)" }
  - { name: url, type: String }
orderBy: [ts]
`;

function problemsOf(fn: () => unknown): string {
    try {
        fn();
    } catch (e) {
        assert.ok(e instanceof StreamSchemaError, `expected StreamSchemaError, got ${String(e)}`);
        return e.message;
    }
    assert.fail("expected a StreamSchemaError");
}

function dirWith(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-schemas-"));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
}

describe("stream schemas", () => {
    it("the shipped examples load, with types in ClickHouse's canonical spelling", () => {
        const streams = loadStreams();
        assert.deepEqual(
            streams.map((s) => s.spec.name),
            ["iot_readings", "orders", "web_events"],
        );
        const orders = streams.find((s) => s.spec.name === "orders")!.spec;
        assert.equal(orders.engine.type, "ReplacingMergeTree");
        assert.equal(orders.columns.find((c) => c.name === "total")!.type, "Decimal(12, 2)");
        assert.equal(orders.onError, "deadLetter");
    });

    it("the examples validate against the published JSON Schema (and the schema can fail)", () => {
        const ajv = new Ajv2020({ strict: false });
        const validate = ajv.compile(
            JSON.parse(fs.readFileSync(path.join(ROOT, "schemas/stream.schema.json"), "utf8")),
        );
        for (const f of fs.readdirSync(path.join(ROOT, "schemas/streams"))) {
            const doc = YAML.parse(fs.readFileSync(path.join(ROOT, "schemas/streams", f), "utf8"));
            assert.ok(validate(doc), `${f}: ${JSON.stringify(validate.errors)}`);
        }
        assert.equal(
            validate({ name: "x", topic: { name: "t" }, columns: [], orderBy: ["a"], colums: 1 }),
            false,
        );
    });

    const bad: Array<[string, string, RegExp]> = [
        [
            "a bad column type",
            VALID.replace("type: String", "type: Strnig"),
            /columns\[1\]\.type: unknown ClickHouse type 'Strnig'/,
        ],
        [
            "zero partitions",
            VALID.replace("partitions: 2", "partitions: 0"),
            /topic\.partitions: a topic needs at least 1 partition/,
        ],
        [
            "a misspelt key",
            VALID.replace("orderBy", "orderby"),
            /Unrecognized key: "orderby".*stream\.schema\.json/,
        ],
        [
            "an ORDER BY on a missing column",
            VALID.replace("orderBy: [ts]", "orderBy: [tss]"),
            /orderBy\[0\]: 'tss': unknown column 'tss'/,
        ],
        [
            "SQL smuggled into a TTL",
            VALID + 'ttl: "ts + INTERVAL 1 DAY; DROP TABLE x"\n',
            /ttl: .*';' is not allowed/,
        ],
        [
            "a subquery in a default",
            VALID.replace("type: String }", 'type: String, default: "(SELECT 1)" }'),
            /columns\[1\]\.default: .*keyword 'SELECT'/,
        ],
        [
            "a stream name with a quote",
            VALID.replace("name: clicks", 'name: "clicks`; --"'),
            /name: stream name must be lower-case snake_case/,
        ],
        [
            "duplicate columns",
            VALID.replace("name: url", "name: ts"),
            /columns\[1\]\.name: duplicate column 'ts'/,
        ],
        [
            "more consumers than partitions",
            VALID + "consumer: { consumers: 4 }\n",
            /consumer\.consumers: 4 consumers for 2 partitions/,
        ],
        ["broken YAML", "name: [unclosed\n", /not valid YAML\/JSON \(line \d+\)/],
        [
            "Nullable(Array)",
            VALID.replace("type: String", "type: Nullable(Array(String))"),
            /Nullable\(Array\(String\)\) is not allowed/,
        ],
    ];
    for (const [title, text, message] of bad) {
        it(`rejects ${title}, naming file and key`, () => {
            const msg = problemsOf(() => parseStream(text, "schemas/streams/clicks.yaml"));
            assert.match(msg, /schemas\/streams\/clicks\.yaml: /);
            assert.match(msg, message);
        });
    }

    it("rejects a duplicate stream across files, naming both", () => {
        const dir = dirWith({
            "a.yaml": VALID,
            "b.yaml": VALID.replace("site.clicks", "other.topic"),
        });
        const msg = problemsOf(() => loadStreams(dir));
        assert.match(msg, /b\.yaml: name: duplicate stream 'clicks' \(also in .*a\.yaml\)/);
    });

    it("rejects two streams on one topic", () => {
        const dir = dirWith({
            "a.yaml": VALID,
            "b.yaml": VALID.replace("name: clicks", "name: clicks2"),
        });
        assert.match(
            problemsOf(() => loadStreams(dir)),
            /b\.yaml: topic\.name: topic 'site\.clicks' is already declared by .*a\.yaml/,
        );
    });

    it("reports the problems of every file in one error", () => {
        const dir = dirWith({
            "a.yaml": VALID.replace("partitions: 2", "partitions: 0"),
            "b.yaml": "name: 1\n",
        });
        const err = (() => {
            try {
                loadStreams(dir);
            } catch (e) {
                return e as StreamSchemaError;
            }
            return undefined;
        })();
        assert.ok(err);
        assert.ok(err.problems.some((p) => p.file.endsWith("a.yaml")));
        assert.ok(err.problems.some((p) => p.file.endsWith("b.yaml")));
    });
});
