/**
 * A stream's rollups as SQL: the AggregatingMergeTree table and the materialized view that fills
 * it from the target, and the pure query helpers that read them (`rollupQuerySql`), compute the
 * same result from the raw rows (`rawGroupBySql`) and backfill a rollup from the snapshot taken
 * when it was created (`rollupBackfillSql`). Jobs, tests and the README use these helpers.
 */
import { IDENTIFIER, RollupSpec, StreamSpec } from "../../../schemas/model";
import { streamObjectNames } from "../../../schemas/naming";
import {
    RollupObjectNames,
    bucketType,
    intervalSql,
    measureType,
    rollupObjectNames,
} from "../../../schemas/rollups";
import { SqlInputError, qualified, quoteIdent, quoteString } from "../../../schemas/sql";
import { parseType } from "../../../schemas/types";
import { withMarker } from "../ownership";

/** One column of a rollup table. */
export interface RollupColumn {
    readonly name: string;
    readonly type: string;
    /** Measures: the aggregate as written in the stream file, e.g. `sum(amount)` (the column comment). */
    readonly definition?: string;
    /** Measures: the view's select item (`count()`, `uniqExactState(x)`). */
    readonly state?: string;
    /** Measures: the finalising aggregate over the rollup column (`sum(n)`, `uniqExactMerge(u)`). */
    readonly merge?: string;
    /** Measures: the same aggregate over raw rows (`count()`, `uniqExact(x)`). */
    readonly raw?: string;
}

/** A rollup as its DDL spells it. */
export interface DesiredRollup {
    readonly spec: RollupSpec;
    readonly names: RollupObjectNames;
    /** The bucket expression over the target's time column. */
    readonly bucket: string;
    readonly keys: readonly RollupColumn[];
    readonly measures: readonly RollupColumn[];
    /** The table comment before its marker: what defines the buckets (a change needs a rebuild). */
    readonly definition: string;
    readonly comments: { readonly table: string; readonly mv: string; readonly backfill: string };
    /** The view's query over the target. */
    readonly select: string;
}

/** The rollups of a stream in DDL spelling; `stack` goes into the ownership markers. */
export function desiredRollups(db: string, spec: StreamSpec, stack?: string): DesiredRollup[] {
    return (spec.rollups ?? []).map((r) => desiredRollup(db, spec, r, stack));
}

function desiredRollup(
    db: string,
    spec: StreamSpec,
    r: RollupSpec,
    stack: string | undefined,
): DesiredRollup {
    const names = rollupObjectNames(spec.name, r.name);
    for (const n of [r.name, ...Object.values(names)])
        if (!IDENTIFIER.test(n)) throw new SqlInputError(`rollup object name '${n}' is not valid`);
    const typeOf = (c: string) => {
        const col = spec.columns.find((x) => x.name === c);
        if (!col) throw new SqlInputError(`rollup ${r.name}: unknown column '${c}'`);
        return parseType(col.type).text;
    };
    const bucket = `toDateTime(toStartOfInterval(${quoteIdent(r.time)}, ${intervalSql(r.interval)}))`;
    const keys: RollupColumn[] = [
        { name: "bucket", type: bucketType(typeOf(r.time)) },
        ...r.by.map((k) => ({ name: k, type: typeOf(k) })),
    ];
    const measures = r.measures.map((m): RollupColumn => {
        const mt = measureType(m.fn, m.column === undefined ? undefined : typeOf(m.column));
        if ("problem" in mt)
            throw new SqlInputError(`rollup ${r.name}, measure ${m.name}: ${mt.problem}`);
        const arg = m.column === undefined ? "" : quoteIdent(m.column);
        const col = quoteIdent(m.name);
        const simple = m.fn === "count" || m.fn === "sum" || m.fn === "min" || m.fn === "max";
        return {
            name: m.name,
            type: mt.type,
            definition: `${m.fn}(${m.column ?? ""})`,
            state: simple ? `${m.fn}(${arg})` : `${m.fn}State(${arg})`,
            merge:
                m.fn === "count"
                    ? `sum(${col})`
                    : simple
                      ? `${m.fn}(${col})`
                      : `${m.fn}Merge(${col})`,
            raw: `${m.fn}(${arg})`,
        };
    });
    const definition = `rollup ${r.name} of stream ${spec.name}: bucket = toStartOfInterval(${r.time}, ${intervalSql(r.interval)})`;
    const mark = (role: "rollup" | "rollupMv" | "rollupBackfill", text: string) =>
        withMarker(text, {
            stream: spec.name,
            role,
            rollup: r.name,
            ...(stack !== undefined ? { stack } : {}),
        });
    const d: Omit<DesiredRollup, "select"> = {
        spec: r,
        names,
        bucket,
        keys,
        measures,
        definition,
        comments: {
            table: mark("rollup", definition),
            mv: mark("rollupMv", ""),
            backfill: mark(
                "rollupBackfill",
                `rows of ${spec.name} present before rollup ${r.name} existed, for its backfill`,
            ),
        },
    };
    return { ...d, select: stateSelect(d, qualified(db, streamObjectNames(spec.name).target)) };
}

