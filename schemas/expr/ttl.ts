/**
 * The TTL shape check: a ttl must be a Date or DateTime expression, such as a Date/DateTime column
 * plus an interval, or ClickHouse refuses the table.
 */
import { parseType } from "../types";
import { Expr } from "./ast";
import { DATE_FUNCTIONS } from "./functions";
import { fail } from "./lexer";
import { renderExpression } from "./render";

const DATE_TYPES = new Set(["Date", "Date32", "DateTime", "DateTime64"]);

export function checkTtlShape(expr: Expr, types: ReadonlyMap<string, string> | undefined): void {
    const isInterval = (e: Expr): boolean =>
        e.kind === "interval" || (e.kind === "call" && e.name.startsWith("toInterval"));
    const isDate = (e: Expr): boolean => {
        switch (e.kind) {
            case "column": {
                const text = types?.get(e.name);
                if (text === undefined) return true;
                try {
                    return DATE_TYPES.has(parseType(text).name);
                } catch {
                    return true; // the type's own error is reported where it is declared
                }
            }
            case "call":
                return DATE_FUNCTIONS.has(e.name);
            case "cast":
                return DATE_TYPES.has(e.type.replace(/\(.*$/s, ""));
            case "arith":
                return (
                    (e.op === "+" &&
                        ((isDate(e.left) && isInterval(e.right)) ||
                            (isInterval(e.left) && isDate(e.right)))) ||
                    (e.op === "-" && isDate(e.left) && isInterval(e.right))
                );
            default:
                return false;
        }
    };
    if (!isDate(expr)) {
        fail(
            `'${renderExpression(expr)}' is not a Date or DateTime expression: a ttl looks like 'ts + INTERVAL 30 DAY' on a Date/DateTime column`,
        );
    }
}
