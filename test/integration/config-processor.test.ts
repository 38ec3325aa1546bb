/**
 * The rendered config.d/ and users.d/ through ClickHouse's own config processor (issue 12,
 * acceptance 6). The embedded engine (chdb) started with `--config-file=<dir>/config.xml` merges
 * `<dir>/config.d/*.xml`, and through `users_config` the `users.d/*.xml` beside that file,
 * resolving `from_env`. Each case writes exactly what the stack's ConfigMaps hold (the stack run
 * under the unit tests' mocks), sets the environment the pod gets from the stack's Secrets, starts
 * chdb on it in a child process (a config is read only when an engine starts, one engine per
 * process) and reads the merged result back from the system tables.
 *
 * What the engine cannot show is said where it is skipped: chdb opens no listeners, so the MySQL
 * and PostgreSQL ports exist for it only as config keys (network.xml is checked for their removal
 * in the unit tests); it does not write preprocessed_configs/ (the data folder is searched for
 * the passwords all the same); its librdkafka has no SCRAM, so a Kafka consumer with the rendered
 * settings fails after librdkafka has accepted every property name, which is what is checked.
 * Queries run as `default` only: chdb ignores `--user`, and refuses `EXECUTE AS <user>` whatever
 * the config says (its setup never applies `allow_impersonate_user` to access control), so a user's
 * privileges are checked as the engine holds them in system.grants, not by running as that user.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as util from "node:util";
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { XMLParser } from "fast-xml-parser";
import { Recorded, ofType, runStack } from "../unit/mocks";

// ---------------------------------------------------------------------------------------------
// What the stack renders: the ConfigMaps' files and the pod's environment from the Secrets.

interface Rendered {
    readonly config: Record<string, string>;
    readonly users: Record<string, string>;
    /** The container's environment, secretKeyRefs resolved against the stack's Secrets. */
    readonly env: Record<string, string>;
    /** The plaintext passwords in the stack's Secrets: none may reach the data folder. */
    readonly passwords: string[];
    /** The stack's ingestion database (config clickhouseDatabase). */
    readonly database: string;
}

/** A Secret's stringData; Pulumi secrets arrive wrapped ({ <signature>, value }) under the mocks. */
function secretData(secret: Recorded): Record<string, string> {
    const data = secret.inputs.stringData as Record<string, unknown>;
    return (data.value ?? data) as Record<string, string>;
}

async function rendered(stack: string, overrides: Record<string, string> = {}): Promise<Rendered> {
    const { resources, config } = await runStack(stack, overrides);
    const configMap = (name: string) => {
        const found = ofType(resources, "kubernetes:core/v1:ConfigMap").find(
            (m) => m.name === name,
        );
        assert.ok(found, `${stack}: ConfigMap ${name} is registered`);
        return found.inputs.data as Record<string, string>;
    };
    const secrets = new Map(
        ofType(resources, "kubernetes:core/v1:Secret").map((s) => [
            s.inputs.metadata.name as string,
            secretData(s),
        ]),
    );
    const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
    const [container] = sts!.inputs.spec.template.spec.containers;
    const env: Record<string, string> = {};
    for (const e of container.env as Array<{
        name: string;
        value?: string;
        valueFrom?: { secretKeyRef: { name: string; key: string } };
    }>) {
        if (e.value !== undefined) {
            env[e.name] = e.value;
            continue;
        }
        const ref = e.valueFrom!.secretKeyRef;
        const value = secrets.get(ref.name)?.[ref.key];
        assert.ok(value !== undefined, `${stack}: ${e.name} reads ${ref.name}/${ref.key}, unset`);
        env[e.name] = value;
    }
    const passwords = [...secrets.values()].flatMap((data) =>
        Object.entries(data)
            .filter(([k]) => /password$/.test(k))
            .map(([, v]) => v),
    );
    assert.ok(passwords.length >= 3, `${stack}: the stack's Secrets hold its passwords`);
    return {
        config: configMap("clickhouse-config"),
        users: configMap("clickhouse-users"),
        env,
        passwords,
        database: config.clickhouseDatabase,
    };
}

