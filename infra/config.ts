import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { DESTRUCTIVE_CHANGES, type DestructiveChange } from "../components/ingestion/planner";
import { kraftMetadataVersion, releaseLine } from "../components/kafka/manifests";
import { VERSION_DEFAULTS } from "../schemas/naming";
import { NETWORK_KEYS, networkProblems } from "./config-network";
import { TRANSPORT_SECURITY_KEYS, transportSecurityProblems } from "./config-tls";

/**
 * Stack configuration: every key, its type and default, in one zod schema. `Pulumi.yaml`
 * declares the same keys (a unit test keeps the two in sync); `Pulumi.<stack>.yaml` holds only
 * what differs per environment. Config is read and validated once, before any resource exists.
 */

const quantity = z
    .string()
    .regex(
        /^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/,
        "must be a Kubernetes quantity such as 500m, 2Gi or 20Gi",
    );
const dnsLabel = z
    .string()
    .regex(
        /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/,
        "must be a DNS label: lower-case letters, digits and '-'",
    );

const DEFAULT_METADATA_VERSION = kraftMetadataVersion(VERSION_DEFAULTS.kafka)!;

export const configSchema = z
    .object({
        namespace: dnsLabel
            .default("kafka-clickhouse")
            .describe("Kubernetes namespace for every object of the stack."),
        createNamespace: z
            .boolean()
            .default(true)
            .describe(
                "Create the namespace (false if it is managed elsewhere), labelled to enforce Pod Security 'restricted'.",
            ),
        streamsDir: z
            .string()
            .min(1)
            .default("schemas/streams")
            .describe("Folder of stream files, relative to the project root."),
        queriesDir: z
            .string()
            .min(1)
            .default("schemas/queries")
            .describe(
                "Folder of declared query files (CronJobs and Jobs), relative to the project root; none when it does not exist.",
            ),

        kafkaMode: z
            .enum(["strimzi", "external"])
            .default("strimzi")
            .describe(
                "strimzi: a Strimzi-managed cluster in this stack; external: an existing cluster reached with SASL.",
            ),
        kafkaClusterName: dnsLabel
            .default("events")
            .describe("Name of the Kafka CR (Strimzi mode)."),
        kafkaVersion: z
            .string()
            .regex(/^\d+\.\d+\.\d+$/)
            .default(VERSION_DEFAULTS.kafka)
            .describe("Kafka version Strimzi runs."),
        kafkaMetadataVersion: z
            .string()
            .regex(/^\d+\.\d+(-IV\d+)?$/, "must be a KRaft metadata version such as 4.3-IV0")
            .default(DEFAULT_METADATA_VERSION)
            .describe(
                "KRaft metadata version, pinned: raise it after a Kafka upgrade has settled (it cannot be lowered).",
            ),
        kafkaBrokers: z.number().int().min(1).max(64).default(1).describe("Broker count."),
        kafkaControllers: z
            .number()
            .int()
            .min(0)
            .max(9)
            .default(0)
            .describe(
                "Dedicated KRaft controllers; 0 runs the brokers in dual role (broker+controller).",
            ),
        kafkaStorageSize: quantity
            .default("10Gi")
            .describe("Persistent volume size per Kafka node."),
        kafkaStorageClass: z
            .string()
            .default("")
            .describe("Storage class for Kafka volumes; empty uses the cluster default."),
        kafkaEphemeralStorage: z
            .boolean()
            .default(false)
            .describe("Use emptyDir storage for Kafka (throwaway stacks only)."),
        kafkaBrokerCpu: quantity.default("500m").describe("CPU request per broker."),
        kafkaBrokerMemory: quantity.default("2Gi").describe("Memory request and limit per broker."),
        kafkaControllerCpu: quantity
            .default("250m")
            .describe("CPU request per dedicated controller (kafkaControllers > 0)."),
        kafkaControllerMemory: quantity
            .default("1Gi")
            .describe("Memory request and limit per dedicated controller."),
        kafkaControllerStorageSize: quantity
            .default("5Gi")
            .describe(
                "Persistent volume size per dedicated controller (the metadata log only; same storage class as the brokers).",
            ),
        kafkaPlainListener: z
            .boolean()
            .default(false)
            .describe(
                "Add a plain (non-TLS, still SCRAM-authenticated) internal listener on 9092.",
            ),
        kafkaMetrics: z
            .boolean()
            .default(false)
            .describe("Expose Kafka metrics with the Prometheus JMX exporter."),
        kafkaWaitForReady: z
            .boolean()
            .default(true)
            .describe(
                "Wait for what Strimzi reports (pulumi.com/waitFor): Kafka Ready with listeners, topics Ready, the user Ready with its Secret; node pools never. Off where no operator runs.",
            ),

        strimziInstall: z
            .boolean()
            .default(false)
            .describe("Install the Strimzi operator from its pinned Helm chart."),
        strimziChartVersion: z
            .string()
            .default(VERSION_DEFAULTS.strimzi)
            .describe("Strimzi Helm chart version."),
        strimziCrdSource: z
            .enum(["upstream", "path"])
            .default("upstream")
            .describe(
                "upstream: the release's CRD file (strimzi-crds-<version>.yaml), applied by the stack so a version bump updates them; path: the CRD YAML files in strimziCrdPath.",
            ),
        strimziCrdPath: z
            .string()
            .default("")
            .describe("Folder of Strimzi CRD YAML files (air-gapped installs)."),

        kafkaExternalBootstrap: z
            .string()
            .default("")
            .describe("External mode: bootstrap servers, host:port[,host:port]."),
        kafkaExternalSaslMechanism: z
            .enum(["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "none"])
            .default("SCRAM-SHA-512")
            .describe("External mode: SASL mechanism, or none."),
        kafkaExternalUsername: z.string().default("").describe("External mode: SASL user name."),
        kafkaExternalTls: z.boolean().default(true).describe("External mode: connect with TLS."),
        kafkaExternalReplicas: z
            .number()
            .int()
            .min(1)
            .default(3)
            .describe("External mode: replication factor of created topics."),

        clickhouseName: dnsLabel
            .default("clickhouse")
            .describe("Name of the ClickHouse StatefulSet and Services."),
        clickhouseImage: z
            .string()
            .regex(
                /^[^\s:]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/,
                `must be an image reference such as ${VERSION_DEFAULTS.clickhouseImage}`,
            )
            .default(VERSION_DEFAULTS.clickhouseImage)
            .describe("ClickHouse server image (pinned LTS)."),
        queryImage: z
            .string()
            .regex(
                /^[^\s:]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/,
                `must be an image reference such as ${VERSION_DEFAULTS.queryImage}`,
            )
            .default(VERSION_DEFAULTS.queryImage)
            .describe(
                "Image of the declared queries' Jobs: curl 8.x with /bin/sh (pin a digest with repo:tag@sha256:...).",
            ),
        clickhouseReplicas: z
            .number()
            .int()
            .min(1)
            .max(16)
            .default(1)
            .describe("ClickHouse pods (independent replicas)."),
        clickhouseStorageSize: quantity
            .default("20Gi")
            .describe("Data volume size per ClickHouse pod."),
        clickhouseStorageClass: z
            .string()
            .default("")
            .describe("Storage class for ClickHouse volumes; empty uses the cluster default."),
        clickhouseVolumeRetention: z
            .enum(["Retain", "Delete"])
            .default("Retain")
            .describe(
                "ClickHouse PVCs when the StatefulSet is deleted or scaled down (persistentVolumeClaimRetentionPolicy); deleting the namespace deletes them regardless.",
            ),
        clickhouseEphemeralStorage: z
            .boolean()
            .default(false)
            .describe("Use emptyDir for ClickHouse data (throwaway stacks only)."),
        clickhouseCpu: quantity.default("1").describe("CPU request per ClickHouse pod."),
        clickhouseMemory: quantity
            .default("4Gi")
            .describe("Memory request and limit per ClickHouse pod."),
        clickhouseLogLevel: z
            .enum(["trace", "debug", "information", "warning", "error"])
            .default("information")
            .describe("ClickHouse server log level."),
        clickhouseSystemLogTtlDays: z
            .number()
            .int()
            .min(0)
            .max(3650)
            .default(7)
            .describe(
                "Days ClickHouse keeps its system log tables (query_log, trace_log, metric_log, ...); 0 keeps the image's defaults (most grow without limit).",
            ),
        ...TRANSPORT_SECURITY_KEYS,
        ...NETWORK_KEYS,
        clickhouseDatabase: z
            .string()
            .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case snake_case identifier")
            .default("ingest")
            .describe("Database holding the ingestion tables."),

        protectData: z
            .boolean()
            .default(false)
            .describe(
                "Pulumi protect on what holds data (namespace, Kafka cluster, node pools and topics, ClickHouse StatefulSet): destroy and replacements stop there until it is turned off.",
            ),

        ingestionEnabled: z.boolean().default(true).describe("Apply the streams' ingestion DDL."),
        ingestionConnection: z
            .enum(["port-forward", "url", "embedded"])
            .default("port-forward")
            .describe(
                "How the DDL provider reaches ClickHouse: port-forward to the pod, a URL, or the embedded engine.",
            ),
        ingestionUrl: z
            .string()
            .default("")
            .describe("url mode: ClickHouse HTTP(S) URL, without credentials."),
        ingestionEmbeddedPath: z
            .string()
            .default("")
            .describe("embedded mode: data folder of the embedded engine."),
        ingestionKafkaBrokers: z
            .string()
            .default("")
            .describe(
                "Broker list written into the Kafka engine tables; empty derives it from the Kafka cluster.",
            ),
        ingestionUser: z
            .string()
            .default("")
            .describe(
                "ClickHouse user the DDL provider connects as; empty uses the admin user. Pull-request previews set a user that can only read system tables.",
            ),
        ingestionPasswordSecret: z
            .string()
            .default("")
            .describe(
                "Kubernetes Secret (key 'password', in the stack's namespace) holding ingestionUser's password.",
            ),
        allowDestructiveChanges: z
            .boolean()
            .default(false)
            .describe(
                "Let schema changes drop or retype columns, change ORDER BY or rebuild target tables.",
            ),
        allowDestructiveChangeKinds: z
            .string()
            .default("")
            .refine(
                (v) =>
                    v === "" ||
                    v
                        .split(",")
                        .every((k) =>
                            (DESTRUCTIVE_CHANGES as readonly string[]).includes(k.trim()),
                        ),
                {
                    message: `a comma-separated list of ${DESTRUCTIVE_CHANGES.join(", ")}`,
                },
            )
            .describe(
                "Destructive change kinds allowed while allowDestructiveChanges is false, comma-separated (e.g. ttl,dropColumn).",
            ),
        dropTargetOnDelete: z
            .boolean()
            .default(false)
            .describe(
                "Drop target tables (and their data) when a stream is removed; off keeps them.",
            ),
        ingestionAdoptExisting: z
            .boolean()
            .default(false)
            .describe(
                "Take over stream tables and views that carry no ownership marker (made by an earlier version, or a migrated stack); otherwise they are refused.",
            ),
    })
    .strict();

export type StackConfig = z.output<typeof configSchema>;
export type ConfigKey = keyof StackConfig;

/** What the DDL provider may do that deletes or rewrites rows: everything, some kinds, or nothing. */
export function destructiveAllowance(cfg: StackConfig): boolean | DestructiveChange[] {
    if (cfg.allowDestructiveChanges) return true;
    const kinds = cfg.allowDestructiveChangeKinds
        .split(",")
        .map((k) => k.trim())
        .filter((k) => k !== "") as DestructiveChange[];
    return kinds.length > 0 ? kinds : false;
}

/** Config keys that hold secrets: set them with `pulumi config set --secret`. */
export const SECRET_KEYS = ["kafkaExternalPassword", "clickhouseAdminPassword"] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** Thrown for bad configuration, before any resource is registered. */
export class ConfigError extends Error {
    constructor(
        readonly stackName: string,
        readonly problems: string[],
    ) {
        super(
            `invalid configuration for stack '${stackName}':\n${problems.map((p) => `  - ${p}`).join("\n")}`,
        );
        this.name = "ConfigError";
    }
}

/**
 * Parses raw config values (key without namespace -> string as Pulumi stores it) into the typed
 * config. Pure, so tests feed it the real Pulumi.<stack>.yaml files.
 */
export function parseConfig(
    raw: Record<string, string>,
    stack: string,
    project = "kafka-clickhouse-stack",
): StackConfig {
    const problems: string[] = [];
    const shape = configSchema.shape as Record<string, z.ZodTypeAny>;
    const values: Record<string, unknown> = {};
    for (const [key, text] of Object.entries(raw)) {
        if ((SECRET_KEYS as readonly string[]).includes(key)) continue;
        const field = shape[key];
        if (!field) {
            const hint = closest(key, [...Object.keys(shape), ...SECRET_KEYS]);
            problems.push(
                `${project}:${key}: unknown key${hint ? `; did you mean '${hint}'?` : ""} (remove it with 'pulumi config rm ${key}')`,
            );
            continue;
        }
        values[key] = coerce(text, expectedKind(field));
    }
    const parsed = configSchema.safeParse(values);
    if (!parsed.success) {
        for (const issue of parsed.error.issues) {
            const key = String(issue.path[0] ?? "");
            const at = issue.path.length > 1 ? ` (at ${issue.path.slice(1).join(".")})` : "";
            problems.push(
                `${project}:${key}: ${issue.message}${at} (got ${JSON.stringify(raw[key])})`,
            );
        }
    }
    if (problems.length > 0) throw new ConfigError(stack, problems);
    const cfg = parsed.data!;
    problems.push(...crossKeyProblems(cfg, project));
    if (problems.length > 0) throw new ConfigError(stack, problems);
    return cfg;
}

/** Combinations that cannot work, named with the keys to change. */
function crossKeyProblems(cfg: StackConfig, project: string): string[] {
    const p: string[] = [];
    p.push(...networkProblems(cfg, project));
    if (cfg.kafkaMode === "external" && cfg.kafkaExternalBootstrap === "") {
        p.push(
            `${project}:kafkaExternalBootstrap: required when kafkaMode is 'external' (host:port of the brokers)`,
        );
    }
    if (
        cfg.kafkaMode === "external" &&
        cfg.kafkaExternalSaslMechanism !== "none" &&
        cfg.kafkaExternalUsername === ""
    ) {
        p.push(
            `${project}:kafkaExternalUsername: required with SASL (or set kafkaExternalSaslMechanism to none)`,
        );
    }
    if (cfg.kafkaControllers !== 0 && cfg.kafkaControllers % 2 === 0) {
        p.push(
            `${project}:kafkaControllers: ${cfg.kafkaControllers} controllers cannot keep a majority better than ${cfg.kafkaControllers - 1}; use an odd number (1, 3 or 5)`,
        );
    }
    if (cfg.kafkaControllers === 0 && cfg.kafkaBrokers % 2 === 0) {
        p.push(
            `${project}:kafkaBrokers: dual-role nodes also form the KRaft quorum; use an odd number, or set kafkaControllers to 3`,
        );
    }
    const [kafkaMajor, kafkaMinor] = releaseLine(cfg.kafkaVersion)!;
    const [metaMajor, metaMinor] = releaseLine(cfg.kafkaMetadataVersion)!;
    if (metaMajor > kafkaMajor || (metaMajor === kafkaMajor && metaMinor > kafkaMinor)) {
        p.push(
            `${project}:kafkaMetadataVersion: ${cfg.kafkaMetadataVersion} is from a later release than kafkaVersion ${cfg.kafkaVersion}; use ${kraftMetadataVersion(cfg.kafkaVersion) ?? `${kafkaMajor}.${kafkaMinor}`} or lower`,
        );
    }
    if (cfg.clickhouseReplicas > 1) {
        p.push(
            `${project}:clickhouseReplicas: ${cfg.clickhouseReplicas} pods would each consume a share of the partitions into their own tables; replicated tables (Keeper + ReplicatedMergeTree) are not supported yet, so use 1`,
        );
    }
    if (cfg.strimziCrdSource === "path" && cfg.strimziCrdPath === "") {
        p.push(
            `${project}:strimziCrdPath: required when strimziCrdSource is 'path' (a folder of Strimzi CRD YAML files)`,
        );
    }
    if (cfg.ingestionEnabled && cfg.ingestionConnection === "url" && cfg.ingestionUrl === "") {
        p.push(`${project}:ingestionUrl: required when ingestionConnection is 'url'`);
    }
    if ((cfg.ingestionUser === "") !== (cfg.ingestionPasswordSecret === "")) {
        p.push(
            `${project}:${cfg.ingestionUser === "" ? "ingestionUser" : "ingestionPasswordSecret"}: set ingestionUser and ingestionPasswordSecret together (the user and the Secret with its password), or neither to connect as the admin user`,
        );
    }
    p.push(...transportSecurityProblems(cfg, project));
    if (cfg.ingestionUrl !== "" && /\/\/[^/]*@/.test(cfg.ingestionUrl)) {
        p.push(
            `${project}:ingestionUrl: must not carry credentials; the password comes from the ClickHouse Secret or clickhouseAdminPassword`,
        );
    }
    if (
        cfg.ingestionEnabled &&
        cfg.ingestionConnection === "embedded" &&
        cfg.ingestionEmbeddedPath === ""
    ) {
        p.push(`${project}:ingestionEmbeddedPath: required when ingestionConnection is 'embedded'`);
    }
    return p;
}

type Kind = "string" | "number" | "boolean";

function expectedKind(field: z.ZodTypeAny): Kind {
    let t: z.ZodTypeAny = field;
    while (t instanceof z.ZodDefault || t instanceof z.ZodOptional) t = t.unwrap() as z.ZodTypeAny;
    if (t instanceof z.ZodNumber) return "number";
    if (t instanceof z.ZodBoolean) return "boolean";
    return "string";
}

/** Pulumi stores every value as a string; turn it into what the schema expects, or leave it for zod to reject. */
function coerce(text: string, kind: Kind): unknown {
    if (kind === "number") return /^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text;
    if (kind === "boolean") return text === "true" ? true : text === "false" ? false : text;
    return text;
}

function closest(key: string, candidates: string[]): string | undefined {
    let best: string | undefined;
    let bestDistance = Math.max(3, Math.floor(key.length / 3)) + 1;
    for (const c of candidates) {
        const d = levenshtein(key.toLowerCase(), c.toLowerCase());
        if (d < bestDistance) {
            best = c;
            bestDistance = d;
        }
    }
    return best;
}

function levenshtein(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
        let prev = row[0]!;
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const tmp = row[j]!;
            row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
            prev = tmp;
        }
    }
    return row[b.length]!;
}

