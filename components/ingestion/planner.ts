/**
 * The ingestion DDL planner: (desired stream, actual ClickHouse state) -> ordered SQL statements.
 *
 * Pure: no I/O, no clock, no randomness. `introspect.ts` reads the actual state and the canonical
 * spelling of the desired expressions from the server; `apply.ts` runs the plan. Every statement is
 * classified so a reviewer sees at a glance what a plan does:
 *
 * - `create`: creates an object that does not exist.
 * - `in-place`: changes an existing object and keeps its rows (ADD COLUMN, MODIFY TTL, MODIFY QUERY).
 * - `rebuild`: drops and recreates an object that holds no rows (Kafka table, views, placeholders).
 * - `destructive`: may delete or rewrite stored rows; refused unless the stack allows that change.
 *
 * Idempotency does not depend on remembering where a previous run stopped: a run always re-reads
 * the state and plans from it, and every intermediate state a plan passes through (Kafka table
 * dropped, placeholder in its place, half-copied rebuild table) is one this planner recognises and
 * continues from. Statements also use IF [NOT] EXISTS so a plan replayed verbatim is harmless.
 */
import { IDENTIFIER, StreamSpec } from "../../schemas/model";
import {
    STREAM_OBJECT_ROLES,
    StreamObjectNames,
    StreamObjectRole,
    defaultConsumerGroup,
    legacyConsumerGroup,
    streamObjectNames,
} from "../../schemas/naming";
import { markerText, ownership, parseMarker, withMarker } from "./ownership";
import { columnsOf, parseExpression, renderExpression } from "../../schemas/expr";
import { SqlInputError, parseType, quoteIdent, quoteString } from "../../schemas/sql";
import { renderSources } from "../../schemas/sources";

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export { STREAM_OBJECT_ROLES, streamObjectNames };
export type { StreamObjectNames, StreamObjectRole };

export type StatementKind = "create" | "in-place" | "rebuild" | "destructive";

/** Changes that can lose or rewrite stored rows; each must be allowed explicitly. */
export type DestructiveChange =
    "dropColumn" | "retypeColumn" | "rebuildTable" | "dropTable" | "ttl";
export const DESTRUCTIVE_CHANGES: readonly DestructiveChange[] = [
    "dropColumn",
    "retypeColumn",
    "rebuildTable",
    "dropTable",
    "ttl",
];

/**
 * How to measure what a destructive statement does to the live table, shown in previews. The
 * query returns one row: `total` rows in the table, `affected` rows, `bytes` of the table.
 */
export interface ImpactQuery {
    readonly sql: string;
    /** Verb phrase for the affected rows: "deletes", "copies", "rewrites", "drops the values of". */
    readonly verb: string;
}

export interface PlannedStatement {
    readonly sql: string;
    readonly kind: StatementKind;
    /** One line for humans: what the statement does and why. */
    readonly summary: string;
    /** Which destructive change this statement belongs to (destructive statements only). */
    readonly change?: DestructiveChange;
    /** Session settings the statement needs (e.g. wait for the mutation an ALTER starts). */
    readonly settings?: Readonly<Record<string, string | number>>;
    /** Destructive statements: how to measure their effect on the live table. */
    readonly impact?: ImpactQuery;
    /** The measured effect, e.g. "deletes 5,120 of 1,000,000 rows (~41 MiB) now". */
    readonly measured?: string;
}

/** A destructive change the options do not allow. The plan still lists its statements. */
export interface Refusal {
    /** `foreignObject`: an object under a derived name that this stream does not own. */
    readonly change: DestructiveChange | "foreignObject";
    readonly object: string;
    readonly message: string;
}

export interface StreamPlan {
    readonly database: string;
    readonly stream: string;
    readonly statements: readonly PlannedStatement[];
    /** Non-empty: the plan must not be applied (see `DestructiveChangeRefusedError`). */
    readonly refusals: readonly Refusal[];
    /** Things a reviewer should know that need no statement (e.g. a kept dead-letter table). */
    readonly notes: readonly string[];
}

/**
 * Canonical spellings of desired SQL fragments as the server formats them, keyed by the wrapper
 * query sent to `formatQuerySingleLineOrNull` (see `canonicalRequests`); `null` when the server
 * cannot parse the fragment. Without it the planner falls back to `normalizeSql`, which is enough
 * for simple expressions but does not know ClickHouse's operator formatting.
 */
export type CanonicalForms = ReadonlyMap<string, string | null>;

export interface PlanOptions {
    /** Database holding the stream's tables. */
    readonly database: string;
    /** Kafka bootstrap servers, comma separated `host:port`. */
    readonly kafkaBrokers: string;
    /**
     * Allow changes that delete or rewrite stored rows: `true` for all of them, or a list naming
     * the kinds allowed. @default false (refused, with a message naming this setting)
     */
    readonly allowDestructiveChanges?: boolean | readonly DestructiveChange[];
    /** `planDrop` also drops the target and dead-letter tables. @default false (kept) */
    readonly dropTargetOnDelete?: boolean;
    /**
     * Named collection (defined in server config, where its secrets come `from_env`) that the
     * Kafka engine reads its connection settings from. @default none: settings from the server's
     * `<kafka>` config section
     */
    readonly kafkaNamedCollection?: string;
    /** `kafka_num_consumers` when the stream sets none: min(partitions, this). @default 1 */
    readonly maxDefaultConsumers?: number;
    /** Server-canonical spellings of desired expressions (see `CanonicalForms`). */
    readonly canonicalForms?: CanonicalForms;
    /**
     * `project/stack` written into ownership markers; objects marked by another stack are refused.
     * @default none (markers carry no stack, and a stack in a found marker is not checked)
     */
    readonly stack?: string;
    /**
     * Take over objects under the stream's names that carry no ownership marker, or another
     * stack's marker for the same stream (objects of an earlier version of this project, a
     * migrated stack). Objects marked as another stream's are never taken over.
     * @default false (refused, with a message naming this setting)
     */
    readonly adoptUnmarked?: boolean;
}

// ---- actual state, as `introspect.ts` reads it from system.tables / system.columns ----

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
}

export class DestructiveChangeRefusedError extends Error {
    constructor(readonly refusals: readonly Refusal[]) {
        super(
            `refused destructive change(s):\n${refusals.map((r) => `  - ${r.message}`).join("\n")}`,
        );
        this.name = "DestructiveChangeRefusedError";
    }
}

/** `[kind] sql`: how a statement is shown in previews and outputs. */
export function formatStatement(st: PlannedStatement): string {
    return `[${st.kind}] ${st.sql}${st.measured !== undefined ? `${IMPACT_SEPARATOR}${st.measured}` : ""}`;
}

const IMPACT_SEPARATOR = " -- impact: ";

/** A formatted statement without its measured impact (which changes as rows arrive). */
export function statementIdentity(formatted: string): string {
    const i = formatted.lastIndexOf(IMPACT_SEPARATOR);
    return i === -1 ? formatted : formatted.slice(0, i);
}

/** `[kind] summary` lines, refusals and notes: the human-readable side of a plan. */
export function describePlan(plan: StreamPlan): string[] {
    return [
        ...plan.statements.map((s) => `[${s.kind}] ${s.summary}`),
        ...plan.refusals.map((r) => `[refused] ${r.message}`),
        ...plan.notes.map((n) => `[note] ${n}`),
    ];
}

// ---------------------------------------------------------------------------------------------
// The Kafka virtual columns the views read, with the types the Kafka engine gives them. The
// placeholder that stands in for the Kafka table while views are defined declares them as real
// columns so the views' stored column types equal what they get from the real Kafka table.
// ---------------------------------------------------------------------------------------------

const KAFKA_VIRTUALS: ReadonlyArray<readonly [string, string]> = [
    ["_topic", "LowCardinality(String)"],
    ["_key", "String"],
    ["_offset", "UInt64"],
    ["_partition", "UInt64"],
    ["_raw_message", "String"],
    ["_error", "String"],
];

/** Dead-letter table layout (contract: topic, partition, offset, raw_message, error, received_at). */
const DLQ_COLUMNS: ReadonlyArray<{ name: string; type: string; select: string; default?: string }> =
    [
        { name: "topic", type: "LowCardinality(String)", select: "_topic" },
        { name: "partition", type: "UInt64", select: "_partition" },
        { name: "offset", type: "UInt64", select: "_offset" },
        { name: "key", type: "String", select: "_key" },
        { name: "raw_message", type: "String", select: "_raw_message" },
        { name: "error", type: "String", select: "_error" },
        { name: "received_at", type: "DateTime64(3)", select: "now64(3)", default: "now64(3)" },
    ];

/** Engines whose tables hold no rows of their own: dropping them loses nothing. */
const ROWLESS_ENGINES = new Set(["Kafka", "Null", "MaterializedView", "View"]);

/** ALTERs that start mutations wait for them, so errors surface on the statement that caused them. */
const WAIT_FOR_MUTATIONS = { mutations_sync: 2 } as const;

