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
 */
import { IDENTIFIER } from "./model";
import { ChType, SqlInputError, parseType, quoteIdent, quoteString } from "./sql";

// ---------------------------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Functions: an allow-list of row functions that read only their arguments
// ---------------------------------------------------------------------------------------------

/**
 * Row functions an expression may call, by ClickHouse's own name. No aggregate, table, dictionary
 * (`dictGet*`), join (`joinGet`), introspection, settings or server-state function; no
 * `arrayJoin` (it multiplies rows). `test/integration/expr.test.ts` checks every name and
 * `CASE_INSENSITIVE` against the engine's `system.functions`.
 */
export const FUNCTIONS: readonly string[] = [
    // dates and times
    "toDate", "toDate32", "toDateTime", "toDateTime64", "toStartOfYear", "toStartOfQuarter",
    "toStartOfMonth", "toStartOfWeek", "toStartOfDay", "toStartOfHour", "toStartOfMinute",
    "toStartOfSecond", "toStartOfFiveMinutes", "toStartOfTenMinutes", "toStartOfFifteenMinutes",
    "toStartOfInterval", "toMonday", "toYYYYMM", "toYYYYMMDD", "toYYYYMMDDhhmmss", "toYear",
    "toQuarter", "toMonth", "toDayOfMonth", "toDayOfWeek", "toDayOfYear", "toHour", "toMinute",
    "toSecond", "toISOWeek", "toISOYear", "toWeek", "toUnixTimestamp", "fromUnixTimestamp", "now",
    "now64", "today", "yesterday", "dateDiff", "dateTrunc", "addSeconds", "addMinutes", "addHours",
    "addDays", "addWeeks", "addMonths", "addQuarters", "addYears", "subtractSeconds",
    "subtractMinutes", "subtractHours", "subtractDays", "subtractWeeks", "subtractMonths",
    "subtractQuarters", "subtractYears", "toTimezone", "formatDateTime", "toIntervalSecond",
    "toIntervalMinute", "toIntervalHour", "toIntervalDay", "toIntervalWeek", "toIntervalMonth",
    "toIntervalQuarter", "toIntervalYear", "parseDateTimeBestEffort",
    "parseDateTimeBestEffortOrNull", "parseDateTimeBestEffortOrZero", "parseDateTime64BestEffort",
    "toDateOrNull", "toDateOrZero", "toDateTimeOrNull", "toDateTimeOrZero",
    // type conversion
    "toInt8", "toInt16", "toInt32", "toInt64", "toInt128", "toInt256", "toUInt8", "toUInt16",
    "toUInt32", "toUInt64", "toUInt128", "toUInt256", "toFloat32", "toFloat64", "toInt32OrZero",
    "toInt32OrNull", "toInt64OrZero", "toInt64OrNull", "toUInt32OrZero", "toUInt32OrNull",
    "toUInt64OrZero", "toUInt64OrNull", "toFloat64OrZero", "toFloat64OrNull", "toString",
    "toFixedString", "toDecimal32", "toDecimal64", "toDecimal128", "toDecimal256", "toUUID",
    "toUUIDOrNull", "toUUIDOrZero", "toBool", "toLowCardinality", "toNullable", "toIPv4", "toIPv6",
    "toIPv4OrNull", "toIPv6OrNull",
    // strings, URLs, JSON text
    "lower", "upper", "lowerUTF8", "upperUTF8", "length", "lengthUTF8", "substring",
    "substringUTF8", "concat", "concatWithSeparator", "trimBoth", "trimLeft", "trimRight",
    "leftPad", "rightPad", "left", "right", "replaceAll", "replaceOne", "replaceRegexpAll",
    "replaceRegexpOne", "position", "positionCaseInsensitive", "startsWith", "endsWith",
    "splitByChar", "splitByString", "reverse", "repeat", "empty", "notEmpty", "format", "extract",
    "match", "base64Encode", "base64Decode", "tryBase64Decode", "hex", "unhex", "toValidUTF8",
    "domain", "domainWithoutWWW", "protocol", "path", "queryString", "extractURLParameter",
    "cutQueryString", "JSONExtractString", "JSONExtractInt", "JSONExtractUInt", "JSONExtractFloat",
    "JSONExtractBool", "JSONExtractRaw", "JSONHas",
    // hashes
    "cityHash64", "sipHash64", "sipHash128", "xxHash32", "xxHash64", "xxh3", "murmurHash2_32",
    "murmurHash2_64", "murmurHash3_32", "murmurHash3_64", "murmurHash3_128", "farmHash64",
    "javaHash", "halfMD5", "MD5", "SHA1", "SHA256", "intHash32", "intHash64",
    // arithmetic and maths
    "abs", "round", "floor", "ceil", "trunc", "sqrt", "exp", "log", "log2", "log10", "pow", "sign",
    "greatest", "least", "intDiv", "intDivOrZero", "modulo", "plus", "minus", "multiply", "divide",
    "negate", "gcd", "lcm", "bitAnd", "bitOr", "bitXor", "bitNot", "bitShiftLeft",
    "bitShiftRight", "isNaN", "isFinite", "isInfinite",
    // conditionals and NULL
    "if", "multiIf", "coalesce", "ifNull", "nullIf", "assumeNotNull", "isNull", "isNotNull",
    // arrays, maps, tuples
    "array", "tuple", "map", "arrayElement", "has", "hasAny", "hasAll", "indexOf", "arrayConcat",
    "arrayDistinct", "arrayReverse", "arraySlice", "arrayStringConcat", "mapKeys", "mapValues",
    "mapContainsKey", "tupleElement", "emptyArrayString",
    // identifiers
    "generateUUIDv4", "generateUUIDv7",
]; // prettier-ignore