/** The secrets a stack may set, as Outputs (undefined when unset). */
export interface StackSecrets {
    readonly kafkaExternalPassword?: pulumi.Output<string>;
    readonly clickhouseAdminPassword?: pulumi.Output<string>;
}

/** Reads and validates this stack's config once. Throws ConfigError naming key and stack. */
export function loadConfig(): { config: StackConfig; secrets: StackSecrets } {
    const project = pulumi.getProject();
    const stack = pulumi.getStack();
    const prefix = `${project}:`;
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(pulumi.runtime.allConfig())) {
        if (k.startsWith(prefix)) raw[k.slice(prefix.length)] = v;
    }
    const config = parseConfig(raw, stack, project);
    const cfg = new pulumi.Config();
    const secrets: StackSecrets = {
        kafkaExternalPassword: cfg.getSecret("kafkaExternalPassword"),
        clickhouseAdminPassword: cfg.getSecret("clickhouseAdminPassword"),
    };
    if (
        config.kafkaMode === "external" &&
        config.kafkaExternalSaslMechanism !== "none" &&
        !secrets.kafkaExternalPassword
    ) {
        throw new ConfigError(stack, [
            `${project}:kafkaExternalPassword: required with SASL; set it with 'pulumi config set --secret kafkaExternalPassword'`,
        ]);
    }
    return { config, secrets };
}
