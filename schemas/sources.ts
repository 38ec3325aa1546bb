/**
 * Where each target column's value comes from in a message, and what happens when it is absent.
 *
 * A column's `source` is a dotted path into a JSONEachRow message (`user.id` reads
 * `{"user": {"id": ...}}`; `\.` is a dot inside a key, `\\` a backslash). The Kafka table reads one
 * column per distinct top-level key: the key itself for a plain field, or, for a key that nested
 * paths read, the raw JSON text of its value (`input_format_json_read_objects_as_strings`). The
 * materialized view extracts nested values with `JSONExtract` into a Nullable type so absence is
 * visible, then:
 *
 * - absent (key missing, `null`, or a parent that is missing, `null` or not an object): a
 *   `required` column sends the row to the dead-letter table ("missing required field user.id");
 *   an optional one takes its `default`, or else its type's default value;
 * - present but not readable as the column type ("abc" for an Int64, 300 for a UInt8): the row
 *   goes to the dead-letter table, as a top-level field that fails to parse does. Array, Map and
 *   Tuple values are read as JSONExtract reads them (elements it cannot read become defaults).
 *
 * Top-level columns keep today's Kafka types unless they have a default or are required (then
 * Nullable, so absence is visible). Expressions added here refer to Kafka columns qualified by
 * the Kafka table's name: a SELECT alias equal to a column name would otherwise shadow it.
 */
import type { ColumnSpec, StreamSpec } from "./model";
import { SqlInputError, matchingParen, quoteIdent, quoteString, skipQuoted } from "./sql";
import { ChType, parseType } from "./types";

/** The format setting that makes a String column hold an object's raw JSON text. */
export const OBJECTS_AS_STRINGS = "input_format_json_read_objects_as_strings";

/** Splits a source path on unescaped dots. Throws SqlInputError saying how to write it. */
export function parseSourcePath(source: string): string[] {
    const keys: string[] = [];
    let key = "";
    for (let i = 0; i < source.length; i++) {
        const ch = source[i]!;
        if (ch === "\\") {
            const next = source[i + 1];
            if (next !== "." && next !== "\\")
                throw new SqlInputError(
                    `'${source}': a backslash must be followed by '.' (a dot inside a key) or '\\' (a backslash)`,
                );
            key += next;
            i++;
        } else if (ch === ".") {
            keys.push(key);
            key = "";
        } else key += ch;
    }
    keys.push(key);
    if (keys.some((k) => k === ""))
        throw new SqlInputError(
            `'${source}': empty key in the path; separate keys with single dots (user.id) and write a dot inside a key as '\\.'`,
        );
    return keys;
}

/** The path as a source is written (`user.id`, `a\.b`): for error messages. */
export function formatSourcePath(keys: readonly string[]): string {
    return keys.map((k) => k.replace(/\\/g, "\\\\").replace(/\./g, "\\.")).join(".");
}

/** One problem with the columns' sources; `path` is relative to the stream file. */
export interface SourceProblem {
    readonly path: string;
    readonly message: string;
}

type SourceInput = Pick<StreamSpec, "format" | "formatSettings"> & {
    readonly columns: ReadonlyArray<
        Pick<ColumnSpec, "name" | "type" | "source" | "default" | "required">
    >;
};

/** Types JSONExtract reads as a whole and that cannot be Nullable: absence is tested separately. */
const CONTAINERS = new Set(["Array", "Map", "Tuple"]);
/** Types a nested path cannot fill (no JSONExtract reading that keeps their meaning). */
const NOT_EXTRACTABLE = new Set([
    "JSON",
    "Object",
    "Dynamic",
    "Variant",
    "Nested",
    "AggregateFunction",
    "SimpleAggregateFunction",
    "Nothing",
]);

interface Resolved {
    readonly keys: readonly string[];
    readonly display: string;
}

/**
 * Every problem with the columns' sources and `required` flags, each naming the key and the fix.
 * The loader reports them with the file; `renderSources` refuses the first one.
 */
