// Nested `source` paths and `required` fields on the real engine (chdb) and a real Kafka broker:
// the planner converges on them, and messages land in the target or the dead-letter table as the
// README's "Streams" section says (missing required -> dead letter naming the field; optional ->
// default; null and a scalar where an object was expected count as missing).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { applyPlan, planFromServer, reconcile } from "../../components/ingestion/apply";
import { readIngestionHealth } from "../../components/ingestion/health";
import { readStreamState, summarizeState } from "../../components/ingestion/introspect";
import { PlanOptions, expectedState, planStream } from "../../components/ingestion/planner";
import { validateStream } from "../../schemas/loader";
import type { StreamInput, StreamSpec } from "../../schemas/model";
import { formatSourcePath, parseSourcePath } from "../../schemas/sources";
import { EmbeddedClickHouse, openEmbedded, queryRows } from "../harness/clickhouse";
import { KafkaBroker, startKafka } from "../../runtime/kafka";
import { pollUntil, sleep } from "../../runtime/process";

const DB = "nested";
// No broker listens here: the convergence cases need none.
const NO_BROKER = "127.0.0.1:1";

const COLUMNS: StreamInput["columns"] = [
    { name: "id", type: "UInt64", required: true },
    { name: "user_id", type: "Int64", source: "user.id", required: true },
    { name: "user_name", type: "LowCardinality(String)", source: "user.name", default: "'anon'" },
    { name: "city", type: "String", source: "user.address.city" },
    { name: "score", type: "Nullable(Float64)", source: "stats.score" },
    { name: "amount", type: "Decimal(10, 2)", source: "order.amount" },
    { name: "ts", type: "DateTime64(3, 'UTC')", source: "meta.ts", required: true },
    { name: "tags", type: "Array(String)", source: "meta.tags" },
    { name: "dotted", type: "String", source: "meta.a\\.b" },
    { name: "plain", type: "String" },
];

function nestedStream(name: string, over: Partial<StreamInput> = {}): StreamSpec {
    return validateStream(
        {
            name,
            topic: { name: `nested.${name}`, partitions: 1 },
            formatSettings: { input_format_skip_unknown_fields: 1 },
            columns: COLUMNS,
            orderBy: ["id"],
            consumer: { flushIntervalMs: 500 },
            ...over,
        },
        `schemas/streams/${name}.yaml`,
    ).spec;
}

let ch: EmbeddedClickHouse;
before(async () => {
    ch = await openEmbedded();
});
after(async () => ch?.close());

describe("nested sources: the planner converges on the real engine", () => {
    const options: PlanOptions = { database: `${DB}_plan`, kafkaBrokers: NO_BROKER };

    it("creates the objects, reads back what the plan describes, and plans nothing the second time", async () => {
        const spec = nestedStream("conv");
        // reconcile plans again after applying and throws NotConvergedError unless that plan is empty.
        const { applied } = await reconcile(ch.client, spec, options);
        assert.ok(applied.length > 0);
        const { canonicalForms, plan } = await planFromServer(ch.client, spec, options);
        assert.deepEqual(plan.statements, []);
        const actual = await readStreamState(ch.client, options.database, spec.name);
        assert.deepEqual(
            summarizeState(actual),
            summarizeState(expectedState(spec, { ...options, canonicalForms })),
        );
        const kafka = actual!.tables.kafka!;
        assert.deepEqual(
            kafka.columns.map((c) => `${c.name} ${c.type}`),
            [
                "id Nullable(UInt64)",
                "user String",
                "stats String",
                "order String",
                "meta String",
                "plain String",
            ],
        );
        assert.equal(kafka.settings["input_format_json_read_objects_as_strings"], "1");
        // The view's output types are exactly the target's (no Nullable leaks through).
        assert.deepEqual(
            actual!.tables.mv!.columns.map((c) => `${c.name} ${c.type}`),
            actual!.tables.target!.columns.map((c) => `${c.name} ${c.type}`),
        );
    });

    it("moving a flat stream to nested and required sources keeps the target and converges", async () => {
        const flat = validateStream(
            {
                name: "evolve",
                topic: { name: "nested.evolve" },
                columns: [
                    { name: "id", type: "UInt64" },
                    { name: "user_id", type: "Int64", source: "uid" },
                ],
                orderBy: ["id"],
            },
            "evolve.yaml",
        ).spec;
        await reconcile(ch.client, flat, options);
        await ch.client.command({
            query: `INSERT INTO ${options.database}.evolve VALUES (1, 10)`,
        });
        const nested: StreamSpec = {
            ...flat,
            columns: [
                { name: "id", type: "UInt64", required: true },
                { name: "user_id", type: "Int64", source: "user.id", required: true },
            ],
        };
        const { plan } = await reconcile(ch.client, nested, options);
        assert.ok(
            plan.statements.every((s) => s.kind !== "destructive"),
            plan.statements.map((s) => s.sql).join("\n"),
        );
        assert.ok(
            !plan.statements.some(
                (s) => /`evolve`\.`evolve`/.test(s.sql) && /DROP|ALTER/.test(s.sql),
            ),
        );
        const rows = await queryRows(ch.client, `SELECT * FROM ${options.database}.evolve`);
        assert.deepEqual(rows, [{ id: 1, user_id: 10 }]);
        // And back: required and nested removed again also converges.
        await reconcile(ch.client, flat, options);
    });
});

