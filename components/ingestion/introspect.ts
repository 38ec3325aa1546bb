/**
 * Reads the actual state of streams from `system.tables`, `system.columns` and
 * `system.detached_tables`, and asks the server for the canonical spelling of desired SQL.
 *
 * Query count is constant: three queries per `readStreamState` or `readDatabaseState` call
 * (whatever the number of streams or columns), one per `canonicalize` call. Every value goes in
 * as a query parameter; no identifier or value is spliced into these queries.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { STREAM_OBJECT_ROLES, StreamObjectRole, streamObjectNames } from "../../schemas/naming";
import { findTopLevel, matchingParen, normalizeSql, splitTopLevel } from "../../schemas/sql";
import { parseMarker } from "./ownership";
import type { ActualColumn, ActualStreamState, ActualTable, CanonicalForms } from "./plan/state";

/** Every table of one database, as read in one round of queries. */
export interface DatabaseState {
    readonly database: string;
    readonly exists: boolean;
    readonly tables: ReadonlyMap<string, ActualTable>;
    readonly detached: ReadonlySet<string>;
}

interface TableRow {
    name: string;
    engine: string;
    engine_full: string;
    create_table_query: string;
    as_select: string;
    sorting_key: string;
    partition_key: string;
    primary_key: string;
    comment: string;
}

interface ColumnRow {
    table: string;
    name: string;
    type: string;
    default_kind: string;
    default_expression: string;
    comment: string;
    is_in_sorting_key: number;
    is_in_partition_key: number;
}

interface PresenceRow {
    db_exists: number | string;
    detached: string[];
}

const TABLES_SQL =
    "SELECT name, engine, engine_full, create_table_query, as_select, sorting_key, partition_key, primary_key, comment " +
    "FROM system.tables WHERE database = {db:String}";
const COLUMNS_SQL =
    "SELECT table, name, type, default_kind, default_expression, comment, is_in_sorting_key, is_in_partition_key " +
    "FROM system.columns WHERE database = {db:String}";
const PRESENCE_SQL =
    "SELECT (SELECT count() FROM system.databases WHERE name = {db:String}) AS db_exists, " +
    "(SELECT groupArray(table) FROM system.detached_tables WHERE database = {db:String}) AS detached";
const NAME_FILTER = " AND (name IN {names:Array(String)} OR startsWith(name, {prefix:String}))";
const TABLE_FILTER = " AND (table IN {names:Array(String)} OR startsWith(table, {prefix:String}))";

/** Rows of a query as objects, with values bound as query parameters (never spliced into SQL). */
export async function queryRows<T = Record<string, unknown>>(
    client: ClickHouseClient,
    query: string,
    params: Record<string, unknown> = {},
): Promise<T[]> {
    const rs = await client.query({ query, query_params: params, format: "JSONEachRow" });
    return rs.json<T>();
}

async function readTables(
    client: ClickHouseClient,
    database: string,
    names?: readonly string[],
    /** With `names`: tables whose name starts with it are read too (a stream's rollups). */
    prefix = "",
): Promise<DatabaseState> {
    const params: Record<string, unknown> = { db: database, ...(names ? { names, prefix } : {}) };
    const presence = (await queryRows<PresenceRow>(client, PRESENCE_SQL, params))[0];
    const exists = Number(presence?.db_exists ?? 0) > 0;
    if (!exists) return { database, exists, tables: new Map(), detached: new Set() };
    const [tableRows, columnRows] = await Promise.all([
        queryRows<TableRow>(client, TABLES_SQL + (names ? NAME_FILTER : ""), params),
        queryRows<ColumnRow>(
            client,
            COLUMNS_SQL + (names ? TABLE_FILTER : "") + " ORDER BY table, position",
            params,
        ),
    ]);
    const columnsByTable = new Map<string, ActualColumn[]>();
    for (const c of columnRows) {
        const list = columnsByTable.get(c.table) ?? [];
        list.push({
            name: c.name,
            type: c.type,
            defaultKind: c.default_kind,
            defaultExpression: c.default_expression,
            comment: c.comment,
            inSortingKey: Number(c.is_in_sorting_key) === 1,
            inPartitionKey: Number(c.is_in_partition_key) === 1,
        });
        columnsByTable.set(c.table, list);
    }
    const tables = new Map<string, ActualTable>();
    for (const t of tableRows)
        tables.set(t.name, toActualTable(t, columnsByTable.get(t.name) ?? []));
    const detached = new Set(
        (presence?.detached ?? []).filter(
            (n) => !names || names.includes(n) || (prefix !== "" && n.startsWith(prefix)),
        ),
    );
    return { database, exists, tables, detached };
}