/**
 * `kafka_flush_interval_ms` when the stream sets none (`consumer.flushIntervalMs`), chosen with
 * `npm run bench`. The server's own default (stream_flush_interval_ms, 7,500 ms) holds rows back
 * up to 7.5 s: p95 produce-to-queryable 7.7 s at 5,000 msg/s. 500 ms gives p95 0.69-0.82 s, with
 * rows/s as good or better, for about two inserts (parts) per second per consumer while data
 * flows, which background merges absorb. Going lower gains little alone: a poll waits up to
 * kafka_poll_timeout_ms (500 ms) for a full batch. Streams that need less latency can set
 * `pollMaxBatchSize: 1000` (p95 -80 ms, ~10% fewer rows/s) and `flushIntervalMs: 250` (p95 ~0.55 s,
 * ~1.5x the parts). Block size and poll batch stay at the server's defaults (max_insert_block_size
 * 1,048,449 and max_block_size 65,409): with a 500 ms flush a block holds ~25-30k rows, far below the
 * former, and the large batch is the cheapest per row.
 */
export const DEFAULT_FLUSH_INTERVAL_MS = 500;

// ---------------------------------------------------------------------------------------------
// Desired model
// ---------------------------------------------------------------------------------------------

/** A column of the target table as the stream declares it, in DDL spelling. */
export interface DesiredColumn {
    readonly name: string;
    readonly type: string;
    readonly default?: string;
    readonly comment?: string;
}

/**
 * The stream's objects as DDL will spell them, built once from a stream spec and the plan options
 * (see `buildDesired`); every later stage (canonical requests, planning, expected state) reads it.
 */
export interface Desired {
    readonly spec: StreamSpec;
    /** `PlanOptions.stack`, written into the ownership markers. */
    readonly stack: string | undefined;
    readonly db: string;
    readonly names: StreamObjectNames;
    readonly columns: readonly DesiredColumn[];
    readonly kafkaColumns: readonly DesiredColumn[];
    readonly engine: string;
    readonly engineArgs: string;
    readonly orderBy: readonly string[];
    /** The columns each `orderBy` item refers to (from its parsed form). */
    readonly orderByColumns: ReadonlyArray<readonly string[]>;
    readonly partitionBy: string;
    readonly ttl: string;
    readonly comment: string;
    /** Consumer group of the Kafka table (see `resolveGroup`). */
    readonly group: string;
    /** Table comments, each ending with the object's ownership marker. */
    readonly comments: Readonly<Record<Exclude<StreamObjectRole, "rebuild">, string>>;
    readonly kafkaEngineArgs: string;
    readonly kafkaSettings: ReadonlyArray<readonly [string, string]>;
    readonly mvSelect: string;
    readonly deadLetter: boolean;
    readonly dlqSelect: string;
    readonly dlqTtl: string;
}

const BROKER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Validates everything the planner interpolates into SQL and builds the desired model. The loader
 * validates stream files already; this is the last line of defence for values that reach the
 * planner some other way (provider inputs, tests), and covers the options the loader never sees.
 */
export function buildDesired(spec: StreamSpec, options: PlanOptions, group?: string): Desired {
    const db = options.database;
    if (typeof db !== "string" || !IDENTIFIER.test(db)) {
        throw new SqlInputError(
            `database ${JSON.stringify(db)} is not a valid name: use lower-case snake_case (a letter or _ then letters, digits or _, at most 63)`,
        );
    }
    if (typeof spec.name !== "string" || !IDENTIFIER.test(spec.name)) {
        throw new SqlInputError(
            `stream name ${JSON.stringify(spec.name)} is not a valid name: use lower-case snake_case`,
        );
    }
    const brokers = parseBrokers(options.kafkaBrokers);
    if (
        options.kafkaNamedCollection !== undefined &&
        !IDENTIFIER.test(options.kafkaNamedCollection)
    ) {
        throw new SqlInputError(
            `kafkaNamedCollection ${JSON.stringify(options.kafkaNamedCollection)} is not a valid name`,
        );
    }
    const literal = sqlLiteral;
    const columns: DesiredColumn[] = spec.columns.map((c) => {
        if (!IDENTIFIER.test(c.name))
            throw new SqlInputError(`column name ${JSON.stringify(c.name)} is not a valid name`);
        if (c.comment !== undefined && CONTROL_CHARS.test(c.comment)) {
            throw new SqlInputError(
                `comment of column '${c.name}' may not contain control characters`,
            );
        }
        return {
            name: c.name,
            type: parseType(c.type).text,
            ...(c.default !== undefined
                ? {
                      default: renderExpression(
                          parseExpression(c.default, { field: "default", columns: [] }),
                      ),
                  }
                : {}),
            ...(c.comment ? { comment: c.comment } : {}),
        };
    });
    // Kafka columns and the views' expressions per source path (nested, required): sources.ts.
    const sources = renderSources(
        {
            format: spec.format,
            formatSettings: spec.formatSettings,
            columns: spec.columns.map((c, i) => ({ ...c, ...columns[i]! })),
        },
        qualified(db, streamObjectNames(spec.name).kafka),
    );
    const kafkaColumns: DesiredColumn[] = [...sources.kafkaColumns];
    // Expressions are parsed and rendered from the tree: exactly one expression reaches DDL.
    const exprColumns = columns.map((c) => c.name);
    const columnTypes = new Map(columns.map((c) => [c.name, c.type]));
    const orderByTrees = spec.orderBy.map((o) =>
        parseExpression(o, { field: "orderBy", columns: exprColumns }),
    );
    const orderBy = orderByTrees.map(renderExpression);
    const orderByColumns = orderByTrees.map(columnsOf);
    const partitionBy =
        spec.partitionBy !== undefined
            ? renderExpression(
                  parseExpression(spec.partitionBy, { field: "partitionBy", columns: exprColumns }),
              )
            : "";
    const ttl =
        spec.ttl !== undefined
            ? renderExpression(
                  parseExpression(spec.ttl, { field: "ttl", columns: exprColumns, columnTypes }),
              )
            : "";
    const engine = spec.engine.type;
    let engineArgs = "";
    if (spec.engine.type === "ReplacingMergeTree" && spec.engine.version !== undefined) {
        if (!columns.some((c) => c.name === (spec.engine as { version?: string }).version)) {
            throw new SqlInputError(
                `version column '${spec.engine.version}' is not among the columns`,
            );
        }
        engineArgs = spec.engine.version;
    }
    if (
        spec.description !== undefined &&
        CONTROL_CHARS.test(spec.description.replace(/\n/g, " "))
    ) {
        throw new SqlInputError("description may not contain control characters");
    }
    const comment = (spec.description ?? "").replace(/\s*\n\s*/g, " ").trim();
    const consumerGroup =
        group ?? spec.consumer.group ?? defaultConsumerGroup(options.database, spec.name);
    const comments = markedComments(spec.name, options.stack, consumerGroup, comment);

    const deadLetter = spec.onError === "deadLetter";
    const partitions = spec.topic.partitions;
    const consumers =
        spec.consumer.consumers ??
        Math.max(1, Math.min(partitions, options.maxDefaultConsumers ?? 1));
    const settings: Array<readonly [string, string]> = [
        ["kafka_broker_list", literal("kafkaBrokers", brokers)],
        ["kafka_topic_list", literal("topic name", spec.topic.name)],
        groupSetting(consumerGroup),
        ["kafka_format", literal("format", spec.format)],
        ["kafka_num_consumers", String(consumers)],
    ];
    // Several consumers flush independently instead of through one shared thread.
    if (consumers > 1) settings.push(["kafka_thread_per_consumer", "1"]);
    if (spec.consumer.maxBlockSize !== undefined)
        settings.push(["kafka_max_block_size", String(spec.consumer.maxBlockSize)]);
    if (spec.consumer.pollMaxBatchSize !== undefined)
        settings.push(["kafka_poll_max_batch_size", String(spec.consumer.pollMaxBatchSize)]);
    settings.push([
        "kafka_flush_interval_ms",
        String(spec.consumer.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS),
    ]);
    if (deadLetter) settings.push(["kafka_handle_error_mode", "'stream'"]);
    for (const key of Object.keys(spec.formatSettings).sort()) {
        if (!/^(input_format|format|date_time_input_format)[a-z0-9_]*$/.test(key)) {
            throw new SqlInputError(
                `format setting '${key}' is not allowed: use input_format_*, format_* or date_time_input_format`,
            );
        }
        const v = spec.formatSettings[key]!;
        settings.push([
            key,
            typeof v === "string"
                ? literal(`format setting ${key}`, v)
                : typeof v === "boolean"
                  ? v
                      ? "1"
                      : "0"
                  : numberLiteral(key, v),
        ]);
    }
    settings.push(...sources.kafkaSettings);

    const names = streamObjectNames(spec.name);
    const kafkaRef = qualified(db, names.kafka);
    // Rows failing a source check (missing required field, unreadable nested value) go where
    // unparsable messages go: the dead-letter table, or with onError: fail, an error that stops
    // the consumer (throwIf's message must be constant, so it names every checked field).
    const reject = sources.reject;
    const mvWhere = deadLetter
        ? ` WHERE length(_error) = 0${reject ? ` AND NOT (${reject})` : ""}`
        : reject
          ? ` WHERE throwIf(${reject}, ${quoteString(`stream ${spec.name}: a message lacks a required field or has a value that cannot be read (checked: ${sources.checkedFields.join(", ")}); onError: deadLetter keeps such messages in ${names.dlq}`)}) = 0`
          : "";
    const mvSelect = `SELECT ${sources.selectItems.join(", ")} FROM ${kafkaRef}${mvWhere}`;
    const rejected: Readonly<Record<string, string>> = {
        error: sources.rejectError,
        raw_message: sources.rebuiltMessage,
    };
    const dlqItems = DLQ_COLUMNS.map((c) =>
        reject && rejected[c.name] !== undefined
            ? `if(length(_error) > 0, ${c.select}, ${rejected[c.name]}) AS ${quoteIdent(c.name)}`
            : `${c.select} AS ${quoteIdent(c.name)}`,
    );
    const dlqSelect = `SELECT ${dlqItems.join(", ")} FROM ${kafkaRef} WHERE length(_error) > 0${reject ? ` OR ${reject}` : ""}`;
    const dlqTtl = `toDateTime(received_at) + INTERVAL ${spec.deadLetterTtlDays} DAY`;

    return {
        spec,
        stack: options.stack,
        db,
        names,
        columns,
        kafkaColumns,
        engine,
        engineArgs,
        orderBy,
        orderByColumns,
        partitionBy,
        ttl,
        comment,
        group: consumerGroup,
        comments,
        kafkaEngineArgs: options.kafkaNamedCollection ?? "",
        kafkaSettings: settings,
        mvSelect,
        deadLetter,
        dlqSelect,
        dlqTtl,
    };
}

