/**
 * Rendering of the expression tree as ClickHouse SQL: what reaches the server is built from the
 * tree, never copied from the input text.
 */
import { quoteIdent, quoteString } from "../sql";
import { Expr } from "./ast";

/** Binding strength of a node as rendered: a child weaker than its slot needs parentheses. */
function level(e: Expr): number {
    switch (e.kind) {
        case "logical":
            return e.op === "OR" ? 1 : 2;
        case "not":
            return 3;
        case "isNull":
            return 4;
        case "compare":
        case "like":
        case "between":
        case "in":
            return 5;
        case "arith":
            return e.op === "||" ? 7 : e.op === "+" || e.op === "-" ? 8 : 9;
        case "negate":
            return 10;
        default:
            return 11;
    }
}

/**
 * Renders an expression as ClickHouse SQL: canonical spacing and keyword case, columns quoted with
 * quoteIdent, strings re-quoted with quoteString, parentheses exactly where the tree needs them.
 */
export function renderExpression(e: Expr): string {
    const at = (child: Expr, min: number): string => {
        const s = renderExpression(child);
        return level(child) < min ? `(${s})` : s;
    };
    switch (e.kind) {
        case "number":
            return e.text;
        case "string":
            return quoteString(e.value);
        case "null":
            return "NULL";
        case "bool":
            return e.value ? "true" : "false";
        case "column":
            return quoteIdent(e.name);
        case "negate": {
            // '-' before a number would read as a negative literal, '--' as a comment.
            const wrap = e.arg.kind === "number" || e.arg.kind === "negate" || level(e.arg) < 10;
            const s = renderExpression(e.arg);
            return wrap ? `-(${s})` : `-${s}`;
        }
        case "not":
            return `NOT ${at(e.arg, 3)}`;
        case "logical": {
            const l = level(e);
            return `${at(e.left, l)} ${e.op} ${at(e.right, l + 1)}`;
        }
        case "arith": {
            const l = level(e);
            return `${at(e.left, l)} ${e.op} ${at(e.right, l + 1)}`;
        }
        case "compare":
            return `${at(e.left, 7)} ${e.op} ${at(e.right, 7)}`;
        case "like":
            return `${at(e.arg, 7)} ${e.negated ? "NOT " : ""}${e.op} ${at(e.pattern, 7)}`;
        case "isNull":
            return `${at(e.arg, 4)} IS ${e.negated ? "NOT " : ""}NULL`;
        case "between":
            return `${at(e.arg, 7)} ${e.negated ? "NOT " : ""}BETWEEN ${at(e.low, 7)} AND ${at(e.high, 7)}`;
        case "in":
            return `${at(e.arg, 7)} ${e.negated ? "NOT " : ""}IN (${e.list.map(renderExpression).join(", ")})`;
        case "array":
            return `[${e.items.map(renderExpression).join(", ")}]`;
        case "cast":
            return `CAST(${renderExpression(e.arg)} AS ${e.type})`;
        case "interval":
            return `INTERVAL ${e.value} ${e.unit}`;
        case "case": {
            const parts = ["CASE"];
            if (e.operand !== undefined) parts.push(renderExpression(e.operand));
            for (const w of e.whens)
                parts.push(`WHEN ${renderExpression(w.when)} THEN ${renderExpression(w.then)}`);
            if (e.else !== undefined) parts.push(`ELSE ${renderExpression(e.else)}`);
            parts.push("END");
            return parts.join(" ");
        }
        case "call":
            return `${e.name}(${e.args.map(renderExpression).join(", ")})`;
    }
}
