/**
 * The desired state: a stream spec and the plan options, validated and rendered into the pieces
 * the DDL is made of (column definitions, keys, Kafka settings, the views' queries, ownership
 * comments). Built once per plan; `withGroup` adjusts it to the consumer group the live objects
 * already use.
 */
import { IDENTIFIER, StreamSpec } from "../../../schemas/model";
import {
    StreamObjectNames,
    StreamObjectRole,
    defaultConsumerGroup,
    streamObjectNames,
} from "../../../schemas/naming";
import { columnsOf, parseExpression, renderExpression } from "../../../schemas/expr";
import { SqlInputError, qualified, quoteIdent, quoteString } from "../../../schemas/sql";
import { parseType } from "../../../schemas/types";
import { SourceRendering, renderSources } from "../../../schemas/sources";
import { withMarker } from "../ownership";
import type { PlanOptions } from "./types";

/** Dead-letter table layout (contract: topic, partition, offset, raw_message, error, received_at). */
export const DLQ_COLUMNS: ReadonlyArray<{
    name: string;
    type: string;
    select: string;
    default?: string;
}> = [
    { name: "topic", type: "LowCardinality(String)", select: "_topic" },
    { name: "partition", type: "UInt64", select: "_partition" },
    { name: "offset", type: "UInt64", select: "_offset" },
    { name: "key", type: "String", select: "_key" },
    { name: "raw_message", type: "String", select: "_raw_message" },
    { name: "error", type: "String", select: "_error" },
    { name: "received_at", type: "DateTime64(3)", select: "now64(3)", default: "now64(3)" },
];

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
 * `group`: the consumer group to read with. @default the stream's, else the database's default
 */
export function buildDesired(spec: StreamSpec, options: PlanOptions, group?: string): Desired {
    const db = options.database;
    const brokers = checkNames(spec, options);
    const columns = desiredColumns(spec);
    // Kafka columns and the views' expressions per source path (nested, required): sources.ts.
    const sources = renderSources(
        {
            format: spec.format,
            formatSettings: spec.formatSettings,
            columns: spec.columns.map((c, i) => ({ ...c, ...columns[i]! })),
        },
        qualified(db, streamObjectNames(spec.name).kafka),
    );
    const keys = desiredKeys(spec, columns);
    const engineArgs = engineArgsOf(spec, columns);
    if (
        spec.description !== undefined &&
        CONTROL_CHARS.test(spec.description.replace(/\n/g, " "))
    ) {
        throw new SqlInputError("description may not contain control characters");
    }
    const comment = (spec.description ?? "").replace(/\s*\n\s*/g, " ").trim();
    const consumerGroup =
        group ?? spec.consumer.group ?? defaultConsumerGroup(options.database, spec.name);
    const names = streamObjectNames(spec.name);
    return {
        spec,
        stack: options.stack,
        db,
        names,
        columns,
        kafkaColumns: [...sources.kafkaColumns],
        engine: spec.engine.type,
        engineArgs,
        ...keys,
        comment,
        group: consumerGroup,
        comments: markedComments(spec.name, options.stack, consumerGroup, comment),
        kafkaEngineArgs: options.kafkaNamedCollection ?? "",
        kafkaSettings: kafkaSettings(spec, options, brokers, consumerGroup, sources),
        ...viewQueries(spec, qualified(db, names.kafka), names, sources),
        deadLetter: spec.onError === "deadLetter",
        dlqTtl: `toDateTime(received_at) + INTERVAL ${spec.deadLetterTtlDays} DAY`,
    };
}

/** Checks the names the DDL interpolates; returns the broker list, normalised. */
function checkNames(spec: StreamSpec, options: PlanOptions): string {
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
    return brokers;
}