/** A string literal for a value the planner interpolates; control characters are refused. */
function sqlLiteral(what: string, v: string): string {
    if (CONTROL_CHARS.test(v))
        throw new SqlInputError(`${what} may not contain control characters`);
    return quoteString(v);
}

/** The Kafka engine setting naming the consumer group. */
function groupSetting(group: string): readonly [string, string] {
    return ["kafka_group_name", sqlLiteral("consumer group", group)];
}

/** Each object's comment ending with its ownership marker; the target's names the group. */
function markedComments(
    stream: string,
    stack: string | undefined,
    group: string,
    targetComment: string,
): Desired["comments"] {
    const mark = (role: StreamObjectRole, text: string) =>
        withMarker(text, {
            stream,
            role,
            ...(role === "target" ? { group } : {}),
            ...(stack !== undefined ? { stack } : {}),
        });
    return {
        target: mark("target", targetComment),
        kafka: mark("kafka", ""),
        mv: mark("mv", ""),
        dlq: mark("dlq", `dead letters of stream ${stream}: messages that could not be parsed`),
        dlqMv: mark("dlqMv", ""),
    };
}

/**
 * `d` reading with consumer group `group`: the Kafka table's group setting and the target's
 * ownership marker change, nothing else (the group is the only part of the desired state that
 * depends on the actual state).
 */
export function withGroup(d: Desired, group: string): Desired {
    if (group === d.group) return d;
    const setting = groupSetting(group);
    return {
        ...d,
        group,
        comments: markedComments(d.spec.name, d.stack, group, d.comment),
        kafkaSettings: d.kafkaSettings.map((s) => (s[0] === setting[0] ? setting : s)),
    };
}

function parseBrokers(raw: unknown): string {
    if (typeof raw !== "string")
        throw new SqlInputError(
            "kafkaBrokers must be a string of host:port pairs separated by commas",
        );
    const list = raw.split(",").map((b) => b.trim());
    const bad = list.find((b) => !BROKER.test(b));
    if (bad !== undefined) {
        throw new SqlInputError(
            `kafkaBrokers: ${JSON.stringify(bad)} is not host:port; use e.g. "kafka-bootstrap.kafka:9092,other:9092"`,
        );
    }
    return list.join(",");
}

function numberLiteral(key: string, v: number): string {
    if (!Number.isFinite(v))
        throw new SqlInputError(`format setting ${key} must be a finite number`);
    return String(v);
}

function qualified(db: string, table: string): string {
    return `${quoteIdent(db)}.${quoteIdent(table)}`;
}

/**
 * The query measuring a destructive statement on the live table: rows in it, rows affected
 * (`condition`, or all of them), and its size on disk. Read-only; names are validated identifiers.
 */
function impactQuery(db: string, table: string, verb: string, condition?: string): ImpactQuery {
    return {
        verb,
        sql:
            `SELECT count() AS total, ${condition !== undefined ? `countIf(${condition})` : "count()"} AS affected, ` +
            `(SELECT any(total_bytes) FROM system.tables WHERE database = ${quoteString(db)} AND name = ${quoteString(table)}) AS bytes ` +
            `FROM ${qualified(db, table)}`,
    };
}

/** Rows a TTL deletes now: those whose TTL expression is already in the past. */
function ttlCondition(ttl: string): string {
    const expr = ttl.replace(/\s+DELETE\s*$/i, "");
    return `(${expr}) <= now()`;
}

// ---------------------------------------------------------------------------------------------
// Canonical forms: what to ask the server, and how to compare
// ---------------------------------------------------------------------------------------------

const TTL_WRAPPER = "ALTER TABLE t MODIFY TTL ";

/**
 * The wrapper queries whose server formatting the planner compares against `system.*` text.
 * `introspect.canonicalize` sends them in one query; the result is `PlanOptions.canonicalForms`.
 */
export function canonicalRequests(
    spec: StreamSpec,
    options: PlanOptions,
    /** `buildDesired(spec, options)`, when the caller built it already. */
    d: Desired = buildDesired(spec, options),
): string[] {
    const out = new Set<string>();
    for (const c of d.columns) if (c.default !== undefined) out.add(`SELECT ${c.default}`);
    out.add(`SELECT ${d.orderBy.join(", ")}`);
    if (d.partitionBy) out.add(`SELECT ${d.partitionBy}`);
    if (d.ttl) out.add(TTL_WRAPPER + d.ttl);
    out.add(TTL_WRAPPER + d.dlqTtl);
    out.add(d.mvSelect);
    out.add(d.dlqSelect);
    return [...out];
}

/** Fragments the server could not parse (null in `canonicalForms`), for clear check errors. */
export function unparsableFragments(forms: CanonicalForms): string[] {
    return [...forms].filter(([, v]) => v === null).map(([k]) => k);
}

class Canon {
    constructor(private readonly forms: CanonicalForms | undefined) {}
    private server(query: string): string | undefined {
        return this.forms?.get(query) ?? undefined;
    }
    expr(expr: string): string {
        const f = this.server(`SELECT ${expr}`);
        return normalizeSql(f !== undefined && f.startsWith("SELECT ") ? f.slice(7) : expr);
    }
    orderBy(items: readonly string[]): string[] {
        const f = this.server(`SELECT ${items.join(", ")}`);
        if (f !== undefined && f.startsWith("SELECT "))
            return splitTopLevel(f.slice(7), ",").map(normalizeSql);
        return items.map(normalizeSql);
    }
    ttl(ttl: string): string {
        const f = this.server(TTL_WRAPPER + ttl);
        const m = f !== undefined ? /^ALTER TABLE t \(MODIFY TTL (.*)\)$/s.exec(f) : null;
        return normalizeSql(m ? m[1]! : ttl);
    }
    query(select: string): string {
        return normalizeSql(this.server(select) ?? select);
    }
}

const INTERVAL = /\bINTERVAL\s+(\d+)\s+(SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR)S?\b/gi;

/**
 * A light, idempotent normalisation applied to both sides of every comparison: whitespace,
 * backticks around plain identifiers, `INTERVAL n UNIT` -> `toIntervalUnit(n)`. String literals are
 * left untouched. The server's own formatting (CanonicalForms) does the heavy lifting.
 */
export function normalizeSql(text: string): string {
    const segments: Array<{ literal: boolean; text: string }> = [];
    let buf = "";
    let i = 0;
    const flush = () => {
        if (buf) segments.push({ literal: false, text: buf });
        buf = "";
    };
    while (i < text.length) {
        const c = text[i]!;
        if (c === "'") {
            let j = i + 1;
            while (j < text.length) {
                if (text[j] === "\\") j += 2;
                else if (text[j] === "'" && text[j + 1] === "'") j += 2;
                else if (text[j] === "'") break;
                else j++;
            }
            flush();
            segments.push({ literal: true, text: text.slice(i, j + 1) });
            i = j + 1;
        } else if (c === "`") {
            let j = i + 1;
            while (j < text.length && text[j] !== "`") j += text[j] === "\\" ? 2 : 1;
            const inner = text.slice(i + 1, j);
            if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(inner)) buf += inner;
            else {
                flush();
                segments.push({ literal: true, text: text.slice(i, j + 1) });
            }
            i = j + 1;
        } else {
            buf += c;
            i++;
        }
    }
    flush();
    return segments
        .map((s) =>
            s.literal
                ? s.text
                : s.text
                      .replace(/\s+/g, " ")
                      .replace(
                          INTERVAL,
                          (_m, n: string, unit: string) =>
                              `toInterval${unit[0]!.toUpperCase()}${unit.slice(1).toLowerCase()}(${n})`,
                      )
                      .replace(/([([]) /g, "$1")
                      .replace(/ ([)\],])/g, "$1")
                      .replace(/,(?! )/g, ", "),
        )
        .join("")
        .trim();
}

/** Splits at a separator that is outside brackets, quotes and backticks. */
export function splitTopLevel(text: string, sep: string): string[] {
    const out: string[] = [];
    let depth = 0;
    let start = 0;
    let i = 0;
    while (i < text.length) {
        const c = text[i]!;
        if (c === "'" || c === "`") {
            i = skipQuoted(text, i);
            continue;
        }
        if (c === "(" || c === "[") depth++;
        else if (c === ")" || c === "]") depth--;
        else if (depth === 0 && text.startsWith(sep, i)) {
            out.push(text.slice(start, i).trim());
            start = i + sep.length;
            i = start;
            continue;
        }
        i++;
    }
    const last = text.slice(start).trim();
    if (last || out.length) out.push(last);
    return out;
}