export function sourceProblems(spec: SourceInput): SourceProblem[] {
    const problems: SourceProblem[] = [];
    const add = (path: string, message: string) => problems.push({ path, message });
    const json = spec.format === "JSONEachRow";
    const resolved = resolveSources(spec, add);
    const { plainOwner, parents } = topLevelFields(resolved);
    spec.columns.forEach((c, i) => {
        const r = resolved[i];
        const type = typeOrUndefined(c.type);
        if (r)
            for (const message of pathProblems(spec, r, type, plainOwner))
                add(`columns[${i}].source`, message);
        // `SELECT b AS a, c AS b`: ClickHouse resolves the first `b` to the second alias, so a
        // column named like another column's field would silently read the wrong value.
        const owner = json ? plainOwner.get(c.name) : undefined;
        if (owner !== undefined && owner !== i && (c.source ?? c.name) !== c.name)
            add(
                `columns[${i}].name`,
                `column '${c.name}' is named like the field that fills column '${spec.columns[owner]!.name}'; ` +
                    `the view would read one in place of the other: rename the column`,
            );
        const required = c.required === true ? requiredProblem(spec, c, r, type) : undefined;
        if (required !== undefined) add(`columns[${i}].required`, required);
    });
    const setting = spec.formatSettings[OBJECTS_AS_STRINGS];
    if (json && parents.size > 0 && setting !== undefined && !truthy(setting))
        add(
            `formatSettings.${OBJECTS_AS_STRINGS}`,
            `nested sources read objects as JSON text; remove this setting or set it to 1`,
        );
    return problems;
}

/** Each column's source as keys (split on dots for JSON only); undefined where it cannot be read. */
function resolveSources(
    spec: SourceInput,
    add: (path: string, message: string) => void,
): Array<Resolved | undefined> {
    const json = spec.format === "JSONEachRow";
    return spec.columns.map((c, i) => {
        const source = c.source ?? c.name;
        if (!json) return { keys: [source], display: source };
        try {
            return { keys: parseSourcePath(source), display: source };
        } catch (e) {
            add(`columns[${i}].source`, (e as Error).message);
            return undefined;
        }
    });
}

/** Which column reads each top-level field whole, and which fields nested paths read inside. */
function topLevelFields(resolved: ReadonlyArray<Resolved | undefined>): {
    plainOwner: Map<string, number>;
    parents: Set<string>;
} {
    const plainOwner = new Map<string, number>();
    const parents = new Set<string>();
    resolved.forEach((r, i) => {
        if (!r) return;
        const top = r.keys[0]!;
        if (r.keys.length === 1) plainOwner.set(top, i);
        else parents.add(top);
    });
    return { plainOwner, parents };
}