/** The target's columns: names checked, types and defaults in their canonical spelling. */
function desiredColumns(spec: StreamSpec): DesiredColumn[] {
    return spec.columns.map((c) => {
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
}

/** ORDER BY, PARTITION BY and TTL, parsed and rendered from the tree: one expression reaches DDL. */
function desiredKeys(
    spec: StreamSpec,
    columns: readonly DesiredColumn[],
): Pick<Desired, "orderBy" | "orderByColumns" | "partitionBy" | "ttl"> {
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
    return { orderBy, orderByColumns, partitionBy, ttl };
}

/** The engine's argument: ReplacingMergeTree's version column, which must be a column. */
function engineArgsOf(spec: StreamSpec, columns: readonly DesiredColumn[]): string {
    if (spec.engine.type !== "ReplacingMergeTree" || spec.engine.version === undefined) return "";
    const version = spec.engine.version;
    if (!columns.some((c) => c.name === version)) {
        throw new SqlInputError(`version column '${version}' is not among the columns`);
    }
    return version;
}

/** The Kafka engine's SETTINGS, in DDL order, values as SQL literals. */
function kafkaSettings(
    spec: StreamSpec,
    options: PlanOptions,
    brokers: string,
    group: string,
    sources: SourceRendering,
): Array<readonly [string, string]> {
    const partitions = spec.topic.partitions;
    const consumers =
        spec.consumer.consumers ??
        Math.max(1, Math.min(partitions, options.maxDefaultConsumers ?? 1));
    const settings: Array<readonly [string, string]> = [
        ["kafka_broker_list", sqlLiteral("kafkaBrokers", brokers)],
        ["kafka_topic_list", sqlLiteral("topic name", spec.topic.name)],
        groupSetting(group),
        ["kafka_format", sqlLiteral("format", spec.format)],
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
    if (spec.onError === "deadLetter") settings.push(["kafka_handle_error_mode", "'stream'"]);
    settings.push(...formatSettings(spec), ...sources.kafkaSettings);
    return settings;
}

/** The stream's format settings, checked against the families the Kafka engine accepts. */
function formatSettings(spec: StreamSpec): Array<readonly [string, string]> {
    return Object.keys(spec.formatSettings)
        .sort()
        .map((key) => {
            if (!/^(input_format|format|date_time_input_format)[a-z0-9_]*$/.test(key)) {
                throw new SqlInputError(
                    `format setting '${key}' is not allowed: use input_format_*, format_* or date_time_input_format`,
                );
            }
            const v = spec.formatSettings[key]!;
            const text =
                typeof v === "string"
                    ? sqlLiteral(`format setting ${key}`, v)
                    : typeof v === "boolean"
                      ? v
                          ? "1"
                          : "0"
                      : numberLiteral(key, v);
            return [key, text] as const;
        });
}

/**
 * The two views' queries. Rows failing a source check (missing required field, unreadable nested
 * value) go where unparsable messages go: the dead-letter table, or with onError: fail, an error
 * that stops the consumer (throwIf's message must be constant, so it names every checked field).
 */
function viewQueries(
    spec: StreamSpec,
    kafkaRef: string,
    names: StreamObjectNames,
    sources: SourceRendering,
): Pick<Desired, "mvSelect" | "dlqSelect"> {
    const reject = sources.reject;
    const mvWhere =
        spec.onError === "deadLetter"
            ? ` WHERE length(_error) = 0${reject ? ` AND NOT (${reject})` : ""}`
            : reject
              ? ` WHERE throwIf(${reject}, ${quoteString(`stream ${spec.name}: a message lacks a required field or has a value that cannot be read (checked: ${sources.checkedFields.join(", ")}); onError: deadLetter keeps such messages in ${names.dlq}`)}) = 0`
              : "";
    const rejected: Readonly<Record<string, string>> = {
        error: sources.rejectError,
        raw_message: sources.rebuiltMessage,
    };
    const dlqItems = DLQ_COLUMNS.map((c) =>
        reject && rejected[c.name] !== undefined
            ? `if(length(_error) > 0, ${c.select}, ${rejected[c.name]}) AS ${quoteIdent(c.name)}`
            : `${c.select} AS ${quoteIdent(c.name)}`,
    );
    return {
        mvSelect: `SELECT ${sources.selectItems.join(", ")} FROM ${kafkaRef}${mvWhere}`,
        dlqSelect: `SELECT ${dlqItems.join(", ")} FROM ${kafkaRef} WHERE length(_error) > 0${reject ? ` OR ${reject}` : ""}`,
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