/** Index just past the quoted run ('...' or `...`) starting at i. */
export function skipQuoted(text: string, i: number): number {
    const q = text[i]!;
    let j = i + 1;
    while (j < text.length) {
        if (text[j] === "\\") j += 2;
        else if (text[j] === q && text[j + 1] === q) j += 2;
        else if (text[j] === q) return j + 1;
        else j++;
    }
    return j;
}

// ---------------------------------------------------------------------------------------------
// DDL rendering
// ---------------------------------------------------------------------------------------------

function columnDef(c: DesiredColumn): string {
    return [
        quoteIdent(c.name),
        c.type,
        ...(c.default !== undefined ? [`DEFAULT ${c.default}`] : []),
        ...(c.comment ? [`COMMENT ${quoteString(c.comment)}`] : []),
    ].join(" ");
}

function targetDdl(d: Desired, table: string): string {
    const engine = d.engineArgs ? `${d.engine}(${quoteIdent(d.engineArgs)})` : d.engine;
    return [
        `CREATE TABLE IF NOT EXISTS ${qualified(d.db, table)} (${d.columns.map(columnDef).join(", ")})`,
        `ENGINE = ${engine}`,
        ...(d.partitionBy ? [`PARTITION BY ${d.partitionBy}`] : []),
        `ORDER BY ${d.orderBy.length === 1 ? d.orderBy[0] : `(${d.orderBy.join(", ")})`}`,
        ...(d.ttl ? [`TTL ${d.ttl}`] : []),
        `COMMENT ${quoteString(d.comments.target)}`,
    ].join(" ");
}

function kafkaDdl(d: Desired): string {
    const engine = d.kafkaEngineArgs ? `Kafka(${quoteIdent(d.kafkaEngineArgs)})` : "Kafka";
    return (
        `CREATE TABLE IF NOT EXISTS ${qualified(d.db, d.names.kafka)} (${d.kafkaColumns.map(columnDef).join(", ")}) ` +
        `ENGINE = ${engine} SETTINGS ${d.kafkaSettings.map(([k, v]) => `${k} = ${v}`).join(", ")} ` +
        `COMMENT ${quoteString(d.comments.kafka)}`
    );
}

function placeholderDdl(d: Desired): string {
    return placeholderFor(d.db, d.names.kafka, d.kafkaColumns, d.deadLetter, d.comments.kafka);
}

/**
 * A Null-engine stand-in for a Kafka table (its columns, plus the virtual columns the dead-letter
 * view reads): the views are defined against it before the Kafka table itself exists. Also used to
 * restore views as a failed update found them.
 */
export function placeholderFor(
    db: string,
    table: string,
    columns: ReadonlyArray<{ readonly name: string; readonly type: string }>,
    withVirtuals: boolean,
    comment?: string,
): string {
    const cols = [
        ...columns.map((c) => `${quoteIdent(c.name)} ${c.type}`),
        ...(withVirtuals ? KAFKA_VIRTUALS.map(([n, t]) => `${quoteIdent(n)} ${t}`) : []),
    ];
    return (
        `CREATE TABLE IF NOT EXISTS ${qualified(db, table)} (${cols.join(", ")}) ENGINE = Null` +
        (comment !== undefined ? ` COMMENT ${quoteString(comment)}` : "")
    );
}

function dlqDdl(d: Desired): string {
    const cols = DLQ_COLUMNS.map(
        (c) => `${quoteIdent(c.name)} ${c.type}${c.default ? ` DEFAULT ${c.default}` : ""}`,
    );
    return (
        `CREATE TABLE IF NOT EXISTS ${qualified(d.db, d.names.dlq)} (${cols.join(", ")}) ENGINE = MergeTree ` +
        `PARTITION BY toYYYYMMDD(received_at) ORDER BY (topic, partition, offset) TTL ${d.dlqTtl} ` +
        `SETTINGS ttl_only_drop_parts = 1 COMMENT ${quoteString(d.comments.dlq)}`
    );
}