// ---------------------------------------------------------------------------------------------
// The engine, started in a child process on a folder of config files.

/**
 * The test's own base files, as the image's config.xml and users.xml would be: the listeners the
 * rendered network.xml removes, and a `default` user carrying a marker the rendered users.d must
 * remove. chdb always connects as `default`, so a file of the test's own, merged after the
 * rendered ones, adds a `default` back (without the marker) to run the queries.
 */
function baseConfig(dir: string): string {
    return `<clickhouse>
    <http_port>8123</http_port>
    <tcp_port>9000</tcp_port>
    <mysql_port>9004</mysql_port>
    <postgresql_port>9005</postgresql_port>
    <interserver_http_port>9009</interserver_http_port>
    <max_connections>4096</max_connections>
    <users_config>${path.join(dir, "users.xml")}</users_config>
</clickhouse>
`;
}
const REMOVED_MARKER = "base-default-user-marker";
const BASE_USERS = `<clickhouse>
    <profiles><default/></profiles>
    <quotas><default/></quotas>
    <users>
        <default>
            <no_password/>
            <networks><host_regexp>${REMOVED_MARKER}</host_regexp></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
</clickhouse>
`;
const TEST_DEFAULT_USER = `<clickhouse>
    <users>
        <default>
            <no_password/>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
            <access_management>1</access_management>
        </default>
    </users>
</clickhouse>
`;

/** Runs each statement (JSONEachRow) and prints one JSON line: the answers, or why it did not start. */
const ENGINE_CHILD = `
const chdb = require(process.env.KCS_CHDB_MODULE);
const [dataPath, configFile] = process.argv.slice(1);
const statements = JSON.parse(process.env.KCS_STATEMENTS);
let session;
try {
    session = new chdb.Session(dataPath, { connectionArgs: ["--config-file=" + configFile] });
} catch (e) {
    process.stdout.write(JSON.stringify({ started: false, error: String((e && e.message) || e) }) + "\\n");
    process.exit(0);
}
const answers = statements.map((sql) => {
    try {
        const text = session.query(sql, "JSONEachRow");
        return { ok: true, rows: text.split("\\n").filter((l) => l).map((l) => JSON.parse(l)) };
    } catch (e) {
        return { ok: false, error: String((e && e.message) || e) };
    }
});
session.close();
process.stdout.write(JSON.stringify({ started: true, answers }) + "\\n");
`;

type Answer = { ok: true; rows: Array<Record<string, unknown>> } | { ok: false; error: string };
type Run =
    | { started: true; answers: Answer[]; dataPath: string; stderr: string }
    | { started: false; error: string; stderr: string };

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Writes the files, starts the engine with `env` as its whole environment (plus PATH), runs `statements`. */
async function runEngine(
    files: { config: Record<string, string>; users: Record<string, string> },
    env: Record<string, string>,
    statements: readonly string[],
): Promise<Run> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-config-processor-"));
    dirs.push(dir);
    for (const sub of ["config.d", "users.d"]) fs.mkdirSync(path.join(dir, sub));
    fs.writeFileSync(path.join(dir, "config.xml"), baseConfig(dir));
    fs.writeFileSync(path.join(dir, "users.xml"), BASE_USERS);
    for (const [name, text] of Object.entries(files.config))
        fs.writeFileSync(path.join(dir, "config.d", name), text);
    for (const [name, text] of Object.entries(files.users))
        fs.writeFileSync(path.join(dir, "users.d", name), text);
    assert.ok(!("zz-test-default.xml" in files.users), "the test's own file name is free");
    fs.writeFileSync(path.join(dir, "users.d", "zz-test-default.xml"), TEST_DEFAULT_USER);
    const dataPath = path.join(dir, "data");
    const child = spawn(
        process.execPath,
        ["-e", ENGINE_CHILD, dataPath, path.join(dir, "config.xml")],
        {
            env: {
                PATH: process.env.PATH ?? "",
                ...env,
                KCS_CHDB_MODULE: require.resolve("chdb"),
                KCS_STATEMENTS: JSON.stringify(statements),
            },
            stdio: ["ignore", "pipe", "pipe"],
        },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const line = stdout.trim().split("\n").pop() ?? "";
    let result: { started: boolean; answers?: Answer[]; error?: string };
    try {
        result = JSON.parse(line) as typeof result;
    } catch {
        throw new Error(`the engine child exited with ${code} without an answer:\n${stderr}`);
    }
    return result.started
        ? { started: true, answers: result.answers!, dataPath, stderr }
        : { started: false, error: result.error!, stderr };
}

