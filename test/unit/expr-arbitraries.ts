/**
 * fast-check generators for the expression grammar (schemas/expr.ts), shared by the unit
 * properties (test/unit/expr.test.ts) and the engine-backed fuzzing
 * (test/integration/expr.test.ts): trees in the parser's own normal form, and hostile text built
 * from keywords, commas, quotes, comments and look-alike characters.
 */
import fc from "fast-check";
import { Expr, FUNCTIONS, LiteralExpr, renderExpression } from "../../schemas/expr";
import { quoteIdent, quoteString } from "../../schemas/sql";
import { parseType } from "../../schemas/types";

/** A stream's columns for generated expressions; `end` and `select` need quoting. */
export const COLUMNS: ReadonlyArray<{ name: string; type: string }> = [
    { name: "id", type: "UInt64" },
    { name: "ts", type: "DateTime" },
    { name: "kind", type: "LowCardinality(String)" },
    { name: "amount", type: "Decimal(18, 4)" },
    { name: "end", type: "String" },
    { name: "select", type: "Nullable(Int32)" },
];
export const COLUMN_NAMES = COLUMNS.map((c) => c.name);
export const COLUMN_TYPES: ReadonlyMap<string, string> = new Map(
    COLUMNS.map((c) => [c.name, c.type]),
);

/** Characters that make string literals interesting: quotes, escapes, comment starters, unicode. */
const STRING_UNITS = [
    "a", "Z", "0", " ", "'", "''", "\\", "\\'", "`", '"', ",", ";", "--", "/*", "*/", "#", "(",
    ")", "%", "_", "é", "ü", "ｱ", "😀", "ー", "\u00a0", "\u200b", "\u2028",
]; // prettier-ignore

export const stringValue = fc
    .array(fc.constantFrom(...STRING_UNITS), { maxLength: 8 })
    .map((parts) => parts.join(""));

const numberText = fc.oneof(
    fc.nat({ max: 1_000_000 }).map(String),
    fc
        .tuple(fc.nat({ max: 9999 }), fc.nat({ max: 999 }))
        .map(([a, b]) => `${a}.${String(b).padStart(3, "0")}`),
    fc
        .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: -20, max: 20 }))
        .map(([m, e]) => `${m}e${e}`),
);

export const literal: fc.Arbitrary<LiteralExpr> = fc.oneof(
    fc.tuple(fc.boolean(), numberText).map(([neg, t]) => ({
        kind: "number" as const,
        text: neg ? `-${t}` : t,
    })),
    stringValue.map((value) => ({ kind: "string" as const, value })),
    fc.constant({ kind: "null" as const }),
    fc.boolean().map((value) => ({ kind: "bool" as const, value })),
);

const CAST_TYPES = [
    "String",
    "Nullable(String)",
    "UInt8",
    "Int64",
    "Float64",
    "Date",
    "DateTime('UTC')",
    "DateTime64(3, 'UTC')",
    "Decimal(10, 2)",
    "Array(LowCardinality(String))",
    "Map(String, UInt64)",
    "FixedString(3)",
].map((t) => parseType(t).text);

const UNITS = ["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR"] as const;

/**
 * Trees exactly as `parseExpression` builds them (negative numbers folded into literals, `==` as
 * `=`, `<>` as `!=`), over `columns` (none: a default's constant expressions).
 */