/** All tables of a database: three queries, however many streams it holds. */
export function readDatabaseState(
    client: ClickHouseClient,
    database: string,
): Promise<DatabaseState> {
    return readTables(client, database);
}

/** The objects of one stream within an already read database state. */
export function streamState(db: DatabaseState, stream: string): ActualStreamState | undefined {
    const names = streamObjectNames(stream);
    const tables: Partial<Record<StreamObjectRole, ActualTable>> = {};
    const detached: StreamObjectRole[] = [];
    for (const role of STREAM_OBJECT_ROLES) {
        const t = db.tables.get(names[role]);
        if (t) tables[role] = t;
        if (db.detached.has(names[role])) detached.push(role);
    }
    const own = new Set(Object.values(names));
    const related: Record<string, ActualTable> = {};
    for (const [name, t] of db.tables)
        if (name.startsWith(`${stream}_`) && !own.has(name)) related[name] = t;
    const detachedRelated = [...db.detached]
        .filter((name) => name.startsWith(`${stream}_`) && !own.has(name))
        .sort();
    const hasRelated = Object.keys(related).length > 0 || detachedRelated.length > 0;
    if (Object.keys(tables).length === 0 && detached.length === 0 && !hasRelated) return undefined;
    return {
        database: db.database,
        stream,
        tables,
        detached,
        ...(Object.keys(related).length > 0 ? { related } : {}),
        ...(detachedRelated.length > 0 ? { detachedRelated } : {}),
    };
}

/** The objects of one stream: three queries; undefined when none of them exists. */
export async function readStreamState(
    client: ClickHouseClient,
    database: string,
    stream: string,
): Promise<ActualStreamState | undefined> {
    const names = Object.values(streamObjectNames(stream));
    return streamState(await readTables(client, database, names, `${stream}_`), stream);
}

/**
 * The server's canonical spelling of each SQL fragment (`planner.canonicalRequests`), in one query.
 * A fragment the server cannot parse maps to null.
 */
export async function canonicalize(
    client: ClickHouseClient,
    requests: readonly string[],
): Promise<CanonicalForms> {
    if (requests.length === 0) return new Map();
    const [row] = await queryRows<{ f: Array<string | null> }>(
        client,
        "SELECT arrayMap(q -> formatQuerySingleLineOrNull(q), {qs:Array(String)}) AS f",
        {
            qs: requests,
        },
    );
    const forms = row?.f ?? [];
    return new Map(requests.map((q, i) => [q, forms[i] ?? null]));
}

// ---------------------------------------------------------------------------------------------
// Parsing what system.tables reports
// ---------------------------------------------------------------------------------------------

function toActualTable(t: TableRow, columns: ActualColumn[]): ActualTable {
    const engine = parseEngineFull(t.engine_full);
    return {
        name: t.name,
        engine: t.engine,
        engineArgs: engine.args,
        columns,
        sortingKey: t.sorting_key,
        partitionKey: t.partition_key,
        primaryKey: t.primary_key,
        ttl: engine.clauses["TTL"] ?? "",
        settings: parseSettings(engine.clauses["SETTINGS"] ?? ""),
        comment: t.comment,
        asSelect: t.as_select,
        toTable: t.engine === "MaterializedView" ? parseViewTarget(t.create_table_query) : "",
        createQuery: t.create_table_query,
    };
}

const CLAUSES = ["PARTITION BY", "PRIMARY KEY", "ORDER BY", "SAMPLE BY", "TTL", "SETTINGS"];

/** Splits `engine_full` ("ReplacingMergeTree(v) PARTITION BY ... TTL ... SETTINGS ...") into parts. */
export function parseEngineFull(engineFull: string): {
    name: string;
    args: string;
    clauses: Record<string, string>;
} {
    const m = /^([A-Za-z0-9_]+)/.exec(engineFull);
    const name = m ? m[1]! : "";
    let i = name.length;
    let args = "";
    if (engineFull[i] === "(") {
        const end = matchingParen(engineFull, i);
        args = engineFull.slice(i + 1, end).trim();
        i = end + 1;
    }
    const clauses: Record<string, string> = {};
    // Each clause keyword, found outside quotes and brackets: " KEY " (the match spans " KEY").
    const starts = findTopLevel(
        engineFull,
        (j) => {
            if (engineFull[j] !== " ") return 0;
            const key = CLAUSES.find((k) => engineFull.startsWith(` ${k} `, j));
            return key ? key.length + 1 : 0;
        },
        i,
    ).map((hit) => ({
        key: engineFull.slice(hit.at + 1, hit.at + hit.length),
        at: hit.at,
        body: hit.at + hit.length + 1,
    }));
    starts.forEach((s, k) => {
        const end = k + 1 < starts.length ? starts[k + 1]!.at : engineFull.length;
        clauses[s.key] = engineFull.slice(s.body, end).trim();
    });
    return { name, args, clauses };
}

