import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { StreamSchemaError, loadStreams, validateStream } from "../../schemas/loader";
import { StreamInput } from "../../schemas/model";
import {
    OBJECTS_AS_STRINGS,
    formatSourcePath,
    parseSourcePath,
    renderSources,
    withoutLowCardinality,
} from "../../schemas/sources";
import { SqlInputError } from "../../schemas/sql";
import { expectedState, planStream } from "../../components/ingestion/planner";

const K = "`db`.`s_kafka`";

function stream(columns: StreamInput["columns"], over: Partial<StreamInput> = {}): StreamInput {
    return {
        name: "s",
        topic: { name: "s" },
        columns,
        orderBy: [columns[0]!.name],
        ...over,
    };
}

function problemsOf(input: StreamInput): string[] {
    try {
        validateStream(input, "schemas/streams/s.yaml");
    } catch (e) {
        if (e instanceof StreamSchemaError)
            return e.problems.map((p) => `${p.file}: ${p.path}: ${p.message}`);
        throw e;
    }
    return [];
}

function render(input: StreamInput) {
    const spec = validateStream(input, "s.yaml").spec;
    return renderSources(spec, K);
}

describe("Kafka table column types", () => {
    it("drop LowCardinality at any depth, and leave quoted text alone", () => {
        const cases: Array<[string, string]> = [
            ["LowCardinality(String)", "String"],
            ["LowCardinality(Nullable(String))", "Nullable(String)"],
            ["Array(LowCardinality(String))", "Array(String)"],
            [
                "Map(LowCardinality(String), Array(LowCardinality(FixedString(3))))",
                "Map(String, Array(FixedString(3)))",
            ],
            ["Tuple(a LowCardinality(String), b UInt8)", "Tuple(a String, b UInt8)"],
            ["Enum8('LowCardinality(x)' = 1, 'b' = 2)", "Enum8('LowCardinality(x)' = 1, 'b' = 2)"],
            ["DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')"],
        ];
        for (const [type, kafka] of cases) assert.equal(withoutLowCardinality(type), kafka, type);
    });

    it("every LowCardinality column of the shipped streams is plain in the Kafka table", () => {
        let seen = 0;
        for (const { spec } of loadStreams()) {
            seen += spec.columns.filter((c) => c.type.includes("LowCardinality")).length;
            for (const c of renderSources(spec, "k").kafkaColumns)
                assert.doesNotMatch(c.type, /LowCardinality/, `${spec.name}.${c.name}`);
        }
        assert.ok(seen > 0, "the shipped streams have LowCardinality columns");
    });
});

describe("parseSourcePath", () => {
    const cases: ReadonlyArray<readonly [string, readonly string[]]> = [
        ["id", ["id"]],
        ["user.id", ["user", "id"]],
        ["a.b.c", ["a", "b", "c"]],
        ["a\\.b", ["a.b"]],
        ["a\\.b.c", ["a.b", "c"]],
        ["a\\\\.b", ["a\\", "b"]],
        ["ключ.ü", ["ключ", "ü"]],
    ];
    for (const [source, keys] of cases)
        it(`${source} -> ${JSON.stringify(keys)}`, () => {
            assert.deepEqual(parseSourcePath(source), keys);
        });

    for (const s of ["a..b", ".a", "a.", "a\\b", "a\\"])
        it(`rejects ${s}, saying how to write it`, () => {
            assert.throws(
                () => parseSourcePath(s),
                (e: Error) =>
                    e instanceof SqlInputError &&
                    /'\\\.'|backslash must be followed/.test(e.message),
            );
        });

    it("formatSourcePath writes what parseSourcePath reads back (any keys)", () => {
        fc.assert(
            fc.property(
                fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 4 }),
                (keys) => {
                    assert.deepEqual(parseSourcePath(formatSourcePath(keys)), keys);
                },
            ),
        );
    });
});

