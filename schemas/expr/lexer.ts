/**
 * The lexer of the expression grammar: splits the text into tokens and refuses, with the offset
 * and the fix, what no expression may hold (comments, ';', double quotes, lambdas, '::').
 */
import { IDENTIFIER } from "../model";
import { SqlInputError, quoteIdent, quoteString } from "../sql";

export type TokenKind = "word" | "quoted" | "number" | "string" | "op" | "end";
export interface Token {
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

export function fail(message: string): never {
    throw new SqlInputError(message);
}

function describeChar(c: string): string {
    const code = c.codePointAt(0)!;
    const hex = "U+" + code.toString(16).toUpperCase().padStart(4, "0");
    return code >= 0x21 && code < 0x7f ? `'${c}'` : hex;
}

/** The token as messages name it: its text and offset, or the end of the expression. */
export function show(t: Token): string {
    if (t.kind === "end") return "end of expression";
    const text =
        t.kind === "string"
            ? quoteString(t.text)
            : t.kind === "quoted"
              ? quoteIdent(t.text)
              : `'${t.text}'`;
    return `${text} at character ${t.at}`;
}

/** Splits an expression into tokens, ending with an `end` token. */
export function lex(input: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    while (i < input.length) {
        const c = input[i]!;
        if (c === " " || c === "\t" || c === "\n" || c === "\r") {
            i++;
            continue;
        }
        refuseAt(input, i);
        const token = readToken(input, i);
        tokens.push(token.token);
        i = token.end;
    }
    tokens.push({ kind: "end", text: "", at: input.length });
    return tokens;
}

/** Fails on what no expression may hold where a token would start. */
function refuseAt(input: string, at: number): void {
    const c = input[at]!;
    if (input.startsWith("--", at) || input.startsWith("/*", at) || c === "#") {
        const which = c === "#" ? "#" : input.slice(at, at + 2);
        fail(`comment '${which}' at character ${at}: comments are not allowed`);
    } else if (c === ";") {
        fail(
            `';' is not allowed (at character ${at}): an expression is not a statement; remove it`,
        );
    } else if (c === '"') {
        fail(
            `'"' at character ${at}: double quotes are not allowed; write strings in single quotes and column names bare`,
        );
    } else if (input.startsWith("->", at)) {
        fail(`'->' at character ${at}: lambdas are not allowed`);
    } else if (input.startsWith("::", at)) {
        fail(`'::' at character ${at}: write CAST(x AS Type) instead`);
    }
}

/** Reads the token starting at `at` (not whitespace, not refused); returns it and where it ends. */
function readToken(input: string, at: number): { token: Token; end: number } {
    const c = input[at]!;
    if (/[A-Za-z_]/.test(c)) {
        let j = at + 1;
        while (j < input.length && /[A-Za-z0-9_]/.test(input[j]!)) j++;
        return { token: { kind: "word", text: input.slice(at, j), at }, end: j };
    }
    if (/[0-9]/.test(c)) return readNumber(input, at);
    if (c === "'") {
        const { value, end } = readString(input, at);
        return { token: { kind: "string", text: value, at }, end };
    }
    if (c === "`") return readQuotedName(input, at);
    if (PUNCT.includes(c)) return { token: { kind: "op", text: c, at }, end: at + 1 };
    const op = OPERATORS.find((o) => input.startsWith(o, at));
    if (!op) {
        const ch = String.fromCodePoint(input.codePointAt(at)!);
        fail(
            `character ${describeChar(ch)} at character ${at} is not allowed outside a string literal${c === "." ? " (no field or tuple access: use tupleElement)" : ""}`,
        );
    }
    return { token: { kind: "op", text: op, at }, end: at + op.length };
}

function readNumber(input: string, at: number): { token: Token; end: number } {
    let j = at + 1;
    while (
        j < input.length &&
        (/[0-9A-Za-z_.]/.test(input[j]!) ||
            (/[+-]/.test(input[j]!) && /^[0-9.]*[eE]$/.test(input.slice(at, j))))
    )
        j++;
    const text = input.slice(at, j);
    if (!NUMBER.test(text) || text.length > 40) {
        fail(
            `'${text}' at character ${at} is not a number ClickHouse reads plainly: use digits, an optional .fraction and exponent (no leading zeros, hex or suffixes, at most 40 characters)`,
        );
    }
    if (!Number.isFinite(Number(text))) {
        fail(`'${text}' at character ${at} is out of the range of Float64; ClickHouse rejects it`);
    }
    return { token: { kind: "number", text, at }, end: j };
}

function readQuotedName(input: string, at: number): { token: Token; end: number } {
    const end = input.indexOf("`", at + 1);
    if (end === -1) fail(`unterminated quoted name at character ${at}: close it with '\`'`);
    const name = input.slice(at + 1, end);
    if (!IDENTIFIER.test(name)) {
        fail(
            `quoted name ${JSON.stringify(name)} at character ${at} is not a column name: quote only the stream's column names, without escapes`,
        );
    }
    return { token: { kind: "quoted", text: name, at }, end: end + 1 };
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
