import { z } from "zod";

/**
 * The stream schema format: one file per stream under `schemas/streams/`.
 * This zod schema is the single source of truth; `schemas/stream.schema.json` (for editors) is
 * generated from it by `npm run schemas:jsonschema` and a unit test keeps the two in sync.
 */

/** Stream, column and database names become unquoted-safe ClickHouse identifiers. */
export const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** Kafka topic names: Kafka's own rule (legal chars, at most 249). */
export const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
/** The Kafka user ClickHouse consumes as (Strimzi mode); no producer may take its name. */
export const CONSUMER_KAFKA_USER = "clickhouse";
/** Kafka user names the stack creates: Kubernetes object names (a KafkaUser and its Secret). */
export const KAFKA_USER_NAME = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

const identifier = (what: string) =>
    z
        .string()
        .regex(
            IDENTIFIER,
            `${what} must be lower-case snake_case: a letter or _ then letters, digits or _ (at most 63)`,
        );

export const topicSchema = z
    .object({
        name: z
            .string()
            .regex(TOPIC_NAME, "topic name may use only letters, digits, '.', '_' and '-' (1-249)")
            .describe("Kafka topic the stream reads."),
        partitions: z
            .number()
            .int()
            .min(1, "a topic needs at least 1 partition")
            .max(10000)
            .default(3)
            .describe("Number of partitions. Kafka can only ever increase it."),
        replicas: z
            .number()
            .int()
            .min(1)
            .max(32)
            .optional()
            .describe(
                "Replication factor. Default: derived from the broker count (min(3, brokers)).",
            ),
        retentionMs: z
            .number()
            .int()
            .min(-1)
            .default(604_800_000)
            .describe("retention.ms; -1 keeps messages forever. Default 7 days."),
        cleanupPolicy: z
            .enum(["delete", "compact", "compact,delete"])
            .default("delete")
            .describe("cleanup.policy of the topic."),
        config: z
            .record(
                z
                    .string()
                    .regex(/^[a-z][a-z0-9.]*$/, "topic config keys look like 'segment.bytes'"),
                z.union([z.string(), z.number(), z.boolean()]),
            )
            .default({})
            .describe("Further topic configs passed as they are (e.g. segment.bytes)."),
        producers: z
            .array(
                z
                    .string()
                    .regex(
                        KAFKA_USER_NAME,
                        "producer names are Kafka users: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (at most 63)",
                    ),
            )
            .default([])
            .refine((p) => new Set(p).size === p.length, "a producer is listed twice")
            .refine(
                (p) => !p.includes(CONSUMER_KAFKA_USER),
                `'${CONSUMER_KAFKA_USER}' is the user ClickHouse consumes as; give the producer a name of its own`,
            )
            .describe(
                "Kafka users allowed to write this topic (Write and Describe on it, nothing else). Strimzi mode makes each a KafkaUser with a SCRAM password in the Secret <cluster>-<user>-scram; external mode adds the ACLs for User:<name>.",
            ),
    })
    .strict();

