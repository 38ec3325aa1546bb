/**
 * Rollups: the names, column types and checks of a stream's pre-aggregated tables. Shared by the
 * loader (which reports each problem with its key and the fix) and the planner (which renders the
 * DDL from the same types), so a rollup the loader accepts is one the planner can create.
 */
import type { KeyProblem } from "./checks";
import {
    IDENTIFIER,
    LoadedStream,
    ROLLUP_INTERVAL,
    RollupMeasureSpec,
    RollupSpec,
    StreamSpec,
} from "./model";
import { streamObjectNames } from "./naming";
import { ChType, parseType } from "./types";

/** The objects of one rollup. Deployed tables rely on these names: keep them stable. */
export interface RollupObjectNames {
    /** AggregatingMergeTree `<stream>_<rollup>`. */
    readonly table: string;
    /** Materialized view `<stream>_<rollup>_mv`: target -> table. */
    readonly mv: string;
    /** Snapshot of the target taken when the rollup is created with `backfill: true`. */
    readonly backfill: string;
}

export function rollupObjectNames(stream: string, rollup: string): RollupObjectNames {
    return {
        table: `${stream}_${rollup}`,
        mv: `${stream}_${rollup}_mv`,
        backfill: `${stream}_${rollup}_backfill`,
    };
}

/** `INTERVAL 1 MINUTE` for `1 minute` (or `1 minutes`). */
export function intervalSql(interval: string): string {
    const m = ROLLUP_INTERVAL.exec(interval);
    if (!m) throw new Error(`interval '${interval}' is not 'N second|minute|hour|day'`);
    return `INTERVAL ${m[1]} ${m[2]!.toUpperCase()}`;
}

/** The type inside LowCardinality(...), else the type itself. */
function bare(t: ChType): ChType {
    return t.name === "LowCardinality" ? (t.args[0] as ChType) : t;
}

const INTEGER = /^(U?)Int(8|16|32|64)$/;
const FLOAT = /^Float(32|64)$/;
const DECIMAL = /^Decimal\((\d+), (\d+)\)$/;
const ORDERED =
    /^(U?Int\d+|Float(32|64)|Decimal\(.*\)|Date|Date32|DateTime(\(.*\))?|DateTime64\(.*\))$/;

/** What sum() returns for a column type, or undefined when it is not a number sum() keeps exact. */
function sumType(type: string): string | undefined {
    const i = INTEGER.exec(type);
    if (i) return i[1] === "U" ? "UInt64" : "Int64";
    if (FLOAT.test(type)) return "Float64";
    const d = DECIMAL.exec(type);
    if (d && Number(d[1]) <= 38) return `Decimal(38, ${d[2]})`;
    return undefined;
}

/**
 * The rollup table's column type for a measure over a column of type `columnType` (canonical
 * spelling), or a message saying why the function does not apply to it.
 */
export function measureType(
    fn: RollupMeasureSpec["fn"],
    columnType: string | undefined,
): { type: string } | { problem: string } {
    if (fn === "count") return { type: "SimpleAggregateFunction(sum, UInt64)" };
    if (columnType === undefined) return { problem: `${fn} needs a column` };
    const t = bare(parseType(columnType));
    if (t.name === "Nullable")
        return {
            problem: `${fn} over a Nullable column is not supported; aggregate a non-Nullable column (give it a default)`,
        };
    switch (fn) {
        case "sum": {
            const s = sumType(t.text);
            return s
                ? { type: `SimpleAggregateFunction(sum, ${s})` }
                : {
                      problem: `sum needs a numeric column (integer, float or Decimal), not ${columnType}`,
                  };
        }
        case "avg":
            return sumType(t.text)
                ? { type: `AggregateFunction(avg, ${t.text})` }
                : {
                      problem: `avg needs a numeric column (integer, float or Decimal), not ${columnType}`,
                  };
        case "min":
        case "max":
            return ORDERED.test(t.text)
                ? { type: `SimpleAggregateFunction(${fn}, ${t.text})` }
                : { problem: `${fn} needs a number, Date or DateTime column, not ${columnType}` };
        case "uniq":
        case "uniqExact":
            return /^(Array|Map|Tuple|Nested|JSON|Dynamic|Variant|Object)/.test(t.text)
                ? { problem: `${fn} needs a scalar column, not ${columnType}` }
                : { type: `AggregateFunction(${fn}, ${t.text})` };
    }
}

/** Whether a canonical type is a DateTime or DateTime64 (with or without a time zone). */
export function isDateTime(type: string): boolean {
    const t = parseType(type);
    return t.name === "DateTime" || t.name === "DateTime64";
}

/** The bucket column's type: DateTime in the time column's zone. */
export function bucketType(timeType: string): string {
    const tz = /'([^']+)'\)$/.exec(parseType(timeType).text);
    return tz ? `DateTime('${tz[1]}')` : "DateTime";
}

// ---------------------------------------------------------------------------------------------
// Loader checks: one stream
// ---------------------------------------------------------------------------------------------

