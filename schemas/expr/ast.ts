/**
 * The parse tree of the expression grammar (see `schemas/expr.ts` for what is accepted), the
 * options a parse takes, its limits, and the walks over a tree that do not render it.
 */

export type CompareOp = "=" | "!=" | "<" | "<=" | ">" | ">=";
export type ArithOp = "+" | "-" | "*" | "/" | "%" | "||";
export type IntervalUnit =
    "SECOND" | "MINUTE" | "HOUR" | "DAY" | "WEEK" | "MONTH" | "QUARTER" | "YEAR";

/** A literal allowed in an IN list. */
export type LiteralExpr =
    | { readonly kind: "number"; readonly text: string }
    | { readonly kind: "string"; readonly value: string }
    | { readonly kind: "null" }
    | { readonly kind: "bool"; readonly value: boolean };

export type Expr =
    | LiteralExpr
    | { readonly kind: "column"; readonly name: string }
    | { readonly kind: "negate"; readonly arg: Expr }
    | { readonly kind: "not"; readonly arg: Expr }
    | {
          readonly kind: "logical";
          readonly op: "AND" | "OR";
          readonly left: Expr;
          readonly right: Expr;
      }
    | {
          readonly kind: "compare";
          readonly op: CompareOp;
          readonly left: Expr;
          readonly right: Expr;
      }
    | { readonly kind: "arith"; readonly op: ArithOp; readonly left: Expr; readonly right: Expr }
    | {
          readonly kind: "like";
          readonly op: "LIKE" | "ILIKE";
          readonly negated: boolean;
          readonly arg: Expr;
          readonly pattern: Expr;
      }
    | { readonly kind: "isNull"; readonly negated: boolean; readonly arg: Expr }
    | {
          readonly kind: "between";
          readonly negated: boolean;
          readonly arg: Expr;
          readonly low: Expr;
          readonly high: Expr;
      }
    | {
          readonly kind: "in";
          readonly negated: boolean;
          readonly arg: Expr;
          readonly list: readonly LiteralExpr[];
      }
    | { readonly kind: "array"; readonly items: readonly Expr[] }
    | { readonly kind: "cast"; readonly arg: Expr; readonly type: string }
    | { readonly kind: "interval"; readonly value: string; readonly unit: IntervalUnit }
    | {
          readonly kind: "case";
          readonly operand?: Expr;
          readonly whens: ReadonlyArray<{ readonly when: Expr; readonly then: Expr }>;
          readonly else?: Expr;
      }
    | { readonly kind: "call"; readonly name: string; readonly args: readonly Expr[] };

/** Which stream-file key an expression comes from: each has its own top-level rules. */
export type ExprField = "default" | "ttl" | "partitionBy" | "orderBy";

export interface ExprOptions {
    /** Which key the text comes from (see `ExprField`). */
    readonly field: ExprField;
    /** The stream's column names: the only names an expression may refer to. */
    readonly columns: Iterable<string>;
    /**
     * Column types (ClickHouse type text), used to check that a TTL is a Date/DateTime
     * expression. @default none: a column of unknown type passes that check
     */
    readonly columnTypes?: ReadonlyMap<string, string>;
}

/** Longest expression text accepted, in UTF-16 code units. */
export const MAX_EXPRESSION_LENGTH = 4096;
/** Deepest nesting accepted (brackets, operators, function arguments). */
export const MAX_EXPRESSION_DEPTH = 64;

/** A node's direct children, in source order (IN list literals after the tested value). */
export function childrenOf(e: Expr): Expr[] {
    const children: Expr[] = [];
    switch (e.kind) {
        case "negate":
        case "not":
        case "isNull":
        case "cast":
            children.push(e.arg);
            break;
        case "logical":
        case "compare":
        case "arith":
            children.push(e.left, e.right);
            break;
        case "like":
            children.push(e.arg, e.pattern);
            break;
        case "between":
            children.push(e.arg, e.low, e.high);
            break;
        case "in":
            children.push(e.arg, ...e.list);
            break;
        case "array":
            children.push(...e.items);
            break;
        case "case":
            if (e.operand) children.push(e.operand);
            for (const w of e.whens) children.push(w.when, w.then);
            if (e.else) children.push(e.else);
            break;
        case "call":
            children.push(...e.args);
            break;
        default:
            break;
    }
    return children;
}

/** Levels of the tree: 1 for a leaf. */
export function treeDepth(e: Expr): number {
    return 1 + childrenOf(e).reduce((max, c) => Math.max(max, treeDepth(c)), 0);
}

/** Whether an IN appears anywhere in the tree. */
export function containsIn(e: Expr): boolean {
    return e.kind === "in" || childrenOf(e).some(containsIn);
}

/** Columns an expression refers to, in order of first appearance, each once. */
export function columnsOf(e: Expr): string[] {
    const out = new Set<string>();
    const walk = (x: Expr): void => {
        if (x.kind === "column") out.add(x.name);
        else childrenOf(x).forEach(walk);
    };
    walk(e);
    return [...out];
}