describe("loader: sources and required, with file and key", () => {
    const cases: Array<[string, StreamInput, RegExp]> = [
        [
            "required on CSV",
            stream([{ name: "a", type: "String", required: true }], { format: "CSV" }),
            /s\.yaml: columns\[0\]\.required: 'required' applies to JSONEachRow fields; CSV columns are positional: remove it/,
        ],
        [
            "required with a default",
            stream([{ name: "a", type: "String", required: true, default: "'x'" }]),
            /columns\[0\]\.required: a required column has no default .*remove 'required' or 'default'/,
        ],
        [
            "required top-level Array",
            stream([
                { name: "a", type: "UInt8" },
                { name: "t", type: "Array(String)", required: true },
            ]),
            /columns\[1\]\.required: a top-level Array field cannot be required/,
        ],
        [
            "a field read whole and as a parent",
            stream([
                { name: "u", type: "String", source: "user" },
                { name: "uid", type: "UInt64", source: "user.id" },
            ]),
            /columns\[1\]\.source: 'user\.id' reads inside field 'user', which column 'u' reads as a whole/,
        ],
        [
            "empty key",
            stream([{ name: "a", type: "String", source: "user..id" }]),
            /columns\[0\]\.source: 'user\.\.id': empty key in the path/,
        ],
        [
            "parent starting with _",
            stream([{ name: "a", type: "String", source: "_meta.id" }]),
            /columns\[0\]\.source: '_meta\.id': top-level fields starting with '_' collide/,
        ],
        [
            "nested JSON column",
            stream([
                { name: "a", type: "UInt8" },
                { name: "j", type: "JSON", source: "p.q" },
            ]),
            /columns\[1\]\.source: a nested source cannot fill a JSON column/,
        ],
        [
            "column named like another column's field",
            stream([
                { name: "a", type: "String", source: "b" },
                { name: "b", type: "String", source: "c" },
            ]),
            /columns\[1\]\.name: column 'b' is named like the field that fills column 'a'/,
        ],
        [
            "objects-as-strings turned off",
            stream([{ name: "a", type: "String", source: "p.q" }], {
                formatSettings: { [OBJECTS_AS_STRINGS]: 0 },
            }),
            /formatSettings\.input_format_json_read_objects_as_strings: nested sources read objects as JSON text/,
        ],
    ];
    for (const [name, input, expected] of cases)
        it(name, () => {
            const problems = problemsOf(input);
            assert.equal(problems.length, 1, problems.join("\n"));
            assert.match(problems[0]!, expected);
        });

    it("accepts nested, escaped and required sources", () => {
        assert.deepEqual(
            problemsOf(
                stream([
                    { name: "id", type: "UInt64", required: true },
                    { name: "uid", type: "UInt64", source: "user.id", required: true },
                    { name: "dotted", type: "String", source: "a\\.b" },
                    { name: "tags", type: "Array(String)", source: "meta.tags", required: true },
                ]),
            ),
            [],
        );
    });

    it("the planner refuses the same inputs when they bypass the loader", () => {
        const spec = validateStream(stream([{ name: "a", type: "String" }]), "s.yaml").spec;
        const bad = { ...spec, columns: [{ ...spec.columns[0]!, source: "x..y" }] };
        assert.throws(
            () => planStream(bad, undefined, { database: "db", kafkaBrokers: "k:9092" }),
            /column 'a': 'x\.\.y': empty key/,
        );
    });
});