export const columnSchema = z
    .object({
        name: identifier("column name").describe("Column name in the target table."),
        type: z
            .string()
            .min(1)
            .describe(
                "ClickHouse type, e.g. String, LowCardinality(String), DateTime64(3, 'UTC').",
            ),
        source: z
            .string()
            .min(1)
            .max(255)
            .regex(
                /^[^\u0000-\u001f`]+$/,
                "source field names may not contain control characters or backticks",
            )
            .optional()
            .describe(
                "Field of the message that fills the column; a dotted path (user.id) reads inside objects, '\\.' is a dot inside a key. Default: the column name.",
            ),
        required: z
            .boolean()
            .optional()
            .describe(
                "JSONEachRow only: a message without this field (missing or null) goes to the dead-letter table instead of the target. Default false: the column's default applies.",
            ),
        default: z
            .string()
            .min(1)
            .optional()
            .describe("SQL expression used when the field is absent from the message."),
        comment: z.string().max(500).optional().describe("Column comment."),
    })
    .strict();

/** Aggregate functions a rollup measure may use. */
export const ROLLUP_FUNCTIONS = ["count", "sum", "min", "max", "avg", "uniq", "uniqExact"] as const;
export type RollupFunction = (typeof ROLLUP_FUNCTIONS)[number];
/** A rollup's bucket width: `N second|minute|hour|day` (a plural `s` is accepted). */
export const ROLLUP_INTERVAL = /^([1-9][0-9]{0,5}) (second|minute|hour|day)s?$/;

export const rollupMeasureSchema = z
    .object({
        name: identifier("measure name").describe(
            "Column of the rollup table holding the measure.",
        ),
        fn: z
            .enum(ROLLUP_FUNCTIONS)
            .describe("Aggregate: count, sum, min, max, avg, uniq (approximate) or uniqExact."),
        column: identifier("measure column")
            .optional()
            .describe("The stream column aggregated; every function but count needs one."),
    })
    .strict();

export const rollupSchema = z
    .object({
        name: identifier("rollup name").describe(
            "Rollup name: its table is <stream>_<name>, its view <stream>_<name>_mv.",
        ),
        time: identifier("time column").describe(
            "DateTime or DateTime64 column of the stream that places a row in its bucket.",
        ),
        interval: z
            .string()
            .regex(
                ROLLUP_INTERVAL,
                "interval is 'N second', 'N minute', 'N hour' or 'N day' (N from 1 to 999999), e.g. '1 minute'",
            )
            .describe("Bucket width, e.g. '1 minute', '15 minute', '1 hour', '1 day'."),
        by: z
            .array(identifier("key column"))
            .default([])
            .describe("Stream columns the rollup groups by, after the bucket."),
        measures: z
            .array(rollupMeasureSchema)
            .min(1, "a rollup needs at least one measure")
            .describe("Aggregates kept per bucket and key."),
        backfill: z
            .boolean()
            .default(false)
            .describe(
                "Created over an existing target: snapshot its rows into <stream>_<name>_backfill for the backfill job to aggregate (exactly the rows the view did not see).",
            ),
    })
    .strict();

export const streamSchema = z
    .object({
        $schema: z.string().optional(),
        name: identifier("stream name").describe(
            "Stream name: prefixes its tables (<name>, <name>_kafka, <name>_mv, <name>_dlq).",
        ),
        description: z.string().max(1000).optional(),
        renamedFrom: identifier("previous stream name")
            .optional()
            .describe(
                "The stream's previous name: its tables are renamed and its consumer group kept. Without it, a renamed stream starts an empty table and a new group.",
            ),
        topic: topicSchema,
        format: z
            .enum(["JSONEachRow", "CSV", "TSV"])
            .default("JSONEachRow")
            .describe("ClickHouse input format of the messages."),
        formatSettings: z
            .record(
                z
                    .string()
                    .regex(
                        /^(input_format|format|date_time_input_format)[a-z0-9_]*$/,
                        "format settings start with input_format_, format_ or date_time_input_format",
                    ),
                z.union([z.string(), z.number(), z.boolean()]),
            )
            .default({})
            .describe(
                "Input format settings applied on the Kafka table (e.g. input_format_skip_unknown_fields: 1).",
            ),
        columns: z.array(columnSchema).min(1, "a stream needs at least one column"),
        orderBy: z
            .array(z.string().min(1))
            .min(1, "orderBy needs at least one column or expression")
            .describe("ORDER BY (sorting key) of the target table."),
        partitionBy: z.string().min(1).optional().describe("PARTITION BY expression."),
        ttl: z
            .string()
            .min(1)
            .optional()
            .describe("TTL expression, e.g. `event_time + INTERVAL 90 DAY`."),
        engine: z
            .discriminatedUnion("type", [
                z.object({ type: z.literal("MergeTree") }).strict(),
                z
                    .object({
                        type: z.literal("ReplacingMergeTree"),
                        version: identifier("version column")
                            .optional()
                            .describe("Column holding the row version; the highest wins on merge."),
                    })
                    .strict(),
            ])
            .default({ type: "MergeTree" })
            .describe(
                "Target engine. ReplacingMergeTree deduplicates rows with the same ORDER BY key.",
            ),
        consumer: z
            .object({
                group: z
                    .string()
                    .regex(TOPIC_NAME)
                    .optional()
                    .describe("Consumer group. Default: clickhouse-<stream name>."),
                consumers: z
                    .number()
                    .int()
                    .min(1)
                    .optional()
                    .describe(
                        "kafka_num_consumers. Default: derived from partitions; never above them.",
                    ),
                maxBlockSize: z.number().int().min(1).optional().describe("kafka_max_block_size."),
                flushIntervalMs: z
                    .number()
                    .int()
                    .min(1)
                    .optional()
                    .describe(
                        "kafka_flush_interval_ms. Default 500: p95 produce-to-queryable under 1 s (see the README's benchmark).",
                    ),
                pollMaxBatchSize: z
                    .number()
                    .int()
                    .min(1)
                    .optional()
                    .describe("kafka_poll_max_batch_size."),
            })
            .strict()
            .default({}),
        onError: z
            .enum(["deadLetter", "fail"])
            .default("deadLetter")
            .describe(
                "deadLetter: unparsable messages go to <name>_dlq with their raw text and error; fail: the consumer stops on them.",
            ),
        rollups: z
            .array(rollupSchema)
            .optional()
            .describe(
                "Pre-aggregated tables kept by materialized views over the target (AggregatingMergeTree <stream>_<name>).",
            ),
        deadLetterTtlDays: z
            .number()
            .int()
            .min(1)
            .default(30)
            .describe("Days the dead-letter table keeps a rejected message."),
    })
    .strict();

export type TopicSpec = z.output<typeof topicSchema>;
export type ColumnSpec = z.output<typeof columnSchema>;
export type StreamSpec = z.output<typeof streamSchema>;
export type RollupSpec = z.output<typeof rollupSchema>;
export type RollupMeasureSpec = z.output<typeof rollupMeasureSchema>;
export type StreamInput = z.input<typeof streamSchema>;

/** A stream as loaded: its spec and the file it came from (for error messages). */
export interface LoadedStream {
    readonly file: string;
    readonly spec: StreamSpec;
}
