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

// ---------------------------------------------------------------------------------------------
// ClickHouse data types
// ---------------------------------------------------------------------------------------------

const SIMPLE_TYPES = new Set([
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "UInt128",
    "UInt256",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Int128",
    "Int256",
    "Float32",
    "Float64",
    "BFloat16",
    "Bool",
    "String",
    "UUID",
    "Date",
    "Date32",
    "IPv4",
    "IPv6",
    "JSON",
]);

/** Parsed ClickHouse type. `text` is its canonical spelling, as `system.columns.type` shows it. */
export interface ChType {
    readonly name: string;
    readonly args: ReadonlyArray<ChType | string | number>;
    readonly text: string;
}

/**
 * Parses and canonicalises a ClickHouse type (the spelling ClickHouse itself reports in
 * `system.columns`, so desired and actual types compare as strings). Throws SqlInputError naming
 * what is wrong.
 */
export function parseType(input: string): ChType {
    const tokens = tokenize(input);
    let pos = 0;
    const peek = () => tokens[pos];
    const expect = (text: string) => {
        const t = tokens[pos];
        if (t?.text !== text) throw new SqlInputError(`expected '${text}' in type '${input}'`);
        pos++;
    };
    const parse = (): ChType => {
        const t = tokens[pos++];
        if (!t || t.kind !== "ident") throw new SqlInputError(`expected a type name in '${input}'`);
        const name = t.text;
        const hasArgs = peek()?.text === "(";
        const make = (args: Array<ChType | string | number>): ChType => ({
            name,
            args,
            text: args.length === 0 ? name : `${name}(${args.map(argText).join(", ")})`,
        });
        if (SIMPLE_TYPES.has(name)) {
            if (hasArgs) throw new SqlInputError(`type ${name} takes no arguments`);
            return make([]);
        }
        switch (name) {
            case "Nullable":
            case "LowCardinality":
            case "Array": {
                expect("(");
                const inner = parse();
                expect(")");
                if (
                    name === "Nullable" &&
                    ["Array", "Map", "Tuple", "Nullable", "LowCardinality"].includes(inner.name)
                ) {
                    throw new SqlInputError(
                        `Nullable(${inner.text}) is not allowed: ${inner.name} cannot be inside Nullable`,
                    );
                }
                return make([inner]);
            }
            case "Map": {
                expect("(");
                const k = parse();
                expect(",");
                const v = parse();
                expect(")");
                return make([k, v]);
            }
            case "Tuple": {
                expect("(");
                const items: ChType[] = [parse()];
                while (peek()?.text === ",") {
                    pos++;
                    items.push(parse());
                }
                expect(")");
                return make(items);
            }
            case "FixedString": {
                expect("(");
                const n = int(1, 1 << 20);
                expect(")");
                return make([n]);
            }
            case "Decimal": {
                expect("(");
                const p = int(1, 76);
                let s = 0;
                if (peek()?.text === ",") {
                    pos++;
                    s = int(0, p);
                }
                expect(")");
                return make([p, s]);
            }
            case "Decimal32":
            case "Decimal64":
            case "Decimal128":
            case "Decimal256": {
                const max = { Decimal32: 9, Decimal64: 18, Decimal128: 38, Decimal256: 76 }[name];
                expect("(");
                const s = int(0, max);
                expect(")");
                return { name: "Decimal", args: [max, s], text: `Decimal(${max}, ${s})` };
            }
            case "DateTime": {
                if (!hasArgs) return make([]);
                expect("(");
                const tz = str();
                expect(")");
                return make([tz]);
            }
            case "DateTime64": {
                expect("(");
                const precision = int(0, 9);
                const args: Array<string | number> = [precision];
                if (peek()?.text === ",") {
                    pos++;
                    args.push(str());
                }
                expect(")");
                return make(args);
            }
            case "Enum8":
            case "Enum16": {
                expect("(");
                const items: string[] = [];
                do {
                    if (items.length) pos++;
                    const label = str();
                    expect("=");
                    let sign = "";
                    if (peek()?.text === "-") {
                        pos++;
                        sign = "-";
                    }
                    const n = tokens[pos++];
                    if (n?.kind !== "number" || !/^\d+$/.test(n.text))
                        throw new SqlInputError(`enum values must be integers in '${input}'`);
                    items.push(`${label} = ${sign}${n.text}`);
                } while (peek()?.text === ",");
                expect(")");
                return { name, args: items, text: `${name}(${items.join(", ")})` };
            }
            default:
                throw new SqlInputError(`unknown ClickHouse type '${name}'`);
        }
    };
    const int = (min: number, max: number): number => {
        const t = tokens[pos++];
        if (t?.kind !== "number" || !/^\d+$/.test(t.text))
            throw new SqlInputError(`expected an integer in type '${input}'`);
        const n = Number(t.text);
        if (n < min || n > max)
            throw new SqlInputError(`${n} is out of range ${min}..${max} in type '${input}'`);
        return n;
    };
    const str = (): string => {
        const t = tokens[pos++];
        if (t?.kind !== "string")
            throw new SqlInputError(`expected a quoted string in type '${input}'`);
        if (/[\\\n]/.test(t.text))
            throw new SqlInputError(`escapes are not allowed in type arguments of '${input}'`);
        return t.text;
    };
    const result = parse();
    if (pos !== tokens.length)
        throw new SqlInputError(`unexpected '${tokens[pos]!.text}' after type in '${input}'`);
    return result;
}

function argText(a: ChType | string | number): string {
    return typeof a === "object" ? a.text : String(a);
}

/** Quotes an identifier for ClickHouse (backticks, with backslash and backtick escaped). */
export function quoteIdent(name: string): string {
    return "`" + name.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

/** Quotes a string literal for ClickHouse. Only for values that are not secrets. */
export function quoteString(value: string): string {
    return "'" + value.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}