describe("renderSources", () => {
    const base = { name: "k", type: "UInt8" } as const;
    const cases: Array<{
        name: string;
        column: StreamInput["columns"][number];
        kafka: string[];
        select: string;
        reject: string;
        error: string;
    }> = [
        {
            name: "plain column: unchanged, no check",
            column: { name: "a", type: "Int64", source: "b" },
            kafka: ["b Int64"],
            select: "`b` AS `a`",
            reject: "",
            error: "",
        },
        {
            name: "plain column with default: unchanged",
            column: { name: "a", type: "Int64", default: "7" },
            kafka: ["a Nullable(Int64)"],
            select: "ifNull(`a`, CAST(7 AS Int64)) AS `a`",
            reject: "",
            error: "",
        },
        {
            name: "required top-level: Nullable in Kafka, assumeNotNull in the view",
            column: { name: "a", type: "Int64", required: true },
            kafka: ["a Nullable(Int64)"],
            select: `assumeNotNull(${K}.\`a\`) AS \`a\``,
            reject: `(isNull(${K}.\`a\`))`,
            error: `if(isNull(${K}.\`a\`), 'missing required field a', '')`,
        },
        {
            name: "required nested Int64",
            column: { name: "uid", type: "Int64", source: "user.id", required: true },
            kafka: ["user String"],
            select: `assumeNotNull(JSONExtract(${K}.\`user\`, 'id', 'Nullable(Int64)')) AS \`uid\``,
            reject: `(isNull(JSONExtract(${K}.\`user\`, 'id', 'Nullable(Int64)')))`,
            error: `multiIf((JSONType(${K}.\`user\`, 'id') = 'Null'), 'missing required field user.id', isNull(JSONExtract(${K}.\`user\`, 'id', 'Nullable(Int64)')), 'field user.id: value cannot be read as Int64', '')`,
        },
        {
            name: "optional nested with default, LowCardinality",
            column: {
                name: "c",
                type: "LowCardinality(String)",
                source: "geo.country",
                default: "'ZZ'",
            },
            kafka: ["geo String"],
            select: `ifNull(JSONExtract(${K}.\`geo\`, 'country', 'LowCardinality(Nullable(String))'), CAST('ZZ' AS LowCardinality(String))) AS \`c\``,
            reject: "",
            error: "",
        },
        {
            name: "optional nested DateTime64 without default: type default, unreadable -> dead letter",
            column: { name: "t", type: "DateTime64(3, 'UTC')", source: "a.b.c" },
            kafka: ["a String"],
            select: `ifNull(JSONExtract(${K}.\`a\`, 'b', 'c', 'Nullable(DateTime64(3, \\'UTC\\'))'), defaultValueOfTypeName('DateTime64(3, \\'UTC\\')')) AS \`t\``,
            reject: `(isNull(JSONExtract(${K}.\`a\`, 'b', 'c', 'Nullable(DateTime64(3, \\'UTC\\'))')) AND NOT (JSONType(${K}.\`a\`, 'b', 'c') = 'Null'))`,
            error: `if(isNull(JSONExtract(${K}.\`a\`, 'b', 'c', 'Nullable(DateTime64(3, \\'UTC\\'))')) AND NOT (JSONType(${K}.\`a\`, 'b', 'c') = 'Null'), 'field a.b.c: value cannot be read as DateTime64(3, \\'UTC\\')', '')`,
        },
        {
            name: "optional nested Nullable stays NULL when absent",
            column: { name: "n", type: "Nullable(Decimal(10, 2))", source: "p.amount" },
            kafka: ["p String"],
            select: `JSONExtract(${K}.\`p\`, 'amount', 'Nullable(Decimal(10, 2))') AS \`n\``,
            reject: `(isNull(JSONExtract(${K}.\`p\`, 'amount', 'Nullable(Decimal(10, 2))')) AND NOT (JSONType(${K}.\`p\`, 'amount') = 'Null'))`,
            error: `if(isNull(JSONExtract(${K}.\`p\`, 'amount', 'Nullable(Decimal(10, 2))')) AND NOT (JSONType(${K}.\`p\`, 'amount') = 'Null'), 'field p.amount: value cannot be read as Nullable(Decimal(10, 2))', '')`,
        },
        {
            name: "optional nested String: any present value reads, no check",
            column: { name: "s", type: "String", source: "p.s" },
            kafka: ["p String"],
            select: `ifNull(JSONExtract(${K}.\`p\`, 's', 'Nullable(String)'), defaultValueOfTypeName('String')) AS \`s\``,
            reject: "",
            error: "",
        },
        {
            name: "required nested Array: presence by JSONType",
            column: { name: "tags", type: "Array(String)", source: "m.tags", required: true },
            kafka: ["m String"],
            select: `JSONExtract(${K}.\`m\`, 'tags', 'Array(String)') AS \`tags\``,
            reject: `((JSONType(${K}.\`m\`, 'tags') = 'Null'))`,
            error: `if((JSONType(${K}.\`m\`, 'tags') = 'Null'), 'missing required field m.tags', '')`,
        },
        {
            name: "nested Map with default",
            column: { name: "mm", type: "Map(String, UInt8)", source: "m.x", default: "map()" },
            kafka: ["m String"],
            select: `if((JSONType(${K}.\`m\`, 'x') = 'Null'), CAST(map() AS Map(String, UInt8)), JSONExtract(${K}.\`m\`, 'x', 'Map(String, UInt8)')) AS \`mm\``,
            reject: "",
            error: "",
        },
        {
            name: "escaped dot: one key, quoted",
            column: { name: "d", type: "String", source: "o.it\\.s" },
            kafka: ["o String"],
            select: `ifNull(JSONExtract(${K}.\`o\`, 'it.s', 'Nullable(String)'), defaultValueOfTypeName('String')) AS \`d\``,
            reject: "",
            error: "",
        },
    ];
    for (const c of cases)
        it(c.name, () => {
            const r = render(stream([base, c.column]));
            assert.deepEqual(
                r.kafkaColumns.slice(1).map((k) => `${k.name} ${k.type}`),
                c.kafka,
            );
            assert.equal(r.selectItems[1], c.select);
            assert.equal(r.reject, c.reject);
            assert.equal(r.rejectError, c.error);
            const nested = parseSourcePath(c.column.source ?? c.column.name).length > 1;
            assert.deepEqual(r.kafkaSettings, nested ? [[OBJECTS_AS_STRINGS, "1"]] : []);
        });

    it("one Kafka column per top-level key; several failing checks are all named", () => {
        const r = render(
            stream([
                { name: "a", type: "UInt8", source: "u.a", required: true },
                { name: "b", type: "UInt8", source: "u.b", required: true },
            ]),
        );
        assert.deepEqual(r.kafkaColumns, [{ name: "u", type: "String" }]);
        assert.match(
            r.rejectError,
            /^arrayStringConcat\(arrayFilter\(e -> \(e != ''\), \[multiIf.*'missing required field u\.a'.*'missing required field u\.b'.*\]\), '; '\)$/,
        );
        assert.deepEqual(r.checkedFields, ["u.a", "u.b"]);
    });

    it("rebuilds the message from the fields read, for dead letters the engine parsed", () => {
        const r = render(
            stream([
                { name: "a", type: "UInt8", required: true },
                { name: "b", type: "String", source: "u.b" },
                { name: "c", type: "String", source: 'q"' },
            ]),
        );
        assert.equal(
            r.rebuiltMessage,
            `concat('{', '"a":', if(isNull(${K}.\`a\`), 'null', toJSONString(assumeNotNull(${K}.\`a\`))), ',', ` +
                `'"u":', if(${K}.\`u\` = '', 'null', if(isValidJSON(${K}.\`u\`), ${K}.\`u\`, toJSONString(${K}.\`u\`))), ',', ` +
                `'"q\\\\"":', toJSONString(${K}.\`q"\`), '}')`,
        );
    });

    it("keeps the stream's own objects-as-strings setting instead of adding one", () => {
        const r = render(
            stream([{ name: "a", type: "UInt8", source: "u.a" }], {
                formatSettings: { [OBJECTS_AS_STRINGS]: 1 },
            }),
        );
        assert.deepEqual(r.kafkaSettings, []);
    });
});