// ---------------------------------------------------------------------------------------------
// What is asked of the engine, and what its answers must show.

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" });

/** Top-level elements of config.d/, each with its text (undefined for sections) and removal. */
function configKeys(
    config: Record<string, string>,
): Array<{ file: string; name: string; text?: string; removed: boolean }> {
    return Object.entries(config).flatMap(([file, xml]) =>
        Object.entries(parser.parse(xml).clickhouse as Record<string, unknown>).flatMap(
            ([name, value]) =>
                (Array.isArray(value) ? value : [value]).map((v) => ({
                    file,
                    name,
                    text: typeof v === "object" ? undefined : String(v),
                    removed: typeof v === "object" && v !== null && "@remove" in v,
                })),
        ),
    );
}

/**
 * Top-level config keys that are no server setting the engine lists in system.server_settings,
 * each checked another way or not observable in chdb (see the file comment).
 */
const NOT_SERVER_SETTINGS: Record<string, string> = {
    listen_host: "where to listen: chdb opens no listener",
    http_port: "a listener",
    tcp_port: "a listener",
    https_port: "a listener",
    tcp_port_secure: "a listener",
    mysql_port: "a listener (removed: unit test of network.xml)",
    postgresql_port: "a listener (removed: unit test of network.xml)",
    openSSL: "TLS of the listeners",
    logger: "logging: chdb keeps its own",
    kafka: "checked through a Kafka consumer",
};

const SYSTEM_LOG_FILE = "system-logs.xml";

function systemLogs(config: Record<string, string>): Array<{ table: string; ttl: string }> {
    const xml = config[SYSTEM_LOG_FILE];
    if (!xml) return [];
    return Object.entries(parser.parse(xml).clickhouse as Record<string, { ttl: string }>).map(
        ([table, section]) => ({ table, ttl: section.ttl }),
    );
}

/** The statements a case runs; `check` reads the answers back by name. */
function statementsFor(config: Record<string, string>) {
    const logs = systemLogs(config);
    const list: Array<[string, string]> = [
        ["users", "SELECT name, auth_type, host_ip, host_names_regexp FROM system.users"],
        ["profiles", "SELECT * FROM system.settings_profile_elements"],
        [
            "grants",
            "SELECT user_name, access_type, database, table, column, is_partial_revoke, grant_option " +
                "FROM system.grants WHERE user_name IS NOT NULL",
        ],
        ["serverSettings", "SELECT name, value, changed FROM system.server_settings"],
        ...logs.map(({ table }): [string, string] => [
            `flush ${table}`,
            `SYSTEM FLUSH LOGS ${table}`,
        ]),
        ...logs.map(({ table, ttl }): [string, string] => [
            `ttl ${table}`,
            `CREATE TABLE ttl_${table} (event_date Date) ENGINE = MergeTree ORDER BY tuple() TTL ${ttl}`,
        ]),
    ];
    if (config["kafka.xml"])
        list.push(
            [
                "kafka table",
                "CREATE TABLE kafka_check (x String) ENGINE = Kafka SETTINGS kafka_broker_list = '127.0.0.1:9', " +
                    "kafka_topic_list = 't', kafka_group_name = 'g', kafka_format = 'JSONEachRow', " +
                    "kafka_poll_timeout_ms = 100, kafka_flush_interval_ms = 100",
            ],
            [
                "kafka consumer",
                "SELECT * FROM kafka_check LIMIT 1 SETTINGS stream_like_engine_allow_direct_select = 1",
            ],
        );
    return { names: list.map(([n]) => n), sql: list.map(([, s]) => s) };
}

