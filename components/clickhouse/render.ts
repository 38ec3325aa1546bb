/**
 * Pure renderers for the files mounted into `config.d/` and `users.d/`. Passwords are never
 * rendered: the files name environment variables (`from_env`) that the StatefulSet fills from a
 * Secret, so the ConfigMaps hold nothing secret.
 */
import { createHash } from "node:crypto";
import type { KafkaClientSettings } from "../kafka/endpoint";
import { READONLY_MAX_EXECUTION_SECONDS } from "../../schemas/naming";

/**
 * Environment variables the pod receives from Secrets; the rendered XML refers to them by name.
 * ClickHouse users get the SHA-256 of their password, never the password: ClickHouse writes the
 * merged, substituted config to `preprocessed_configs/` on the data volume.
 */
export const ENV = {
    adminPasswordSha256: "CLICKHOUSE_ADMIN_PASSWORD_SHA256",
    readonlyPasswordSha256: "CLICKHOUSE_READONLY_PASSWORD_SHA256",
    kafkaSaslPassword: "KAFKA_SASL_PASSWORD",
} as const;

/** What `<password_sha256_hex>` holds: the hex SHA-256 of the password's UTF-8 bytes. */
export function passwordSha256Hex(password: string): string {
    return createHash("sha256").update(password, "utf8").digest("hex");
}

/**
 * Marks an element ClickHouse leaves out of `preprocessed_configs/` (the running config keeps
 * it): for values substituted from the environment that are secret or derived from a secret.
 */
const HIDDEN = { hide_in_preprocessed: "true" } as const;

/**
 * The listeners the pod opens. Interserver (9009) is left out while nothing replicates (the
 * config refuses clickhouseReplicas > 1): an open interserver port without credentials serves
 * any part to whoever asks.
 */
export const PORTS = { http: 8123, native: 9000 } as const;

/**
 * The listeners opened instead of PORTS when TLS is on (`https_port`, `tcp_port_secure`). The
 * plain ones are closed then: left open, any client could still send the password in clear.
 */
export const TLS_PORTS = { https: 8443, nativeSecure: 9440 } as const;

/** The TCP ports ClickHouse listens on: HTTP(S) first, then native. */
export function listenerPorts(tls: boolean): readonly [number, number] {
    return tls ? [TLS_PORTS.https, TLS_PORTS.nativeSecure] : [PORTS.http, PORTS.native];
}

/** Where the certificate Secret (tls.crt, tls.key, ca.crt) is mounted when TLS is on. */
export const TLS_DIR = "/etc/clickhouse-server/tls";

/**
 * Listeners the image's config.xml opens that nothing here uses: MySQL and PostgreSQL wire
 * protocols, and interserver replication.
 */
export const REMOVED_LISTENERS = [
    "mysql_port",
    "postgresql_port",
    "interserver_http_port",
] as const;

/**
 * System log tables that grow on the data volume: those the image's config.xml (ClickHouse's
 * programs/server/config.xml) enables, each with an `event_date` column. A section named here
 * that config.xml does not declare would switch that log on, so newer or optional logs stay out.
 */
export const SYSTEM_LOG_TABLES = [
    "query_log",
    "query_thread_log",
    "query_views_log",
    "part_log",
    "trace_log",
    "text_log",
    "metric_log",
    "asynchronous_metric_log",
    "error_log",
    "processors_profile_log",
    "asynchronous_insert_log",
    "backup_log",
] as const;

/** Where the Kafka cluster CA certificate is mounted when the Kafka client uses TLS. */
export const KAFKA_CA_DIR = "/etc/clickhouse-server/kafka-ca";

export type LogLevel = "trace" | "debug" | "information" | "warning" | "error";

/** What config.d/kafka.xml holds: how the Kafka engine connects. */
export interface KafkaConfigSettings extends KafkaClientSettings {
    /** File name of the CA certificate inside KAFKA_CA_DIR, when TLS is on. */
    readonly caFile?: string;
}

export interface UserSettings {
    readonly adminUser: string;
    readonly readonlyUser: string;
    /** The ingestion database: the only one the read-only user may read. */
    readonly database: string;
    /** CIDRs allowed to log in; default: anywhere (the Service is cluster-internal). */
    readonly networks?: readonly string[];
}