function mvDdl(d: Desired, which: "mv" | "dlqMv"): string {
    const to = which === "mv" ? d.names.target : d.names.dlq;
    const select = which === "mv" ? d.mvSelect : d.dlqSelect;
    return `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(d.db, d.names[which])} TO ${qualified(d.db, to)} COMMENT ${quoteString(d.comments[which])} AS ${select}`;
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

class PlanBuilder {
    readonly statements: PlannedStatement[] = [];
    readonly refusals: Refusal[] = [];
    readonly notes: string[] = [];
    constructor(
        private readonly d: Desired,
        private readonly options: PlanOptions,
    ) {}

    add(
        kind: StatementKind,
        sql: string,
        summary: string,
        extra: Partial<PlannedStatement> = {},
    ): void {
        this.statements.push({ sql, kind, summary, ...extra });
    }

    destructive(
        change: DestructiveChange,
        sql: string,
        summary: string,
        extra: Partial<PlannedStatement> = {},
    ): void {
        this.add("destructive", sql, summary, { change, ...extra });
    }

    /** Refuses the plan outright: an object under a derived name is not this stream's. */
    foreign(object: string, message: string): void {
        this.refusals.push({ change: "foreignObject", object, message });
    }

    /** Records a destructive change once; refused unless the options allow it. */
    guard(change: DestructiveChange, object: string, what: string): void {
        if (allows(this.options.allowDestructiveChanges, change)) return;
        if (
            this.refusals.some(
                (r) => r.change === change && r.object === object && r.message.startsWith(what),
            )
        )
            return;
        this.refusals.push({
            change,
            object,
            message:
                `${what} (stream '${this.d.spec.name}'); to allow it set allowDestructiveChanges: true ` +
                `(or a list including "${change}")`,
        });
    }

    build(): StreamPlan {
        return {
            database: this.d.db,
            stream: this.d.spec.name,
            statements: this.statements,
            refusals: this.refusals,
            notes: this.notes,
        };
    }
}

function allows(
    setting: PlanOptions["allowDestructiveChanges"],
    change: DestructiveChange,
): boolean {
    if (setting === true) return true;
    if (Array.isArray(setting)) return setting.includes(change);
    return false;
}

/**
 * Plans the statements that take the stream's objects from `actual` to `desired`.
 * `actual` undefined means none of the stream's objects exist. Throws SqlInputError for inputs
 * that cannot be rendered safely; refused destructive changes are carried in `plan.refusals`.
 */
export function planStream(
    desired: StreamSpec,
    found: ActualStreamState | undefined,
    options: PlanOptions,
    /** The objects of `desired.renamedFrom`, when the stream file declares a rename. */
    previous?: ActualStreamState,
    /** `buildDesired(desired, options)`, when the caller built it already (check, apply). */
    prebuilt?: Desired,
): StreamPlan {
    const group = resolveGroup(desired, options.database, found, previous);
    const d = prebuilt ? withGroup(prebuilt, group) : buildDesired(desired, options, group);
    const b = new PlanBuilder(d, options);
    const owners = [desired.name, ...(previous ? [previous.stream] : [])];
    for (const state of [found, previous]) checkOwnership(state, owners, options, b);
    if (b.refusals.length > 0) return b.build();
    const actual = planRename(d, found, previous, b);
    const canon = new Canon(options.canonicalForms);
    const tables = actual?.tables ?? {};
    const detached = new Set(actual?.detached ?? []);
    const ref = (role: StreamObjectRole) => qualified(d.db, d.names[role]);

    if (!actual) {
        b.add(
            "create",
            `CREATE DATABASE IF NOT EXISTS ${quoteIdent(d.db)}`,
            `create database ${d.db} if missing`,
        );
        b.notes.push(
            `new stream: ${d.names.target} starts empty and consumer group ${d.group} starts reading ${d.spec.topic.name} ` +
                `from its earliest retained message; if this stream was renamed, set renamedFrom: <old name> to keep its table and group`,
        );
    }

    // Detached objects other than the Kafka table are someone's manual work: attach, plan again.
    for (const role of detached) {
        if (role === "kafka") continue;
        b.add(
            "in-place",
            `ATTACH TABLE IF NOT EXISTS ${ref(role)}`,
            `attach ${d.names[role]}, found detached; plan again after this run to reconcile it`,
        );
    }

    const target =
        tables.target && !detached.has("target")
            ? planTarget(d, tables.target, canon, b)
            : undefined;
    const kafkaReasons = detached.has("kafka")
        ? ["found detached (definition unknown)"]
        : kafkaDifferences(d, tables.kafka);
    const kafkaColumnsChange =
        tables.kafka !== undefined &&
        !sameList(
            tables.kafka.columns.map((c) => `${c.name} ${c.type}`),
            d.kafkaColumns.map((c) => `${c.name} ${c.type}`),
        );
    const mvPlan = planView(d, "mv", tables.mv, canon, b, kafkaColumnsChange);
    const dlqMvPlan = d.deadLetter
        ? planView(d, "dlqMv", tables.dlqMv, canon, b, false)
        : undefined;
    const kafkaHoldsRows = tables.kafka !== undefined && !ROWLESS_ENGINES.has(tables.kafka.engine);
    const kafkaExists = tables.kafka !== undefined || detached.has("kafka");
    // Replacing a view while the Kafka table runs would let rows pass with no view to take them.
    const viewRecreated = mvPlan.kind === "recreate" || dlqMvPlan?.kind === "recreate";
    const stopIngestion =
        kafkaReasons.length > 0 || (target?.stopIngestion ?? false) || viewRecreated;
    const recreateKafka = kafkaReasons.length > 0 || (stopIngestion && kafkaExists);
    if (kafkaReasons.length === 0 && recreateKafka) {
        kafkaReasons.push(
            target?.stopIngestion
                ? "unchanged; recreated after the target change"
                : "unchanged; recreated after the views change",
        );
    }

    // 1. Stop ingestion first. The Kafka engine keeps no rows and its offsets live in the consumer
    //    group, so dropping it is the stateless form of DETACH: nothing is hidden in a detached
    //    state, and the recreated table resumes from the committed offsets.
    if (stopIngestion && kafkaExists) {
        if (detached.has("kafka")) {
            b.add(
                "rebuild",
                `ATTACH TABLE IF NOT EXISTS ${ref("kafka")}`,
                `re-attach ${d.names.kafka}, found detached, so it can be replaced`,
            );
        }
        if (kafkaHoldsRows) {
            b.guard(
                "dropTable",
                d.names.kafka,
                `${d.names.kafka} is a ${tables.kafka!.engine} table holding rows, not a Kafka table; replacing it drops them`,
            );
            b.destructive(
                "dropTable",
                `DROP TABLE IF EXISTS ${ref("kafka")}`,
                `drop ${d.names.kafka} (${tables.kafka!.engine}) to replace it with the Kafka table`,
            );
        } else {
            b.add(
                "rebuild",
                `DROP TABLE IF EXISTS ${ref("kafka")}`,
                `stop consumption: drop the Kafka table (${kafkaReasons.join("; ")}); offsets stay committed in group ${kafkaGroupOf(tables.kafka) ?? d.group}`,
            );
        }
    }
    // A completed or abandoned rebuild leaves its scratch table; the target is authoritative.
    if (tables.rebuild && !(target?.rebuild ?? false)) {
        b.add(
            "rebuild",
            `DROP TABLE IF EXISTS ${ref("rebuild")}`,
            `drop ${d.names.rebuild}, left by an interrupted rebuild (${d.names.target} holds the complete data)`,
        );
    }

    // Sources with a dot were top-level keys before nested paths existed: say so when a plan
    // switches such a field to a path, since the same file now reads other data.
    const wantKafka = new Set(d.kafkaColumns.map((c) => c.name));
    for (const c of tables.kafka?.columns ?? []) {
        if (c.name.includes(".") && !wantKafka.has(c.name)) {
            b.notes.push(
                `the Kafka table read a top-level field named '${c.name}'; it is now read as a nested path. ` +
                    `If messages carry a key with that literal dot, write source: ${c.name.replace(/\\/g, "\\\\").replace(/\./g, "\\.")}`,
            );
        }
    }

    // 2. Target table.
    if (!tables.target && !detached.has("target")) {
        b.add(
            "create",
            targetDdl(d, d.names.target),
            `create target table ${d.names.target} (${d.engine})`,
        );
    } else if (target) {
        for (const st of target.statements) b.statements.push(st);
    }

    // 3. Dead-letter table.
    if (d.deadLetter) planDlq(d, tables.dlq, canon, b);
    else if (tables.dlq)
        b.notes.push(
            `dead-letter table ${d.names.dlq} is kept: onError is 'fail' but it holds earlier dead letters; drop it by hand when no longer needed`,
        );

    // 4. Views, then the Kafka table, so that consumption starts with every view in place.
    const viewWork = [mvPlan, ...(dlqMvPlan ? [dlqMvPlan] : [])].filter((v) => v.kind !== "none");
    // With onError 'fail' the dead-letter view goes before a Kafka table without `_error` exists.
    const dropDlqMv = () => {
        if (d.deadLetter || tables.dlqMv === undefined) return;
        b.add(
            "rebuild",
            `DROP VIEW IF EXISTS ${ref("dlqMv")}`,
            `drop ${d.names.dlqMv}: onError is 'fail'`,
        );
    };
    if (recreateKafka) {
        if (viewWork.length > 0) {
            // Views are defined against a Null table with the Kafka table's columns; when the
            // real one is created in a single statement, all of them are already attached.
            b.add(
                "create",
                placeholderDdl(d),
                `placeholder ${d.names.kafka} (Null engine, same columns) so the views can be defined before consumption starts`,
            );
            for (const v of viewWork) emitView(d, v, b);
            dropDlqMv();
            b.add(
                "rebuild",
                `DROP TABLE IF EXISTS ${ref("kafka")}`,
                `drop the placeholder ${d.names.kafka}`,
            );
        } else {
            dropDlqMv();
        }
        const why = kafkaExists
            ? `recreate the Kafka table (${kafkaReasons.join("; ")})`
            : "create the Kafka table";
        b.add(
            kafkaExists ? "rebuild" : "create",
            kafkaDdl(d),
            `${why}; consumption of ${d.spec.topic.name} starts here`,
        );
    } else {
        for (const v of viewWork) emitView(d, v, b);
        dropDlqMv();
    }
    return b.build();
}

// ---- ownership, consumer group, rename ----

/**
 * Refuses objects under the stream's derived names that are not its own: another stream's
 * (never taken over), unmarked or another stack's (taken over only with `adoptUnmarked`).
 */
function checkOwnership(
    state: ActualStreamState | undefined,
    owners: readonly string[],
    options: PlanOptions,
    b: PlanBuilder,
): void {
    if (!state) return;
    for (const role of STREAM_OBJECT_ROLES) {
        const t = state.tables[role];
        if (!t) continue;
        const o = ownership(t.comment, role, owners, options.stack);
        const object = `${state.database}.${t.name}`;
        if (o.kind === "own") continue;
        if (o.kind === "otherStream" && o.marker.stream === owners[0]) {
            b.foreign(
                object,
                `${object} is stream '${o.marker.stream}''s ${o.marker.role}, found where its ${role} belongs; the plan leaves it untouched. ` +
                    `Rename or drop it by hand`,
            );
        } else if (o.kind === "otherStream") {
            b.foreign(
                object,
                `${object} belongs to stream '${o.marker.stream}' (its ${o.marker.role}), but stream '${owners[0]}' derives the same name for its ${role}; ` +
                    `the plan leaves it untouched. Rename one of the two streams`,
            );
        } else if (!options.adoptUnmarked) {
            const whose =
                o.kind === "unmarked"
                    ? "carries no ownership marker (made by hand, or by an earlier version of this project)"
                    : `is marked as stack '${o.marker.stack}''s`;
            b.foreign(
                object,
                `${object} (${t.engine}) ${whose}; stream '${owners[0]}' needs that name for its ${role}, and the plan leaves it untouched. ` +
                    `Rename or drop it by hand, or, if it is this stream's, set ingestionAdoptExisting: true (adoptUnmarked) for one run to take it over`,
            );
        }
    }
}

/** The group a live Kafka table reads with, if it is a Kafka table. */
function kafkaGroupOf(kafka: ActualTable | undefined): string | undefined {
    const setting = kafka?.engine === "Kafka" ? kafka.settings["kafka_group_name"] : undefined;
    return setting !== undefined && /^'[A-Za-z0-9._-]+'$/.test(setting)
        ? setting.slice(1, -1)
        : undefined;
}

/**
 * The consumer group of the stream's Kafka table. A deployed stream keeps the group its offsets
 * are committed in: the one recorded in its target's marker, else its Kafka table's, else the
 * first release's default. New streams get a group unique per database.
 */
function resolveGroup(
    spec: StreamSpec,
    database: string,
    actual: ActualStreamState | undefined,
    previous: ActualStreamState | undefined,
): string {
    if (spec.consumer.group !== undefined) return spec.consumer.group;
    for (const state of [actual, previous]) {
        const group = state?.tables.target && parseMarker(state.tables.target.comment)?.group;
        if (group) return group;
    }
    for (const state of [actual, previous]) {
        const group = kafkaGroupOf(state?.tables.kafka);
        if (group !== undefined) return group;
    }
    if (previous?.tables.target) return legacyConsumerGroup(previous.stream);
    if (actual?.tables.target) return legacyConsumerGroup(spec.name);
    return defaultConsumerGroup(database, spec.name);
}

/**
 * A declared rename (`renamedFrom`): stop the old stream's consumption, drop its views, rename its
 * target and dead-letter tables, and plan the rest against them under their new names, so rows,
 * and the consumer group (with its committed offsets), carry over.
 */
function planRename(
    d: Desired,
    actual: ActualStreamState | undefined,
    previous: ActualStreamState | undefined,
    b: PlanBuilder,
): ActualStreamState | undefined {
    if (!previous || Object.keys(previous.tables).length === 0) return actual;
    const old = streamObjectNames(previous.stream);
    const oldRef = (role: StreamObjectRole) => qualified(d.db, old[role]);
    const both = (["target", "dlq"] as const).filter(
        (role) => previous.tables[role] && actual?.tables[role],
    );
    if (both.length > 0) {
        const role = both[0]!;
        b.foreign(
            `${d.db}.${old[role]}`,
            `stream '${d.spec.name}' is renamed from '${previous.stream}', but both ${d.db}.${old[role]} and ${d.db}.${d.names[role]} exist; ` +
                `keep one (drop the unwanted one by hand), or remove renamedFrom`,
        );
        return actual;
    }
    for (const role of ["kafka", "mv", "dlqMv", "rebuild"] as const) {
        if (!previous.tables[role]) continue;
        b.add(
            "rebuild",
            `DROP TABLE IF EXISTS ${oldRef(role)}`,
            role === "kafka"
                ? `rename: stop consumption of ${old.kafka}; offsets stay committed in group ${d.group}`
                : `rename: drop ${old[role]} (recreated under the new name)`,
        );
    }
    const tables: Partial<Record<StreamObjectRole, ActualTable>> = { ...(actual?.tables ?? {}) };
    for (const role of ["target", "dlq"] as const) {
        const t = previous.tables[role];
        if (!t) continue;
        b.add(
            "in-place",
            `RENAME TABLE ${oldRef(role)} TO ${qualified(d.db, d.names[role])}`,
            `rename: ${old[role]} becomes ${d.names[role]} with its rows`,
        );
        tables[role] = { ...t, name: d.names[role] };
    }
    b.notes.push(
        `stream '${previous.stream}' is renamed to '${d.spec.name}': its rows and consumer group ${d.group} are kept`,
    );
    return {
        database: d.db,
        stream: d.spec.name,
        tables,
        detached: actual?.detached ?? [],
    };
}

// ---- target ----

interface TargetPlan {
    readonly statements: PlannedStatement[];
    readonly rebuild: boolean;
    readonly stopIngestion: boolean;
}

function planTarget(d: Desired, actual: ActualTable, canon: Canon, b: PlanBuilder): TargetPlan {
    const out: PlannedStatement[] = [];
    const tableRef = qualified(d.db, d.names.target);
    const push = (
        kind: StatementKind,
        sql: string,
        summary: string,
        extra: Partial<PlannedStatement> = {},
    ) => out.push({ sql, kind, summary, ...extra });
    const actualCols = new Map(actual.columns.map((c) => [c.name, c]));
    const desiredNames = new Set(d.columns.map((c) => c.name));
    const dropped = actual.columns.filter((c) => !desiredNames.has(c.name));
    const added = d.columns.filter((c) => !actualCols.has(c.name));
    const addedNames = new Set(added.map((c) => c.name));
    const retyped = d.columns.filter(
        (c) => actualCols.has(c.name) && actualCols.get(c.name)!.type !== c.type,
    );

    const reasons: string[] = [];
    if (
        actual.engine !== d.engine ||
        normalizeSql(actual.engineArgs) !== normalizeSql(d.engineArgs)
    ) {
        reasons.push(
            `engine ${actual.engine}${actual.engineArgs ? `(${actual.engineArgs})` : ""} -> ${d.engine}${d.engineArgs ? `(${d.engineArgs})` : ""}`,
        );
    }
    const wantOrder = canon.orderBy(d.orderBy);
    const haveOrder = actual.sortingKey
        ? splitTopLevel(actual.sortingKey, ",").map(normalizeSql)
        : [];
    let extendOrderBy: string[] | undefined;
    if (!sameList(wantOrder, haveOrder)) {
        // ClickHouse can extend the sorting key in place with columns added by the same ALTER
        // (and only if they have no default).
        const extendable =
            haveOrder.length > 0 &&
            sameList(wantOrder.slice(0, haveOrder.length), haveOrder) &&
            d.orderByColumns.slice(haveOrder.length).every((refs) => {
                return (
                    refs.length > 0 &&
                    refs.every(
                        (r) =>
                            addedNames.has(r) &&
                            d.columns.find((c) => c.name === r)!.default === undefined,
                    )
                );
            });
        if (extendable) extendOrderBy = d.orderBy.slice();
        else reasons.push(`ORDER BY (${haveOrder.join(", ")}) -> (${wantOrder.join(", ")})`);
    }
    const wantPartition = d.partitionBy ? canon.expr(d.partitionBy) : "";
    if (normalizeSql(actual.partitionKey) !== wantPartition) {
        reasons.push(
            `PARTITION BY ${actual.partitionKey || "(none)"} -> ${wantPartition || "(none)"}`,
        );
    }
    const keyRetypes = retyped.filter((c) => {
        const a = actualCols.get(c.name)!;
        return a.inSortingKey || a.inPartitionKey;
    });
    if (keyRetypes.length > 0)
        reasons.push(`key column(s) ${keyRetypes.map((c) => c.name).join(", ")} change type`);

    if (reasons.length > 0) {
        // Rebuild: copy into a new table with the desired definition, then swap names atomically.
        for (const c of dropped)
            b.guard(
                "dropColumn",
                d.names.target,
                `dropping column '${c.name}' of ${d.names.target} deletes its data`,
            );
        for (const c of retyped) {
            b.guard(
                "retypeColumn",
                d.names.target,
                `changing column '${c.name}' of ${d.names.target} from ${actualCols.get(c.name)!.type} to ${c.type} rewrites its data`,
            );
        }
        b.guard(
            "rebuildTable",
            d.names.target,
            `rebuilding ${d.names.target} (${reasons.join("; ")}) rewrites every row into a new table`,
        );
        const scratch = qualified(d.db, d.names.rebuild);
        const copied = d.columns
            .filter((c) => actualCols.has(c.name))
            .map((c) => quoteIdent(c.name));
        const extra = { change: "rebuildTable" as const };
        push(
            "rebuild",
            `DROP TABLE IF EXISTS ${scratch}`,
            `clear scratch table ${d.names.rebuild} of an earlier attempt`,
        );
        push(
            "destructive",
            targetDdl(d, d.names.rebuild),
            `create ${d.names.rebuild} with the new definition (${reasons.join("; ")})`,
            extra,
        );
        if (copied.length > 0) {
            push(
                "destructive",
                `INSERT INTO ${scratch} (${copied.join(", ")}) SELECT ${copied.join(", ")} FROM ${tableRef} SETTINGS max_partitions_per_insert_block = 0`,
                `copy every row of ${d.names.target} into ${d.names.rebuild}${dropped.length ? `, without column(s) ${dropped.map((c) => c.name).join(", ")}` : ""}`,
                { ...extra, impact: impactQuery(d.db, d.names.target, "copies") },
            );
        }
        push(
            "destructive",
            `EXCHANGE TABLES ${tableRef} AND ${scratch}`,
            `swap ${d.names.rebuild} in as ${d.names.target} (atomic)`,
            extra,
        );
        push(
            "destructive",
            `DROP TABLE IF EXISTS ${scratch}`,
            `drop the previous version of ${d.names.target}`,
            extra,
        );
        return { statements: out, rebuild: true, stopIngestion: true };
    }

    // In place.
    for (const c of dropped) {
        b.guard(
            "dropColumn",
            d.names.target,
            `dropping column '${c.name}' of ${d.names.target} deletes its data`,
        );
        push(
            "destructive",
            `ALTER TABLE ${tableRef} DROP COLUMN IF EXISTS ${quoteIdent(c.name)}`,
            `drop column ${c.name} (${c.type})`,
            {
                change: "dropColumn",
                settings: WAIT_FOR_MUTATIONS,
                impact: impactQuery(d.db, d.names.target, `drops column ${c.name} from`),
            },
        );
    }
    for (const c of retyped) {
        const from = actualCols.get(c.name)!.type;
        const sql = `ALTER TABLE ${tableRef} MODIFY COLUMN IF EXISTS ${quoteIdent(c.name)} ${c.type}`;
        if (isLosslessWidening(from, c.type)) {
            push(
                "in-place",
                sql,
                `widen column ${c.name} ${from} -> ${c.type} (lossless; rewrites the column)`,
                { settings: WAIT_FOR_MUTATIONS },
            );
        } else {
            b.guard(
                "retypeColumn",
                d.names.target,
                `changing column '${c.name}' of ${d.names.target} from ${from} to ${c.type} rewrites its data and can fail or lose precision`,
            );
            push("destructive", sql, `change column ${c.name} ${from} -> ${c.type}`, {
                change: "retypeColumn",
                settings: WAIT_FOR_MUTATIONS,
                impact: impactQuery(d.db, d.names.target, `rewrites column ${c.name} in`),
            });
        }
    }
    // Adds and moves, in desired order, so the final column order equals the stream's. An
    // extension of the sorting key rides on the ALTER adding the last column it refers to.
    const order = actual.columns.filter((c) => desiredNames.has(c.name)).map((c) => c.name);
    const suffixRefs = new Set(
        extendOrderBy ? d.orderByColumns.slice(haveOrder.length).flat() : [],
    );
    const extendWith = [...d.columns].reverse().find((c) => suffixRefs.has(c.name))?.name;
    d.columns.forEach((c, i) => {
        const prev = i === 0 ? undefined : d.columns[i - 1]!.name;
        const position = prev === undefined ? "FIRST" : `AFTER ${quoteIdent(prev)}`;
        const at = order.indexOf(c.name);
        const want = prev === undefined ? 0 : order.indexOf(prev) + 1;
        if (at === -1) {
            const orderClause =
                extendOrderBy && c.name === extendWith
                    ? `, MODIFY ORDER BY (${extendOrderBy.join(", ")})`
                    : "";
            push(
                "in-place",
                `ALTER TABLE ${tableRef} ADD COLUMN IF NOT EXISTS ${columnDef(c)} ${position}${orderClause}`,
                `add column ${c.name} ${c.type}${c.default !== undefined ? ` DEFAULT ${c.default}` : ""}${orderClause ? " and extend ORDER BY with it" : ""}`,
            );
            order.splice(want, 0, c.name);
        } else if (at !== want) {
            push(
                "in-place",
                `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} ${c.type} ${position}`,
                `move column ${c.name} ${prev === undefined ? "first" : `after ${prev}`}`,
            );
            order.splice(at, 1);
            order.splice(prev === undefined ? 0 : order.indexOf(prev) + 1, 0, c.name);
        }
    });
    for (const c of d.columns) {
        const a = actualCols.get(c.name);
        if (!a) continue;
        const want = c.default !== undefined ? canon.expr(c.default) : "";
        const have =
            a.defaultKind === "DEFAULT" || a.defaultKind === ""
                ? normalizeSql(a.defaultExpression)
                : `${a.defaultKind} ${a.defaultExpression}`;
        if (want !== have) {
            // Rows written before the column existed read its default when queried: write the
            // current values into them first, so the new default applies to new rows only.
            const keyColumn = a.inSortingKey || a.inPartitionKey;
            if (a.defaultKind === "DEFAULT" || !keyColumn) {
                push(
                    "in-place",
                    a.defaultKind === "DEFAULT"
                        ? `ALTER TABLE ${tableRef} MATERIALIZE COLUMN ${quoteIdent(c.name)}`
                        : `ALTER TABLE ${tableRef} UPDATE ${quoteIdent(c.name)} = ${quoteIdent(c.name)} WHERE 1`,
                    `store the current values of ${c.name} in every row before its default changes (existing rows keep what they read today)`,
                    { settings: WAIT_FOR_MUTATIONS },
                );
            }
            push(
                "in-place",
                c.default !== undefined
                    ? `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} DEFAULT ${c.default}`
                    : `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} REMOVE DEFAULT`,
                c.default !== undefined
                    ? `set default of ${c.name} to ${c.default}`
                    : `remove default of ${c.name}`,
            );
        }
        if ((c.comment ?? "") !== a.comment) {
            push(
                "in-place",
                c.comment
                    ? `ALTER TABLE ${tableRef} COMMENT COLUMN ${quoteIdent(c.name)} ${quoteString(c.comment)}`
                    : `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} REMOVE COMMENT`,
                c.comment ? `set comment of ${c.name}` : `remove comment of ${c.name}`,
            );
        }
    }
    const wantTtl = d.ttl ? canon.ttl(d.ttl) : "";
    if (normalizeSql(actual.ttl) !== wantTtl) {
        if (d.ttl) {
            // A new or changed TTL is applied to the stored rows too: those past it are deleted.
            b.guard(
                "ttl",
                d.names.target,
                `setting TTL ${d.ttl} on ${d.names.target} deletes every stored row already past it`,
            );
            push(
                "destructive",
                `ALTER TABLE ${tableRef} MODIFY TTL ${d.ttl}`,
                `set TTL ${d.ttl}${actual.ttl ? ` (was ${actual.ttl})` : ""}: rows already past it are deleted`,
                {
                    change: "ttl",
                    settings: WAIT_FOR_MUTATIONS,
                    impact: impactQuery(d.db, d.names.target, "deletes", ttlCondition(d.ttl)),
                },
            );
        } else {
            push("in-place", `ALTER TABLE ${tableRef} REMOVE TTL`, "remove TTL");
        }
    }
    if (actual.comment !== d.comments.target) {
        push(
            "in-place",
            `ALTER TABLE ${tableRef} MODIFY COMMENT ${quoteString(d.comments.target)}`,
            "set table comment: the stream description and the ownership marker (stream, role, consumer group)",
        );
    }
    // In-place changes need no stop of their own: when they touch what the view reads, the Kafka
    // columns change too, and that already stops ingestion first.
    return { statements: out, rebuild: false, stopIngestion: false };
}

/** Type changes that keep every value: a wider integer, float, or a wrapper that only adds. */
export function isLosslessWidening(from: string, to: string): boolean {
    if (
        to === `Nullable(${from})` ||
        to === `LowCardinality(${from})` ||
        from === `LowCardinality(${to})`
    )
        return true;
    if (to === `LowCardinality(Nullable(${from}))`) return true;
    const int = /^(U?)Int(8|16|32|64|128|256)$/;
    const f = int.exec(from);
    const t = int.exec(to);
    if (f && t) {
        const fBits = Number(f[2]);
        const tBits = Number(t[2]);
        if (f[1] === t[1]) return tBits > fBits;
        return f[1] === "U" && t[1] === "" && tBits > fBits;
    }
    if (from === "Float32" && to === "Float64") return true;
    if (from === "Date" && to === "Date32") return true;
    return false;
}

// ---- Kafka table ----

function kafkaDifferences(d: Desired, actual: ActualTable | undefined): string[] {
    if (!actual) return ["missing"];
    if (actual.engine !== "Kafka") return [`${d.names.kafka} is ${actual.engine}, not Kafka`];
    const out: string[] = [];
    if (normalizeSql(actual.engineArgs) !== d.kafkaEngineArgs)
        out.push(
            `named collection ${actual.engineArgs || "(none)"} -> ${d.kafkaEngineArgs || "(none)"}`,
        );
    const want = new Map(d.kafkaSettings);
    const keys = new Set([...want.keys(), ...Object.keys(actual.settings)]);
    for (const k of keys) {
        const w = want.get(k);
        const h = actual.settings[k];
        if (w !== h) out.push(`${k} ${h ?? "(unset)"} -> ${w ?? "(unset)"}`);
    }
    const have = actual.columns.map((c) => `${c.name} ${c.type}`);
    const wantCols = d.kafkaColumns.map((c) => `${c.name} ${c.type}`);
    if (!sameList(have, wantCols))
        out.push(`columns (${have.join(", ")}) -> (${wantCols.join(", ")})`);
    if (actual.comment !== d.comments.kafka) out.push("ownership marker");
    return out;
}

// ---- views ----

interface ViewPlan {
    readonly role: "mv" | "dlqMv";
    readonly kind: "none" | "create" | "modify" | "recreate" | "comment";
    readonly reason: string;
    readonly dropsRows: boolean;
}

function planView(
    d: Desired,
    role: "mv" | "dlqMv",
    actual: ActualTable | undefined,
    canon: Canon,
    b: PlanBuilder,
    kafkaColumnsChange: boolean,
): ViewPlan {
    if (!actual) return { role, kind: "create", reason: "missing", dropsRows: false };
    if (actual.engine !== "MaterializedView") {
        const dropsRows = !ROWLESS_ENGINES.has(actual.engine);
        if (dropsRows)
            b.guard(
                "dropTable",
                d.names[role],
                `${d.names[role]} is a ${actual.engine} table holding rows, not a view; replacing it drops them`,
            );
        return {
            role,
            kind: "recreate",
            reason: `${d.names[role]} is ${actual.engine}, not a materialized view`,
            dropsRows,
        };
    }
    const to = `${d.db}.${role === "mv" ? d.names.target : d.names.dlq}`;
    if (normalizeSql(actual.toTable) !== to)
        return {
            role,
            kind: "recreate",
            reason: `writes to ${actual.toTable}, not ${to}`,
            dropsRows: false,
        };
    const select = role === "mv" ? d.mvSelect : d.dlqSelect;
    if (canon.query(select) !== normalizeSql(actual.asSelect))
        return { role, kind: "modify", reason: "query changes", dropsRows: false };
    // A view stores the column types its query had when defined: new Kafka column types need a
    // fresh definition even when the query text stays the same.
    if (role === "mv" && kafkaColumnsChange)
        return { role, kind: "modify", reason: "Kafka column types change", dropsRows: false };
    if (actual.comment !== d.comments[role])
        return { role, kind: "comment", reason: "ownership marker", dropsRows: false };
    return { role, kind: "none", reason: "", dropsRows: false };
}

function emitView(d: Desired, v: ViewPlan, b: PlanBuilder): void {
    const ref = qualified(d.db, d.names[v.role]);
    const select = v.role === "mv" ? d.mvSelect : d.dlqSelect;
    const what =
        v.role === "mv"
            ? `view ${d.names.mv} (rows without _error -> ${d.names.target})`
            : `view ${d.names.dlqMv} (rows with _error -> ${d.names.dlq})`;
    switch (v.kind) {
        case "create":
            b.add("create", mvDdl(d, v.role), `create ${what}`);
            return;
        case "modify":
            b.add(
                "in-place",
                `ALTER TABLE ${ref} MODIFY QUERY ${select}`,
                `change the query of ${what}: ${v.reason}`,
            );
            return;
        case "recreate":
            if (v.dropsRows)
                b.destructive(
                    "dropTable",
                    `DROP TABLE IF EXISTS ${ref}`,
                    `drop ${d.names[v.role]}: ${v.reason}`,
                );
            else
                b.add(
                    "rebuild",
                    `DROP TABLE IF EXISTS ${ref}`,
                    `drop ${d.names[v.role]}: ${v.reason}`,
                );
            b.add(v.dropsRows ? "create" : "rebuild", mvDdl(d, v.role), `recreate ${what}`);
            return;
        case "comment":
            b.add(
                "in-place",
                `ALTER TABLE ${ref} MODIFY COMMENT ${quoteString(d.comments[v.role])}`,
                `mark ${d.names[v.role]} as stream ${d.spec.name}'s ${v.role}`,
            );
            return;
        case "none":
            return;
    }
}

// ---- dead-letter table ----

function planDlq(d: Desired, actual: ActualTable | undefined, canon: Canon, b: PlanBuilder): void {
    const ref = qualified(d.db, d.names.dlq);
    if (!actual) {
        b.add(
            "create",
            dlqDdl(d),
            `create dead-letter table ${d.names.dlq} (keeps ${d.spec.deadLetterTtlDays} days)`,
        );
        return;
    }
    const have = new Map(actual.columns.map((c) => [c.name, c.type]));
    let prev: string | undefined;
    for (const c of DLQ_COLUMNS) {
        if (!have.has(c.name)) {
            b.add(
                "in-place",
                `ALTER TABLE ${ref} ADD COLUMN IF NOT EXISTS ${quoteIdent(c.name)} ${c.type}${c.default ? ` DEFAULT ${c.default}` : ""} ${prev ? `AFTER ${quoteIdent(prev)}` : "FIRST"}`,
                `add missing dead-letter column ${c.name}`,
            );
        } else if (have.get(c.name) !== c.type) {
            b.notes.push(
                `dead-letter column ${d.names.dlq}.${c.name} is ${have.get(c.name)}, expected ${c.type}; left as it is`,
            );
        }
        prev = c.name;
    }
    if (actual.comment !== d.comments.dlq) {
        b.add(
            "in-place",
            `ALTER TABLE ${ref} MODIFY COMMENT ${quoteString(d.comments.dlq)}`,
            `mark ${d.names.dlq} as stream ${d.spec.name}'s dead-letter table`,
        );
    }
    if (normalizeSql(actual.ttl) !== canon.ttl(d.dlqTtl)) {
        // Keeping dead letters longer deletes nothing; a shorter (or unreadable) retention does.
        const days = /toIntervalDay\((\d+)\)|INTERVAL (\d+) DAY/i.exec(actual.ttl);
        const was = days ? Number(days[1] ?? days[2]) : undefined;
        const shorter = was === undefined || d.spec.deadLetterTtlDays < was;
        const sql = `ALTER TABLE ${ref} MODIFY TTL ${d.dlqTtl}`;
        const summary = `keep dead letters ${d.spec.deadLetterTtlDays} days${was !== undefined ? ` (was ${was})` : ""}`;
        if (!shorter) {
            b.add("in-place", sql, summary, { settings: WAIT_FOR_MUTATIONS });
        } else {
            b.guard(
                "ttl",
                d.names.dlq,
                `keeping dead letters of ${d.names.dlq} ${d.spec.deadLetterTtlDays} days deletes those already older`,
            );
            b.destructive("ttl", sql, `${summary}: older dead letters are deleted`, {
                settings: WAIT_FOR_MUTATIONS,
                impact: impactQuery(d.db, d.names.dlq, "deletes", ttlCondition(d.dlqTtl)),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Expected state: what the objects look like once a plan for `spec` has been applied
// ---------------------------------------------------------------------------------------------

/**
 * The state a fully applied plan leaves, in the shape `introspect` reads (expressions in the
 * server's spelling when `options.canonicalForms` is given). Planning `spec` against it yields an
 * empty plan; comparing it with what the server reports checks the DDL did what the plan says.
 */
export function expectedState(
    spec: StreamSpec,
    options: PlanOptions,
    /** `buildDesired(spec, options)`, when the caller built it already. */
    d: Desired = buildDesired(spec, options),
): ActualStreamState {
    const canon = new Canon(options.canonicalForms);
    const col = (name: string, type: string, def?: string, comment?: string): ActualColumn => ({
        name,
        type,
        defaultKind: def !== undefined ? "DEFAULT" : "",
        defaultExpression: def !== undefined ? def : "",
        comment: comment ?? "",
        inSortingKey: false,
        inPartitionKey: false,
    });
    const table = (name: string, engine: string, over: Partial<ActualTable>): ActualTable => ({
        name,
        engine,
        engineArgs: "",
        columns: [],
        sortingKey: "",
        partitionKey: "",
        primaryKey: "",
        ttl: "",
        settings: {},
        comment: "",
        asSelect: "",
        toTable: "",
        ...over,
    });
    const order = canon.orderBy(d.orderBy).join(", ");
    const tables: Partial<Record<StreamObjectRole, ActualTable>> = {
        target: table(d.names.target, d.engine, {
            engineArgs: d.engineArgs,
            columns: d.columns.map((c) =>
                col(
                    c.name,
                    c.type,
                    c.default !== undefined ? canon.expr(c.default) : undefined,
                    c.comment,
                ),
            ),
            sortingKey: order,
            primaryKey: order,
            partitionKey: d.partitionBy ? canon.expr(d.partitionBy) : "",
            ttl: d.ttl ? canon.ttl(d.ttl) : "",
            comment: d.comments.target,
        }),
        kafka: table(d.names.kafka, "Kafka", {
            engineArgs: d.kafkaEngineArgs,
            columns: d.kafkaColumns.map((c) => col(c.name, c.type)),
            settings: Object.fromEntries(d.kafkaSettings),
            comment: d.comments.kafka,
        }),
        mv: table(d.names.mv, "MaterializedView", {
            columns: d.columns.map((c) => col(c.name, c.type)),
            asSelect: canon.query(d.mvSelect),
            toTable: `${d.db}.${d.names.target}`,
            comment: d.comments.mv,
        }),
    };
    if (d.deadLetter) {
        tables.dlq = table(d.names.dlq, "MergeTree", {
            columns: DLQ_COLUMNS.map((c) =>
                col(c.name, c.type, c.default !== undefined ? canon.expr(c.default) : undefined),
            ),
            sortingKey: "topic, partition, offset",
            primaryKey: "topic, partition, offset",
            partitionKey: "toYYYYMMDD(received_at)",
            ttl: canon.ttl(d.dlqTtl),
            settings: { ttl_only_drop_parts: "1" },
            comment: d.comments.dlq,
        });
        tables.dlqMv = table(d.names.dlqMv, "MaterializedView", {
            columns: DLQ_COLUMNS.map((c) => col(c.name, c.type)),
            asSelect: canon.query(d.dlqSelect),
            toTable: `${d.db}.${d.names.dlq}`,
            comment: d.comments.dlqMv,
        });
    }
    return { database: d.db, stream: d.spec.name, tables, detached: [] };
}

// ---------------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------------

/**
 * Statements that remove a stream: the Kafka table first (stops consumption), then the views;
 * the target and dead-letter tables only with `dropTargetOnDelete`. With `actual` undefined every
 * object is dropped with IF EXISTS (nothing known, nothing assumed).
 */
export function planDrop(
    stream: string,
    actual: ActualStreamState | undefined,
    options: Pick<PlanOptions, "database" | "dropTargetOnDelete" | "stack" | "adoptUnmarked">,
): StreamPlan {
    if (!IDENTIFIER.test(options.database))
        throw new SqlInputError(`database ${JSON.stringify(options.database)} is not a valid name`);
    if (!IDENTIFIER.test(stream))
        throw new SqlInputError(`stream name ${JSON.stringify(stream)} is not a valid name`);
    const names = streamObjectNames(stream);
    const statements: PlannedStatement[] = [];
    const notes: string[] = [];
    const ref = (role: StreamObjectRole) => qualified(options.database, names[role]);
    const drop = (role: StreamObjectRole, kind: StatementKind, summary: string) =>
        statements.push({
            sql: `DROP TABLE IF EXISTS ${ref(role)}`,
            kind,
            summary,
            ...(kind === "destructive" ? { change: "dropTable" as const } : {}),
        });
    for (const role of ["kafka", "mv", "dlqMv", "target", "dlq", "rebuild"] as const) {
        const keepsRows = role === "target" || role === "dlq" || role === "rebuild";
        if (actual?.detached.includes(role)) {
            // Its comment (the ownership marker) is unreadable while detached: attach it only;
            // the next round reads it and drops it if it is this stream's.
            statements.push({
                sql: `ATTACH TABLE IF NOT EXISTS ${ref(role)}`,
                kind: "in-place",
                summary: `attach ${names[role]}, found detached, to read whose it is`,
            });
            continue;
        }
        const t = actual?.tables[role];
        if (!t) continue;
        const o = ownership(t.comment, role, [stream], options.stack);
        const own =
            o.kind === "own" || (o.kind !== "otherStream" && options.adoptUnmarked === true);
        if (!own) {
            notes.push(
                `${options.database}.${t.name} (${t.engine}) is not stream ${stream}'s (${o.kind === "unmarked" ? "no ownership marker" : `marked ${markerText(o.marker)}`}); left in place`,
            );
            continue;
        }
        if (!keepsRows) {
            if (!ROWLESS_ENGINES.has(t.engine)) {
                notes.push(
                    `${names[role]} is a ${t.engine} table holding rows, not a stream object; left in place`,
                );
                continue;
            }
            drop(
                role,
                "rebuild",
                role === "kafka"
                    ? "stop consumption: drop the Kafka table"
                    : `drop view ${names[role]}`,
            );
        } else if (options.dropTargetOnDelete) {
            drop(role, "destructive", `drop ${names[role]} and its rows (dropTargetOnDelete)`);
        } else {
            notes.push(
                `${names[role]} is kept with its rows (set dropTargetOnDelete: true to drop it)`,
            );
        }
    }
    return { database: options.database, stream, statements, refusals: [], notes };
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function sameList(a: readonly string[], b: readonly string[]): boolean {
    return a.length === b.length && a.every((x, i) => x === b[i]);
}