export function exprTree(columns: readonly string[], maxDepth = 5): fc.Arbitrary<Expr> {
    const { expr } = fc.letrec<{ expr: Expr }>((tie) => {
        const sub = tie("expr");
        const leaves: Array<fc.Arbitrary<Expr>> = [literal];
        if (columns.length > 0)
            leaves.push(
                fc.constantFrom(...columns).map((name) => ({ kind: "column" as const, name })),
            );
        leaves.push(
            fc.tuple(fc.nat({ max: 400 }), fc.constantFrom(...UNITS)).map(([n, unit]) => ({
                kind: "interval" as const,
                value: String(n),
                unit,
            })),
        );
        return {
            expr: fc.oneof(
                { depthSize: "small", maxDepth, withCrossShrink: true },
                ...leaves,
                sub.map((arg) => ({ kind: "negate" as const, arg })),
                sub.map((arg) => ({ kind: "not" as const, arg })),
                fc
                    .tuple(fc.constantFrom("AND" as const, "OR" as const), sub, sub)
                    .map(([op, left, right]) => ({ kind: "logical" as const, op, left, right })),
                fc
                    .tuple(fc.constantFrom("=", "!=", "<", "<=", ">", ">=" as const), sub, sub)
                    .map(([op, left, right]) => ({
                        kind: "compare" as const,
                        op: op as "=",
                        left,
                        right,
                    })),
                fc
                    .tuple(fc.constantFrom("+", "-", "*", "/", "%", "||"), sub, sub)
                    .map(([op, left, right]) => ({
                        kind: "arith" as const,
                        op: op as "+",
                        left,
                        right,
                    })),
                fc
                    .tuple(
                        fc.constantFrom("LIKE" as const, "ILIKE" as const),
                        fc.boolean(),
                        sub,
                        sub,
                    )
                    .map(([op, negated, arg, pattern]) => ({
                        kind: "like" as const,
                        op,
                        negated,
                        arg,
                        pattern,
                    })),
                fc
                    .tuple(fc.boolean(), sub)
                    .map(([negated, arg]) => ({ kind: "isNull" as const, negated, arg })),
                fc.tuple(fc.boolean(), sub, sub, sub).map(([negated, arg, low, high]) => ({
                    kind: "between" as const,
                    negated,
                    arg,
                    low,
                    high,
                })),
                fc
                    .tuple(fc.boolean(), sub, fc.array(literal, { minLength: 1, maxLength: 4 }))
                    .map(([negated, arg, list]) => ({ kind: "in" as const, negated, arg, list })),
                fc.array(sub, { maxLength: 3 }).map((items) => ({ kind: "array" as const, items })),
                fc
                    .tuple(sub, fc.constantFrom(...CAST_TYPES))
                    .map(([arg, type]) => ({ kind: "cast" as const, arg, type })),
                fc
                    .record(
                        {
                            operand: sub,
                            whens: fc.array(
                                fc.record({ when: sub, then: sub }, { noNullPrototype: true }),
                                {
                                    minLength: 1,
                                    maxLength: 3,
                                },
                            ),
                            else: sub,
                        },
                        { requiredKeys: ["whens"], noNullPrototype: true },
                    )
                    .map((c) => ({ kind: "case" as const, ...c })),
                fc
                    .tuple(fc.constantFrom(...FUNCTIONS), fc.array(sub, { maxLength: 3 }), sub, sub)
                    .map(([name, args, a, b]) => ({
                        kind: "call" as const,
                        name,
                        // substring and position have a syntax of their own: two arguments at least,
                        // and position's first is no IN expression (POSITION(needle IN haystack))
                        args:
                            name === "position"
                                ? [containsIn(a) ? { kind: "string" as const, value: "x" } : a, b]
                                : name === "substring" && args.length < 2
                                  ? [a, b]
                                  : args,
                    })),
            ),
        };
    });
    return expr;
}

/** Whether a tree holds an IN anywhere (quotes inside string values are escaped in JSON). */
function containsIn(e: Expr): boolean {
    return JSON.stringify(e).includes('"kind":"in"');
}

/** A TTL-shaped tree: a date function of any expression plus or minus an interval. */
export function ttlTree(columns: readonly string[]): fc.Arbitrary<Expr> {
    return fc
        .tuple(
            fc.constantFrom("toDateTime", "toDate", "toStartOfDay", "now"),
            exprTree(columns, 3),
            fc.constantFrom("+" as const, "-" as const),
            fc.nat({ max: 1000 }),
            fc.constantFrom(...UNITS),
        )
        .map(([fn, arg, op, n, unit]) => ({
            kind: "arith" as const,
            op,
            left: { kind: "call" as const, name: fn, args: fn === "now" ? [] : [arg] },
            right: { kind: "interval" as const, value: String(n), unit },
        }));
}

/**
 * Every child in parentheses: what the tree means, spelled with no reliance on precedence. The
 * engine must read `renderExpression(e)` and this the same way.
 */
export function renderFullyParenthesized(e: Expr): string {
    const p = (x: Expr) => `(${renderFullyParenthesized(x)})`;
    // The engine flattens a chain of AND, OR or || into one n-ary call (and(a, b, c)), but not
    // one whose first operand is parenthesized: keep the chain so both spellings read alike.
    const chain = (x: Expr) =>
        (e.kind === "logical" || e.kind === "arith") &&
        x.kind === e.kind &&
        x.op === e.op &&
        (e.op === "AND" || e.op === "OR" || e.op === "||")
            ? renderFullyParenthesized(x)
            : p(x);
    switch (e.kind) {
        case "number":
            return e.text;
        case "string":
            return quoteString(e.value);
        case "null":
            return "NULL";
        case "bool":
            return String(e.value);
        case "column":
            return quoteIdent(e.name);
        case "negate":
            return `-${p(e.arg)}`;
        case "not":
            return `NOT ${p(e.arg)}`;
        case "logical":
        case "arith":
            return `${chain(e.left)} ${e.op} ${p(e.right)}`;
        case "compare":
            return `${p(e.left)} ${e.op} ${p(e.right)}`;
        case "like":
            return `${p(e.arg)} ${e.negated ? "NOT " : ""}${e.op} ${p(e.pattern)}`;
        case "isNull":
            return `${p(e.arg)} IS ${e.negated ? "NOT " : ""}NULL`;
        case "between":
            return `${p(e.arg)} ${e.negated ? "NOT " : ""}BETWEEN ${p(e.low)} AND ${p(e.high)}`;
        case "in":
            return `${p(e.arg)} ${e.negated ? "NOT " : ""}IN (${e.list.map(renderFullyParenthesized).join(", ")})`;
        case "array":
            return `[${e.items.map(renderFullyParenthesized).join(", ")}]`;
        case "cast":
            return `CAST(${p(e.arg)} AS ${e.type})`;
        case "interval":
            return `INTERVAL ${e.value} ${e.unit}`;
        case "case":
            return [
                "CASE",
                ...(e.operand ? [p(e.operand)] : []),
                ...e.whens.map((w) => `WHEN ${p(w.when)} THEN ${p(w.then)}`),
                ...(e.else ? [`ELSE ${p(e.else)}`] : []),
                "END",
            ].join(" ");
        case "call":
            return `${e.name}(${e.args.map(p).join(", ")})`;
    }
}

