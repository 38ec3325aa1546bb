/**
 * Issue 9, acceptance 2: expression fuzzing against the real engine's parser (chdb, in-process;
 * no broker). Generated text full of keywords, commas, quotes, comments and unicode, and generated
 * valid trees, go through the grammar (schemas/expr.ts); every accepted expression is put into the
 * DDL the planner renders (a column DEFAULT, ORDER BY, PARTITION BY and TTL in CREATE TABLE, and
 * `ALTER TABLE t MODIFY COLUMN c DEFAULT <expr>`), and the engine's `EXPLAIN AST` must show exactly
 * the stream's columns and exactly one ALTER command: one expression, of the parsed shape.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Session } from "chdb";
import {
    CASE_INSENSITIVE,
    Expr,
    ExprField,
    FUNCTIONS,
    parseExpression,
    renderExpression,
} from "../../schemas/expr";
import { SqlInputError, quoteIdent } from "../../schemas/sql";
import { validateStream } from "../../schemas/loader";
import type { StreamSpec } from "../../schemas/model";
import { planStream } from "../../components/ingestion/planner";
import { claimEngine, releaseEngine } from "../../schemas/engine";
import {
    COLUMNS,
    COLUMN_NAMES,
    COLUMN_TYPES,
    exprTree,
    hostileText,
    mutatedText,
    renderFullyParenthesized,
    respacedText,
    ttlTree,
} from "../unit/expr-arbitraries";

// The process's one engine (the loader and the planner's checks use it too; chdb refuses
// standalone queries while it is open), asked through a session of this test's own.
const session = new Session(claimEngine().path);
after(() => {
    session.close();
    releaseEngine();
});
const query = (sql: string, format: string): string => session.query(sql, format);

/** The engine's parse tree of one statement, one node per line (indentation = depth). */
function explain(sql: string): string[] {
    return query(`EXPLAIN AST ${sql}`, "TSVRaw")
        .split("\n")
        .filter((l) => l.trim() !== "");
}

/** What a default, ORDER BY, PARTITION BY and TTL are wrapped in: the planner's DDL shapes. */
interface Slots {
    readonly default?: string;
    readonly orderBy?: string;
    readonly partitionBy?: string;
    readonly ttl?: string;
}

const DEFAULTED = "kind";

function createTable(s: Slots): string {
    const cols = COLUMNS.map(
        (c) =>
            `${quoteIdent(c.name)} ${c.type}${c.name === DEFAULTED && s.default !== undefined ? ` DEFAULT ${s.default}` : ""}`,
    );
    return (
        `CREATE TABLE IF NOT EXISTS \`fuzz\`.\`t\` (${cols.join(", ")}) ENGINE = MergeTree` +
        (s.partitionBy !== undefined ? ` PARTITION BY ${s.partitionBy}` : "") +
        ` ORDER BY (${s.orderBy ?? "`id`"}, \`ts\`)` +
        (s.ttl !== undefined ? ` TTL ${s.ttl}` : "")
    );
}

/** The planner's in-place ALTERs that carry an expression, by field. */
const ALTERS: Partial<Record<ExprField, { command: string; sql: (expr: string) => string }>> = {
    default: { command: "MODIFY_COLUMN", sql: (e) => alterDefault(e) },
    ttl: { command: "MODIFY_TTL", sql: (e) => `ALTER TABLE \`fuzz\`.\`t\` MODIFY TTL ${e}` },
    orderBy: {
        command: "MODIFY_ORDER_BY",
        sql: (e) => `ALTER TABLE \`fuzz\`.\`t\` MODIFY ORDER BY (${e}, \`ts\`)`,
    },
};

function alterDefault(expr: string): string {
    return `ALTER TABLE \`fuzz\`.\`t\` MODIFY COLUMN ${quoteIdent(DEFAULTED)} DEFAULT ${expr}`;
}

