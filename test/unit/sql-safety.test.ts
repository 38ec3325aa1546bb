/**
 * Acceptance 7: hostile identifiers and values are rejected (with a clear error) or escaped.
 * Pure: the planner and the introspection queries are checked without a server (a recording
 * client stands in for @clickhouse/client); `test/integration/ddl.test.ts` sends escaped values
 * to the real engine and reads them back.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { ClickHouseClient } from "@clickhouse/client";
import { validateStream, StreamSchemaError } from "../../schemas/loader";
import { StreamInput, StreamSpec } from "../../schemas/model";
import { SqlInputError, quoteIdent, quoteString } from "../../schemas/sql";
import { PlanOptions, planDrop, planStream } from "../../components/ingestion/planner";
import { readDatabaseState, readStreamState } from "../../components/ingestion/introspect";
import { connectionProblems } from "../../components/ingestion/connection";

const OPTIONS: PlanOptions = { database: "ingest", kafkaBrokers: "kafka:9092" };
const BASE: StreamInput = {
    name: "safe",
    topic: { name: "safe.topic" },
    columns: [
        { name: "id", type: "UInt64" },
        { name: "at", type: "DateTime" },
    ],
    orderBy: ["id"],
};
const valid = (change: (s: StreamInput) => StreamInput = (s) => s): StreamSpec =>
    validateStream(change(structuredClone(BASE)), "safety").spec;
/** A spec that skipped the loader (as provider inputs could): the planner must still refuse it. */
const raw = (change: (s: StreamSpec) => StreamSpec): StreamSpec => change(structuredClone(valid()));

const INJECTIONS = [
    "x`; DROP DATABASE system; --",
    "x'; DROP TABLE t; --",
    'x"; DROP TABLE t',
    "x) ENGINE = Memory --",
    "x /* c */",
    "x\nDROP TABLE t",
    "X",
    "1x",
    "x y",
    "ü",
    "",
    "a".repeat(64),
];

describe("identifiers", () => {
    for (const bad of INJECTIONS) {
        it(`database ${JSON.stringify(bad)} is rejected before any SQL is rendered`, () => {
            assert.throws(
                () => planStream(valid(), undefined, { ...OPTIONS, database: bad }),
                (e: unknown) =>
                    e instanceof SqlInputError && /database .* is not a valid name/.test(e.message),
            );
            assert.throws(() => planDrop("safe", undefined, { database: bad }), SqlInputError);
        });
        it(`stream and column name ${JSON.stringify(bad)} are rejected by the loader and by the planner`, () => {
            assert.throws(() => valid((s) => ({ ...s, name: bad })), StreamSchemaError);
            assert.throws(
                () =>
                    valid((s) => ({
                        ...s,
                        columns: [...s.columns, { name: bad, type: "String" }],
                    })),
                StreamSchemaError,
            );
            assert.throws(
                () =>
                    planStream(
                        raw((s) => ({ ...s, name: bad })),
                        undefined,
                        OPTIONS,
                    ),
                /stream name .* is not a valid name/,
            );
            assert.throws(
                () =>
                    planStream(
                        raw((s) => ({
                            ...s,
                            columns: [...s.columns, { name: bad, type: "String" }],
                        })),
                        undefined,
                        OPTIONS,
                    ),
                /column name .* is not a valid name/,
            );
        });
    }

    it("a named collection must be a plain identifier", () => {
        assert.throws(
            () =>
                planStream(valid(), undefined, {
                    ...OPTIONS,
                    kafkaNamedCollection: "c) SETTINGS kafka_sasl_password = 'x",
                }),
            /kafkaNamedCollection .* is not a valid name/,
        );
    });

    it("source fields may hold quotes, spaces and dots: they are quoted, never spliced", () => {
        const spec = valid((s) => ({
            ...s,
            columns: [
                ...s.columns,
                { name: "who", type: "String", source: 'user\'s "name" .x\\.y;--' },
            ],
        }));
        const statements = planStream(spec, undefined, OPTIONS).statements.map((st) => st.sql);
        // A dotted source is a path: the top-level key is a quoted column, the inner key a literal.
        assert.ok(statements.at(-1)!.includes('`user\'s "name" ` String'));
        assert.ok(statements.some((sql) => sql.includes("'x.y;--', 'Nullable(String)'")));
    });

    it("sources with backticks, control characters or a leading underscore are rejected", () => {
        for (const source of ["a`b", "a\u0000b", "a\u001fb"]) {
            assert.throws(
                () =>
                    valid((s) => ({
                        ...s,
                        columns: [...s.columns, { name: "c", type: "String", source }],
                    })),
                StreamSchemaError,
            );
            assert.throws(
                () =>
                    planStream(
                        raw((s) => ({
                            ...s,
                            columns: [...s.columns, { name: "c", type: "String", source }],
                        })),
                        undefined,
                        OPTIONS,
                    ),
                SqlInputError,
            );
        }
        assert.throws(
            () =>
                planStream(
                    valid((s) => ({
                        ...s,
                        columns: [...s.columns, { name: "c", type: "String", source: "_error" }],
                    })),
                    undefined,
                    OPTIONS,
                ),
            /collide with Kafka virtual columns/,
        );
    });
});

