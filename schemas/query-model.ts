import { z } from "zod";
import { IDENTIFIER } from "./model";

/**
 * The declared-query format: one file per query under `schemas/queries/`. Each becomes a
 * Kubernetes CronJob (scheduled) or Job (`schedule: once`) that sends one request to ClickHouse's
 * HTTP interface (components/jobs/). This zod schema is the single source of truth;
 * `schemas/query.schema.json` (for editors) is generated from it by `npm run generate`.
 */

/** Query names become Kubernetes object names (`<clickhouse>-<name>`; a CronJob allows 52). */
export const QUERY_NAME = /^[a-z]([-a-z0-9]{0,28}[a-z0-9])?$/;
/** Object keys and relative paths on a volume: no `..`, no absolute path, no shell specials. */
export const RELATIVE_PATH = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
/** Kubernetes object names (Secrets, PVCs). */
const K8S_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const DATA_FORMATS = [
    "Parquet",
    "Native",
    "JSONEachRow",
    "CSV",
    "CSVWithNames",
    "TabSeparated",
    "TabSeparatedWithNames",
    "Arrow",
] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];
export const COMPRESSIONS = ["none", "gzip", "zstd"] as const;
export type Compression = (typeof COMPRESSIONS)[number];

const k8sName = (what: string) =>
    z
        .string()
        .regex(K8S_NAME, `${what} must be a Kubernetes object name (lower-case, digits, '-')`);

const s3Schema = z
    .object({
        url: z
            .string()
            .regex(
                /^https?:\/\/[^\s'"\\]+$/,
                "an http(s) URL of the object, e.g. https://bucket.s3.eu-west-1.amazonaws.com/exports/orders.parquet",
            )
            .describe("Object URL (s3() table function); sent as a query parameter."),
        secret: k8sName("secret").describe(
            "Secret in the stack's namespace holding the access key (keys `access-key-id`, `secret-access-key`).",
        ),
    })
    .strict();

const volumeSchema = z
    .object({
        claim: k8sName("claim").describe("PersistentVolumeClaim the Job mounts."),
        path: z
            .string()
            .regex(
                RELATIVE_PATH,
                "a relative path inside the volume (letters, digits, '.', '_', '-', '/'; no '..')",
            )
            .describe("File inside the volume."),
    })
    .strict();

const parameterValue = z.union([z.string().max(4096), z.number(), z.boolean()]);

export const querySchema = z
    .object({
        name: z
            .string()
            .regex(
                QUERY_NAME,
                "query name must be lower-case letters, digits and '-' (at most 30, starting with a letter)",
            )
            .describe("Names the CronJob or Job (`<clickhouse>-<name>`)."),
        description: z.string().max(500).optional(),
        schedule: z
            .union([
                z.literal("once"),
                z
                    .object({
                        cron: z.string().describe("Five-field cron expression, e.g. `0 6 * * *`."),
                        timeZone: z
                            .string()
                            .default("Etc/UTC")
                            .describe("IANA time zone of the schedule, e.g. Europe/Berlin."),
                    })
                    .strict(),
            ])
            .describe("`once`: a Job that runs when created; else a CronJob on this schedule."),
        user: z
            .enum(["readonly", "admin"])
            .default("readonly")
            .describe(
                "Which of the stack's ClickHouse users it runs as (credentials from its Secret). Writes need admin.",
            ),
        timeoutSeconds: z
            .number()
            .int()
            .min(1)
            .max(86_400)
            .default(60)
            .describe(
                "Longest one attempt may run (max_execution_time and the client's limit). The read-only user's profile caps it at 60.",
            ),
        retries: z
            .number()
            .int()
            .min(0)
            .max(10)
            .default(2)
            .describe("Attempts after a failed one (the Job's backoffLimit)."),
        parameters: z
            .record(z.string().regex(IDENTIFIER, "parameter names are snake_case"), parameterValue)
            .default({})
            .describe(
                "Values of the `{name:Type}` placeholders of `sql`, sent as `param_<name>`; never spliced into the SQL.",
            ),
        resources: z
            .object({
                cpu: z.string().regex(/^\d+(\.\d+)?m?$/, "a CPU quantity such as 100m or 1"),
                memory: z
                    .string()
                    .regex(/^\d+(Ki|Mi|Gi)?$/, "a memory quantity such as 64Mi or 1Gi"),
            })
            .strict()
            .default({ cpu: "50m", memory: "64Mi" })
            .describe(
                "Requests and limits of the Job's container (the client only; ClickHouse does the work).",
            ),
        sql: z
            .string()
            .min(1)
            .max(100_000)
            .optional()
            .describe("One statement. Required unless `import` is given."),
        export: z
            .object({
                format: z.enum(DATA_FORMATS),
                compression: z.enum(COMPRESSIONS).default("none"),
                to: z.union([
                    z.object({ s3: s3Schema }).strict(),
                    z.object({ volume: volumeSchema }).strict(),
                ]),
            })
            .strict()
            .optional()
            .describe("Write the result of `sql` to object storage or to a file on a volume."),
        import: z
            .object({
                table: z
                    .string()
                    .regex(IDENTIFIER, "a table of the ingestion database (snake_case)"),
                format: z.enum(DATA_FORMATS),
                compression: z.enum(COMPRESSIONS).default("none"),
                from: z.union([
                    z.object({ s3: s3Schema }).strict(),
                    z
                        .object({
                            url: z.string().regex(/^https?:\/\/[^\s'"\\]+$/, "an http(s) URL"),
                        })
                        .strict(),
                    z.object({ volume: volumeSchema }).strict(),
                ]),
            })
            .strict()
            .optional()
            .describe("Insert data from object storage, a URL or a file on a volume into a table."),
    })
    .strict();

export type QueryInput = z.input<typeof querySchema>;
export type QuerySpec = z.output<typeof querySchema>;
export type ExportSpec = NonNullable<QuerySpec["export"]>;
export type ImportSpec = NonNullable<QuerySpec["import"]>;

export interface LoadedQuery {
    readonly file: string;
    readonly spec: QuerySpec;
}
