/**
 * SQL text as the ClickHouse HTTP front end (runtime/chserver-http.ts) needs it: just enough lexing
 * to find statement boundaries, the first keyword and FORMAT clauses; where a line-delimited insert
 * body may be cut; and masking of secrets for logs.
 */
/** Index just past whitespace and comments starting at `i`. */
function skipBlank(s: string, i: number): number {
    for (;;) {
        const c = s.charCodeAt(i);
        if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) i++;
        else if (c === 45 && s.charCodeAt(i + 1) === 45) {
            const nl = s.indexOf("\n", i);
            i = nl < 0 ? s.length : nl + 1;
        } else if (c === 35 && (s.charCodeAt(i + 1) === 32 || s.charCodeAt(i + 1) === 33)) {
            const nl = s.indexOf("\n", i);
            i = nl < 0 ? s.length : nl + 1;
        } else if (c === 47 && s.charCodeAt(i + 1) === 42) {
            const end = s.indexOf("*/", i + 2);
            i = end < 0 ? s.length : end + 2;
        } else return i;
    }
}

/** The first keyword of a statement, upper-cased: "" for an empty text, "?" when no word opens it. */
export function firstKeyword(s: string): string {
    const i = skipBlank(s, 0);
    if (i >= s.length) return "";
    const m = /^[A-Za-z_]+/.exec(s.slice(i, i + 32));
    return m ? m[0].toUpperCase() : "?";
}

/** Index past a quoted token opened at `i` by `q` (backslash escapes, doubled quotes). */
function skipQuoted(s: string, i: number, q: number): number {
    for (let j = i + 1; j < s.length; j++) {
        const c = s.charCodeAt(j);
        if (c === 92) j++;
        else if (c === q) {
            if (s.charCodeAt(j + 1) === q) j++;
            else return j + 1;
        }
    }
    return s.length;
}

/** True when `s` holds a second statement after a top-level `;`. */
export function hasSecondStatement(s: string): boolean {
    let i = 0;
    while (i < s.length) {
        i = skipBlank(s, i);
        if (i >= s.length) return false;
        const c = s.charCodeAt(i);
        if (c === 39 || c === 34 || c === 96) i = skipQuoted(s, i, c);
        else if (c === 36 && s.charCodeAt(i + 1) === 36) {
            const end = s.indexOf("$$", i + 2);
            i = end < 0 ? s.length : end + 2;
        } else if (c === 59) {
            let j = skipBlank(s, i + 1);
            while (s.charCodeAt(j) === 59) j = skipBlank(s, j + 1);
            return j < s.length;
        } else i++;
    }
    return false;
}

/** The format named by a trailing `FORMAT <name>` clause, if any. */
export function trailingFormat(s: string): string | undefined {
    return /\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$/i.exec(s.slice(-200))?.[1];
}

/**
 * For an INSERT whose data follows its text (`... FORMAT X` or `... VALUES`), the data format;
 * undefined when the statement takes no data (INSERT ... SELECT) or is no INSERT.
 */
/** Binary data formats (answered as application/octet-stream; their insert bodies spooled). */
const BINARY_FORMATS = new Set([
    "native",
    "parquet",
    "arrow",
    "arrowstream",
    "orc",
    "avro",
    "msgpack",
]);

export function isBinaryFormat(format: string): boolean {
    const f = format.toLowerCase();
    return f.startsWith("rowbinary") || BINARY_FORMATS.has(f);
}

export function insertDataFormat(s: string): string | undefined {
    if (firstKeyword(s) !== "INSERT") return undefined;
    const tail = s.slice(-200);
    const f = /\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*$/i.exec(tail);
    if (f) return f[1];
    return /\bVALUES\s*$/i.test(tail) ? "Values" : undefined;
}

/** Masks string literals that follow password-like settings or IDENTIFIED ... BY, for logs. */
export function redact(sql: string): string {
    const lit = String.raw`'(?:[^'\\]|\\.|'')*'`;
    return sql
        .replace(
            new RegExp(
                String.raw`(\b\w*(?:password|passwd|secret|token|_key)\w*\s*=\s*)${lit}`,
                "gi",
            ),
            "$1'[HIDDEN]'",
        )
        .replace(new RegExp(String.raw`(\bIDENTIFIED\b[^']*?\bBY\s+)${lit}`, "gi"), "$1'[HIDDEN]'");
}

// ---------------------------------------------------------------------------------------------
// Chunked inserts: where a line-delimited body may be cut so both halves are valid inserts

export type Boundary = (buf: Buffer, from: number) => number;

/**
 * Finds the last row boundary at or before `from` in `buf` for the format, as the index just past
 * the newline (so `buf[0, i)` is whole rows); -1 when there is none. JSON rows are cut only where
 * a newline sits between `}` and `{` (or `]` and `[`), which cannot happen inside a row even when
 * a client pretty-prints its objects over several lines.
 */
export function boundaryFor(format: string): Boundary | undefined {
    const between =
        (close: number, open: number): Boundary =>
        (buf, from) => {
            let nl = buf.lastIndexOf(0x0a, from);
            while (nl > 0) {
                let p = nl - 1;
                if (buf[p] === 0x0d) p--;
                if (nl + 1 < buf.length && buf[p] === close && buf[nl + 1] === open) return nl + 1;
                nl = buf.lastIndexOf(0x0a, nl - 1);
            }
            return -1;
        };
    switch (format.toLowerCase()) {
        case "jsoneachrow":
        case "jsonstringseachrow":
        case "jsonlines":
        case "jsonl":
        case "ndjson":
            return between(0x7d, 0x7b);
        case "jsoncompacteachrow":
        case "jsoncompactstringseachrow":
            return between(0x5d, 0x5b);
        case "tabseparated":
        case "tsv": {
            return (buf, from) => {
                const nl = buf.lastIndexOf(0x0a, from);
                return nl < 0 || nl + 1 >= buf.length ? -1 : nl + 1;
            };
        }
        default:
            return undefined;
    }
}