function answersByName(names: string[], run: Run): Map<string, Answer> {
    assert.ok(
        run.started,
        `the engine did not start: ${run.started ? "" : run.error}\n${run.stderr}`,
    );
    return new Map(names.map((n, i) => [n, run.answers[i]!]));
}

function rows(answers: Map<string, Answer>, name: string): Array<Record<string, unknown>> {
    const a = answers.get(name)!;
    assert.ok(a.ok, `${name}: ${a.ok ? "" : a.error}`);
    return a.rows;
}

/** Problems with config.d as the engine sees it; empty when every check passes. */
function configProblems(config: Record<string, string>, answers: Map<string, Answer>): string[] {
    const problems: string[] = [];
    const settings = new Map(
        rows(answers, "serverSettings").map((r) => [
            r.name as string,
            r as { value: string; changed: number },
        ]),
    );
    const logNames = new Set(systemLogs(config).map((l) => l.table));
    for (const key of configKeys(config)) {
        const where = `${key.file}: <${key.name}>`;
        const setting = settings.get(key.name);
        if (setting) {
            if (key.removed && setting.changed !== 0)
                problems.push(`${where} is removed, yet the engine has ${setting.value}`);
            if (key.text !== undefined && (setting.value !== key.text || setting.changed !== 1))
                problems.push(`${where} is ${key.text}, the engine has ${setting.value}`);
        } else if (!(key.name in NOT_SERVER_SETTINGS) && !logNames.has(key.name))
            problems.push(`${where} is no server setting the engine knows`);
    }
    for (const { table } of systemLogs(config)) {
        for (const check of [`flush ${table}`, `ttl ${table}`]) {
            const a = answers.get(check)!;
            if (!a.ok) problems.push(`${SYSTEM_LOG_FILE}: ${check}: ${a.error.split("\n")[0]}`);
        }
    }
    if (config["kafka.xml"]) {
        const table = answers.get("kafka table")!;
        if (!table.ok) problems.push(`kafka.xml: ${table.error.split("\n")[0]}`);
        const consumer = answers.get("kafka consumer")!;
        // A refused property fails while the consumer's settings are set; what fails after (no
        // SCRAM in chdb's librdkafka, no broker) means librdkafka accepted them all.
        if (
            !consumer.ok &&
            /ConfigException|No such configuration property|Failed to set/.test(consumer.error)
        )
            problems.push(`kafka.xml: ${consumer.error.split("\n")[0]}`);
    }
    return problems;
}

/**
 * Problems with the read-only user's grants as the engine holds them: exactly SELECT on the
 * ingestion database (no other database, no system table, no grant option); empty when right.
 */
function readerGrantProblems(
    answers: Map<string, Answer>,
    reader: string,
    database: string,
): string[] {
    const grants = rows(answers, "grants")
        .filter((g) => g.user_name === reader)
        .map(({ user_name: _, ...g }) => g);
    const expected = {
        access_type: "SELECT",
        database,
        table: null,
        column: null,
        is_partial_revoke: 0,
        grant_option: 0,
    };
    const wrong = grants.filter((g) => !util.isDeepStrictEqual(g, expected));
    return [
        ...(grants.length === 0
            ? [`${reader} has no grant (expected SELECT ON ${database}.*)`]
            : []),
        ...wrong.map((g) => `${reader} has ${JSON.stringify(g)} besides SELECT ON ${database}.*`),
    ];
}

function filesUnder(dir: string): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.join(e.parentPath, e.name));
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

// ---------------------------------------------------------------------------------------------

