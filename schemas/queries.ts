/**
 * Loads and validates the declared queries (`schemas/queries/*.yaml|json`, see query-model.ts):
 * every problem of every file with the file, the key and the fix, before anything is registered.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MAX_NESTING, controlCharacterProblems, nestingDepth } from "./checks";
import {
    DOCUMENT_EXTENSIONS,
    SchemaProblem,
    displayPath,
    fileSizeProblem,
    readDocument,
    zodProblems,
} from "./document";
import { LoadedQuery, QuerySpec, querySchema } from "./query-model";
import { READONLY_MAX_EXECUTION_SECONDS } from "./naming";
import { skipQuoted } from "./sql";

/** The directory holding the shipped query files. */
export const DEFAULT_QUERIES_DIR = path.join(__dirname, "queries");
/** Parameter names the generated SQL uses itself (object URLs, keys). */
export const RESERVED_PARAMETER_PREFIX = "kcs_";

export class QuerySchemaError extends Error {
    constructor(readonly problems: readonly SchemaProblem[]) {
        super(
            "invalid query file:\n" +
                problems
                    .map((p) => `  ${p.file}${p.path ? `: ${p.path}` : ""}: ${p.message}`)
                    .join("\n"),
        );
        this.name = "QuerySchemaError";
    }
}

/**
 * Every query file of `dir`, validated; a directory that does not exist holds no queries. Throws
 * QuerySchemaError listing every problem of every file.
 */
export function loadQueries(dir: string = DEFAULT_QUERIES_DIR): LoadedQuery[] {
    if (!fs.existsSync(dir)) return [];
    if (!fs.statSync(dir).isDirectory())
        throw new QuerySchemaError([
            { file: dir, path: "", message: "not a directory; set queriesDir to a folder" },
        ]);
    const problems: SchemaProblem[] = [];
    const queries: LoadedQuery[] = [];
    const files = fs
        .readdirSync(dir)
        .filter((f) => DOCUMENT_EXTENSIONS.includes(path.extname(f)))
        .sort();
    for (const name of files) {
        const file = displayPath(path.join(dir, name));
        const tooBig = fileSizeProblem(fs.statSync(path.join(dir, name)).size, file);
        const result = tooBig
            ? { problems: [tooBig] }
            : parseQueryText(fs.readFileSync(path.join(dir, name), "utf8"), file);
        if ("problems" in result) problems.push(...result.problems);
        else queries.push(result.query);
    }
    const seen = new Map<string, string>();
    for (const q of queries) {
        const other = seen.get(q.spec.name);
        if (other)
            problems.push({
                file: q.file,
                path: "name",
                message: `query '${q.spec.name}' is also declared in ${other}; give each query its own name`,
            });
        seen.set(q.spec.name, q.file);
    }
    if (problems.length > 0) throw new QuerySchemaError(problems);
    return queries;
}

/** One query document (YAML or JSON text); `file` names it in messages. */
export function parseQuery(text: string, file: string): LoadedQuery {
    const result = parseQueryText(text, file);
    if ("problems" in result) throw new QuerySchemaError(result.problems);
    return result.query;
}

function parseQueryText(
    text: string,
    file: string,
): { query: LoadedQuery } | { problems: SchemaProblem[] } {
    const read = readDocument(text, file);
    if ("problems" in read) return read;
    if (nestingDepth(read.raw) > MAX_NESTING)
        return {
            problems: [
                {
                    file,
                    path: "",
                    message: `nested more than ${MAX_NESTING} levels deep; query files nest a few levels`,
                },
            ],
        };
    // SQL may span lines and hold tabs; every other control character is refused there too.
    const raw = read.raw as Record<string, unknown> | null;
    const checked =
        raw && typeof raw === "object" && typeof raw.sql === "string"
            ? { ...raw, sql: raw.sql.replace(/[\t\n\r]/g, " ") }
            : read.raw;
    const characters = controlCharacterProblems(checked).map((p) => ({ file, ...p }));
    const parsed = querySchema.safeParse(read.raw);
    if (!parsed.success)
        return {
            problems: [
                ...characters,
                ...zodProblems(parsed.error.issues, file, "schemas/query.schema.json"),
            ],
        };
    const problems = [...characters, ...semanticProblems(parsed.data, file)];
    return problems.length > 0 ? { problems } : { query: { file, spec: parsed.data } };
}