describe("planner: views with source checks", () => {
    const options = { database: "db", kafkaBrokers: "k:9092" };
    const sqlOf = (input: StreamInput) =>
        planStream(validateStream(input, "s.yaml").spec, undefined, options).statements.map(
            (s) => s.sql,
        );
    const columns: StreamInput["columns"] = [
        { name: "id", type: "UInt64" },
        { name: "uid", type: "UInt64", source: "user.id", required: true },
    ];
    const check = `(isNull(JSONExtract(${K}.\`user\`, 'id', 'Nullable(UInt64)')))`;

    it("deadLetter: the main view excludes failing rows, the dead-letter view takes them with the error", () => {
        const sql = sqlOf(stream(columns));
        const mv = sql.find((s) => s.includes("VIEW IF NOT EXISTS `db`.`s_mv`"))!;
        const dlq = sql.find((s) => s.includes("VIEW IF NOT EXISTS `db`.`s_dlq_mv`"))!;
        assert.ok(mv.endsWith(`FROM ${K} WHERE length(_error) = 0 AND NOT (${check})`), mv);
        assert.ok(dlq.endsWith(`FROM ${K} WHERE length(_error) > 0 OR ${check}`), dlq);
        assert.match(
            dlq,
            /if\(length\(_error\) > 0, _error, multiIf\(.*'missing required field user\.id'.*\) AS `error`/,
        );
        const kafka = sql.filter((s) => s.includes("ENGINE = Kafka")).pop()!;
        assert.match(kafka, /`user` String\) ENGINE = Kafka/);
        assert.match(kafka, /, input_format_json_read_objects_as_strings = 1( |$)/);
    });

    it("fail: the main view stops the consumer with an error naming the checked fields", () => {
        const sql = sqlOf(stream(columns, { onError: "fail" }));
        const mv = sql.find((s) => s.includes("VIEW IF NOT EXISTS `db`.`s_mv`"))!;
        assert.ok(
            mv.endsWith(
                `FROM ${K} WHERE throwIf(${check}, 'stream s: a message lacks a required field or has a value that cannot be read (checked: user.id); onError: deadLetter keeps such messages in s_dlq') = 0`,
            ),
            mv,
        );
        assert.ok(!sql.some((s) => s.includes("s_dlq_mv")));
    });

    it("a stream without nested or required sources keeps the views it had", () => {
        const sql = sqlOf(
            stream([
                { name: "id", type: "UInt64" },
                { name: "v", type: "String", source: "w" },
            ]),
        );
        const mv = sql.find((s) => s.includes("VIEW IF NOT EXISTS `db`.`s_mv`"))!;
        const dlq = sql.find((s) => s.includes("VIEW IF NOT EXISTS `db`.`s_dlq_mv`"))!;
        assert.ok(
            mv.endsWith("AS SELECT `id`, `w` AS `v` FROM `db`.`s_kafka` WHERE length(_error) = 0"),
            mv,
        );
        assert.ok(
            dlq.endsWith(
                "_error AS `error`, now64(3) AS `received_at` FROM `db`.`s_kafka` WHERE length(_error) > 0",
            ),
            dlq,
        );
        assert.ok(!sql.some((s) => s.includes(OBJECTS_AS_STRINGS)));
    });
});