/** Problems with a CREATE's parse tree: anything but the stream's columns and the given clauses. */
function createProblems(sql: string, s: Slots): string[] {
    const tree = explain(sql);
    const problems: string[] = [];
    const roots = tree.filter((l) => !l.startsWith(" "));
    if (roots.length !== 1 || !roots[0]!.startsWith("CreateQuery fuzz t "))
        problems.push(`statement kind: ${roots.join(" | ")}`);
    if (!tree.includes(" Columns definition (children 1)"))
        problems.push("the columns definition holds more than the column list");
    const decls = tree.filter((l) => /^ {3}ColumnDeclaration /.test(l));
    const names = decls.map((l) => l.split(" ")[4]!);
    if (names.join(",") !== COLUMN_NAMES.join(","))
        problems.push(`columns [${names.join(", ")}] instead of [${COLUMN_NAMES.join(", ")}]`);
    decls.forEach((l) => {
        const want =
            l.includes(`ColumnDeclaration ${DEFAULTED} `) && s.default !== undefined ? 2 : 1;
        if (!l.endsWith(`(children ${want})`)) problems.push(`column declaration: ${l.trim()}`);
    });
    const storage = 2 + (s.partitionBy !== undefined ? 1 : 0) + (s.ttl !== undefined ? 1 : 0);
    if (!tree.includes(` Storage definition (children ${storage})`))
        problems.push(`storage definition: ${tree.find((l) => l.includes("Storage definition"))}`);
    const ttlItems = tree.filter((l) => /^ {3}TTLElement/.test(l)).length;
    if (ttlItems !== (s.ttl !== undefined ? 1 : 0)) problems.push(`${ttlItems} TTL elements`);
    return problems;
}

/** Problems with an ALTER's parse tree: anything but one MODIFY COLUMN setting one default. */
function alterProblems(sql: string, command = "MODIFY_COLUMN"): string[] {
    const tree = explain(sql);
    const problems: string[] = [];
    const roots = tree.filter((l) => !l.startsWith(" "));
    if (roots.length !== 1 || !roots[0]!.startsWith("AlterQuery "))
        problems.push(`statement kind: ${roots.join(" | ")}`);
    const commands = tree.filter((l) => /^ {2}AlterCommand /.test(l));
    if (commands.length !== 1 || !commands[0]!.startsWith(`  AlterCommand ${command} `))
        problems.push(`commands: ${commands.map((c) => c.trim()).join(" | ")}`);
    if (command === "MODIFY_COLUMN") {
        const decls = tree.filter((l) => /^ {3}ColumnDeclaration /.test(l));
        if (decls.length !== 1 || decls[0] !== `   ColumnDeclaration ${DEFAULTED} (children 1)`)
            problems.push(`column declarations: ${decls.map((d) => d.trim()).join(" | ")}`);
    }
    if (command === "MODIFY_TTL" && tree.filter((l) => /^ {4}TTLElement/.test(l)).length !== 1)
        problems.push("not exactly one TTL element");
    if (
        command === "MODIFY_ORDER_BY" &&
        (tree[3] !== "   Function tuple (children 1)" ||
            tree[4] !== "    ExpressionList (children 2)")
    )
        problems.push(`sorting key: ${tree.slice(3, 5).join(" | ")}`);
    return problems;
}

/** The engine's reading of `SELECT <expr>`, with function names in one case. */
function selectTree(expr: string): string {
    return explain(`SELECT ${expr}`)
        .map((l) =>
            l.replace(/^(\s*Function )(\S+)/, (_m, p: string, n: string) => p + n.toLowerCase()),
        )
        .join("\n");
}

function slotsFor(field: ExprField, sql: string): Slots {
    return { [field]: sql };
}

function assertEngineAgrees(field: ExprField, sql: string): void {
    const slots = slotsFor(field, sql);
    const create = createTable(slots);
    assert.deepEqual(createProblems(create, slots), [], create);
    const a = ALTERS[field];
    if (a) assert.deepEqual(alterProblems(a.sql(sql), a.command), [], a.sql(sql));
}