/** `SELECT <bucket, keys, states> FROM <source> GROUP BY <bucket, keys>`. */
function stateSelect(r: Omit<DesiredRollup, "select">, source: string): string {
    const keys = keyNames(r);
    const items = [
        `${r.bucket} AS bucket`,
        ...keys.slice(1),
        ...r.measures.map((m) => `${m.state} AS ${quoteIdent(m.name)}`),
    ];
    return `SELECT ${items.join(", ")} FROM ${source} GROUP BY ${keys.join(", ")}`;
}

function keyNames(r: Pick<DesiredRollup, "keys">): string[] {
    return r.keys.map((k) => quoteIdent(k.name));
}

export function rollupTableDdl(db: string, r: DesiredRollup): string {
    const cols = [
        ...r.keys.map((k) => `${quoteIdent(k.name)} ${k.type}`),
        ...r.measures.map(
            (m) => `${quoteIdent(m.name)} ${m.type} COMMENT ${quoteString(m.definition!)}`,
        ),
    ];
    const order = keyNames(r);
    return (
        `CREATE TABLE IF NOT EXISTS ${qualified(db, r.names.table)} (${cols.join(", ")}) ` +
        `ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(bucket) ` +
        `ORDER BY ${order.length === 1 ? order[0] : `(${order.join(", ")})`} ` +
        `COMMENT ${quoteString(r.comments.table)}`
    );
}

export function rollupViewDdl(db: string, r: DesiredRollup): string {
    return (
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(db, r.names.mv)} TO ${qualified(db, r.names.table)} ` +
        `COMMENT ${quoteString(r.comments.mv)} AS ${r.select}`
    );
}

/** The rollup named `rollup` (or given) of a stream, in DDL spelling. */
function resolve(db: string, spec: StreamSpec, rollup: RollupSpec | string): DesiredRollup {
    if (!IDENTIFIER.test(db)) throw new SqlInputError(`database '${db}' is not a valid name`);
    const r = typeof rollup === "string" ? spec.rollups?.find((x) => x.name === rollup) : rollup;
    if (!r) throw new SqlInputError(`stream ${spec.name} has no rollup '${String(rollup)}'`);
    return desiredRollup(db, spec, r, undefined);
}

function orderedGroupBy(r: DesiredRollup): string {
    const keys = keyNames(r).join(", ");
    return `GROUP BY ${keys} ORDER BY ${keys}`;
}

/**
 * The rollup's finalised result: one row per bucket and key with each measure's value
 * (`sum` of counts and sums, `min`/`max`, `avgMerge`, `uniqMerge`, `uniqExactMerge`).
 */
export function rollupQuerySql(db: string, spec: StreamSpec, rollup: RollupSpec | string): string {
    const r = resolve(db, spec, rollup);
    const items = [...keyNames(r), ...r.measures.map((m) => `${m.merge} AS ${quoteIdent(m.name)}`)];
    return `SELECT ${items.join(", ")} FROM ${qualified(db, r.names.table)} ${orderedGroupBy(r)}`;
}

/** The same result computed from the target's rows: what `rollupQuerySql` must equal. */
export function rawGroupBySql(db: string, spec: StreamSpec, rollup: RollupSpec | string): string {
    const r = resolve(db, spec, rollup);
    const items = [
        `${r.bucket} AS bucket`,
        ...keyNames(r).slice(1),
        ...r.measures.map((m) => `${m.raw} AS ${quoteIdent(m.name)}`),
    ];
    const target = qualified(db, streamObjectNames(spec.name).target);
    return `SELECT ${items.join(", ")} FROM ${target} ${orderedGroupBy(r)}`;
}

/**
 * The backfill of a rollup created with `backfill: true` over an existing target: `insert`
 * aggregates the snapshot `<stream>_<rollup>_backfill` (exactly the rows the target held before
 * the rollup's view started, taken while ingestion was stopped) into the rollup; `cleanup` drops
 * the snapshot. Run `insert` once, then `cleanup`: running `insert` again before `cleanup` counts
 * the snapshot twice; after `cleanup` it fails (no snapshot) and changes nothing.
 */
export function rollupBackfillSql(
    db: string,
    spec: StreamSpec,
    rollup: RollupSpec | string,
): { insert: string; cleanup: string } {
    const r = resolve(db, spec, rollup);
    const columns = [...keyNames(r), ...r.measures.map((m) => quoteIdent(m.name))];
    return {
        insert:
            `INSERT INTO ${qualified(db, r.names.table)} (${columns.join(", ")}) ` +
            `${stateSelect(r, qualified(db, r.names.backfill))} SETTINGS max_partitions_per_insert_block = 0`,
        cleanup: `DROP TABLE IF EXISTS ${qualified(db, r.names.backfill)}`,
    };
}