// ---------------------------------------------------------------------------------------------
// Model against engine: random columns (paths, types, required, defaults) and random messages
// (absent, null, scalar parents, unreadable values); every message must land where the README's
// table says, with the values and the error it says. Messages are inserted through the JSON
// reader with the Kafka table's settings into a Null table standing in for it (no broker needed).

type ColType = "Int64" | "Nullable(Int64)" | "String" | "LowCardinality(String)";
interface ModelColumn {
    readonly name: string;
    readonly keys: readonly string[];
    readonly type: ColType;
    readonly required: boolean;
    readonly def: boolean;
}
const isInt = (t: ColType) => t === "Int64" || t === "Nullable(Int64)";
const DEFAULTS = { int: 7, str: "d" };

const KEYS = ["a", "b", "x.y", "q'"];
const columnArb = fc.record({
    keys: fc.array(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 }),
    type: fc.constantFrom<ColType>("Int64", "Nullable(Int64)", "String", "LowCardinality(String)"),
    required: fc.boolean(),
    def: fc.boolean(),
});
const columnsArb = fc
    .array(columnArb, { minLength: 1, maxLength: 4 })
    .map((cs) =>
        cs.map((c, i): ModelColumn => ({ ...c, name: `c${i}`, def: c.def && !c.required })),
    );

/** What a field holds in a generated message (applied along the column's path). */
type Shape = "absent" | "null" | "valid" | "unreadable" | "scalarParent";
// Mostly valid values, so that rows land as well as dead letters.
const shapeArb = fc.oneof(
    { arbitrary: fc.constant<Shape>("valid"), weight: 6 },
    {
        arbitrary: fc.constantFrom<Shape>("absent", "null", "unreadable", "scalarParent"),
        weight: 4,
    },
);

function buildMessage(
    id: number,
    cols: readonly ModelColumn[],
    shapes: readonly Shape[],
    n: number,
) {
    const msg: Record<string, unknown> = { id };
    cols.forEach((c, j) => {
        let shape = shapes[j]!;
        // Top level, an unreadable value is a parse error of the whole message (not this feature).
        if (c.keys.length === 1 && (shape === "unreadable" || shape === "scalarParent"))
            shape = "valid";
        if (shape === "absent") return;
        let into = msg;
        const parents = c.keys.slice(0, -1);
        for (const [d, k] of parents.entries()) {
            if (shape === "scalarParent" && d === parents.length - 1) {
                into[k] = n % 2 === 0 ? 5 : "zz";
                return;
            }
            const next = into[k];
            if (next === null || typeof next !== "object" || Array.isArray(next)) into[k] = {};
            into = into[k] as Record<string, unknown>;
        }
        const last = c.keys.at(-1)!;
        into[last] =
            shape === "null"
                ? null
                : shape === "valid"
                  ? isInt(c.type)
                      ? n % 3 === 0 && c.keys.length > 1
                          ? String(n - 50) // a number in a string reads as the number
                          : n - 50
                      : `s${n}`
                  : isInt(c.type)
                    ? n % 2 === 0
                        ? "zz"
                        : { o: n }
                    : n % 2 === 0 // any present value fills a String column
                      ? n
                      : { o: [n] };
    });
    return msg;
}