const FIELDS: readonly ExprField[] = ["default", "orderBy", "partitionBy", "ttl"];
const optionsFor = (field: ExprField) => ({
    field,
    columns: COLUMN_NAMES,
    columnTypes: COLUMN_TYPES,
});

describe("expression fuzzing against the engine's parser", () => {
    it("the oracle sees smuggled columns, clauses and commands (the raw text, unparsed)", () => {
        assert.deepEqual(createProblems(createTable({}), {}), []);
        const smuggled: Array<[Slots, RegExp]> = [
            [{ default: "'x', `extra` String" }, /columns \[.*extra/],
            [{ default: "'x' COMMENT 'c'" }, /column declaration/],
            [{ default: "'x', CONSTRAINT c CHECK 1" }, /more than the column list/],
            [{ default: "'x', INDEX i id TYPE minmax" }, /more than the column list/],
            [{ ttl: "ts + INTERVAL 1 DAY, ts + INTERVAL 2 DAY" }, /2 TTL elements/],
            [{ partitionBy: "id SAMPLE BY id" }, /storage definition/],
        ];
        for (const [slots, problem] of smuggled) {
            assert.match(createProblems(createTable(slots), slots).join("; "), problem);
        }
        assert.match(
            alterProblems(alterDefault("1, MODIFY COLUMN `id` String")).join("; "),
            /commands: .*MODIFY_COLUMN.* \| .*MODIFY_COLUMN/,
        );
        assert.match(
            alterProblems(alterDefault("1, CLEAR COLUMN `id`")).join("; "),
            /commands: .*MODIFY_COLUMN.* \| AlterCommand DROP_COLUMN/,
        );
        assert.match(
            alterProblems(ALTERS.ttl!.sql("ts + INTERVAL 1 DAY, ts"), "MODIFY_TTL").join("; "),
            /not exactly one TTL element/,
        );
        assert.match(
            alterProblems(ALTERS.orderBy!.sql("id, kind"), "MODIFY_ORDER_BY").join("; "),
            /sorting key: .*ExpressionList \(children 3\)/,
        );
        assert.match(
            alterProblems(ALTERS.orderBy!.sql("id), MODIFY TTL (ts"), "MODIFY_ORDER_BY").join("; "),
            /commands: AlterCommand MODIFY_ORDER_BY .* \| AlterCommand MODIFY_TTL/,
        );
        assert.match(
            alterProblems(alterDefault("1 COMMENT 'x'")).join("; "),
            /column declarations: ColumnDeclaration kind \(children 2\)/,
        );
        // ... and the grammar refuses every one of them.
        for (const [slots] of smuggled) {
            const [field, text] = Object.entries(slots)[0] as [ExprField, string];
            assert.throws(() => parseExpression(text, optionsFor(field)), SqlInputError);
        }
    });

    it("the deepest and longest expressions the grammar accepts are within the engine's limits", () => {
        const shapes: Array<[string, ExprField, (n: number) => string]> = [
            ["a chain of +", "orderBy", (n) => Array.from({ length: n }, () => "id").join(" + ")],
            [
                "a chain of AND",
                "orderBy",
                (n) => Array.from({ length: n }, () => "id").join(" AND "),
            ],
            ["parentheses", "orderBy", (n) => "(".repeat(n) + "id" + ")".repeat(n)],
            ["calls", "orderBy", (n) => "abs(".repeat(n) + "id" + ")".repeat(n)],
            ["NOT", "orderBy", (n) => "NOT ".repeat(n) + "id"],
            ["negation", "orderBy", (n) => "-".repeat(n).split("").join(" ") + " id"],
            ["arrays", "default", (n) => "[".repeat(n) + "]".repeat(n)],
            ["CASE", "default", (n) => "CASE WHEN 1 THEN ".repeat(n) + "1" + " END".repeat(n)],
            ["CAST", "default", (n) => "CAST(".repeat(n) + "1" + " AS String)".repeat(n)],
            ["a string", "default", (n) => `'${"x".repeat(n * 60)}'`],
            [
                "an array",
                "default",
                (n) => `[${Array.from({ length: n * 15 }, () => "1").join(", ")}]`,
            ],
        ];
        for (const [what, field, make] of shapes) {
            let deepest = 0;
            for (let n = 1; n <= 300; n++) {
                try {
                    parseExpression(make(n), optionsFor(field));
                    deepest = n;
                } catch (e) {
                    assert.ok(e instanceof SqlInputError, String(e));
                    assert.match(
                        e.message,
                        /nested more than|characters long/,
                        `${what}: ${e.message}`,
                    );
                    break;
                }
            }
            assert.ok(
                deepest > 10 && deepest < 300,
                `${what}: the limit trips (accepted up to ${deepest})`,
            );
            const sql = renderExpression(parseExpression(make(deepest), optionsFor(field)));
            assertEngineAgrees(field, sql);
        }
    });

    it("every accepted piece of hostile text renders to exactly one expression, read as the original", () => {
        const started = Date.now();
        const count = { generated: 0, accepted: 0, statements: 0 };
        fc.assert(
            fc.property(
                fc.oneof(
                    hostileText,
                    mutatedText(COLUMN_NAMES),
                    mutatedText([]),
                    respacedText(COLUMN_NAMES),
                    respacedText([]),
                ),
                fc.constantFrom(...FIELDS),
                (text, field) => {
                    count.generated++;
                    let tree: Expr;
                    try {
                        tree = parseExpression(text, optionsFor(field));
                    } catch (e) {
                        assert.ok(
                            e instanceof SqlInputError,
                            `only SqlInputError, got ${String(e)}`,
                        );
                        return;
                    }
                    count.accepted++;
                    const sql = renderExpression(tree);
                    assertEngineAgrees(field, sql);
                    // The engine reads the rendering as it reads what the user wrote.
                    const original = field === "ttl" ? text.replace(/\s+delete\s*$/i, "") : text;
                    assert.equal(selectTree(sql), selectTree(original), `${text} -> ${sql}`);
                    count.statements += ALTERS[field] ? 4 : 3;
                },
            ),
            { numRuns: 4000 },
        );
        console.log(
            `[expr fuzz] hostile text: ${count.generated} generated, ${count.accepted} accepted, ` +
                `${count.statements} statements parsed by the engine in ${Date.now() - started} ms`,
        );
        assert.ok(
            count.accepted >= 500,
            `enough accepted cases to mean something (${count.accepted})`,
        );
    });

    it("every generated tree renders to exactly one expression the engine reads with the same precedence", () => {
        const started = Date.now();
        let cases = 0;
        const trees = fc.oneof(
            exprTree([]).map((tree) => ({ field: "default" as const, tree })),
            exprTree(COLUMN_NAMES).map((tree) => ({ field: "orderBy" as const, tree })),
            exprTree(COLUMN_NAMES).map((tree) => ({ field: "partitionBy" as const, tree })),
            ttlTree(COLUMN_NAMES).map((tree) => ({ field: "ttl" as const, tree })),
        );
        fc.assert(
            fc.property(trees, ({ field, tree }) => {
                cases++;
                const sql = renderExpression(tree);
                assert.deepEqual(parseExpression(sql, optionsFor(field)), tree);
                assertEngineAgrees(field, sql);
                assert.equal(selectTree(sql), selectTree(renderFullyParenthesized(tree)), sql);
            }),
            { numRuns: 3000 },
        );
        console.log(`[expr fuzz] generated trees: ${cases} cases in ${Date.now() - started} ms`);
    });

    it("the planner's own DDL for a stream carrying generated expressions has exactly its columns", () => {
        const started = Date.now();
        let cases = 0;
        const columns = ["id", "ts", "kind", "amount"];
        const BASE = validateStream(
            {
                name: "fuzz",
                topic: { name: "fuzz" },
                columns: [
                    { name: "id", type: "UInt64" },
                    { name: "ts", type: "DateTime" },
                    { name: "kind", type: "String" },
                    { name: "amount", type: "Float64" },
                ],
                orderBy: ["id"],
            },
            "fuzz.yaml",
        ).spec;
        const streamExprs = fc.record({
            default: exprTree([], 4),
            orderBy: fc.array(exprTree(columns, 4), { minLength: 1, maxLength: 3 }),
            partitionBy: exprTree(columns, 4),
            ttl: ttlTree(columns),
        });
        fc.assert(
            fc.property(streamExprs, (e) => {
                cases++;
                // The loader's other checks (types of defaults, text rules) are not under test:
                // the expressions go straight to the planner, which parses them itself.
                const spec: StreamSpec = {
                    ...BASE,
                    columns: BASE.columns.map((c) =>
                        c.name === "kind" ? { ...c, default: renderExpression(e.default) } : c,
                    ),
                    orderBy: e.orderBy.map(renderExpression),
                    partitionBy: renderExpression(e.partitionBy),
                    ttl: renderExpression(e.ttl),
                };
                const plan = planStream(spec, undefined, {
                    database: "fuzz",
                    kafkaBrokers: "kafka:9092",
                });
                const target = plan.statements.find((s) =>
                    s.sql.startsWith("CREATE TABLE IF NOT EXISTS `fuzz`.`fuzz` ("),
                );
                assert.ok(target, "the plan creates the target table");
                const tree = explain(target.sql);
                const decls = tree.filter((l) => /^ {3}ColumnDeclaration /.test(l));
                assert.deepEqual(
                    decls.map((l) => l.split(" ")[4]),
                    columns,
                    target.sql,
                );
                assert.ok(tree.includes(" Columns definition (children 1)"), target.sql);
                assert.equal(tree.filter((l) => /^ {3}TTLElement/.test(l)).length, 1, target.sql);
                for (const s of plan.statements) explain(s.sql); // every statement parses
            }),
            { numRuns: 300 },
        );
        console.log(`[expr fuzz] planner DDL: ${cases} streams in ${Date.now() - started} ms`);
    });
});

describe("the function allow-list against system.functions", () => {
    it("names only existing, non-aggregate row functions, with ClickHouse's case rule", () => {
        const rows = query(
            `SELECT name, case_insensitive, is_aggregate, alias_to, categories FROM system.functions WHERE name IN (${FUNCTIONS.map((f) => `'${f}'`).join(", ")})`,
            "JSONEachRow",
        )
            .split("\n")
            .filter((l) => l !== "")
            .map(
                (l) =>
                    JSON.parse(l) as {
                        name: string;
                        case_insensitive: number;
                        is_aggregate: number;
                        alias_to: string;
                        categories: string;
                    },
            );
        const byName = new Map(rows.map((r) => [r.name, r]));
        const problems: string[] = [];
        for (const f of FUNCTIONS) {
            const r = byName.get(f);
            if (!r) {
                problems.push(`${f}: not a ClickHouse function`);
                continue;
            }
            if (r.is_aggregate) problems.push(`${f}: aggregate`);
            if (r.alias_to) problems.push(`${f}: alias of ${r.alias_to}; use the canonical name`);
            if (Boolean(r.case_insensitive) !== CASE_INSENSITIVE.has(f))
                problems.push(`${f}: case_insensitive is ${r.case_insensitive}`);
            if (/Dictionary|Introspection|Encryption|Other|AI|Random/.test(r.categories))
                problems.push(`${f}: category ${r.categories}`);
        }
        for (const f of CASE_INSENSITIVE)
            if (!FUNCTIONS.includes(f)) problems.push(`${f}: in CASE_INSENSITIVE only`);
        assert.deepEqual(problems, []);
    });
});
