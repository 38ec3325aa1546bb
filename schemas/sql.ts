/**
 * SQL text: safety for the pieces of SQL a stream file may carry (the tokenizer the type parser
 * reads), quoting, and the scanners that read SQL the server reports (quoted runs, top-level
 * separators, matching parentheses, the normalisation both sides of a comparison go through).
 * Expressions (ORDER BY, PARTITION BY, TTL, column defaults) have a grammar of their own in
 * `./expr`, which renders them from a parse tree.
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
            const end = closingQuote(input, i);
            if (end === -1) throw new SqlInputError("unterminated string literal");
            tokens.push({ kind: "string", text: input.slice(i, end + 1) });
            i = end + 1;
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

/** Quotes an identifier for ClickHouse (backticks, with backslash and backtick escaped). */
export function quoteIdent(name: string): string {
    return "`" + name.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

/** Quotes a string literal for ClickHouse. Only for values that are not secrets. */
export function quoteString(value: string): string {
    return "'" + value.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}

/** `db`.`table`, both quoted. */
export function qualified(db: string, table: string): string {
    return `${quoteIdent(db)}.${quoteIdent(table)}`;
}

// ---------------------------------------------------------------------------------------------
// Scanning SQL text: quoted runs, brackets, top-level separators
// ---------------------------------------------------------------------------------------------

/**
 * The index of the quote closing the run ('...' or `...`) opened at i, or -1 when the run is not
 * closed. Backslash escapes and doubled quotes stay inside the run.
 */
function closingQuote(text: string, i: number): number {
    const q = text[i]!;
    let j = i + 1;
    while (j < text.length) {
        if (text[j] === "\\") j += 2;
        else if (text[j] === q && text[j + 1] === q) j += 2;
        else if (text[j] === q) return j;
        else j++;
    }
    return -1;
}

/** Index just past the quoted run ('...' or `...`) starting at i (the end of text if unclosed). */
export function skipQuoted(text: string, i: number): number {
    const end = closingQuote(text, i);
    return end === -1 ? text.length : end + 1;
}

/**
 * Where `match(i)` finds something (returns its length, > 0) outside quotes and brackets, scanning
 * from `from`; the scan goes on after each match.
 */
export function findTopLevel(
    text: string,
    match: (i: number) => number,
    from = 0,
): Array<{ readonly at: number; readonly length: number }> {
    const out: Array<{ at: number; length: number }> = [];
    let depth = 0;
    let i = from;
    while (i < text.length) {
        const c = text[i]!;
        if (c === "'" || c === "`") {
            i = skipQuoted(text, i);
            continue;
        }
        if (c === "(" || c === "[") depth++;
        else if (c === ")" || c === "]") depth--;
        else if (depth === 0) {
            const length = match(i);
            if (length > 0) {
                out.push({ at: i, length });
                i += length;
                continue;
            }
        }
        i++;
    }
    return out;
}

/** Splits at a separator that is outside brackets, quotes and backticks. */
export function splitTopLevel(text: string, sep: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (const hit of findTopLevel(text, (i) => (text.startsWith(sep, i) ? sep.length : 0))) {
        out.push(text.slice(start, hit.at).trim());
        start = hit.at + hit.length;
    }
    const last = text.slice(start).trim();
    if (last || out.length) out.push(last);
    return out;
}

/** Index of the parenthesis closing the one at `open` (quotes skipped); text.length if none. */
export function matchingParen(text: string, open: number): number {
    let depth = 0;
    for (let j = open; j < text.length;) {
        const c = text[j]!;
        if (c === "'" || c === "`") {
            j = skipQuoted(text, j);
            continue;
        }
        if (c === "(") depth++;
        else if (c === ")" && --depth === 0) return j;
        j++;
    }
    return text.length;
}

const INTERVAL = /\bINTERVAL\s+(\d+)\s+(SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR)S?\b/gi;

/**
 * A light, idempotent normalisation applied to both sides of every comparison: whitespace,
 * backticks around plain identifiers, `INTERVAL n UNIT` -> `toIntervalUnit(n)`. String literals are
 * left untouched. The server's own formatting (the planner's CanonicalForms) does the heavy lifting.
 */
export function normalizeSql(text: string): string {
    const segments: Array<{ literal: boolean; text: string }> = [];
    let buf = "";
    let i = 0;
    const flush = () => {
        if (buf) segments.push({ literal: false, text: buf });
        buf = "";
    };
    while (i < text.length) {
        const c = text[i]!;
        if (c !== "'" && c !== "`") {
            buf += c;
            i++;
            continue;
        }
        const close = closingQuote(text, i);
        const end = close === -1 ? text.length : close + 1;
        const inner = text.slice(i + 1, close === -1 ? text.length : close);
        if (c === "`" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(inner)) buf += inner;
        else {
            flush();
            segments.push({ literal: true, text: text.slice(i, end) });
        }
        i = end;
    }
    flush();
    return segments
        .map((s) => (s.literal ? s.text : normalizeSpacing(s.text)))
        .join("")
        .trim();
}

/** Spacing and interval spelling of SQL text outside quotes. */
function normalizeSpacing(text: string): string {
    return text
        .replace(/\s+/g, " ")
        .replace(
            INTERVAL,
            (_m, n: string, unit: string) =>
                `toInterval${unit[0]!.toUpperCase()}${unit.slice(1).toLowerCase()}(${n})`,
        )
        .replace(/([([]) /g, "$1")
        .replace(/ ([)\],])/g, "$1")
        .replace(/,(?! )/g, ", ");
}