/** The functions of `FUNCTIONS` that ClickHouse matches case-insensitively. */
export const CASE_INSENSITIVE: ReadonlySet<string> = new Set([
    "now", "now64", "today", "dateDiff", "lower", "upper", "length", "substring", "concat", "left",
    "right", "position", "reverse", "repeat", "hex", "unhex", "abs", "round", "floor", "ceil",
    "trunc", "sqrt", "exp", "log", "log2", "log10", "pow", "sign", "greatest", "least", "if",
    "coalesce", "ifNull", "nullIf", "isNull",
]); // prettier-ignore

/** Functions ClickHouse's parser reads with special syntax, which needs these many arguments. */
const MIN_ARGS: Readonly<Record<string, number>> = { substring: 2, position: 2 };

const BY_LOWER = new Map(FUNCTIONS.map((f) => [f.toLowerCase(), f]));

/** Functions whose result is a Date or DateTime (for the TTL shape check). */
const DATE_FUNCTIONS = new Set([
    "toDate", "toDate32", "toDateTime", "toDateTime64", "toStartOfYear", "toStartOfQuarter",
    "toStartOfMonth", "toStartOfWeek", "toStartOfDay", "toStartOfHour", "toStartOfMinute",
    "toStartOfSecond", "toStartOfFiveMinutes", "toStartOfTenMinutes", "toStartOfFifteenMinutes",
    "toStartOfInterval", "toMonday", "fromUnixTimestamp", "now", "now64", "today", "yesterday",
    "dateTrunc", "addSeconds", "addMinutes", "addHours", "addDays", "addWeeks", "addMonths",
    "addQuarters", "addYears", "subtractSeconds", "subtractMinutes", "subtractHours",
    "subtractDays", "subtractWeeks", "subtractMonths", "subtractQuarters", "subtractYears",
    "toTimezone", "parseDateTimeBestEffort", "parseDateTimeBestEffortOrZero",
    "parseDateTime64BestEffort", "toDateOrZero", "toDateTimeOrZero",
]); // prettier-ignore

const INTERVAL_UNITS: readonly IntervalUnit[] = [
    "SECOND",
    "MINUTE",
    "HOUR",
    "DAY",
    "WEEK",
    "MONTH",
    "QUARTER",
    "YEAR",
];

const FIELD_LABEL: Readonly<Record<ExprField, string>> = {
    default: "a default",
    ttl: "a ttl",
    partitionBy: "partitionBy",
    orderBy: "an orderBy item",
};

/** SQL words that would start a clause, command or subquery: named as such in errors. */
const CLAUSE_WORDS = new Set(
    (
        "select from where settings format union with into group having limit order by asc desc " +
        "modify clear column constraint add drop alter rename comment materialize remove " +
        "index projection ttl delete update insert create attach detach system to disk volume " +
        "codec default alias ephemeral primary key engine partition sample join array"
    ).split(" "),
);

