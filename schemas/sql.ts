/**
 * SQL safety for the pieces of SQL a stream file may carry: ClickHouse types and short
 * expressions (ORDER BY, PARTITION BY, TTL, column defaults). Both are checked by a tokenizer
 * rather than by regexes so that nothing outside a small grammar reaches generated DDL.
 */

export class SqlInputError extends Error {}

type TokenKind = "ident" | "number" | "string" | "punct" | "op";
interface Token {
    kind: TokenKind;
    text: string;
}

const OPERATORS = ["<=", ">=", "!=", "<>", "==", "||", "+", "-", "*", "/", "%", "=", "<", ">"];

/** Splits an expression into tokens; rejects comments, statement separators and quoted identifiers. */
export function tokenize(input: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    while (i < input.length) {
        const c = input[i]!;
        if (/\s/.test(c)) {
            i++;
            continue;
        }
        if (input.startsWith("--", i) || input.startsWith("/*", i) || c === "#") {
            throw new SqlInputError("comments are not allowed");
        }
        if (c === ";") throw new SqlInputError("';' is not allowed");
        if (c === "`" || c === '"')
            throw new SqlInputError(`quoted identifiers (${c}) are not allowed`);
        if (/[A-Za-z_]/.test(c)) {
            let j = i + 1;
            while (j < input.length && /[A-Za-z0-9_]/.test(input[j]!)) j++;
            tokens.push({ kind: "ident", text: input.slice(i, j) });
            i = j;
            continue;
        }
        if (/[0-9]/.test(c)) {
            let j = i + 1;
            while (j < input.length && /[0-9._eE]/.test(input[j]!)) j++;
            tokens.push({ kind: "number", text: input.slice(i, j) });
            i = j;
            continue;
        }
        if (c === "'") {
            let j = i + 1;
            let closed = false;
            while (j < input.length) {
                if (input[j] === "\\") {
                    j += 2;
                    continue;
                }
                if (input[j] === "'") {
                    if (input[j + 1] === "'") {
                        j += 2;
                        continue;
                    }
                    closed = true;
                    break;
                }
                j++;
            }
            if (!closed) throw new SqlInputError("unterminated string literal");
            tokens.push({ kind: "string", text: input.slice(i, j + 1) });
            i = j + 1;
            continue;
        }
        if ("(),.[]".includes(c)) {
            tokens.push({ kind: "punct", text: c });
            i++;
            continue;
        }
        const op = OPERATORS.find((o) => input.startsWith(o, i));
        if (op) {
            tokens.push({ kind: "op", text: op });
            i += op.length;
            continue;
        }
        throw new SqlInputError(`character '${c}' is not allowed`);
    }
    return tokens;
}

/** Keywords that would turn an expression into something else (a subquery, a clause, a statement). */
const FORBIDDEN_WORDS = new Set([
    "select",
    "from",
    "settings",
    "format",
    "into",
    "union",
    "with",
    "drop",
    "alter",
    "insert",
    "attach",
    "detach",
    "system",
    "kill",
    "grant",
    "revoke",
    "create",
    "delete",
    "truncate",
    "rename",
    "optimize",
    "set",
]);
/** Table functions and functions that read outside the row; never needed in a column expression. */
const FORBIDDEN_FUNCTIONS = new Set([
    "file",
    "url",
    "s3",
    "remote",
    "remotesecure",
    "cluster",
    "mysql",
    "postgresql",
    "executable",
    "input",
    "dictget",
    "joinget",
    "hdfs",
    "azureblobstorage",
    "sleep",
    "sleepeachrow",
    "throwif",
]);

/**
 * Validates a short SQL expression (ORDER BY item, PARTITION BY, TTL, DEFAULT) and returns it
 * normalised (tokens joined by single spaces where needed). Throws SqlInputError with the reason.
 */
export function checkExpression(expr: string): string {
    const tokens = tokenize(expr);
    if (tokens.length === 0) throw new SqlInputError("expression is empty");
    let depth = 0;
    tokens.forEach((t, idx) => {
        if (t.kind === "ident") {
            const lower = t.text.toLowerCase();
            if (FORBIDDEN_WORDS.has(lower))
                throw new SqlInputError(`keyword '${t.text}' is not allowed in an expression`);
            const next = tokens[idx + 1];
            if (next?.text === "(" && FORBIDDEN_FUNCTIONS.has(lower)) {
                throw new SqlInputError(`function '${t.text}' is not allowed in an expression`);
            }
        }
        if (t.text === "(" || t.text === "[") depth++;
        if (t.text === ")" || t.text === "]") depth--;
        if (depth < 0) throw new SqlInputError("unbalanced brackets");
    });
    if (depth !== 0) throw new SqlInputError("unbalanced brackets");
    return expr.trim().replace(/\s+/g, " ");
}

/** Identifiers referenced by an expression (not function names): used to check that columns exist. */
export function referencedIdentifiers(expr: string): string[] {
    const tokens = tokenize(expr);
    const out: string[] = [];
    tokens.forEach((t, idx) => {
        if (t.kind !== "ident") return;
        if (tokens[idx + 1]?.text === "(") return;
        if (tokens[idx - 1]?.text === ".") return;
        if (KEYWORDS_IN_EXPRESSIONS.has(t.text.toLowerCase())) return;
        out.push(t.text);
    });
    return out;
}

const KEYWORDS_IN_EXPRESSIONS = new Set([
    "interval",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "quarter",
    "year",
    "and",
    "or",
    "not",
    "null",
    "true",
    "false",
    "asc",
    "desc",
    "delete",
    "to",
    "volume",
    "disk",
    "where",
    "is",
    "in",
    "like",
    "between",
    "case",
    "when",
    "then",
    "else",
    "end",
    "as",
]);

// ClickHouse data types live in ./types (parser, canonical spelling, engine rules).
export { parseType, timeZonesOf } from "./types";
export type { ChType } from "./types";

/** Quotes an identifier for ClickHouse (backticks, with backslash and backtick escaped). */
export function quoteIdent(name: string): string {
    return "`" + name.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

/** Quotes a string literal for ClickHouse. Only for values that are not secrets. */
export function quoteString(value: string): string {
    return "'" + value.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}