/** Where the model says a message goes: the target row's values, or the dead letter's error. */
function expectOutcome(
    msg: Record<string, unknown>,
    cols: readonly ModelColumn[],
): { row: Record<string, unknown> } | { error: string } {
    const row: Record<string, unknown> = { id: msg["id"] };
    const errors: string[] = [];
    for (const c of cols) {
        let cur: unknown = msg;
        let missing = false;
        for (const k of c.keys) {
            if (cur === null || typeof cur !== "object" || Array.isArray(cur) || !(k in cur)) {
                missing = true;
                break;
            }
            cur = (cur as Record<string, unknown>)[k];
        }
        if (cur === null) missing = true;
        const path = formatSourcePath(c.keys);
        if (missing) {
            if (c.required) errors.push(`missing required field ${path}`);
            row[c.name] = c.def
                ? isInt(c.type)
                    ? DEFAULTS.int
                    : DEFAULTS.str
                : c.type === "Nullable(Int64)"
                  ? null
                  : isInt(c.type)
                    ? 0
                    : "";
            continue;
        }
        if (isInt(c.type)) {
            const v = typeof cur === "string" && /^-?\d+$/.test(cur) ? Number(cur) : cur;
            if (typeof v !== "number")
                errors.push(`field ${path}: value cannot be read as ${c.type}`);
            row[c.name] = v;
        } else row[c.name] = typeof cur === "string" ? cur : JSON.stringify(cur);
    }
    return errors.length > 0 ? { error: errors.join("; ") } : { row };
}