describe("SQL fragments in the stream file", () => {
    const EXPRESSIONS = [
        "id; DROP TABLE t",
        "id) SETTINGS allow_ddl = 1 --",
        "id -- comment",
        "(SELECT 1)",
        "sleep(3)",
        "file('/etc/passwd')",
        "url('http://evil')",
        "id UNION ALL SELECT 1",
        // A backquoted name must be one of the stream's columns (`id` alone is accepted, below).
        "`nope`",
        "`id`) ENGINE = Memory --",
        "`id`, `x` String",
        "dictGet('d', 'a', id)",
        "id, extra String",
        "id MODIFY COLUMN at String",
        "joinGet('j', 'v', id)",
        "id IN some_table",
    ];
    for (const bad of EXPRESSIONS) {
        it(`expression ${JSON.stringify(bad)} is rejected in ORDER BY, PARTITION BY, TTL and DEFAULT`, () => {
            assert.throws(() => valid((s) => ({ ...s, orderBy: [bad] })), StreamSchemaError);
            assert.throws(() => valid((s) => ({ ...s, partitionBy: bad })), StreamSchemaError);
            assert.throws(() => valid((s) => ({ ...s, ttl: bad })), StreamSchemaError);
            assert.throws(
                () =>
                    valid((s) => ({
                        ...s,
                        columns: [...s.columns, { name: "c", type: "String", default: bad }],
                    })),
                StreamSchemaError,
            );
            assert.throws(
                () =>
                    planStream(
                        raw((s) => ({ ...s, orderBy: [bad] })),
                        undefined,
                        OPTIONS,
                    ),
                SqlInputError,
            );
            assert.throws(
                () =>
                    planStream(
                        raw((s) => ({ ...s, ttl: bad })),
                        undefined,
                        OPTIONS,
                    ),
                SqlInputError,
            );
        });
    }

    it("a backquoted column name is accepted and rendered quoted", () => {
        const spec = valid((s) => ({ ...s, orderBy: ["`id`"] }));
        const target = planStream(spec, undefined, OPTIONS).statements.find((st) =>
            st.sql.includes("ENGINE = MergeTree"),
        )!.sql;
        assert.match(target, /ORDER BY `id`( |$)/);
    });

    for (const bad of [
        "String) ENGINE = Memory --",
        "String; DROP TABLE t",
        "Nullable(String",
        "FixedString('x')",
        "Enum8('a' = 1) DEFAULT 'x'",
    ]) {
        it(`type ${JSON.stringify(bad)} is rejected`, () => {
            assert.throws(
                () => valid((s) => ({ ...s, columns: [...s.columns, { name: "c", type: bad }] })),
                StreamSchemaError,
            );
            assert.throws(
                () =>
                    planStream(
                        raw((s) => ({ ...s, columns: [...s.columns, { name: "c", type: bad }] })),
                        undefined,
                        OPTIONS,
                    ),
                SqlInputError,
            );
        });
    }

    it("format setting names outside the allowed prefixes are rejected (no Kafka or SASL settings)", () => {
        for (const key of [
            "kafka_sasl_password",
            "input_format_x = 1, kafka_sasl_password",
            "max_threads",
        ]) {
            assert.throws(
                () => valid((s) => ({ ...s, formatSettings: { [key]: 1 } })),
                StreamSchemaError,
            );
            assert.throws(
                () =>
                    planStream(
                        raw((s) => ({ ...s, formatSettings: { [key]: 1 } })),
                        undefined,
                        OPTIONS,
                    ),
                SqlInputError,
            );
        }
    });
});