/** Words that mean something else in an expression; never read as a column name when bare. */
const KEYWORDS = new Set(
    "and or not null true false case when then else end cast interval is in like ilike between as".split(
        " ",
    ),
);

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

type TokenKind = "word" | "quoted" | "number" | "string" | "op" | "end";
interface Token {
    readonly kind: TokenKind;
    /** Source text (for words, numbers, operators); the decoded value for strings and names. */
    readonly text: string;
    /** Offset in the input, for messages. */
    readonly at: number;
}

const OPERATORS = ["<=", ">=", "!=", "<>", "==", "||", "+", "-", "*", "/", "%", "=", "<", ">"];
const PUNCT = "()[],";
const NUMBER = /^(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
/** Characters a string literal may not hold: controls, bidi overrides, lone surrogates. */
const UNSAFE_IN_STRING =
    /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function fail(message: string): never {
    throw new SqlInputError(message);
}

function describeChar(c: string): string {
    const code = c.codePointAt(0)!;
    const hex = "U+" + code.toString(16).toUpperCase().padStart(4, "0");
    return code >= 0x21 && code < 0x7f ? `'${c}'` : hex;
}

function lex(input: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    while (i < input.length) {
        const c = input[i]!;
        const at = i;
        if (c === " " || c === "\t" || c === "\n" || c === "\r") {
            i++;
        } else if (input.startsWith("--", i) || input.startsWith("/*", i) || c === "#") {
            const which = c === "#" ? "#" : input.slice(i, i + 2);
            fail(`comment '${which}' at character ${at}: comments are not allowed`);
        } else if (c === ";") {
            fail(
                `';' is not allowed (at character ${at}): an expression is not a statement; remove it`,
            );
        } else if (c === '"') {
            fail(
                `'"' at character ${at}: double quotes are not allowed; write strings in single quotes and column names bare`,
            );
        } else if (input.startsWith("->", i)) {
            fail(`'->' at character ${at}: lambdas are not allowed`);
        } else if (input.startsWith("::", i)) {
            fail(`'::' at character ${at}: write CAST(x AS Type) instead`);
        } else if (/[A-Za-z_]/.test(c)) {
            let j = i + 1;
            while (j < input.length && /[A-Za-z0-9_]/.test(input[j]!)) j++;
            tokens.push({ kind: "word", text: input.slice(i, j), at });
            i = j;
        } else if (/[0-9]/.test(c)) {
            let j = i + 1;
            while (
                j < input.length &&
                (/[0-9A-Za-z_.]/.test(input[j]!) ||
                    (/[+-]/.test(input[j]!) && /^[0-9.]*[eE]$/.test(input.slice(i, j))))
            )
                j++;
            const text = input.slice(i, j);
            if (!NUMBER.test(text) || text.length > 40) {
                fail(
                    `'${text}' at character ${at} is not a number ClickHouse reads plainly: use digits, an optional .fraction and exponent (no leading zeros, hex or suffixes, at most 40 characters)`,
                );
            }
            if (!Number.isFinite(Number(text))) {
                fail(
                    `'${text}' at character ${at} is out of the range of Float64; ClickHouse rejects it`,
                );
            }
            tokens.push({ kind: "number", text, at });
            i = j;
        } else if (c === "'") {
            const { value, end } = readString(input, i);
            tokens.push({ kind: "string", text: value, at });
            i = end;
        } else if (c === "`") {
            const end = input.indexOf("`", i + 1);
            if (end === -1) fail(`unterminated quoted name at character ${at}: close it with '\`'`);
            const name = input.slice(i + 1, end);
            if (!IDENTIFIER.test(name)) {
                fail(
                    `quoted name ${JSON.stringify(name)} at character ${at} is not a column name: quote only the stream's column names, without escapes`,
                );
            }
            tokens.push({ kind: "quoted", text: name, at });
            i = end + 1;
        } else if (PUNCT.includes(c)) {
            tokens.push({ kind: "op", text: c, at });
            i++;
        } else {
            const op = OPERATORS.find((o) => input.startsWith(o, i));
            if (!op) {
                const ch = String.fromCodePoint(input.codePointAt(i)!);
                fail(
                    `character ${describeChar(ch)} at character ${at} is not allowed outside a string literal${c === "." ? " (no field or tuple access: use tupleElement)" : ""}`,
                );
            }
            tokens.push({ kind: "op", text: op, at });
            i += op.length;
        }
    }
    tokens.push({ kind: "end", text: "", at: input.length });
    return tokens;
}

/** Reads a single-quoted literal starting at `start`; returns its decoded value. */
function readString(input: string, start: number): { value: string; end: number } {
    let value = "";
    let i = start + 1;
    for (;;) {
        if (i >= input.length)
            fail(`unterminated string starting at character ${start}: close it with "'"`);
        const c = input[i]!;
        if (c === "'") {
            if (input[i + 1] === "'") {
                value += "'";
                i += 2;
                continue;
            }
            i++;
            break;
        }
        if (c === "\\") {
            const e = input[i + 1];
            if (e === "\\" || e === "'") {
                value += e;
                i += 2;
                continue;
            }
            const hex = e === "x" ? /^[0-9A-Fa-f]{2}/.exec(input.slice(i + 2, i + 4)) : null;
            if (hex) {
                const code = parseInt(hex[0], 16);
                if (code < 0x20 || code > 0x7e) {
                    fail(
                        `escape '\\x${hex[0]}' at character ${i}: only printable ASCII may be written as \\xHH`,
                    );
                }
                value += String.fromCharCode(code);
                i += 4;
                continue;
            }
            fail(
                `escape '\\${e ?? ""}' at character ${i} is not allowed in a string: use \\\\ for a backslash and \\' or '' for a quote`,
            );
        }
        value += c;
        i++;
    }
    const bad = UNSAFE_IN_STRING.exec(value);
    if (bad) {
        fail(
            `string starting at character ${start} holds ${describeChar(bad[0])}: control, bidi and unpaired surrogate characters are not allowed`,
        );
    }
    return { value, end: i };
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

const COMPARE: Readonly<Record<string, CompareOp>> = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
};

/**
 * Parses one expression field. Throws SqlInputError naming the offending token and the fix;
 * the loader prefixes the file and key.
 */
export function parseExpression(text: string, options: ExprOptions): Expr {
    if (typeof text !== "string") fail("expression must be a string");
    if (text.length > MAX_EXPRESSION_LENGTH) {
        fail(
            `expression is ${text.length} characters long; at most ${MAX_EXPRESSION_LENGTH} are allowed`,
        );
    }
    const parser = new Parser(lex(text), options);
    const expr = parser.parseTop();
    // A chain `a + b + c ...` loops in the parser but nests in the tree; the engine refuses trees
    // deeper than max_ast_depth (1000, about two levels per operator), so the tree is bounded too.
    if (treeDepth(expr) > MAX_EXPRESSION_DEPTH) {
        fail(
            `expression is nested more than ${MAX_EXPRESSION_DEPTH} levels deep (each operator of a chain such as a + b + c counts); simplify it`,
        );
    }
    if (options.field === "ttl") checkTtlShape(expr, options.columnTypes);
    return expr;
}

function treeDepth(e: Expr): number {
    return 1 + childrenOf(e).reduce((max, c) => Math.max(max, treeDepth(c)), 0);
}

function containsIn(e: Expr): boolean {
    return e.kind === "in" || childrenOf(e).some(containsIn);
}

function childrenOf(e: Expr): Expr[] {
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

class Parser {
    private pos = 0;
    private depth = 0;
    private readonly columns: ReadonlySet<string>;

    constructor(
        private readonly tokens: readonly Token[],
        private readonly options: ExprOptions,
    ) {
        // A default is computed in the view from the Kafka table (see the module comment).
        this.columns = new Set(options.field === "default" ? [] : options.columns);
    }

    parseTop(): Expr {
        if (this.peek().kind === "end") fail("expression is empty");
        const expr = this.parseOr();
        if (this.options.field === "ttl" && this.isWord("DELETE")) this.pos++;
        const t = this.peek();
        if (t.kind !== "end") fail(this.trailingMessage(t));
        return expr;
    }

    private trailingMessage(t: Token): string {
        const field = FIELD_LABEL[this.options.field];
        const where = show(t);
        if (t.text === ",") {
            return `${where}: ${field} is exactly one expression; a top-level ',' is not allowed${this.options.field === "orderBy" ? " (list ORDER BY items separately)" : ""}`;
        }
        const w = t.kind === "word" ? t.text.toUpperCase() : "";
        if (this.options.field === "orderBy" && (w === "ASC" || w === "DESC")) {
            return `${where}: a table's ORDER BY has no ASC/DESC; remove it`;
        }
        if (
            this.options.field === "ttl" &&
            ["TO", "WHERE", "GROUP", "RECOMPRESS", "SET"].includes(w)
        ) {
            return `${where}: a ttl is '<expression> [DELETE]' only; moves, WHERE, GROUP BY and RECOMPRESS are not supported`;
        }
        if (CLAUSE_WORDS.has(w.toLowerCase())) {
            return `${where}: SQL clauses and commands are not allowed; ${field} is exactly one expression`;
        }
        return `${where}: unexpected after the expression; ${field} is exactly one expression`;
    }

    // ---- token helpers ----

    private peek(offset = 0): Token {
        return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)]!;
    }
    private next(): Token {
        const t = this.peek();
        this.pos++;
        return t;
    }
    private isWord(word: string, offset = 0): boolean {
        const t = this.peek(offset);
        return t.kind === "word" && t.text.toUpperCase() === word;
    }
    private isOp(op: string, offset = 0): boolean {
        const t = this.peek(offset);
        return t.kind === "op" && t.text === op;
    }
    private expectOp(op: string, what: string): void {
        const t = this.next();
        if (t.kind !== "op" || t.text !== op) fail(`${show(t)}: expected '${op}' ${what}`);
    }
    private expectWord(word: string, what: string): void {
        const t = this.next();
        if (t.kind !== "word" || t.text.toUpperCase() !== word)
            fail(`${show(t)}: expected ${word} ${what}`);
    }
    private nested<T>(f: () => T): T {
        if (++this.depth > MAX_EXPRESSION_DEPTH) {
            fail(
                `${show(this.peek())}: expression is nested more than ${MAX_EXPRESSION_DEPTH} levels deep; simplify it`,
            );
        }
        try {
            return f();
        } finally {
            this.depth--;
        }
    }

    // ---- precedence levels, lowest first ----

    private parseOr(): Expr {
        return this.nested(() => {
            let left = this.parseAnd();
            while (this.isWord("OR")) {
                this.pos++;
                left = { kind: "logical", op: "OR", left, right: this.parseAnd() };
            }
            return left;
        });
    }

    private parseAnd(): Expr {
        let left = this.parseNot();
        while (this.isWord("AND")) {
            this.pos++;
            left = { kind: "logical", op: "AND", left, right: this.parseNot() };
        }
        return left;
    }

    private parseNot(): Expr {
        if (this.isWord("NOT")) {
            this.pos++;
            return this.nested(() => ({ kind: "not", arg: this.parseNot() }));
        }
        return this.parseIsNull();
    }

    private parseIsNull(): Expr {
        let arg = this.parsePredicate();
        while (this.isWord("IS")) {
            this.pos++;
            const negated = this.isWord("NOT");
            if (negated) this.pos++;
            this.expectWord("NULL", "after IS [NOT] (only IS NULL and IS NOT NULL exist)");
            arg = { kind: "isNull", negated, arg };
        }
        return arg;
    }

    /** Comparison, LIKE, IN, BETWEEN: one per level, never chained without parentheses. */
    private parsePredicate(): Expr {
        const left = this.parseConcat();
        const result = this.predicateAfter(left);
        if (result !== left && this.startsPredicate()) {
            fail(
                `${show(this.peek())}: comparisons do not chain; add parentheses, e.g. (a = b) = c`,
            );
        }
        return result;
    }

    private startsPredicate(): boolean {
        const t = this.peek();
        if (t.kind === "op" && t.text in COMPARE) return true;
        const w = t.kind === "word" ? t.text.toUpperCase() : "";
        if (["LIKE", "ILIKE", "IN", "BETWEEN"].includes(w)) return true;
        return w === "NOT" && ["LIKE", "ILIKE", "IN", "BETWEEN"].some((x) => this.isWord(x, 1));
    }

    private predicateAfter(arg: Expr): Expr {
        const t = this.peek();
        if (t.kind === "op" && t.text in COMPARE) {
            this.pos++;
            return { kind: "compare", op: COMPARE[t.text]!, left: arg, right: this.parseConcat() };
        }
        let negated = false;
        if (
            this.isWord("NOT") &&
            ["LIKE", "ILIKE", "IN", "BETWEEN"].some((x) => this.isWord(x, 1))
        ) {
            negated = true;
            this.pos++;
        }
        if (this.isWord("LIKE") || this.isWord("ILIKE")) {
            const op = this.next().text.toUpperCase() as "LIKE" | "ILIKE";
            return { kind: "like", op, negated, arg, pattern: this.parseConcat() };
        }
        if (this.isWord("BETWEEN")) {
            this.pos++;
            const low = this.parseConcat();
            this.expectWord("AND", "between the bounds of BETWEEN");
            const high = this.parseConcat();
            return { kind: "between", negated, arg, low, high };
        }
        if (this.isWord("IN")) {
            this.pos++;
            return { kind: "in", negated, arg, list: this.parseInList() };
        }
        return arg;
    }

    private parseInList(): LiteralExpr[] {
        const open = this.peek();
        if (open.kind !== "op" || open.text !== "(") {
            fail(
                `${show(open)}: IN takes a parenthesized list of literals, e.g. x IN (1, 2); tables, subqueries and columns are not allowed there`,
            );
        }
        this.pos++;
        const list: LiteralExpr[] = [];
        do {
            if (list.length > 0) this.pos++;
            list.push(this.parseInLiteral());
        } while (this.isOp(","));
        this.expectOp(")", "to close the IN list");
        return list;
    }

    private parseInLiteral(): LiteralExpr {
        const t = this.peek();
        if (t.kind === "op" && t.text === "-" && this.peek(1).kind === "number") {
            this.pos += 2;
            return { kind: "number", text: "-" + this.peek(-1).text };
        }
        const lit = this.literal(t);
        if (!lit) {
            fail(
                `${show(t)}: an IN list holds only literals (numbers, strings, NULL, true, false); subqueries, tables and expressions are not allowed`,
            );
        }
        this.pos++;
        return lit;
    }

    private literal(t: Token): LiteralExpr | undefined {
        if (t.kind === "number") return { kind: "number", text: t.text };
        if (t.kind === "string") return { kind: "string", value: t.text };
        if (t.kind !== "word") return undefined;
        const w = t.text.toUpperCase();
        if (w === "NULL") return { kind: "null" };
        if (w === "TRUE" || w === "FALSE") return { kind: "bool", value: w === "TRUE" };
        return undefined;
    }

    private parseConcat(): Expr {
        let left = this.parseAdditive();
        while (this.isOp("||")) {
            this.pos++;
            left = { kind: "arith", op: "||", left, right: this.parseAdditive() };
        }
        return left;
    }

    private parseAdditive(): Expr {
        let left = this.parseMultiplicative();
        while (this.isOp("+") || this.isOp("-")) {
            const op = this.next().text as "+" | "-";
            left = { kind: "arith", op, left, right: this.parseMultiplicative() };
        }
        return left;
    }

    private parseMultiplicative(): Expr {
        let left = this.parseUnary();
        while (this.isOp("*") || this.isOp("/") || this.isOp("%")) {
            const op = this.next().text as "*" | "/" | "%";
            left = { kind: "arith", op, left, right: this.parseUnary() };
        }
        return left;
    }

    private parseUnary(): Expr {
        if (this.isOp("-")) {
            this.pos++;
            // ClickHouse reads '-' before a number as a negative literal.
            if (this.peek().kind === "number")
                return { kind: "number", text: "-" + this.next().text };
            return this.nested(() => ({ kind: "negate", arg: this.parseUnary() }));
        }
        return this.parsePrimary();
    }

    private parsePrimary(): Expr {
        const t = this.peek();
        const lit = this.literal(t);
        if (lit) {
            this.pos++;
            return lit;
        }
        if (t.kind === "op" && t.text === "(") {
            this.pos++;
            if (this.isWord("SELECT") || this.isWord("WITH"))
                fail(`keyword ${show(this.peek())}: subqueries are not allowed`);
            const inner = this.parseOr();
            if (this.isOp(",")) {
                fail(
                    `${show(this.peek())}: a parenthesized list is a tuple; tuples are allowed only as IN lists (write tuple(a, b) if you mean one)`,
                );
            }
            this.expectOp(")", "to close the parenthesis");
            return inner;
        }
        if (t.kind === "op" && t.text === "[") {
            this.pos++;
            return this.nested(() => {
                const items: Expr[] = [];
                if (!this.isOp("]")) {
                    do {
                        if (items.length > 0) this.pos++;
                        items.push(this.parseOr());
                    } while (this.isOp(","));
                }
                this.expectOp("]", "to close the array");
                return { kind: "array", items };
            });
        }
        if (t.kind === "quoted") {
            this.pos++;
            return this.column(t);
        }
        if (t.kind === "word") {
            const w = t.text.toUpperCase();
            if (w === "CASE") return this.nested(() => this.parseCase());
            if (w === "INTERVAL" && this.peek(1).kind === "number") return this.parseInterval();
            if (this.isOp("(", 1)) {
                if (w === "CAST") return this.nested(() => this.parseCast());
                return this.nested(() => this.parseCall());
            }
            if (KEYWORDS.has(t.text.toLowerCase())) {
                fail(
                    `${show(t)}: keyword in the place of a value${this.columns.has(t.text) ? `; write the column as \`${t.text}\`` : ""}`,
                );
            }
            this.pos++;
            return this.column(t);
        }
        if (t.kind === "end") fail("expression ends too early: a value is missing at the end");
        fail(`${show(t)}: expected a value (a literal, a column, a function call or '(')`);
    }

    private column(t: Token): Expr {
        if (this.columns.has(t.text)) return { kind: "column", name: t.text };
        if (this.options.field === "default") {
            fail(
                `${show(t)}: a default may not refer to columns or names (it is computed from the Kafka message when the field is absent); use a constant expression`,
            );
        }
        if (CLAUSE_WORDS.has(t.text.toLowerCase())) {
            fail(
                `'${t.text}' at character ${t.at}: SQL clauses, commands and subqueries are not allowed in an expression; write one expression over the stream's columns`,
            );
        }
        const list = [...this.columns];
        const near = list.find((c) => c.toLowerCase() === t.text.toLowerCase());
        const hint = near
            ? `; column names are case-sensitive: did you mean '${near}'?`
            : `; the stream's columns are ${list.slice(0, 20).join(", ")}${list.length > 20 ? ", ..." : ""}`;
        fail(`unknown column '${t.text}' at character ${t.at}${hint}`);
    }

    private parseCall(): Expr {
        const t = this.next();
        const canonical = BY_LOWER.get(t.text.toLowerCase());
        if (!canonical || (canonical !== t.text && !CASE_INSENSITIVE.has(canonical))) {
            if (canonical) {
                fail(
                    `function '${t.text}' at character ${t.at}: ClickHouse spells this function '${canonical}' (its name is case-sensitive)`,
                );
            }
            const lower = t.text.toLowerCase();
            const why = /^(dict|joinget)/.test(lower)
                ? "table and dictionary access is not allowed in a row expression"
                : "only row functions from the allow-list in schemas/expr.ts may be called";
            fail(`function '${t.text}' at character ${t.at} is not allowed: ${why}`);
        }
        this.pos++; // '('
        const args: Expr[] = [];
        if (!this.isOp(")")) {
            do {
                if (args.length > 0) this.pos++;
                args.push(this.parseOr());
            } while (this.isOp(","));
        }
        this.expectOp(")", `to close the arguments of ${canonical}`);
        const min = MIN_ARGS[canonical] ?? 0;
        if (args.length < min) {
            fail(`function '${t.text}' at character ${t.at} takes at least ${min} arguments`);
        }
        // ClickHouse reads position(a IN b) as SQL's POSITION(needle IN haystack).
        if (canonical === "position" && args[0] !== undefined && containsIn(args[0])) {
            fail(
                `function '${t.text}' at character ${t.at}: its first argument cannot contain IN; write position(haystack, needle)`,
            );
        }
        if (this.isOp("(")) {
            fail(`${show(this.peek())}: parametric calls f(p)(x) are not allowed`);
        }
        return { kind: "call", name: canonical, args };
    }

    private parseCast(): Expr {
        this.pos += 2; // CAST (
        const arg = this.parseOr();
        if (this.isOp(",")) {
            fail(`${show(this.peek())}: write CAST(x AS Type), not CAST(x, 'Type')`);
        }
        this.expectWord("AS", "in CAST(x AS Type)");
        // The type runs to the ')' closing the CAST; parseType reads and checks it.
        const first = this.pos;
        let depth = 0;
        while (!(depth === 0 && this.isOp(")"))) {
            const t = this.next();
            if (t.kind === "end") fail("CAST is not closed: expected ')' after the type");
            if (t.kind === "op" && t.text === "(") depth++;
            if (t.kind === "op" && t.text === ")") depth--;
        }
        const typeTokens = this.tokens.slice(first, this.pos);
        this.pos++; // ')'
        if (typeTokens.length === 0) fail(`${show(this.peek(-1))}: CAST needs a type after AS`);
        const typeText = typeTokens
            .map((t) => (t.kind === "string" ? quoteString(t.text) : t.text))
            .join(" ");
        let type: ChType;
        try {
            type = parseType(typeText);
        } catch (e) {
            fail(`type in CAST at character ${typeTokens[0]!.at}: ${(e as Error).message}`);
        }
        return { kind: "cast", arg, type: type.text };
    }

    private parseInterval(): Expr {
        this.pos++; // INTERVAL
        const n = this.next();
        if (!/^[0-9]+$/.test(n.text))
            fail(`${show(n)}: INTERVAL takes a whole number, e.g. INTERVAL 30 DAY`);
        const u = this.next();
        const unit = INTERVAL_UNITS.find((x) => u.kind === "word" && u.text.toUpperCase() === x);
        if (!unit) fail(`${show(u)}: INTERVAL unit must be one of ${INTERVAL_UNITS.join(", ")}`);
        return { kind: "interval", value: n.text, unit };
    }

    private parseCase(): Expr {
        this.pos++; // CASE
        if (this.isWord("END")) fail(`${show(this.peek())}: CASE needs at least one WHEN`);
        const operand = this.isWord("WHEN") ? undefined : this.parseOr();
        const whens: Array<{ when: Expr; then: Expr }> = [];
        while (this.isWord("WHEN")) {
            this.pos++;
            const when = this.parseOr();
            this.expectWord("THEN", "after CASE WHEN <condition>");
            whens.push({ when, then: this.parseOr() });
        }
        if (whens.length === 0) fail(`${show(this.peek())}: CASE needs at least one WHEN`);
        let otherwise: Expr | undefined;
        if (this.isWord("ELSE")) {
            this.pos++;
            otherwise = this.parseOr();
        }
        this.expectWord("END", "to close CASE");
        return {
            kind: "case",
            ...(operand !== undefined ? { operand } : {}),
            whens,
            ...(otherwise !== undefined ? { else: otherwise } : {}),
        };
    }
}