/** Every problem of a stream's rollups, with the key and the fix. */
export function rollupProblems(spec: StreamSpec): KeyProblem[] {
    const problems: KeyProblem[] = [];
    const types = new Map(spec.columns.map((c) => [c.name, c.type]));
    const own = new Set(Object.values(streamObjectNames(spec.name)));
    const seen = new Set<string>();
    const claimed = new Map<string, string>();
    (spec.rollups ?? []).forEach((r, i) => {
        const at = `rollups[${i}]`;
        const add = (p: string, message: string) => problems.push({ path: `${at}${p}`, message });
        if (seen.has(r.name))
            add(".name", `duplicate rollup '${r.name}'; give each rollup its own name`);
        seen.add(r.name);
        const names = rollupObjectNames(spec.name, r.name);
        for (const name of Object.values(names)) {
            if (!IDENTIFIER.test(name))
                add(
                    ".name",
                    `rollup '${r.name}' makes the object name '${name}', longer than 63 characters; use a shorter rollup name`,
                );
            else if (own.has(name))
                add(
                    ".name",
                    `rollup '${r.name}' makes the object name '${name}', which is one of stream '${spec.name}''s own objects; choose another rollup name`,
                );
            else if (claimed.has(name) && claimed.get(name) !== r.name)
                add(
                    ".name",
                    `rollup '${r.name}' and rollup '${claimed.get(name)}' both make the object name '${name}'; rename one`,
                );
            else claimed.set(name, r.name);
        }
        columnChecks(r, types, add);
    });
    return problems;
}

function columnChecks(
    r: RollupSpec,
    types: ReadonlyMap<string, string>,
    add: (path: string, message: string) => void,
): void {
    const known = (p: string, column: string): string | undefined => {
        const t = types.get(column);
        if (t === undefined)
            add(
                p,
                `unknown column '${column}'; use one of the stream's columns: ${[...types.keys()].join(", ")}`,
            );
        return t;
    };
    const timeType = known(".time", r.time);
    if (timeType !== undefined && !safe(() => isDateTime(timeType)))
        add(".time", `time column '${r.time}' is ${timeType}; use a DateTime or DateTime64 column`);
    const keys = new Set<string>();
    r.by.forEach((k, j) => {
        if (keys.has(k)) add(`.by[${j}]`, `key column '${k}' is listed twice`);
        keys.add(k);
        const t = known(`.by[${j}]`, k);
        if (t !== undefined && /^(Nullable|LowCardinality\(Nullable)/.test(t))
            add(
                `.by[${j}]`,
                `key column '${k}' is ${t}; rollup keys cannot be Nullable: group by a non-Nullable column`,
            );
        if (k === "bucket")
            add(`.by[${j}]`, "'bucket' is the rollup's time column; remove it from by");
    });
    const measures = new Set<string>();
    r.measures.forEach((m, j) => {
        const p = `.measures[${j}]`;
        if (measures.has(m.name)) add(`${p}.name`, `duplicate measure '${m.name}'`);
        measures.add(m.name);
        if (keys.has(m.name) || m.name === "bucket")
            add(
                `${p}.name`,
                `measure '${m.name}' has the name of a key column of the rollup; rename the measure`,
            );
        if (m.fn === "count") {
            if (m.column !== undefined)
                add(
                    `${p}.column`,
                    "count counts rows and takes no column; remove column (or use uniqExact to count distinct values)",
                );
            return;
        }
        if (m.column === undefined) {
            add(`${p}.column`, `${m.fn} needs a column: add column: <one of the stream's columns>`);
            return;
        }
        const t = known(`${p}.column`, m.column);
        if (t === undefined) return;
        const mt = safe(() => measureType(m.fn, t));
        if (mt === undefined || "problem" in mt)
            add(`${p}.column`, mt?.problem ?? `${m.fn} cannot aggregate ${t}`);
    });
}

function safe<T>(f: () => T): T | undefined {
    try {
        return f();
    } catch {
        return undefined;
    }
}

// ---------------------------------------------------------------------------------------------
// Loader checks: across files
// ---------------------------------------------------------------------------------------------

/** A rollup object named like another stream's object (or another stream's rollup object). */
export function rollupCollisionProblems(
    streams: readonly LoadedStream[],
): Array<KeyProblem & { readonly file: string }> {
    const owners = new Map<string, { file: string; what: string }>();
    for (const { file, spec } of streams)
        for (const name of Object.values(streamObjectNames(spec.name)))
            owners.set(name, { file, what: `an object of stream '${spec.name}'` });
    const problems: Array<KeyProblem & { file: string }> = [];
    for (const { file, spec } of streams) {
        (spec.rollups ?? []).forEach((r, i) => {
            for (const name of Object.values(rollupObjectNames(spec.name, r.name))) {
                const o = owners.get(name);
                if (o && !o.what.endsWith(`stream '${spec.name}'`)) {
                    problems.push({
                        file,
                        path: `rollups[${i}].name`,
                        message: `rollup '${r.name}' makes the object name '${name}', which is ${o.what} (${o.file}); choose another rollup name`,
                    });
                } else
                    owners.set(name, { file, what: `rollup '${r.name}' of stream '${spec.name}'` });
            }
        });
    }
    return problems;
}
