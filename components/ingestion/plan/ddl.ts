/**
 * DDL text rendered from the desired state: CREATE statements for each of a stream's objects,
 * column definitions, and the read-only queries that measure a destructive statement's impact.
 */
import { qualified, quoteIdent, quoteString } from "../../../schemas/sql";
import { DLQ_COLUMNS, Desired, DesiredColumn } from "./desired";
import type { ImpactQuery } from "./types";

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

export function columnDef(c: DesiredColumn): string {
    return [
        quoteIdent(c.name),
        c.type,
        ...(c.default !== undefined ? [`DEFAULT ${c.default}`] : []),
        ...(c.comment ? [`COMMENT ${quoteString(c.comment)}`] : []),
    ].join(" ");
}

export function targetDdl(d: Desired, table: string): string {
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

export function kafkaDdl(d: Desired): string {
    const engine = d.kafkaEngineArgs ? `Kafka(${quoteIdent(d.kafkaEngineArgs)})` : "Kafka";
    return (
        `CREATE TABLE IF NOT EXISTS ${qualified(d.db, d.names.kafka)} (${d.kafkaColumns.map(columnDef).join(", ")}) ` +
        `ENGINE = ${engine} SETTINGS ${d.kafkaSettings.map(([k, v]) => `${k} = ${v}`).join(", ")} ` +
        `COMMENT ${quoteString(d.comments.kafka)}`
    );
}

export function placeholderDdl(d: Desired): string {
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

export function dlqDdl(d: Desired): string {
    const cols = DLQ_COLUMNS.map(
        (c) => `${quoteIdent(c.name)} ${c.type}${c.default ? ` DEFAULT ${c.default}` : ""}`,
    );
    return (
        `CREATE TABLE IF NOT EXISTS ${qualified(d.db, d.names.dlq)} (${cols.join(", ")}) ENGINE = MergeTree ` +
        `PARTITION BY toYYYYMMDD(received_at) ORDER BY (topic, partition, offset) TTL ${d.dlqTtl} ` +
        `SETTINGS ttl_only_drop_parts = 1 COMMENT ${quoteString(d.comments.dlq)}`
    );
}

export function mvDdl(d: Desired, which: "mv" | "dlqMv"): string {
    const to = which === "mv" ? d.names.target : d.names.dlq;
    const select = which === "mv" ? d.mvSelect : d.dlqSelect;
    return `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(d.db, d.names[which])} TO ${qualified(d.db, to)} COMMENT ${quoteString(d.comments[which])} AS ${select}`;
}

/**
 * The query measuring a destructive statement on the live table: rows in it, rows affected
 * (`condition`, or all of them), and its size on disk. Read-only; names are validated identifiers.
 */
export function impactQuery(
    db: string,
    table: string,
    verb: string,
    condition?: string,
): ImpactQuery {
    return {
        verb,
        sql:
            `SELECT count() AS total, ${condition !== undefined ? `countIf(${condition})` : "count()"} AS affected, ` +
            `(SELECT any(total_bytes) FROM system.tables WHERE database = ${quoteString(db)} AND name = ${quoteString(table)}) AS bytes ` +
            `FROM ${qualified(db, table)}`,
    };
}

/** Rows a TTL deletes now: those whose TTL expression is already in the past. */
export function ttlCondition(ttl: string): string {
    const expr = ttl.replace(/\s+DELETE\s*$/i, "");
    return `(${expr}) <= now()`;
}