/** Escapes text for an XML element body or attribute. */
export function xmlEscape(value: string): string {
    return value
        .replace(/&/g, "&amp;")
        .replace(/</g, "&lt;")
        .replace(/>/g, "&gt;")
        .replace(/"/g, "&quot;")
        .replace(/'/g, "&apos;");
}

/** A tiny element tree so every value passes through one escaping point. */
type Node = { tag: string; attrs?: Record<string, string>; children?: Array<Node | string> };

function el(
    tag: string,
    children: Array<Node | string> = [],
    attrs?: Record<string, string>,
): Node {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(tag))
        throw new Error(`invalid XML element name '${tag}'`);
    return attrs ? { tag, attrs, children } : { tag, children };
}

function serialise(node: Node, indent = ""): string {
    const attrs = Object.entries(node.attrs ?? {})
        .map(([k, v]) => ` ${k}="${xmlEscape(v)}"`)
        .join("");
    const children = node.children ?? [];
    if (children.length === 0) return `${indent}<${node.tag}${attrs}/>`;
    if (children.length === 1 && typeof children[0] === "string") {
        return `${indent}<${node.tag}${attrs}>${xmlEscape(children[0])}</${node.tag}>`;
    }
    const inner = children
        .map((c) =>
            typeof c === "string" ? `${indent}    ${xmlEscape(c)}` : serialise(c, indent + "    "),
        )
        .join("\n");
    return `${indent}<${node.tag}${attrs}>\n${inner}\n${indent}</${node.tag}>`;
}

function document(comment: string, root: Node): string {
    return `<?xml version="1.0"?>\n<!-- ${comment.replace(/--/g, "- -")} -->\n${serialise(root)}\n`;
}

/**
 * config.d/network.xml: listen on every interface, HTTP and native only; the image's other
 * listeners removed. With `tls` the plain HTTP and native ports are removed too: tls.xml opens
 * their TLS counterparts.
 */
export function renderNetworkConfig(tls = false): string {
    const plain = tls
        ? [el("http_port", [], { remove: "remove" }), el("tcp_port", [], { remove: "remove" })]
        : [el("http_port", [String(PORTS.http)]), el("tcp_port", [String(PORTS.native)])];
    return document(
        "Managed by kafka-clickhouse-stack: listeners and ports.",
        el("clickhouse", [
            el("listen_host", ["0.0.0.0"]),
            el("listen_host", ["::"]),
            el("listen_try", ["1"]),
            ...plain,
            ...REMOVED_LISTENERS.map((port) => el(port, [], { remove: "remove" })),
            el("max_connections", ["1024"]),
        ]),
    );
}

/**
 * config.d/tls.xml: HTTPS and secure native with the certificate and key mounted at TLS_DIR (a
 * kubernetes.io/tls Secret, or the one cert-manager writes). Clients authenticate with passwords,
 * so no client certificate is asked for; TLS 1.2 and later only. ClickHouse reloads the files
 * when they change, so a renewed certificate needs no restart.
 */
export function renderTlsConfig(): string {
    return document(
        "Managed by kafka-clickhouse-stack: TLS listeners; the key is read from the mounted Secret.",
        el("clickhouse", [
            el("https_port", [String(TLS_PORTS.https)]),
            el("tcp_port_secure", [String(TLS_PORTS.nativeSecure)]),
            el("openSSL", [
                el("server", [
                    el("certificateFile", [`${TLS_DIR}/tls.crt`]),
                    el("privateKeyFile", [`${TLS_DIR}/tls.key`]),
                    el("verificationMode", ["none"]),
                    el("loadDefaultCAFile", ["false"]),
                    el("cacheSessions", ["true"]),
                    el("disableProtocols", ["sslv2,sslv3,tlsv1,tlsv1_1"]),
                    el("preferServerCiphers", ["true"]),
                ]),
            ]),
        ]),
    );
}

/**
 * config.d/system-logs.xml: a TTL on every system log table, so query, trace and metric logs do
 * not fill the data volume. ClickHouse recreates a log table whose TTL changed (the old one is
 * renamed to `<table>_<n>` and kept), so a change of `days` takes effect at the next restart.
 */
export function renderSystemLogConfig(days: number): string {
    if (!Number.isInteger(days) || days < 1)
        throw new Error(`system log TTL must be a whole number of days >= 1, got ${days}`);
    const ttl = `event_date + INTERVAL ${days} DAY DELETE`;
    return document(
        `Managed by kafka-clickhouse-stack: system log tables keep ${days} days.`,
        el(
            "clickhouse",
            SYSTEM_LOG_TABLES.map((table) => el(table, [el("ttl", [ttl])])),
        ),
    );
}

/** config.d/logging.xml: logs to the console only, so `kubectl logs` shows them and no disk fills. */
export function renderLoggingConfig(level: LogLevel): string {
    return document(
        "Managed by kafka-clickhouse-stack: console logging.",
        el("clickhouse", [
            el("logger", [
                el("level", [level]),
                el("console", ["1"]),
                el("log", [], { remove: "remove" }),
                el("errorlog", [], { remove: "remove" }),
            ]),
        ]),
    );
}

/**
 * config.d/kafka.xml: librdkafka settings for every Kafka engine table. The SASL password comes
 * from the environment (filled from a Secret), so neither this file nor any DDL holds it.
 */
export function renderKafkaConfig(settings: KafkaConfigSettings): string {
    const children: Node[] = [
        el("security_protocol", [settings.securityProtocol.toLowerCase()]),
        // A Kafka table the DDL provider recreates leaves its old consumer in the group until the
        // session times out (librdkafka: 45 s); 10 s keeps that ingestion pause short.
        el("session_timeout_ms", ["10000"]),
        el("heartbeat_interval_ms", ["3000"]),
    ];
    const sasl = settings.securityProtocol.startsWith("SASL_");
    if (sasl) {
        if (!settings.saslMechanism || !settings.saslUsername) {
            throw new Error(
                `Kafka security protocol ${settings.securityProtocol} needs saslMechanism and saslUsername`,
            );
        }
        children.push(
            el("sasl_mechanism", [settings.saslMechanism]),
            el("sasl_username", [settings.saslUsername]),
            // librdkafka needs the password itself: kept out of preprocessed_configs/ instead.
            el("sasl_password", [], { from_env: ENV.kafkaSaslPassword, ...HIDDEN }),
        );
    }
    if (settings.securityProtocol.endsWith("SSL") && settings.caFile) {
        children.push(el("ssl_ca_location", [`${KAFKA_CA_DIR}/${settings.caFile}`]));
    }
    return document(
        "Managed by kafka-clickhouse-stack: Kafka client settings; the password is read from the environment.",
        el("clickhouse", [el("kafka", children)]),
    );
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * users.d/users.xml: removes the password-less `default` user, adds an admin (access management,
 * used by the DDL provider) and a read-only user that may read the ingestion database and nothing
 * else (no other database, no system log). The SHA-256 of each password comes from the
 * environment (`password_sha256_hex`), so the pod never holds a ClickHouse password.
 */
export function renderUsersConfig(users: UserSettings): string {
    for (const name of [users.adminUser, users.readonlyUser]) {
        if (!IDENTIFIER.test(name)) throw new Error(`invalid ClickHouse user name '${name}'`);
    }
    if (!IDENTIFIER.test(users.database))
        throw new Error(
            `invalid ClickHouse database name '${users.database}': use a lower-case snake_case identifier`,
        );
    if (users.adminUser === users.readonlyUser)
        throw new Error("admin and read-only users must differ");
    const networks = el(
        "networks",
        (users.networks ?? ["::/0"]).map((n) => el("ip", [n])),
    );
    const user = (passwordEnv: string, profile: string): Node[] => [
        el("password_sha256_hex", [], { from_env: passwordEnv, ...HIDDEN }),
        networks,
        el("profile", [profile]),
        el("quota", ["default"]),
    ];
    return document(
        "Managed by kafka-clickhouse-stack: users; password hashes are read from the environment.",
        el("clickhouse", [
            el("profiles", [
                el("readonly", [
                    el("readonly", ["1"]),
                    el("max_execution_time", [String(READONLY_MAX_EXECUTION_SECONDS)]),
                ]),
            ]),
            el("users", [
                el("default", [], { remove: "remove" }),
                el(users.adminUser, [
                    ...user(ENV.adminPasswordSha256, "default"),
                    el("access_management", ["1"]),
                    el("named_collection_control", ["1"]),
                ]),
                el(users.readonlyUser, [
                    ...user(ENV.readonlyPasswordSha256, "readonly"),
                    // A user with <grants> has those and no others (without, users.xml grants all).
                    el("grants", [el("query", [`GRANT SELECT ON ${users.database}.*`])]),
                ]),
            ]),
        ]),
    );
}