/** What is wrong with one column's source path itself. */
function pathProblems(
    spec: SourceInput,
    r: Resolved,
    type: ChType | undefined,
    plainOwner: ReadonlyMap<string, number>,
): string[] {
    const problems: string[] = [];
    if (/[\u0000-\u001f\u007f`]/.test(r.display))
        problems.push(`may not contain control characters or backticks`);
    const top = r.keys[0]!;
    if (top.startsWith("_"))
        problems.push(
            `'${r.display}': top-level fields starting with '_' collide with Kafka virtual columns; rename the field in the producer`,
        );
    const plain = plainOwner.get(top);
    if (r.keys.length > 1 && plain !== undefined)
        problems.push(
            `'${r.display}' reads inside field '${top}', which column '${spec.columns[plain]!.name}' reads as a whole; ` +
                `read its parts with nested sources instead (e.g. ${formatSourcePath([top, "id"])})`,
        );
    if (r.keys.length > 1 && type && NOT_EXTRACTABLE.has(baseName(type)))
        problems.push(
            `a nested source cannot fill a ${type.name} column; read '${top}' at the top level instead`,
        );
    return problems;
}

/** Why a column cannot be `required` as declared, or undefined. */
function requiredProblem(
    spec: SourceInput,
    c: SourceInput["columns"][number],
    r: Resolved | undefined,
    type: ChType | undefined,
): string | undefined {
    if (spec.format !== "JSONEachRow")
        return `'required' applies to JSONEachRow fields; ${spec.format} columns are positional: remove it`;
    if (c.default !== undefined)
        return `a required column has no default (a message without the field is dead-lettered): remove 'required' or 'default'`;
    if (
        r &&
        r.keys.length === 1 &&
        type &&
        (CONTAINERS.has(baseName(type)) || NOT_EXTRACTABLE.has(baseName(type)))
    )
        return `a top-level ${type.name} field cannot be required: the Kafka table cannot tell a missing one from an empty one; remove 'required' or read it through a nested source`;
    return undefined;
}

/** What the Kafka table and the two views need from the columns' sources. */
export interface SourceRendering {
    readonly kafkaColumns: ReadonlyArray<{ readonly name: string; readonly type: string }>;
    /** The main view's SELECT list, one item per target column, in order. */
    readonly selectItems: readonly string[];
    /** Settings the Kafka table needs beyond the stream's own format settings. */
    readonly kafkaSettings: ReadonlyArray<readonly [string, string]>;
    /** SQL condition true for a row the target must not take; empty when no row can be rejected. */
    readonly reject: string;
    /** SQL String naming what is wrong with a rejected row, for the dead-letter `error` column. */
    readonly rejectError: string;
    /** Paths of the fields `reject` checks, as written in the stream file. */
    readonly checkedFields: readonly string[];
    /**
     * SQL String: the message rebuilt as JSON from the fields the Kafka table read (unknown fields
     * are not kept). The engine fills `_raw_message` only for messages it could not parse, so a
     * row rejected by a source check needs this to show what arrived; topic, partition and offset
     * point at the original while the topic retains it.
     */
    readonly rebuiltMessage: string;
}

/**
 * Renders the Kafka columns and view expressions for `columns` (canonical types, defaults already
 * checked). `kafkaTable` is the quoted, database-qualified Kafka table. Throws SqlInputError for
 * the first problem `sourceProblems` finds.
 */
export function renderSources(spec: SourceInput, kafkaTable: string): SourceRendering {
    refuseFirstProblem(spec);
    const json = spec.format === "JSONEachRow";
    const out: Collected = {
        kafkaColumns: [],
        kafkaNames: new Set(),
        selectItems: [],
        checks: [],
        parents: new Set(),
    };
    for (const c of spec.columns) {
        const type = parseType(c.type);
        const display = c.source ?? c.name;
        const column: ColumnSource = {
            column: c,
            type,
            keys: json ? parseSourcePath(display) : [display],
            display,
            alias: quoteIdent(c.name),
            fallback: c.default !== undefined ? `CAST(${c.default} AS ${type.text})` : undefined,
        };
        if (column.keys.length > 1) renderNested(out, column, kafkaTable);
        else renderTopLevel(out, column, kafkaTable);
    }
    const { kafkaColumns, selectItems, checks, parents } = out;
    const explicit = spec.formatSettings[OBJECTS_AS_STRINGS];
    return {
        kafkaColumns,
        selectItems,
        kafkaSettings:
            parents.size > 0 && explicit === undefined ? [[OBJECTS_AS_STRINGS, "1"]] : [],
        reject: checks.map((c) => `(${c.cond})`).join(" OR "),
        rejectError:
            checks.length === 1
                ? checks[0]!.error
                : checks.length > 1
                  ? `arrayStringConcat(arrayFilter(e -> (e != ''), [${checks.map((c) => c.error).join(", ")}]), '; ')`
                  : "",
        checkedFields: checks.map((c) => c.field),
        rebuiltMessage: rebuiltMessage(kafkaColumns, parents, kafkaTable),
    };
}

/** Throws the first source problem as SqlInputError, naming the column where there is one. */
function refuseFirstProblem(spec: SourceInput): void {
    const problem = sourceProblems(spec)[0];
    if (!problem) return;
    const m = /^columns\[(\d+)\]/.exec(problem.path);
    const column = m ? spec.columns[Number(m[1])]?.name : undefined;
    throw new SqlInputError(
        `${column !== undefined ? `column '${column}'` : problem.path}: ${problem.message}`,
    );
}

/** One condition that rejects a row, the error it records, and the field it is about. */
interface SourceCheck {
    readonly cond: string;
    readonly error: string;
    readonly field: string;
}

/** What `renderSources` collects column by column. */
interface Collected {
    readonly kafkaColumns: Array<{ name: string; type: string }>;
    /** Names in `kafkaColumns`: several nested paths share their parent's column. */
    readonly kafkaNames: Set<string>;
    readonly selectItems: string[];
    readonly checks: SourceCheck[];
    /** Top-level fields read as JSON text for nested paths. */
    readonly parents: Set<string>;
}

interface ColumnSource {
    readonly column: SourceInput["columns"][number];
    readonly type: ChType;
    readonly keys: readonly string[];
    /** The source as written in the stream file. */
    readonly display: string;
    /** The quoted column name. */
    readonly alias: string;
    /** The default cast to the column type, if the column has one. */
    readonly fallback: string | undefined;
}

function addKafka(out: Collected, name: string, type: string): void {
    if (out.kafkaNames.has(name)) return;
    out.kafkaNames.add(name);
    out.kafkaColumns.push({ name, type: withoutLowCardinality(type) });
}

/**
 * A Kafka table column's type: the column's own without LowCardinality, at any depth
 * (`Array(LowCardinality(String))` -> `Array(String)`). The Kafka engine parses every message into
 * these columns, and dictionary-encoding each small block there costs about as much CPU per row as
 * the rest of the pipeline; the target keeps LowCardinality, and the insert through the view
 * converts once per block.
 */
export function withoutLowCardinality(type: string): string {
    const WRAPPER = "LowCardinality(";
    let out = "";
    let i = 0;
    while (i < type.length) {
        const c = type[i]!;
        if (c === "'" || c === "`") {
            const end = skipQuoted(type, i);
            out += type.slice(i, end);
            i = end;
        } else if (type.startsWith(WRAPPER, i) && !/[\w]/.test(type[i - 1] ?? "")) {
            const close = matchingParen(type, i + WRAPPER.length - 1);
            out += withoutLowCardinality(type.slice(i + WRAPPER.length, close));
            i = close + 1;
        } else {
            out += c;
            i++;
        }
    }
    return out;
}