/** Pieces of hostile text: clause words, commas, quotes, comments, look-alikes, controls. */
const FRAGMENTS = [
    // the stream's columns, bare and quoted, and near misses
    "id", "ts", "kind", "amount", "`id`", "`end`", "`select`", "Id", "`nope`", "end", "select",
    // clause and statement words
    "SELECT", "FROM", "MODIFY", "CLEAR", "COLUMN", "CONSTRAINT", "CHECK", "DEFAULT", "String",
    "ENGINE", "Memory", "SETTINGS", "DROP", "TABLE", "ALTER", "ADD", "TTL", "TO", "DISK", "'d'",
    "DELETE", "WHERE", "GROUP", "BY", "ASC", "DESC", "UNION", "ALL", "WITH", "FORMAT",
    // expression words
    "IN", "NOT", "AND", "OR", "BETWEEN", "LIKE", "ILIKE", "IS", "NULL", "true", "CASE", "WHEN",
    "THEN", "ELSE", "END", "CAST", "AS", "INTERVAL", "DAY", "1", "-2", "1.5", "1e3", "007",
    "0x1F",
    // functions: allowed, case variants, forbidden
    "toDate(", "lower(", "LOWER(", "TODATE(", "if(", "now()", "cityHash64(", "dictGet(",
    "joinGet(", "file(", "arrayJoin(", "sleep(", "currentDatabase()", "tuple(",
    // punctuation and operators
    ",", ", ", "(", ")", "[", "]", "+", "-", "*", "/", "%", "||", "=", "==", "!=", "<>", "<",
    ">=", "->", "::", ".", "{", "}", "?", "$1", "@", "!", "|", "&",
    // quotes, escapes and comments
    "'", "''", "'x'", "'a''b'", "'\\''", "'\\\\'", "'\\x41'", "'\\x00'", "'\\n'", "'--'", "'/*'",
    "'; DROP TABLE t'", "\\", "`", '"', '"id"', ";", "--", "/*", "*/", "#", "\n", "\t",
    // unicode look-alikes, invisible and control characters
    "ａ", "ｉｄ", "，", "；", "（", "＇", "\u00a0", "\u200b", "\u2028", "\u202e", "\ufeff",
    "\u0000", "\u0007", "\u007f", "é", "😀", "\ud800",
]; // prettier-ignore

/** Hostile text: fragments joined with or without spaces. */
export const hostileText: fc.Arbitrary<string> = fc
    .array(fc.tuple(fc.constantFrom(...FRAGMENTS), fc.constantFrom("", " ", " ")), {
        minLength: 1,
        maxLength: 12,
    })
    .map((parts) => parts.map(([f, sep]) => f + sep).join(""));

/** A valid expression's text with one hostile fragment spliced in somewhere: near misses. */
export function mutatedText(columns: readonly string[]): fc.Arbitrary<string> {
    return fc
        .tuple(exprTree(columns, 3), fc.constantFrom(...FRAGMENTS), fc.nat(), fc.boolean())
        .map(([tree, fragment, at, space]) => {
            const text = renderExpression(tree);
            const i = at % (text.length + 1);
            const glue = space ? " " : "";
            return text.slice(0, i) + glue + fragment + glue + text.slice(i);
        });
}

/** A valid expression's text with its spaces replaced by other whitespace: accepted text. */
export function respacedText(columns: readonly string[]): fc.Arbitrary<string> {
    return fc
        .tuple(exprTree(columns, 4), fc.constantFrom("  ", "\n", "\t", " \r\n "))
        .map(([tree, ws]) => renderExpression(tree).replace(/ (?=(?:[^']*'[^']*')*[^']*$)/g, ws));
}
