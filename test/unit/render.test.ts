import { XMLParser, XMLValidator } from "fast-xml-parser";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
    ENV,
    SYSTEM_LOG_TABLES,
    passwordSha256Hex,
    renderKafkaConfig,
    renderLoggingConfig,
    renderNetworkConfig,
    renderSystemLogConfig,
    renderUsersConfig,
    xmlEscape,
} from "../../components/clickhouse/render";

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" });

function wellFormed(xml: string): void {
    const result = XMLValidator.validate(xml);
    assert.equal(result, true, `not well-formed XML: ${JSON.stringify(result)}\n${xml}`);
}

describe("config.d / users.d rendering", () => {
    it("every file is well-formed XML with a <clickhouse> root", () => {
        const files = [
            renderNetworkConfig(),
            renderLoggingConfig("warning"),
            renderKafkaConfig({
                securityProtocol: "SASL_SSL",
                saslMechanism: "SCRAM-SHA-512",
                saslUsername: "clickhouse",
                caFile: "ca.crt",
            }),
            renderUsersConfig({ adminUser: "admin", readonlyUser: "reader", database: "ingest" }),
            renderSystemLogConfig(7),
        ];
        for (const xml of files) {
            wellFormed(xml);
            assert.ok(parser.parse(xml).clickhouse, "root element is <clickhouse>");
        }
    });

    it("the validator rejects broken XML (it can fail)", () => {
        assert.notEqual(XMLValidator.validate("<clickhouse><a></clickhouse>"), true);
    });

    it("passwordSha256Hex: the hex SHA-256 of the UTF-8 bytes, as ClickHouse's password_sha256_hex", () => {
        // Known answer: SHA-256("abc") from FIPS 180-2.
        assert.equal(
            passwordSha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        );
        assert.notEqual(passwordSha256Hex("é"), passwordSha256Hex("e"));
        assert.match(passwordSha256Hex("x"), /^[0-9a-f]{64}$/);
    });

    it("escapes values", () => {
        assert.equal(xmlEscape(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&apos;");
        const xml = renderKafkaConfig({
            securityProtocol: "SASL_PLAINTEXT",
            saslMechanism: "PLAIN",
            saslUsername: "svc</sasl_username><x>&",
        });
        wellFormed(xml);
        assert.equal(parser.parse(xml).clickhouse.kafka.sasl_username, "svc</sasl_username><x>&");
    });

    it("kafka.xml: SASL over TLS, password only as from_env", () => {
        const xml = renderKafkaConfig({
            securityProtocol: "SASL_SSL",
            saslMechanism: "SCRAM-SHA-512",
            saslUsername: "clickhouse",
            caFile: "ca.crt",
        });
        const kafka = parser.parse(xml).clickhouse.kafka;
        assert.equal(kafka.security_protocol, "sasl_ssl");
        assert.equal(kafka.sasl_mechanism, "SCRAM-SHA-512");
        assert.equal(kafka.sasl_password["@from_env"], ENV.kafkaSaslPassword);
        assert.equal(kafka.sasl_password["@hide_in_preprocessed"], "true");
        assert.equal(kafka.ssl_ca_location, "/etc/clickhouse-server/kafka-ca/ca.crt");
        assert.equal(
            kafka.session_timeout_ms,
            10000,
            "a recreated Kafka table rejoins its group quickly",
        );
        assert.throws(
            () => renderKafkaConfig({ securityProtocol: "SASL_SSL" }),
            /needs saslMechanism and saslUsername/,
        );
    });

    it("users.xml: default user removed, admin and read-only users with password hashes from the environment", () => {
        const xml = renderUsersConfig({
            adminUser: "admin",
            readonlyUser: "reader",
            database: "ingest",
        });
        const ch = parser.parse(xml).clickhouse;
        assert.equal(ch.users.default["@remove"], "remove");
        for (const [user, env] of [
            ["admin", ENV.adminPasswordSha256],
            ["reader", ENV.readonlyPasswordSha256],
        ] as const) {
            const hash = ch.users[user].password_sha256_hex;
            assert.equal(hash["@from_env"], env, user);
            // Left out of preprocessed_configs/ on the data volume.
            assert.equal(hash["@hide_in_preprocessed"], "true", user);
            assert.equal(ch.users[user].password, undefined, `${user}: no plaintext password form`);
        }
        assert.equal(ch.users.admin.access_management, 1);
        assert.equal(ch.users.reader.profile, "readonly");
        assert.equal(ch.profiles.readonly.readonly, 1);
        // The reader: SELECT on the ingestion database only; the admin keeps users.xml's all.
        assert.deepEqual(ch.users.reader.grants, { query: "GRANT SELECT ON ingest.*" });
        assert.equal(ch.users.admin.grants, undefined);
        assert.doesNotMatch(xml, /<password>[^<]/, "no literal password");
        assert.throws(
            () => renderUsersConfig({ adminUser: "a b", readonlyUser: "r", database: "ingest" }),
            /invalid ClickHouse user name 'a b'/,
        );
        for (const database of ["ingest.*, system", "Ingest", ""])
            assert.throws(
                () => renderUsersConfig({ adminUser: "admin", readonlyUser: "reader", database }),
                (e: Error) =>
                    e.message.startsWith(`invalid ClickHouse database name '${database}'`),
                database,
            );
    });

    it("network.xml and logging.xml carry the ports and level", () => {
        const net = parser.parse(renderNetworkConfig()).clickhouse;
        assert.equal(net.http_port, 8123);
        assert.equal(net.tcp_port, 9000);
        assert.deepEqual(net.listen_host, ["0.0.0.0", "::"]);
        assert.equal(parser.parse(renderLoggingConfig("debug")).clickhouse.logger.level, "debug");
    });

    it("network.xml removes the image's MySQL, PostgreSQL and interserver listeners", () => {
        const net = parser.parse(renderNetworkConfig()).clickhouse;
        for (const port of ["mysql_port", "postgresql_port", "interserver_http_port"])
            assert.equal(net[port]?.["@remove"], "remove", port);
        assert.deepEqual(
            Object.keys(net)
                .filter((k) => k.endsWith("_port"))
                .filter((k) => net[k]["@remove"] === undefined),
            ["http_port", "tcp_port"],
            "the only listeners left open",
        );
    });

    it("system-logs.xml: a DELETE TTL on every system log table", () => {
        const ch = parser.parse(renderSystemLogConfig(14)).clickhouse;
        assert.deepEqual(Object.keys(ch), [...SYSTEM_LOG_TABLES]);
        for (const table of [
            "query_log",
            "query_thread_log",
            "part_log",
            "trace_log",
            "metric_log",
            "asynchronous_metric_log",
            "text_log",
            "processors_profile_log",
        ])
            assert.equal(ch[table]?.ttl, "event_date + INTERVAL 14 DAY DELETE", table);
        // A TTL only: an <engine> next to it makes the server refuse to start.
        for (const table of SYSTEM_LOG_TABLES) assert.deepEqual(Object.keys(ch[table]), ["ttl"]);
        for (const bad of [0, -1, 1.5, Number.NaN])
            assert.throws(
                () => renderSystemLogConfig(bad),
                /system log TTL must be a whole number of days >= 1/,
            );
    });
});