describe("sources: properties", () => {
    const TYPES = [
        "Int64",
        "Nullable(Int64)",
        "String",
        "LowCardinality(String)",
        "LowCardinality(Nullable(String))",
        "DateTime64(3, 'UTC')",
        "Decimal(10, 2)",
        "Array(String)",
        "Map(String, UInt8)",
        "Tuple(UInt8, String)",
    ];
    const DEFAULT_FOR: Readonly<Record<string, string>> = {
        Int64: "1",
        "Nullable(Int64)": "1",
        String: "'x'",
        "LowCardinality(String)": "'x'",
    };
    const columnArb = fc.record({
        keys: fc.array(fc.constantFrom("a", "b", "x.y", "q'", "_u", "id"), {
            minLength: 1,
            maxLength: 3,
        }),
        type: fc.constantFrom(...TYPES),
        required: fc.boolean(),
        withDefault: fc.boolean(),
    });
    const options = { database: "db", kafkaBrokers: "k:9092" };

    it("a stream the loader accepts plans, converges on its expected state, and reads each top-level key once", () => {
        let accepted = 0;
        fc.assert(
            fc.property(fc.array(columnArb, { minLength: 1, maxLength: 5 }), (cols) => {
                const input = stream([
                    { name: "id", type: "UInt64" },
                    ...cols.map((c, i) => ({
                        name: `c${i}`,
                        type: c.type,
                        source: formatSourcePath(c.keys),
                        ...(c.required ? { required: true } : {}),
                        ...(c.withDefault && DEFAULT_FOR[c.type] !== undefined
                            ? { default: DEFAULT_FOR[c.type]! }
                            : {}),
                    })),
                ]);
                let spec;
                try {
                    spec = validateStream(input, "s.yaml").spec;
                } catch (e) {
                    assert.ok(e instanceof StreamSchemaError, String(e));
                    for (const p of e.problems)
                        assert.match(p.path, /^(columns\[\d+\]\.\w+|columns)$/);
                    return;
                }
                accepted++;
                const state = expectedState(spec, options);
                assert.deepEqual(planStream(spec, state, options).statements, []);
                const tops = new Set(
                    spec.columns.map((c) => parseSourcePath(c.source ?? c.name)[0]!),
                );
                assert.deepEqual(
                    state.tables.kafka!.columns.map((c) => c.name).sort(),
                    [...tops].sort(),
                );
            }),
            { numRuns: 300, seed: 7 },
        );
        assert.ok(accepted >= 50, `only ${accepted} of 300 generated streams were accepted`);
    });
});