describe("values", () => {
    it("broker lists that are not host:port are rejected", () => {
        for (const bad of [
            "kafka:9092', kafka_sasl_password = 'x",
            "kafka",
            "kafka:port",
            "kafka:9092 ; x",
            "[::1:9092",
        ]) {
            assert.throws(
                () => planStream(valid(), undefined, { ...OPTIONS, kafkaBrokers: bad }),
                /kafkaBrokers: .* is not host:port/,
            );
        }
        const ok = planStream(valid(), undefined, {
            ...OPTIONS,
            kafkaBrokers: "a.kafka:9092, [::1]:9093",
        }).statements.at(-1)!.sql;
        assert.match(ok, /kafka_broker_list = 'a.kafka:9092,\[::1\]:9093'/);
    });

    it("string values are escaped: quotes and backslashes cannot end the literal", () => {
        const spec = valid((s) => ({
            ...s,
            description: "it's a \\'test\\' ); DROP TABLE t; --",
            formatSettings: {
                format_csv_delimiter: "'",
                // A String setting: any text is a valid value, so only escaping keeps it a literal.
                format_csv_null_representation: "x\\'; SELECT 1 --",
            },
            columns: [...s.columns, { name: "c", type: "String", comment: "50% 'off' \\" }],
        }));
        const sqls = planStream(spec, undefined, OPTIONS).statements.map((st) => st.sql);
        assert.ok(
            sqls[1]!.endsWith(
                "COMMENT 'it\\'s a \\\\\\'test\\\\\\' ); DROP TABLE t; -- [kafka-clickhouse-stack stream=safe role=target group=clickhouse-ingest-safe]'",
            ),
        );
        assert.ok(sqls[1]!.includes("COMMENT '50% \\'off\\' \\\\'"));
        assert.ok(
            sqls
                .at(-1)!
                .includes(
                    "format_csv_delimiter = '\\'', format_csv_null_representation = 'x\\\\\\'; SELECT 1 --'",
                ),
        );
    });

    it("values with control characters are rejected rather than rendered", () => {
        assert.throws(
            () =>
                planStream(
                    raw((s) => ({ ...s, formatSettings: { format_csv_delimiter: "\n" } })),
                    undefined,
                    OPTIONS,
                ),
            /control characters/,
        );
        assert.throws(
            () =>
                planStream(
                    raw((s) => ({
                        ...s,
                        columns: [...s.columns, { name: "c", type: "String", comment: "a\u0007" }],
                    })),
                    undefined,
                    OPTIONS,
                ),
            /control characters/,
        );
    });

    it("quoteString and quoteIdent round-trip any text as one literal (property)", () => {
        // ClickHouse's backslash escaping, read back by a minimal tokenizer.
        const unquote = (q: string, quote: string): string => {
            assert.equal(q[0], quote);
            let out = "";
            for (let i = 1; i < q.length - 1; i++) {
                if (q[i] === "\\") out += q[++i];
                else {
                    assert.notEqual(q[i], quote, "an unescaped quote would end the literal early");
                    out += q[i];
                }
            }
            assert.equal(q.at(-1), quote);
            return out;
        };
        fc.assert(
            fc.property(fc.string({ unit: "binary" }), (s) => {
                assert.equal(unquote(quoteString(s), "'"), s);
                assert.equal(unquote(quoteIdent(s), "`"), s);
            }),
            { numRuns: 500 },
        );
    });
});

describe("introspection binds names as query parameters", () => {
    /** Records the queries it is sent; answers "the database does not exist". */
    function recordingClient(): {
        client: ClickHouseClient;
        queries: Array<{ query: string; params: Record<string, unknown> }>;
    } {
        const queries: Array<{ query: string; params: Record<string, unknown> }> = [];
        const client = {
            query: async (p: { query: string; query_params?: Record<string, unknown> }) => {
                queries.push({ query: p.query, params: p.query_params ?? {} });
                return { json: async () => [{ db_exists: 0, detached: [] }] };
            },
        } as unknown as ClickHouseClient;
        return { client, queries };
    }

    it("hostile names never reach the query text", async () => {
        const hostile = "ingest' OR 1 = 1 --";
        const { client, queries } = recordingClient();
        assert.equal(await readStreamState(client, hostile, "x`) --"), undefined);
        await readDatabaseState(client, hostile);
        assert.equal(queries.length, 2, "one presence query each when the database does not exist");
        for (const q of queries) {
            assert.ok(!q.query.includes(hostile) && !q.query.includes("x`)"));
            assert.match(q.query, /\{db:String\}/);
            assert.equal(q.params["db"], hostile);
        }
        assert.ok((queries[0]!.params["names"] as string[]).includes("x`) --_kafka"));
    });
});

describe("connections carry no secret values", () => {
    it("rejects plain passwords, kubeconfigs as values and credentials in URLs", () => {
        assert.match(
            connectionProblems({ kind: "http", url: "http://u:p@h:8123" }).join(),
            /must not contain credentials/,
        );
        assert.match(
            connectionProblems({ kind: "http", url: "http://h:8123", password: "p" }).join(),
            /must not be a plain value/,
        );
        assert.match(
            connectionProblems({
                kind: "port-forward",
                namespace: "db",
                pod: "ch-0",
                kubeconfig: "apiVersion: v1",
            }).join(),
            /kubeconfig must be/,
        );
        assert.match(
            connectionProblems({ kind: "port-forward", namespace: "db;rm", pod: "ch-0" }).join(),
            /namespace must be a Kubernetes namespace name/,
        );
        assert.match(
            connectionProblems({ kind: "port-forward", namespace: "db", pod: "../secrets" }).join(),
            /pod is not a valid Kubernetes name/,
        );
        assert.deepEqual(
            connectionProblems({
                kind: "http",
                url: "https://ch.example:8443",
                password: { fromConfig: "clickhousePassword" },
            }),
            [],
        );
    });
});