/** A column read inside a top-level field: JSONExtract from the field's JSON text. */
function renderNested(out: Collected, s: ColumnSource, kafkaTable: string): void {
    const { column: c, type, keys, display, alias, fallback } = s;
    const top = keys[0]!;
    out.parents.add(top);
    addKafka(out, top, "String");
    const n = nestedColumn(`${kafkaTable}.${quoteIdent(top)}`, keys.slice(1), type);
    const missingMsg = quoteString(`missing required field ${display}`);
    const badMsg = quoteString(`field ${display}: value cannot be read as ${type.text}`);
    if (n.container) {
        out.selectItems.push(
            `${fallback ? `if(${n.missing}, ${fallback}, ${n.value})` : n.value} AS ${alias}`,
        );
        if (c.required)
            out.checks.push({
                cond: n.missing,
                error: `if(${n.missing}, ${missingMsg}, '')`,
                field: display,
            });
        return;
    }
    const value = fallback
        ? `ifNull(${n.value}, ${fallback})`
        : c.required || isNullable(type)
          ? notNull(n.value, type)
          : `ifNull(${n.value}, defaultValueOfTypeName(${quoteString(type.text)}))`;
    out.selectItems.push(`${value} AS ${alias}`);
    // JSONExtract reads any present value as String (numbers, objects as their JSON text).
    if (!c.required && innerName(type) === "String") return;
    out.checks.push(
        c.required
            ? {
                  cond: `isNull(${n.value})`,
                  error: `multiIf(${n.missing}, ${missingMsg}, isNull(${n.value}), ${badMsg}, '')`,
                  field: display,
              }
            : {
                  cond: `isNull(${n.value}) AND NOT ${n.missing}`,
                  error: `if(isNull(${n.value}) AND NOT ${n.missing}, ${badMsg}, '')`,
                  field: display,
              },
    );
}

/** A column read from a top-level field: a Kafka column of its own. */
function renderTopLevel(out: Collected, s: ColumnSource, kafkaTable: string): void {
    const { column: c, type, keys, display, alias, fallback } = s;
    const top = keys[0]!;
    const src = quoteIdent(top);
    if (c.required) {
        // The Kafka column is Nullable so a missing field shows as NULL, not as zero.
        addKafka(out, top, absenceType(type, c.name).type);
        const ref = `${kafkaTable}.${src}`;
        out.selectItems.push(`${notNull(ref, type)} AS ${alias}`);
        out.checks.push({
            cond: `isNull(${ref})`,
            error: `if(isNull(${ref}), ${quoteString(`missing required field ${display}`)}, '')`,
            field: display,
        });
        return;
    }
    // Unchanged since before nested sources: the Kafka engine allows no column defaults, so a
    // defaulted field's absence must be visible in the Kafka column itself (NULL, or an empty
    // Array/Map) and the view substitutes the default (cast, so the view's output type is
    // exactly the target's: ifNull(Nullable(FixedString(3)), 'EUR') alone would be a String).
    if (fallback === undefined) {
        addKafka(out, top, type.text);
        out.selectItems.push(top === c.name ? src : `${src} AS ${alias}`);
        return;
    }
    const absent = absenceType(type, c.name);
    addKafka(out, top, absent.type);
    out.selectItems.push(
        `${absent.test === "null" ? `ifNull(${src}, ${fallback})` : `if(empty(${src}), ${fallback}, ${src})`} AS ${alias}`,
    );
}