function semanticProblems(q: QuerySpec, file: string): SchemaProblem[] {
    const problems: SchemaProblem[] = [];
    const add = (p: string, message: string) => problems.push({ file, path: p, message });
    if (q.import && q.sql !== undefined)
        add("sql", "an import inserts the file as it is: remove `sql`, or remove `import`");
    if (!q.import && q.sql === undefined) add("sql", "missing: give the statement to run");
    if (q.import && q.export) add("export", "a query either exports or imports, not both");
    if ((q.import || (q.export && "s3" in q.export.to)) && q.user !== "admin")
        add(
            "user",
            `${q.import ? "an import" : "an export to object storage"} writes: set \`user: admin\` (the read-only user cannot)`,
        );
    if (q.user === "readonly" && q.timeoutSeconds > READONLY_MAX_EXECUTION_SECONDS)
        add(
            "timeoutSeconds",
            `the read-only user's profile stops every query at ${READONLY_MAX_EXECUTION_SECONDS} s, and its queries may not raise it: use at most ${READONLY_MAX_EXECUTION_SECONDS}, or user: admin`,
        );
    if (q.user === "readonly" && q.export && q.export.compression !== "none")
        add(
            "export.compression",
            "a compressed export sets enable_http_compression, a setting the read-only user may not change: use compression: none, or user: admin",
        );
    if (q.schedule !== "once") {
        const fields = q.schedule.cron.trim().split(/\s+/);
        if (fields.length !== 5 || !fields.every((f) => /^[0-9*,/?LW#A-Za-z-]+$/.test(f)))
            add(
                "schedule.cron",
                `'${q.schedule.cron}' is not a five-field cron expression (minute hour day month weekday), e.g. '0 6 * * *'`,
            );
        if (!validTimeZone(q.schedule.timeZone))
            add(
                "schedule.timeZone",
                `'${q.schedule.timeZone}' is not an IANA time zone; use e.g. Etc/UTC or Europe/Berlin`,
            );
    }
    for (const name of Object.keys(q.parameters))
        if (name.startsWith(RESERVED_PARAMETER_PREFIX))
            add(
                `parameters.${name}`,
                `names starting with '${RESERVED_PARAMETER_PREFIX}' are the stack's own; rename it`,
            );
    if (q.sql !== undefined) problems.push(...sqlProblems(q, file));
    return problems;
}

function sqlProblems(q: QuerySpec, file: string): SchemaProblem[] {
    const problems: SchemaProblem[] = [];
    const add = (p: string, message: string) => problems.push({ file, path: p, message });
    const scan = scanSql(q.sql ?? "");
    if (scan.unclosed) add("sql", `unclosed ${scan.unclosed}; close it or remove it`);
    if (scan.statements > 1)
        add(
            "sql",
            "holds more than one statement (';' outside quotes): declare one query per statement",
        );
    const declared = new Set(Object.keys(q.parameters));
    for (const name of new Set(scan.placeholders))
        if (!declared.has(name))
            add(
                "sql",
                `placeholder {${name}:...} has no value: add it under parameters (values are sent as param_${name}, never spliced)`,
            );
    for (const name of declared)
        if (!scan.placeholders.includes(name))
            add(
                `parameters.${name}`,
                `not used by sql: refer to it as {${name}:Type} or remove it`,
            );
    if (q.export && scan.format)
        add(
            "sql",
            "ends with a FORMAT clause: the export's `format` chooses it; remove the clause",
        );
    return problems;
}

interface SqlScan {
    readonly placeholders: string[];
    readonly statements: number;
    readonly format: boolean;
    readonly unclosed?: string;
}

const PLACEHOLDER = /^\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:[^{}]+\}/;

/** Placeholders and statement separators outside quotes and comments. */
export function scanSql(sql: string): SqlScan {
    const placeholders: string[] = [];
    let statements = 1;
    let unclosed: string | undefined;
    let code = "";
    let i = 0;
    while (i < sql.length) {
        const c = sql[i]!;
        if (c === "'" || c === "`" || c === '"') {
            const end = skipQuoted(sql, i);
            if (end >= sql.length && sql[end - 1] !== c) unclosed = `quote ${c}`;
            code += " ";
            i = Math.max(end, i + 1);
        } else if (sql.startsWith("--", i) || c === "#") {
            const nl = sql.indexOf("\n", i);
            i = nl === -1 ? sql.length : nl;
        } else if (sql.startsWith("/*", i)) {
            const end = sql.indexOf("*/", i + 2);
            if (end === -1) unclosed = "comment /*";
            i = end === -1 ? sql.length : end + 2;
        } else if (c === "{" && PLACEHOLDER.test(sql.slice(i, i + 300))) {
            const m = PLACEHOLDER.exec(sql.slice(i, i + 300))!;
            placeholders.push(m[1]!);
            code += " ? ";
            i += m[0].length;
        } else {
            if (c === ";" && sql.slice(i + 1).trim() !== "" && !onlyComments(sql.slice(i + 1)))
                statements++;
            code += c;
            i++;
        }
    }
    const format = /\bFORMAT\s+[A-Za-z]\w*\s*;?\s*$/i.test(code.trim());
    return { placeholders, statements, format, ...(unclosed ? { unclosed } : {}) };
}

function onlyComments(rest: string): boolean {
    return rest.replace(/--[^\n]*|\/\*[\s\S]*?\*\/|#[^\n]*/g, "").trim() === "";
}

function validTimeZone(tz: string): boolean {
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: tz });
        return tz.length > 0;
    } catch {
        return false;
    }
}