/** `a = 'x', b = 1` -> { a: "'x'", b: "1" } (values stay SQL literals). */
export function parseSettings(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    if (!text.trim()) return out;
    for (const item of splitTopLevel(text, ",")) {
        const eq = item.indexOf("=");
        if (eq < 0) continue;
        out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
    }
    return out;
}

/** `CREATE MATERIALIZED VIEW db.v TO db.t (...) AS ...` -> `db.t` (backticks removed where plain). */
export function parseViewTarget(createQuery: string): string {
    const ident = "(?:`(?:\\\\.|[^`\\\\])*`|[A-Za-z0-9_]+)";
    const re = new RegExp(
        `^CREATE MATERIALIZED VIEW (?:IF NOT EXISTS )?${ident}\\.${ident} TO (${ident}\\.${ident})`,
    );
    const m = re.exec(createQuery);
    return m ? normalizeSql(m[1]!) : "";
}

// ---------------------------------------------------------------------------------------------
// A comparable, database-independent description of a stream's objects
// ---------------------------------------------------------------------------------------------

export interface ObjectSummary {
    readonly engine: string;
    /**
     * A table's columns. A materialized view's are its query's result types (what its SELECT
     * computes, e.g. String read from a Kafka column where the target keeps LowCardinality), so
     * its summary is the query and the table it writes to, not columns.
     */
    readonly columns: readonly string[];
    readonly sortingKey?: string;
    readonly partitionKey?: string;
    readonly ttl?: string;
    readonly settings?: Readonly<Record<string, string>>;
    readonly query?: string;
    readonly writesTo?: string;
    readonly comment?: string;
}

export type StateSummary = Partial<Record<StreamObjectRole, ObjectSummary>> & {
    /** The stream's rollup tables, views and backfill snapshots, by name. */
    readonly rollups?: Readonly<Record<string, ObjectSummary>>;
    /** Detached objects: roles, then names of other `<stream>_...` objects. */
    readonly detached?: readonly string[];
};

/**
 * What a stream's objects look like, without the database name (so two databases holding the same
 * stream compare equal). Used for the provider's observed-state output and by tests.
 */
export function summarizeState(state: ActualStreamState | undefined): StateSummary {
    if (!state) return {};
    const db = state.database;
    // The database as a whole qualifier (`db.` or `` `db`. ``), not inside a longer name.
    const qualifier = new RegExp(`(?<![\\w\`])\`?${db}\`?\\.`, "g");
    // The default consumer group embeds the database too (clickhouse-<db>-<stream>).
    const group = `-${db}-`;
    const strip = (s: string) => s.replace(qualifier, "<db>.").split(group).join("-<db>-");
    const out: Record<string, unknown> = {};
    for (const role of STREAM_OBJECT_ROLES) {
        const t = state.tables[role];
        if (t) out[role] = summarizeTable(t, strip);
    }
    // The stream's rollup objects (by their markers), by name.
    const rollups = Object.entries(state.related ?? {})
        .filter(([, t]) => {
            const m = parseMarker(t.comment);
            return m?.stream === state.stream && m.role.startsWith("rollup");
        })
        .sort(([a], [b]) => a.localeCompare(b));
    if (rollups.length > 0)
        out["rollups"] = Object.fromEntries(rollups.map(([n, t]) => [n, summarizeTable(t, strip)]));
    const detached = [...state.detached, ...(state.detachedRelated ?? [])];
    if (detached.length) out["detached"] = detached;
    return out as StateSummary;
}

function summarizeTable(t: ActualTable, strip: (s: string) => string): ObjectSummary {
    const mergeTree = t.engine.endsWith("MergeTree");
    return {
        engine: t.engineArgs ? `${t.engine}(${t.engineArgs})` : t.engine,
        columns: (t.engine === "MaterializedView" ? [] : t.columns).map(
            (c) =>
                `${c.name} ${c.type}${c.defaultKind ? ` ${c.defaultKind} ${c.defaultExpression}` : ""}${c.comment ? ` COMMENT ${JSON.stringify(c.comment)}` : ""}`,
        ),
        ...(mergeTree
            ? { sortingKey: t.sortingKey, partitionKey: t.partitionKey, ttl: t.ttl }
            : {}),
        ...(t.engine === "Kafka"
            ? {
                  settings: Object.fromEntries(
                      Object.entries(t.settings).map(([k, v]) => [k, strip(v)]),
                  ),
              }
            : {}),
        ...(t.engine === "MaterializedView"
            ? { query: strip(t.asSelect), writesTo: strip(t.toTable) }
            : {}),
        ...(t.comment ? { comment: strip(t.comment) } : {}),
    };
}