describe("rendered config.d/ and users.d/ through the engine's config processor (issue 12, acceptance 6)", () => {
    // prod under another ingestion database: the reader's grant follows the config.
    const cases: Array<[string, Record<string, string>]> = [
        ["dev", {}],
        ["prod", { clickhouseDatabase: "sales_events" }],
    ];
    for (const [stack, overrides] of cases) {
        it(`${stack}: users, grants, profiles, server settings, system logs and Kafka settings as rendered`, async () => {
            const r = await rendered(stack, overrides);
            assert.equal(r.database, overrides.clickhouseDatabase ?? "ingest");
            const { names, sql } = statementsFor(r.config);
            const run = await runEngine(r, r.env, sql);
            const answers = answersByName(names, run);

            // Users: the rendered ones with the SHA-256 form, the image's default removed.
            const users = new Map(rows(answers, "users").map((u) => [u.name as string, u]));
            const renderedUsers = Object.keys(
                parser.parse(Object.values(r.users).join("")).clickhouse.users,
            ).filter((u) => u !== "default");
            assert.deepEqual(renderedUsers.sort(), ["admin", "reader"]);
            for (const name of renderedUsers) {
                assert.deepEqual(users.get(name)?.auth_type, ["sha256_password"], name);
                assert.deepEqual(users.get(name)?.host_ip, ["::/0"], name);
            }
            assert.deepEqual(
                users.get("default")?.host_names_regexp,
                [],
                "the image's default user is removed (only the test's own is left)",
            );

            // Grants: the reader may read the ingestion database only; the admin keeps all.
            assert.deepEqual(readerGrantProblems(answers, "reader", r.database), []);
            const adminGrants = rows(answers, "grants").filter((g) => g.user_name === "admin");
            assert.ok(
                adminGrants.some((g) => g.access_type === "CREATE USER" && g.database === null),
                "the admin manages access",
            );

            // Profiles: the reader is read-only.
            const profiles = rows(answers, "profiles");
            const inherits = (user: string) =>
                profiles.find((p) => p.user_name === user)?.inherit_profile;
            assert.equal(inherits("reader"), "readonly");
            assert.equal(inherits("admin"), "default");
            const readonly = Object.fromEntries(
                profiles
                    .filter((p) => p.profile_name === "readonly" && p.setting_name)
                    .map((p) => [p.setting_name, p.value]),
            );
            assert.deepEqual(readonly, { readonly: "1", max_execution_time: "60" });

            // Server settings: every rendered key known to the engine and in effect.
            assert.deepEqual(configProblems(r.config, answers), []);
            const settings = rows(answers, "serverSettings");
            const setting = (n: string) => settings.find((s) => s.name === n);
            assert.equal(
                setting("max_connections")?.value,
                "1024",
                "network.xml over the base's 4096",
            );
            assert.deepEqual(
                {
                    value: setting("interserver_http_port")?.value,
                    changed: setting("interserver_http_port")?.changed,
                },
                { value: "0", changed: 0 },
                "interserver_http_port removed (the base sets 9009)",
            );
            assert.ok(systemLogs(r.config).length > 0, "system log TTLs are rendered");
            assert.ok(r.config["kafka.xml"], "kafka.xml is rendered");

            // Passwords: the pod's environment holds only hashes of the ClickHouse passwords, and
            // no password is anywhere in the engine's data folder.
            for (const [name, value] of Object.entries(r.env))
                if (/CLICKHOUSE_.*PASSWORD/.test(name)) assert.match(value, /^[0-9a-f]{64}$/, name);
            const found = filesUnder(run.started ? run.dataPath : "");
            assert.ok(found.length > 0, "the engine wrote its data folder");
            for (const file of found) {
                const text = fs.readFileSync(file, "latin1");
                for (const p of r.passwords) {
                    assert.ok(!text.includes(p), `${file} holds a password`);
                    assert.ok(!text.includes(sha256(p)), `${file} holds a password hash`);
                }
            }
        });
    }

    it("a misspelled server setting, Kafka property or system log, and a bad TTL are each reported", async () => {
        const r = await rendered("dev");
        const config = { ...r.config };
        const swap = (file: string, from: string, to: string) => {
            assert.ok(config[file]?.includes(from), `${file} holds ${from}`);
            config[file] = config[file]!.replace(from, to);
        };
        swap("network.xml", "<max_connections>", "<max_conections>");
        swap("network.xml", "</max_connections>", "</max_conections>");
        swap("kafka.xml", "<session_timeout_ms>", "<session_timeout_msx>");
        swap("kafka.xml", "</session_timeout_ms>", "</session_timeout_msx>");
        swap(SYSTEM_LOG_FILE, "<trace_log>", "<trace_logs>");
        swap(SYSTEM_LOG_FILE, "</trace_log>", "</trace_logs>");
        swap(
            SYSTEM_LOG_FILE,
            "<query_log>\n        <ttl>event_date + INTERVAL",
            "<query_log>\n        <ttl>event_dat + INTERVAL",
        );
        const { names, sql } = statementsFor(config);
        const run = await runEngine({ config, users: r.users }, r.env, sql);
        const problems = configProblems(config, answersByName(names, run));
        const expected = [
            /network\.xml: <max_conections> is no server setting/,
            /kafka\.xml: .*session\.timeout\.msx/,
            /system-logs\.xml: flush trace_logs: .*does not exist/,
            /system-logs\.xml: ttl query_log: .*event_dat/,
        ];
        for (const re of expected)
            assert.ok(
                problems.some((p) => re.test(p)),
                `${re} among:\n${problems.join("\n")}`,
            );
        assert.equal(problems.length, expected.length, problems.join("\n"));
    });

    it("a reader granted more than SELECT on the ingestion database is reported", async () => {
        const r = await rendered("dev");
        const users = r.users["users.xml"]!;
        const grant = `<query>GRANT SELECT ON ${r.database}.*</query>`;
        assert.ok(users.includes(grant), "users.xml grants the reader its database");
        const cases: Array<{ what: string; users: string; expect: RegExp }> = [
            {
                what: "a system log table besides",
                users: users.replace(
                    grant,
                    `${grant}<query>GRANT SELECT ON system.query_log</query>`,
                ),
                expect: /"database":"system","table":"query_log"/,
            },
            {
                // Without <grants>, a users.xml user may do everything.
                what: "no grants element",
                users: users.replace(/<grants>[\s\S]*?<\/grants>/, ""),
                expect: /"access_type":"ALL"|"access_type":"CREATE USER"|"access_type":"INSERT"/,
            },
        ];
        for (const c of cases) {
            assert.notEqual(c.users, users, `${c.what}: the mistake is made`);
            const { names, sql } = statementsFor({});
            const run = await runEngine(
                { config: r.config, users: { "users.xml": c.users } },
                r.env,
                sql,
            );
            const problems = readerGrantProblems(answersByName(names, run), "reader", r.database);
            assert.ok(
                problems.some((p) => c.expect.test(p)),
                `${c.what}: ${c.expect} among:\n${problems.join("\n")}`,
            );
        }
    });

    it("an XML mistake, an unknown profile setting or a missing environment variable stops the engine, naming it", async () => {
        const r = await rendered("dev");
        const users = r.users["users.xml"]!;
        const cases: Array<{
            what: string;
            users: string;
            env: Record<string, string>;
            expect: RegExp;
        }> = [
            {
                what: "unclosed element",
                users: users.replace("</profiles>", ""),
                env: r.env,
                expect: /Failed to merge config with '[^']*users\.d\/users\.xml': SAXParseException/,
            },
            {
                what: "unknown profile setting",
                users: users.replace(/max_execution_time/g, "max_executon_time"),
                env: r.env,
                expect: /Unknown setting 'max_executon_time'/,
            },
            {
                what: "from_env variable not set",
                users,
                env: Object.fromEntries(
                    Object.entries(r.env).filter(([k]) => k !== "CLICKHOUSE_ADMIN_PASSWORD_SHA256"),
                ),
                // An unset variable substitutes nothing: an empty hash.
                expect: /Password hash .* has length 0 .* while parsing user 'admin'/,
            },
        ];
        for (const c of cases) {
            assert.ok(c.users !== users || c.env !== r.env, `${c.what}: the mistake is made`);
            const run = await runEngine(
                { config: r.config, users: { "users.xml": c.users } },
                c.env,
                [],
            );
            assert.equal(run.started, false, `${c.what}: the engine started`);
            assert.match(run.stderr + (run.started ? "" : run.error), c.expect, c.what);
        }
    });
});
