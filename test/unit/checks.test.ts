/**
 * The loader's checks beyond the schema (schemas/checks.ts): properties for collisions and
 * control characters (no variant passes), limits at their boundaries, and the engine-backed value
 * checks on legitimate values (no false refusals). The bad-stream corpus covers one case each.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import {
    MAX_NESTING,
    collisionProblems,
    controlCharacterProblems,
    documentProblem,
    engineProblems,
} from "../../schemas/checks";
import { askEngine, engineMessage } from "../../schemas/engine";
import { validateStream } from "../../schemas/loader";
import { LoadedStream, StreamInput, streamSchema } from "../../schemas/model";
import { STREAM_OBJECT_ROLES, streamObjectNames } from "../../schemas/naming";
import { NO_ENGINE, ROOT } from "./mocks";

const ENGINE = askEngine("SELECT 1") !== undefined;
const NAME = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/);

function stream(file: string, input: Partial<StreamInput> & { name: string }): LoadedStream {
    return {
        file,
        spec: streamSchema.parse({
            topic: { name: `t.${input.name}` },
            columns: [{ name: "id", type: "UInt64" }],
            orderBy: ["id"],
            ...input,
        }),
    };
}

describe("collisions between streams", () => {
    it("a stream named like any derived object of another is refused, in either file order", () => {
        fc.assert(
            fc.property(
                NAME,
                fc.constantFrom(...STREAM_OBJECT_ROLES),
                fc.boolean(),
                (n, role, swap) => {
                    const derived = streamObjectNames(n)[role];
                    const a = stream("a.yaml", { name: n });
                    const b = stream("b.yaml", { name: derived });
                    const problems = collisionProblems(swap ? [b, a] : [a, b]);
                    const named = problems.filter((p) => p.path === "name");
                    assert.equal(named.length, 1, JSON.stringify(problems));
                    const other = named[0]!.file === "a.yaml" ? "b.yaml" : "a.yaml";
                    assert.ok(named[0]!.message.includes(other), named[0]!.message);
                },
            ),
        );
    });

    it("streams whose derived names do not meet are accepted", () => {
        fc.assert(
            fc.property(NAME, NAME, (x, y) => {
                const nx = new Set(Object.values(streamObjectNames(x)));
                fc.pre(Object.values(streamObjectNames(y)).every((v) => !nx.has(v)));
                assert.deepEqual(
                    collisionProblems([
                        stream("x.yaml", { name: x }),
                        stream("y.yaml", { name: y }),
                    ]),
                    [],
                );
            }),
        );
    });

    it("topics equal up to '.' and '_' collide, naming the other file", () => {
        const topic = fc.stringMatching(/^[a-z][a-z0-9]{0,5}([._][a-z0-9]{1,5}){1,4}$/);
        fc.assert(
            fc.property(topic, (t) => {
                const flipped = t.replace(/[._]/g, (c) => (c === "." ? "_" : "."));
                const problems = collisionProblems([
                    stream("a.yaml", { name: "a", topic: { name: t } }),
                    stream("b.yaml", { name: "b", topic: { name: flipped } }),
                ]);
                assert.equal(problems.length, 1);
                assert.equal(problems[0]!.path, "topic.name");
                assert.match(problems[0]!.message, /a\.yaml/);
            }),
        );
    });

    it("a stream's default groups are taken; other stream's explicit group names are not", () => {
        const a = stream("a.yaml", { name: "clicks" });
        const ok = stream("b.yaml", { name: "b", consumer: { group: "clickhouse-clicks-extra" } });
        assert.deepEqual(collisionProblems([a, ok]), []);
        for (const group of [
            "clickhouse-clicks",
            "clickhouse-prod-clicks",
            "clickhouse-_x1-clicks",
        ]) {
            const b = stream("b.yaml", { name: "b", consumer: { group } });
            assert.equal(collisionProblems([a, b])[0]?.path, "consumer.group", group);
        }
    });
});

describe("documents", () => {
    it("the shipped stream files pass the document checks", () => {
        const dir = path.join(ROOT, "schemas/streams");
        for (const f of fs.readdirSync(dir))
            assert.equal(documentProblem(fs.readFileSync(path.join(dir, f), "utf8")), undefined, f);
    });

    it(`flow nesting: ${MAX_NESTING} levels pass, ${MAX_NESTING + 1} do not`, () => {
        const nested = (n: number) => `a: ${"[".repeat(n)}${"]".repeat(n)}\n`;
        assert.equal(documentProblem(nested(MAX_NESTING)), undefined);
        assert.match(documentProblem(nested(MAX_NESTING + 1)) ?? "", /nested more than 32/);
    });

    it("indentation and compact sequences are bounded too", () => {
        assert.equal(documentProblem(`a:\n${" ".repeat(256)}b: 1\n`), undefined);
        assert.match(documentProblem(`a:\n${" ".repeat(257)}b: 1\n`) ?? "", /indented more/);
        assert.equal(documentProblem(`a:\n${"- ".repeat(MAX_NESTING)}x\n`), undefined);
        assert.match(documentProblem(`a:\n${"- ".repeat(MAX_NESTING + 1)}x\n`) ?? "", /nested/);
    });

    it("size is counted in bytes, not characters", () => {
        assert.equal(documentProblem("é".repeat(512 * 1024)), undefined);
        assert.match(documentProblem(`${"é".repeat(512 * 1024)}x`) ?? "", /1048577 bytes/);
    });
});

describe("control characters", () => {
    it("one anywhere in any string field is reported at that key", () => {
        const control = fc.constantFrom(
            "\u0000",
            "\u0007",
            "\u001b",
            "\u007f",
            "\u0085",
            "\u2028",
            "\u202e",
        );
        const field = fc.constantFrom(
            ["description"],
            ["topic", "config", "x.y"],
            ["columns", 0, "comment"],
            ["columns", 0, "source"],
            ["formatSettings", "format_csv_delimiter"],
        );
        fc.assert(
            fc.property(
                field,
                fc.string({ maxLength: 10 }),
                control,
                fc.string({ maxLength: 10 }),
                (keys, pre, c, post) => {
                    const doc: Record<string, unknown> = {
                        columns: [{}],
                        topic: { config: {} },
                        formatSettings: {},
                    };
                    let at: Record<string, unknown> | unknown[] = doc;
                    for (const k of keys.slice(0, -1))
                        at = (at as Record<string, unknown>)[k] as Record<string, unknown>;
                    (at as Record<string | number, unknown>)[keys.at(-1)!] = pre + c + post;
                    const p = controlCharacterProblems(doc);
                    const expected = keys
                        .map((k, i) =>
                            typeof k === "number" ? `[${k}]` : `${i === 0 ? "" : "."}${k}`,
                        )
                        .join("");
                    assert.ok(
                        p.some((x) => x.path === expected),
                        `${expected}: ${JSON.stringify(p)}`,
                    );
                },
            ),
        );
    });

    it("a description may break lines; nothing else may", () => {
        assert.deepEqual(controlCharacterProblems({ description: "one\ntwo" }), []);
        assert.equal(controlCharacterProblems({ columns: [{ comment: "one\ntwo" }] }).length, 1);
    });
});

describe("values the engine judges", () => {
    before(() => assert.ok(ENGINE, NO_ENGINE));
    const base = validateStream(
        {
            name: "v",
            topic: { name: "v" },
            columns: [{ name: "id", type: "UInt64" }],
            orderBy: ["id"],
        },
        "v",
    ).spec;
    const spec = (type: string, def: string) => ({
        ...base,
        columns: [
            { name: "id", type: "UInt64" },
            { name: "c", type, default: def },
        ],
    });
    const fits: ReadonlyArray<readonly [string, string]> = [
        ["UInt8", "0"],
        ["UInt8", "255"],
        ["Int8", "-128"],
        ["Float32", "0.1"],
        ["Decimal(9, 2)", "1.555"],
        ["String", "'unknown'"],
        ["LowCardinality(String)", "'unknown'"],
        ["Nullable(UInt8)", "NULL"],
        ["DateTime", "now()"],
        ["DateTime64(3, 'UTC')", "now64(3)"],
        ["Date", "today()"],
        ["Date", "'2024-02-29'"],
        ["UUID", "generateUUIDv4()"],
        ["Enum8('a' = 1, 'b' = 2)", "'b'"],
        ["FixedString(3)", "'EUR'"],
        ["IPv4", "'127.0.0.1'"],
        ["Array(String)", "[]"],
        ["Map(String, UInt8)", "map('a', 1)"],
        ["Bool", "false"],
    ];
    for (const [type, def] of fits) {
        it(`accepts ${def} for ${type}`, () => {
            assert.deepEqual(engineProblems(spec(type, def)), []);
        });
    }

    it("format settings that exist, with valid values, are accepted", () => {
        const s = {
            ...spec("UInt8", "0"),
            formatSettings: {
                input_format_skip_unknown_fields: true,
                format_csv_delimiter: ";",
                date_time_input_format: "best_effort",
                input_format_allow_errors_num: 10,
            },
        };
        assert.deepEqual(engineProblems(s), []);
    });

    it("the engine's message is kept, its code and query echo are not", () => {
        assert.equal(
            engineMessage(
                "Code: 36. DB::Exception: Code: 36. DB::Exception: Unexpected value of X: 'b'. (BAD_ARGUMENTS) (version 26.7.2.1). (BAD_ARGUMENTS)",
            ),
            "Unexpected value of X: 'b'",
        );
    });
});