/** The message as JSON from the Kafka table's columns (see `SourceRendering.rebuiltMessage`). */
function rebuiltMessage(
    kafkaColumns: ReadonlyArray<{ name: string; type: string }>,
    parents: ReadonlySet<string>,
    kafkaTable: string,
): string {
    const fields = kafkaColumns.map(({ name, type }) => {
        const ref = `${kafkaTable}.${quoteIdent(name)}`;
        // A parent holds the value's JSON text; a scalar string arrives unquoted, a missing one
        // empty. toJSONString(NULL) is NULL, which would empty the whole concat.
        const value = parents.has(name)
            ? `if(${ref} = '', 'null', if(isValidJSON(${ref}), ${ref}, toJSONString(${ref})))`
            : isNullable(parseType(type))
              ? `if(isNull(${ref}), 'null', toJSONString(assumeNotNull(${ref})))`
              : `toJSONString(${ref})`;
        return `${quoteString(`${JSON.stringify(name)}:`)}, ${value}`;
    });
    return `concat('{', ${fields.join(", ',', ")}, '}')`;
}

/** JSONExtract of `keys` inside the raw JSON text in `parent`, and the test for its absence. */
function nestedColumn(
    parent: string,
    keys: readonly string[],
    type: ChType,
): { value: string; missing: string; container: boolean } {
    const path = keys.map(quoteString).join(", ");
    const container = CONTAINERS.has(type.name);
    const read = container ? type.text : nullableOf(type);
    return {
        value: `JSONExtract(${parent}, ${path}, ${quoteString(read)})`,
        // JSONType is 'Null' for a missing key, a JSON null, and a parent that is not an object.
        missing: `(JSONType(${parent}, ${path}) = 'Null')`,
        container,
    };
}

function nullableOf(t: ChType): string {
    if (t.name === "Nullable") return t.text;
    if (t.name === "LowCardinality") {
        const inner = t.args[0] as ChType;
        return inner.name === "Nullable" ? t.text : `LowCardinality(Nullable(${inner.text}))`;
    }
    return `Nullable(${t.text})`;
}

function isNullable(t: ChType): boolean {
    return t.name === "Nullable" || (t.name === "LowCardinality" && baseName(t) === "Nullable");
}

/** A Nullable value as the column type: only applied where rows with NULL are filtered out. */
function notNull(expr: string, t: ChType): string {
    return isNullable(t) ? expr : `assumeNotNull(${expr})`;
}

/**
 * How a defaulted or required top-level field's absence shows in the Kafka table: NULL in a
 * Nullable type (JSON's omitted fields and CSV's empty fields become the type's default, NULL), or
 * empty for Array and Map, which cannot be Nullable.
 */
function absenceType(t: ChType, column: string): { type: string; test: "null" | "empty" } {
    switch (t.name) {
        case "Nullable":
        case "LowCardinality":
            return { type: nullableOf(t), test: "null" };
        case "Array":
        case "Map":
            return { type: t.text, test: "empty" };
        case "Tuple":
        case "JSON":
            throw new SqlInputError(
                `column '${column}': a default on a ${t.name} column cannot be applied to Kafka messages; drop the default`,
            );
        default:
            return { type: `Nullable(${t.text})`, test: "null" };
    }
}

/** The type under LowCardinality (the name of its argument), else the type's own name. */
function baseName(t: ChType): string {
    return t.name === "LowCardinality" ? (t.args[0] as ChType).name : t.name;
}

/** The type under LowCardinality and Nullable wrappers. */
function innerName(t: ChType): string {
    return t.name === "LowCardinality" || t.name === "Nullable"
        ? innerName(t.args[0] as ChType)
        : t.name;
}

function typeOrUndefined(text: string): ChType | undefined {
    try {
        return parseType(text);
    } catch {
        return undefined;
    }
}

function truthy(v: string | number | boolean): boolean {
    return v === true || v === 1 || v === "1" || v === "true";
}
