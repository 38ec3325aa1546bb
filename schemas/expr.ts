/**
 * The expression grammar of stream files: column `default`, `ttl`, `partitionBy` and each
 * `orderBy` item are parsed into a small AST and the SQL is rendered from the AST, so what reaches
 * the server is exactly one expression of the parsed shape (no top-level comma, no clause word, no
 * table or dictionary access), whatever the input text was.
 *
 * Accepted (everything else is an error naming the token and the fix):
 * - literals: integers and decimals (`-1`, `1.5`, `2e-3`), single-quoted strings (escapes `\\`,
 *   `\'`, `''`, `\xHH` for printable ASCII), `NULL`, `true`, `false`;
 * - the stream's own columns: bare names, or backquoted (`` `end` ``, no escapes inside);
 * - operators: `OR`, `AND`, `NOT`, `= == != <> < <= > >=`, `[NOT] LIKE`, `[NOT] ILIKE`,
 *   `IS [NOT] NULL`, `[NOT] BETWEEN .. AND ..`, `[NOT] IN (literal, ...)`, `||`, `+ - * / %`,
 *   unary `-`, parentheses, array literals `[..]`;
 * - `CAST(x AS Type)` (the type checked by `parseType`), `INTERVAL <n> <UNIT>`,
 *   `CASE [x] WHEN .. THEN .. [ELSE ..] END`, and calls of the functions in `FUNCTIONS`.
 * Comparisons do not chain (`a < b < c`): ClickHouse would read them left to right, which is
 * rarely meant, so parentheses are required. Tuples exist only as IN lists; write `tuple(a, b)`.
 * A `default` refers to no column: the view computes it from the Kafka table, whose columns are
 * named after message fields, not after the target's columns.
 *
 * The parts: `expr/ast.ts` (the tree and its walks), `expr/lexer.ts`, `expr/parser.ts`,
 * `expr/ttl.ts` (the TTL shape check), `expr/render.ts` (SQL from the tree) and
 * `expr/functions.ts`, the allow-list of callable functions that error messages point to here.
 */
import { ExprOptions } from "./expr/ast";
import { parseExpression } from "./expr/parser";
import { renderExpression } from "./expr/render";

export type {
    ArithOp,
    CompareOp,
    Expr,
    ExprField,
    ExprOptions,
    IntervalUnit,
    LiteralExpr,
} from "./expr/ast";
export { MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_LENGTH, columnsOf } from "./expr/ast";
/** The allow-list: row functions an expression may call (defined in `expr/functions.ts`). */
export { CASE_INSENSITIVE, FUNCTIONS } from "./expr/functions";
export { parseExpression, renderExpression };

/** Parses and renders in one step: the SQL the planner puts into DDL for a field. */
export function canonicalExpression(text: string, options: ExprOptions): string {
    return renderExpression(parseExpression(text, options));
}