function show(t: Token): string {
    if (t.kind === "end") return "end of expression";
    const text =
        t.kind === "string"
            ? quoteString(t.text)
            : t.kind === "quoted"
              ? quoteIdent(t.text)
              : `'${t.text}'`;
    return `${text} at character ${t.at}`;
}

// ---------------------------------------------------------------------------------------------
// TTL shape
// ---------------------------------------------------------------------------------------------

const DATE_TYPES = new Set(["Date", "Date32", "DateTime", "DateTime64"]);

function checkTtlShape(expr: Expr, types: ReadonlyMap<string, string> | undefined): void {
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

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

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

/** Columns an expression refers to, in order of first appearance, each once. */
export function columnsOf(e: Expr): string[] {
    const out = new Set<string>();
    const walk = (x: Expr): void => {
        switch (x.kind) {
            case "column":
                out.add(x.name);
                return;
            case "negate":
            case "not":
            case "isNull":
                return walk(x.arg);
            case "logical":
            case "compare":
            case "arith":
                walk(x.left);
                return walk(x.right);
            case "like":
                walk(x.arg);
                return walk(x.pattern);
            case "between":
                walk(x.arg);
                walk(x.low);
                return walk(x.high);
            case "in":
                return walk(x.arg);
            case "array":
                return x.items.forEach(walk);
            case "cast":
                return walk(x.arg);
            case "case":
                if (x.operand) walk(x.operand);
                x.whens.forEach((w) => {
                    walk(w.when);
                    walk(w.then);
                });
                if (x.else) walk(x.else);
                return;
            case "call":
                return x.args.forEach(walk);
            default:
                return;
        }
    };
    walk(e);
    return [...out];
}

/** Parses and renders in one step: the SQL the planner puts into DDL for a field. */
export function canonicalExpression(text: string, options: ExprOptions): string {
    return renderExpression(parseExpression(text, options));
}
