/**
 * SQL safety for the pieces of SQL a stream file may carry: the tokenizer the type parser reads,
 * and quoting. Expressions (ORDER BY, PARTITION BY, TTL, column defaults) have a grammar of their
 * own in `./expr`, which renders them from a parse tree.
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