describe("nested sources: model against the real engine (property)", () => {
    const db = `${DB}_model`;
    let run = 0;
    let accepted = 0;
    const landed = { rows: 0, dead: 0 };

    it("every message lands in the target or the dead-letter table exactly as the model says", async (t) => {
        await fc.assert(
            fc.asyncProperty(
                columnsArb,
                fc.array(fc.array(shapeArb, { minLength: 4, maxLength: 4 }), {
                    minLength: 30,
                    maxLength: 60,
                }),
                async (cols, shapes) => {
                    let spec: StreamSpec;
                    try {
                        spec = validateStream(
                            {
                                name: `m${run++}`,
                                topic: { name: "m" },
                                columns: [
                                    { name: "id", type: "UInt64" },
                                    ...cols.map((c) => ({
                                        name: c.name,
                                        type: c.type,
                                        source: formatSourcePath(c.keys),
                                        ...(c.required ? { required: true } : {}),
                                        ...(c.def
                                            ? {
                                                  default: isInt(c.type)
                                                      ? String(DEFAULTS.int)
                                                      : `'${DEFAULTS.str}'`,
                                              }
                                            : {}),
                                    })),
                                ],
                                orderBy: ["id"],
                                formatSettings: { input_format_skip_unknown_fields: 1 },
                            },
                            "m.yaml",
                        ).spec;
                    } catch {
                        // A key read whole and as a parent, or a repeated path: the loader's
                        // refusals are tested in the unit tier.
                        return;
                    }
                    accepted++;
                    assert.deepEqual(
                        spec.columns.slice(1).map((c) => parseSourcePath(c.source!)),
                        cols.map((c) => c.keys),
                    );
                    // reconcile fails unless planning again on the server's state is empty.
                    await reconcile(ch.client, spec, { database: db, kafkaBrokers: NO_BROKER });
                    const kafka = `${db}.${spec.name}_kafka`;
                    const kcols = await queryRows<{ name: string; type: string }>(
                        ch.client,
                        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
                        { db, t: `${spec.name}_kafka` },
                    );
                    await ch.client.command({ query: `DROP TABLE ${kafka}` });
                    await ch.client.command({
                        query:
                            `CREATE TABLE ${kafka} (${kcols.map((c) => `\`${c.name.replace(/`/g, "\\`")}\` ${c.type}`).join(", ")}, ` +
                            "_topic LowCardinality(String), _key String, _offset UInt64, _partition UInt64, _raw_message String, _error String) ENGINE = Null",
                    });
                    const messages = shapes.map((sh, n) => buildMessage(n, cols, sh, n));
                    await ch.client.command({
                        query:
                            `INSERT INTO ${kafka} SETTINGS input_format_json_read_objects_as_strings = 1, input_format_skip_unknown_fields = 1 FORMAT JSONEachRow\n` +
                            messages.map((m) => JSON.stringify(m)).join("\n"),
                    });
                    const names = ["id", ...cols.map((c) => c.name)];
                    const rows = await queryRows<Record<string, unknown>>(
                        ch.client,
                        `SELECT ${names.join(", ")} FROM ${db}.${spec.name} ORDER BY id`,
                    );
                    const dead = await queryRows<{ raw_message: string; error: string }>(
                        ch.client,
                        `SELECT raw_message, error FROM ${db}.${spec.name}_dlq`,
                    );
                    const deadById = new Map(
                        dead.map((d) => [
                            (JSON.parse(d.raw_message) as { id: number }).id,
                            d.error,
                        ]),
                    );
                    const wantRows: Array<Record<string, unknown>> = [];
                    messages.forEach((m, n) => {
                        const o = expectOutcome(m, cols);
                        if ("row" in o) wantRows.push(o.row);
                        else assert.equal(deadById.get(n), o.error, JSON.stringify(m));
                    });
                    assert.deepEqual(rows, wantRows);
                    assert.equal(dead.length + rows.length, messages.length);
                    landed.rows += rows.length;
                    landed.dead += dead.length;
                },
            ),
            { numRuns: 12, seed: 20261201 },
        );
        t.diagnostic(`${accepted} streams, ${landed.rows} rows, ${landed.dead} dead letters`);
        assert.ok(accepted >= 6, `only ${accepted} of 12 generated streams were valid`);
        assert.ok(landed.rows > 0 && landed.dead > 0, "both outcomes were exercised");
    });
});

describe("nested sources: messages through a real broker", () => {
    let kafka: KafkaBroker;
    const TS = Date.UTC(2026, 0, 2, 3, 4, 5, 123);
    const ts = new Date(TS).toISOString();

    before(async () => {
        kafka = await startKafka();
    });
    after(async () => kafka?.stop());

    async function deploy(spec: StreamSpec): Promise<void> {
        await kafka.createTopic(spec.topic.name, spec.topic.partitions);
        await applyPlan(
            ch.client,
            planStream(spec, undefined, { database: DB, kafkaBrokers: kafka.bootstrap }),
        );
    }

    it("lands nested values, applies defaults, and dead-letters missing required or unreadable fields with their names", async () => {
        const spec = nestedStream("flow");
        await deploy(spec);
        const full = {
            id: 1,
            user: { id: -42, name: "ada", address: { city: "Zürich" } },
            stats: { score: 0.5 },
            order: { amount: "12.34" },
            meta: { ts, tags: ["a", "b"], "a.b": "dot" },
            plain: "p",
            unknown: { skipped: true },
        };
        const meta = { ts };
        const messages: Array<Record<string, unknown> | string> = [
            full,
            // Optional fields absent: defaults; a number given as a string is read as the number.
            { id: 2, user: { id: "20" }, meta },
            // Missing required nested field.
            { id: 3, user: { name: "no id" }, meta },
            // null, and a scalar where an object was expected: the nested field is missing.
            { id: 4, user: null, meta },
            { id: 5, user: 7, meta },
            // Missing required top-level field.
            { user: { id: 60 }, meta },
            // Two required fields missing: both named.
            { id: 7 },
            // Present but unreadable, required and optional.
            { id: 8, user: { id: "abc" }, meta },
            { id: 9, user: { id: 9 }, order: { amount: "lots" }, meta },
            // null inside the object, and a scalar parent of optional fields: defaults.
            { id: 10, user: { id: 10, name: null }, stats: { score: null }, meta },
            { id: 11, user: { id: 11 }, stats: 5, order: [1], meta },
            // Not JSON at all: the engine's own parse error is kept.
            "{not json",
        ];
        await kafka.produce(
            spec.topic.name,
            messages.map((m) => (typeof m === "string" ? m : JSON.stringify(m))),
        );
        // 12 messages: 4 rows and 8 dead letters.
        await pollUntil(
            "12 messages consumed",
            () =>
                queryRows<{ n: number }>(
                    ch.client,
                    `SELECT (SELECT count() FROM ${DB}.flow) + (SELECT count() FROM ${DB}.flow_dlq) AS n`,
                ),
            (r) => Number(r[0]!.n) >= 12,
        );
        await sleep(1500); // nothing more arrives
        const rows = await queryRows(
            ch.client,
            `SELECT id, user_id, toString(user_name) AS user_name, city, score, toString(amount) AS amount,
                    toUnixTimestamp64Milli(ts) AS ts, tags, dotted, plain
             FROM ${DB}.flow ORDER BY id`,
        );
        const defaults = {
            user_name: "anon",
            city: "",
            score: null,
            amount: "0",
            ts: TS,
            tags: [],
            dotted: "",
            plain: "",
        };
        assert.deepEqual(rows, [
            {
                id: 1,
                user_id: -42,
                user_name: "ada",
                city: "Zürich",
                score: 0.5,
                amount: "12.34",
                ts: TS,
                tags: ["a", "b"],
                dotted: "dot",
                plain: "p",
            },
            { id: 2, user_id: 20, ...defaults },
            { id: 10, user_id: 10, ...defaults },
            { id: 11, user_id: 11, ...defaults },
        ]);
        const dead = await queryRows<{ raw_message: string; error: string }>(
            ch.client,
            `SELECT raw_message, error FROM ${DB}.flow_dlq ORDER BY offset`,
        );
        // Rows rejected by a source check carry the message rebuilt from the fields read.
        const rebuilt = dead.flatMap((d) => {
            try {
                return [{ ...d, msg: JSON.parse(d.raw_message) as Record<string, unknown> }];
            } catch {
                return [];
            }
        });
        const byId = (id: number | null) => rebuilt.find((d) => d.msg["id"] === id)?.error;
        assert.equal(
            rebuilt.find((d) => d.msg["id"] === 3)?.raw_message,
            `{"id":3,"user":{"name":"no id"},"stats":null,"order":null,"meta":{"ts":"${ts}"},"plain":""}`,
        );
        assert.deepEqual(rebuilt.find((d) => d.msg["id"] === 5)?.msg["user"], 7);
        assert.deepEqual(rebuilt.find((d) => d.msg["id"] === 4)?.msg["user"], null);
        assert.equal(dead.length, 8, JSON.stringify(dead));
        assert.equal(byId(3), "missing required field user.id");
        assert.equal(byId(4), "missing required field user.id");
        assert.equal(byId(5), "missing required field user.id");
        assert.equal(byId(null), "missing required field id");
        assert.equal(byId(7), "missing required field user.id; missing required field meta.ts");
        assert.equal(byId(8), "field user.id: value cannot be read as Int64");
        assert.equal(byId(9), "field order.amount: value cannot be read as Decimal(10, 2)");
        const parseError = dead.find((d) => d.raw_message === "{not json")?.error ?? "";
        assert.ok(parseError.length > 0 && !parseError.startsWith("missing"), parseError);
    });

    it("with onError: fail a missing required field stops the consumer, naming the checked fields", async () => {
        const spec = nestedStream("stop", {
            onError: "fail",
            columns: [
                { name: "id", type: "UInt64" },
                { name: "user_id", type: "Int64", source: "user.id", required: true },
            ],
        });
        await deploy(spec);
        await kafka.produce(spec.topic.name, [JSON.stringify({ id: 1, user: {} })]);
        const health = await pollUntil(
            "a consumer exception",
            () => readIngestionHealth(ch.client, DB, ["stop"]),
            (h) => h[0]!.recentExceptions.length > 0,
        );
        assert.match(
            health[0]!.recentExceptions.join("\n"),
            /stream stop: a message lacks a required field .*\(checked: user\.id\)/,
        );
        const [n] = await queryRows<{ n: string }>(
            ch.client,
            `SELECT count() AS n FROM ${DB}.stop`,
        );
        assert.equal(Number(n!.n), 0);
    });
});
