/**
 * The actual state of a stream's objects, in the shape `introspect.ts` reads it from
 * `system.tables` / `system.columns`, and the server's canonical spelling of desired SQL. Both the
 * reader (introspect) and the planner import these; neither imports the other.
 */
import type { StreamObjectRole } from "../../../schemas/naming";

/**
 * Canonical spellings of desired SQL fragments as the server formats them, keyed by the wrapper
 * query sent to `formatQuerySingleLineOrNull` (see `canonicalRequests`); `null` when the server
 * cannot parse the fragment. Without it the planner falls back to `normalizeSql`, which is enough
 * for simple expressions but does not know ClickHouse's operator formatting.
 */
export type CanonicalForms = ReadonlyMap<string, string | null>;

export interface ActualColumn {
    readonly name: string;
    readonly type: string;
    /** `DEFAULT`, `MATERIALIZED`, `ALIAS`, `EPHEMERAL` or "". */
    readonly defaultKind: string;
    readonly defaultExpression: string;
    readonly comment: string;
    readonly inSortingKey: boolean;
    readonly inPartitionKey: boolean;
}

export interface ActualTable {
    readonly name: string;
    /** Engine name: MergeTree, ReplacingMergeTree, Kafka, MaterializedView, Null, ... */
    readonly engine: string;
    /** Text between the engine's parentheses ("" if none): version column, named collection. */
    readonly engineArgs: string;
    readonly columns: readonly ActualColumn[];
    readonly sortingKey: string;
    readonly partitionKey: string;
    readonly primaryKey: string;
    /** TTL clause without the keyword, "" if none. */
    readonly ttl: string;
    /** Engine SETTINGS, values as SQL literals (`'x'`, `1`). */
    readonly settings: Readonly<Record<string, string>>;
    readonly comment: string;
    /** Materialized views: the SELECT. */
    readonly asSelect: string;
    /** Materialized views: `db.table` they write to. */
    readonly toTable: string;
    /** The server's CREATE statement for the object (rehearsal and restore recreate it). */
    readonly createQuery?: string;
}

export interface ActualStreamState {
    readonly database: string;
    readonly stream: string;
    readonly tables: Readonly<Partial<Record<StreamObjectRole, ActualTable>>>;
    /** Objects that exist but are detached (invisible in system.tables; definition unknown). */
    readonly detached: readonly StreamObjectRole[];
    /**
     * Other tables named `<stream>_...` (rollup tables, their views and backfill snapshots among
     * them), by name; whose each one is, its ownership marker says. Absent: none read.
     */
    readonly related?: Readonly<Record<string, ActualTable>>;
    /** Detached objects named `<stream>_...` beyond the fixed roles (rollup objects among them). */
    readonly detachedRelated?: readonly string[];
}
