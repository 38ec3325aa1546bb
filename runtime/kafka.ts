/**
 * A real Apache Kafka broker for integration tests: the version Strimzi deploys, fetched from
 * Maven Central by tools/kafka/fetch.sh into a cache outside the repository, run as a single-node
 * KRaft server (broker and controller in one JVM) on free loopback ports.
 *
 *   const kafka = await startKafka();
 *   await kafka.createTopic("web.events", 6);
 *   await kafka.produce("web.events", ['{"id":1}']);
 *   ...
 *   await kafka.stop();
 *
 * Every JVM this module starts is killed when the test process exits, whether the test passed,
 * failed or was interrupted, and a small watchdog kills the broker even if the test process itself
 * is killed with SIGKILL. Command-line tools (topics, console producer and consumer, consumer
 * groups) run from the same jars against the PLAINTEXT listener.
 */
import { ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    canConnect,
    freePort,
    logSince,
    ownDir,
    readTail,
    releaseDir,
    sleep,
    trackChild,
    watchdog,
} from "./process";

export { freePort };

/** A SCRAM-SHA-512 user, created in the cluster metadata when the storage is formatted. */
export interface ScramUser {
    readonly username: string;
    readonly password: string;
}

export interface StartKafkaOptions {
    /**
     * Adds a SASL_PLAINTEXT listener offering SCRAM-SHA-512 (what Strimzi's `scram-sha-512`
     * authentication uses), with this user. The PLAINTEXT listener stays for the harness's tools.
     * @default no SASL listener
     */
    readonly scram?: ScramUser;
    /**
     * Also accept SASL/PLAIN for the same user on the SASL listener, for clients whose Kafka
     * library has no SCRAM (the embedded ClickHouse engine's librdkafka is built with PLAIN only).
     * @default false
     */
    readonly alsoPlain?: boolean;
    /**
     * Directory for the broker's data, config and log. Kept after stop() when given.
     * @default a fresh temporary directory, removed by stop()
     */
    readonly dataDir?: string;
    /** Topics are created with this many partitions when a client auto-creates them. @default 1 */
    readonly defaultPartitions?: number;
    /** Extra server.properties entries, e.g. `{ "auto.create.topics.enable": false }`. */
    readonly serverProperties?: Readonly<Record<string, string | number | boolean>>;
}

/** The SASL listener of a broker started with `scram`. */
export interface SaslListener {
    /** host:port of the SASL_PLAINTEXT listener. */
    readonly bootstrap: string;
    readonly securityProtocol: "SASL_PLAINTEXT";
    readonly mechanisms: readonly ("SCRAM-SHA-512" | "PLAIN")[];
    readonly username: string;
    readonly password: string;
}

/** Credentials a tool client presents on the SASL listener instead of using PLAINTEXT. */
export interface ClientAuth {
    readonly username: string;
    readonly password: string;
    /** @default "SCRAM-SHA-512" */
    readonly mechanism?: "SCRAM-SHA-512" | "PLAIN";
}

/** Offsets of one partition for one consumer group, as the broker reports them. */
export interface PartitionOffsets {
    readonly topic: string;
    readonly partition: number;
    /** Committed offset of the group; undefined when it has committed nothing. */
    readonly committed: number | undefined;
    readonly logEnd: number;
    readonly lag: number | undefined;
}

export interface KafkaBroker {
    /** host:port of the PLAINTEXT listener. */
    readonly bootstrap: string;
    /** Present when the broker was started with `scram`. */
    readonly sasl: SaslListener | undefined;
    readonly dataDir: string;
    /** The broker's stdout and stderr (INFO level), appended across restarts. */
    readonly logFile: string;
    /** Process id of the broker JVM while it runs. */
    readonly pid: number | undefined;
    readonly running: boolean;
    /**
     * Stops the broker (SIGTERM, or SIGKILL when `hard`) and starts it again on the same ports
     * and data: topics, messages and committed offsets survive.
     */
    restart(opts?: { hard?: boolean }): Promise<void>;
    /** Stops the broker without starting it again (SIGTERM, or SIGKILL when `hard`). */
    halt(opts?: { hard?: boolean }): Promise<void>;
    /** Starts a halted broker again on the same ports and data. */
    resume(): Promise<void>;
    /** Stops the broker for good and removes its directory unless `dataDir` was given. */
    stop(): Promise<void>;
    createTopic(
        name: string,
        partitions: number,
        config?: Readonly<Record<string, string | number>>,
    ): Promise<void>;
    /**
     * Sends each string as one message value (no key) and resolves once the producer has flushed
     * them all with acks=all. Messages may not contain a newline. Accepts any iterable, so a
     * generator can feed a million messages without building them all in memory.
     * Resolves to the number of messages sent. With `auth`, the producer authenticates on the
     * SASL listener.
     */
    produce(
        topic: string,
        messages: Iterable<string>,
        opts?: { auth?: ClientAuth },
    ): Promise<number>;
    /**
     * Reads up to `max` message values from the beginning of the topic (or from the group's
     * committed offsets when `group` is given; the group commits what it read).
     */
    consume(
        topic: string,
        max: number,
        opts?: { timeoutMs?: number; auth?: ClientAuth; group?: string },
    ): Promise<string[]>;
    /** Log-end offset of every partition of the topic, by partition. */
    endOffsets(topic: string): Promise<number[]>;
    /** Partition count, replication factor and the topic's non-default configs; undefined when absent. */
    describeTopic(
        topic: string,
    ): Promise<
        | { partitions: number; replicationFactor: number; config: Record<string, string> }
        | undefined
    >;
    /** Committed offsets and lag of a consumer group, per partition it has offsets for. */
    consumerGroupOffsets(group: string): Promise<PartitionOffsets[]>;
}

const REPO_ROOT = path.resolve(__dirname, "..");
const FETCH_SCRIPT = path.join(REPO_ROOT, "tools", "kafka", "fetch.sh");
const POM = path.join(REPO_ROOT, "tools", "kafka", "pom.xml");

/** The Kafka version the harness runs, as tools/kafka/pom.xml pins it (the one place it is set). */
export const KAFKA_VERSION = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(
    fs.readFileSync(POM, "utf8"),
)![1]!;

let libDirPromise: Promise<string> | undefined;

/**
 * The directory holding the Kafka jars: `$KAFKA_LIB` when it holds this version, else the output
 * of tools/kafka/fetch.sh, run once per process (it returns at once when the jars are cached).
 * Progress goes to this process's stderr.
 */
export function kafkaLibDir(): Promise<string> {
    // `./run` fetches once and exports the directory; the harness then needs no second look.
    const given = process.env.KAFKA_LIB;
    if (given && fs.existsSync(path.join(given, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
        return Promise.resolve(given);
    }
    libDirPromise ??= new Promise<string>((resolve, reject) => {
        const child = spawn("bash", [FETCH_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
        child.on("error", reject);
        child.on("exit", (code) => {
            const lines = out.trim().split("\n");
            const dir = lines[lines.length - 1] ?? "";
            if (code === 0 && dir && fs.existsSync(dir)) resolve(dir);
            else reject(new Error(`${FETCH_SCRIPT} failed (exit ${code}): ${out.trim()}`));
        });
    });
    const p = libDirPromise;
    // A failed fetch may be retried by the next caller.
    p.catch(() => {
        if (libDirPromise === p) libDirPromise = undefined;
    });
    return p;
}

interface Ports {
    readonly plaintext: number;
    readonly controller: number;
    readonly sasl: number | undefined;
}

/**
 * Renders server.properties for a single-node combined broker+controller. Kafka 4.x: dynamic
 * quorum (`controller.quorum.bootstrap.servers`, storage formatted with `--standalone`).
 */
export function renderServerProperties(args: {
    readonly ports: Ports;
    readonly logDir: string;
    readonly scram?: ScramUser;
    readonly alsoPlain?: boolean;
    readonly defaultPartitions?: number;
    readonly extra?: Readonly<Record<string, string | number | boolean>>;
}): string {
    const { ports } = args;
    const host = "127.0.0.1";
    const listeners = [`PLAINTEXT://${host}:${ports.plaintext}`];
    const advertised = [`PLAINTEXT://${host}:${ports.plaintext}`];
    const protocolMap = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"];
    const props: Record<string, string | number | boolean> = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.bootstrap.servers": `${host}:${ports.controller}`,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": args.logDir,
        "num.partitions": args.defaultPartitions ?? 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 5,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        // Consumers of a test may come and go quickly; allow short sessions.
        "group.min.session.timeout.ms": 1000,
        // After a SIGKILL the controller waits for the old incarnation's session to expire before
        // the restarted broker leads its partitions again: keep that short.
        "broker.heartbeat.interval.ms": 500,
        "broker.session.timeout.ms": 3000,
    };
    if (args.scram && ports.sasl !== undefined) {
        listeners.push(`SASL_PLAINTEXT://${host}:${ports.sasl}`);
        advertised.push(`SASL_PLAINTEXT://${host}:${ports.sasl}`);
        protocolMap.push("SASL_PLAINTEXT:SASL_PLAINTEXT");
        const mechanisms = args.alsoPlain ? "SCRAM-SHA-512,PLAIN" : "SCRAM-SHA-512";
        props["sasl.enabled.mechanisms"] = mechanisms;
        props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] =
            "org.apache.kafka.common.security.scram.ScramLoginModule required;";
        if (args.alsoPlain) {
            // PLAIN checks passwords against its JAAS config, not the SCRAM credentials.
            props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] =
                "org.apache.kafka.common.security.plain.PlainLoginModule required " +
                `user_${args.scram.username}=${javaQuote(args.scram.password)};`;
        }
    }
    listeners.push(`CONTROLLER://${host}:${ports.controller}`);
    props["listeners"] = listeners.join(",");
    props["advertised.listeners"] = advertised.join(",");
    props["listener.security.protocol.map"] = protocolMap.join(",");
    Object.assign(props, args.extra ?? {});
    return (
        Object.entries(props)
            .map(([k, v]) => `${k}=${String(v).replace(/\\/g, "\\\\")}`)
            .join("\n") + "\n"
    );
}

function javaQuote(s: string): string {
    return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

// ---------------------------------------------------------------------------------------------
// Tools

const JAVA = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, "bin", "java") : "java";
const TOOL_JVM_FLAGS = [
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
];

interface ToolResult {
    readonly stdout: string;
    readonly stderr: string;
}

function runTool(
    lib: string,
    mainClass: string,
    args: readonly string[],
    opts: { timeoutMs?: number } = {},
): Promise<ToolResult> {
    return new Promise((resolve, reject) => {
        const child = execFile(
            JAVA,
            [...TOOL_JVM_FLAGS, "-cp", `${lib}/*`, mainClass, ...args],
            { timeout: opts.timeoutMs ?? 60_000, killSignal: "SIGKILL", maxBuffer: 256 << 20 },
            (err, stdout, stderr) => {
                if (err) {
                    const short = mainClass.split(".").pop();
                    reject(
                        new Error(
                            `${short} ${args.join(" ")} failed: ${err.message}\n${tail(stderr, 2000)}`,
                        ),
                    );
                } else resolve({ stdout, stderr });
            },
        );
        trackChild(child);
    });
}

function tail(s: string, n: number): string {
    return s.length <= n ? s : "…" + s.slice(s.length - n);
}

// ---------------------------------------------------------------------------------------------
// The broker

/** Formats storage and starts a single-node KRaft broker; resolves once it accepts clients. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
    const lib = await kafkaLibDir();
    const ownsDir = opts.dataDir === undefined;
    const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "kcs-kafka-"));
    fs.mkdirSync(dataDir, { recursive: true });
    if (ownsDir) {
        ownDir(dataDir);
    }
    const ports: Ports = {
        plaintext: await freePort(),
        controller: await freePort(),
        sasl: opts.scram ? await freePort() : undefined,
    };
    const logDir = path.join(dataDir, "kraft-logs");
    const propsFile = path.join(dataDir, "server.properties");
    const logFile = path.join(dataDir, "broker.log");
    fs.writeFileSync(
        propsFile,
        renderServerProperties({
            ports,
            logDir,
            ...(opts.scram ? { scram: opts.scram } : {}),
            alsoPlain: opts.alsoPlain ?? false,
            defaultPartitions: opts.defaultPartitions ?? 1,
            extra: opts.serverProperties ?? {},
        }),
        { mode: 0o600 },
    );

    const clusterId = randomBytes(16).toString("base64url");
    // `--cluster-id=<id>` in one argument: a base64url id may start with '-', which the storage
    // tool would otherwise take for an option.
    const formatArgs = ["format", `--cluster-id=${clusterId}`, "-c", propsFile, "--standalone"];
    if (opts.scram) {
        formatArgs.push(
            "--add-scram",
            `SCRAM-SHA-512=[name=${opts.scram.username},password=${opts.scram.password}]`,
        );
    }
    await runTool(lib, "kafka.tools.StorageTool", formatArgs);

    const bootstrap = `127.0.0.1:${ports.plaintext}`;
    let child: ChildProcess | undefined;
    let stopped = false;

    async function launch(): Promise<void> {
        const fd = fs.openSync(logFile, "a");
        const proc = spawn(
            JAVA,
            [
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-cp",
                `${lib}/*`,
                "kafka.Kafka",
                propsFile,
            ],
            { stdio: ["ignore", fd, fd] },
        );
        fs.closeSync(fd);
        trackChild(proc);
        if (proc.pid !== undefined) watchdog(proc.pid);
        child = proc;
        let exited: string | undefined;
        proc.once("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));
        const deadline = Date.now() + 90_000;
        const startOffset = fs.statSync(logFile).size;
        for (;;) {
            if (exited) {
                throw new Error(`Kafka broker ${exited} while starting:\n${readTail(logFile)}`);
            }
            if (Date.now() > deadline) {
                proc.kill("SIGKILL");
                throw new Error(`Kafka broker did not start within 90 s:\n${readTail(logFile)}`);
            }
            if (logSince(logFile, startOffset).includes("Kafka Server started")) {
                if (await canConnect(ports.plaintext)) return;
            }
            await sleep(200);
        }
    }

    async function terminate(hard: boolean): Promise<void> {
        const proc = child;
        child = undefined;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const gone = new Promise<void>((r) => proc.once("exit", () => r()));
        proc.kill(hard ? "SIGKILL" : "SIGTERM");
        // A graceful shutdown takes a few seconds; past 30 s the JVM is killed.
        const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
        await gone;
        clearTimeout(timer);
    }

    await launch();

    /** Where a tool connects, and the client config file it needs for SASL. */
    function endpoint(auth: ClientAuth | undefined): string[] {
        if (!auth) return ["--bootstrap-server", bootstrap];
        if (ports.sasl === undefined)
            throw new Error("this broker has no SASL listener (start it with `scram`)");
        const mechanism = auth.mechanism ?? "SCRAM-SHA-512";
        const module =
            mechanism === "PLAIN"
                ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                : "org.apache.kafka.common.security.scram.ScramLoginModule";
        const file = path.join(dataDir, `client-${randomBytes(4).toString("hex")}.properties`);
        fs.writeFileSync(
            file,
            [
                "security.protocol=SASL_PLAINTEXT",
                `sasl.mechanism=${mechanism}`,
                `sasl.jaas.config=${module} required username=${javaQuote(auth.username)} password=${javaQuote(auth.password)};`,
                "",
            ].join("\n"),
            { mode: 0o600 },
        );
        return ["--bootstrap-server", `127.0.0.1:${ports.sasl}`, "--command-config", file];
    }

    const broker: KafkaBroker = {
        bootstrap,
        sasl:
            opts.scram && ports.sasl !== undefined
                ? {
                      bootstrap: `127.0.0.1:${ports.sasl}`,
                      securityProtocol: "SASL_PLAINTEXT",
                      mechanisms: opts.alsoPlain ? ["SCRAM-SHA-512", "PLAIN"] : ["SCRAM-SHA-512"],
                      username: opts.scram.username,
                      password: opts.scram.password,
                  }
                : undefined,
        dataDir,
        logFile,
        get pid() {
            return child?.pid;
        },
        get running() {
            return child !== undefined && child.exitCode === null && child.signalCode === null;
        },
        async restart(o = {}) {
            await terminate(o.hard ?? false);
            await launch();
        },
        async halt(o = {}) {
            await terminate(o.hard ?? false);
        },
        async resume() {
            if (stopped) throw new Error("the broker was stopped for good; start a new one");
            if (!broker.running) await launch();
        },
        async stop() {
            if (stopped) return;
            stopped = true;
            await terminate(false);
            if (ownsDir) {
                fs.rmSync(dataDir, { recursive: true, force: true });
                releaseDir(dataDir);
            }
        },
        async createTopic(name, partitions, config = {}) {
            const args = [
                "--bootstrap-server",
                bootstrap,
                "--create",
                "--if-not-exists",
                "--topic",
                name,
                "--partitions",
                String(partitions),
                "--replication-factor",
                "1",
            ];
            for (const [k, v] of Object.entries(config)) args.push("--config", `${k}=${v}`);
            await runTool(lib, "org.apache.kafka.tools.TopicCommand", args);
        },
        produce: (topic, messages, o = {}) => produce(lib, endpoint(o.auth), topic, messages),
        async consume(topic, max, o = {}) {
            const timeoutMs = o.timeoutMs ?? 15_000;
            const { stdout, stderr } = await runTool(
                lib,
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                [
                    ...endpoint(o.auth),
                    "--topic",
                    topic,
                    "--from-beginning",
                    "--max-messages",
                    String(max),
                    "--timeout-ms",
                    String(timeoutMs),
                    ...(o.group ? ["--group", o.group] : []),
                ],
                { timeoutMs: timeoutMs + 60_000 },
            );
            // The console consumer exits 0 even when an error (e.g. an authorization failure)
            // ends it; a read that failed must not look like an empty topic.
            const fatal = /terminating consumer process:\s*([^\n]*\n?[^\n]*)/.exec(stderr);
            if (fatal) throw new Error(`console consumer of ${topic} failed: ${fatal[1]!.trim()}`);
            return stdout.split("\n").filter((l) => l.length > 0);
        },
        async endOffsets(topic) {
            const { stdout } = await runTool(lib, "org.apache.kafka.tools.GetOffsetShell", [
                "--bootstrap-server",
                bootstrap,
                "--topic",
                topic,
                "--time",
                "-1",
            ]);
            const offsets: number[] = [];
            for (const line of stdout.trim().split("\n")) {
                const m = /^(.*):(\d+):(\d+)$/.exec(line.trim());
                if (m && m[1] === topic) offsets[Number(m[2])] = Number(m[3]);
            }
            return offsets;
        },
        async describeTopic(topic) {
            const { stdout } = await runTool(lib, "org.apache.kafka.tools.TopicCommand", [
                "--bootstrap-server",
                bootstrap,
                "--describe",
                "--topic",
                topic,
            ]).catch((e: Error) => {
                if (/does not exist|UnknownTopicOrPartition/.test(e.message)) return { stdout: "" };
                throw e;
            });
            return parseTopicDescription(stdout, topic);
        },
        async consumerGroupOffsets(group) {
            const { stdout } = await runTool(
                lib,
                "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                ["--bootstrap-server", bootstrap, "--describe", "--offsets", "--group", group],
            );
            return parseGroupOffsets(stdout);
        },
    };
    return broker;
}

/** Parses the summary line `kafka-topics --describe` prints for a topic. */
export function parseTopicDescription(
    text: string,
    topic: string,
): { partitions: number; replicationFactor: number; config: Record<string, string> } | undefined {
    const line = text
        .split("\n")
        .find((l) => l.includes(`Topic: ${topic}\t`) && l.includes("PartitionCount:"));
    if (!line) return undefined;
    const field = (name: string) => new RegExp(`${name}:\\s*(\\S*)`).exec(line)?.[1] ?? "";
    const config: Record<string, string> = {};
    for (const pair of field("Configs").split(",").filter(Boolean)) {
        const i = pair.indexOf("=");
        config[pair.slice(0, i)] = pair.slice(i + 1);
    }
    return {
        partitions: Number(field("PartitionCount")),
        replicationFactor: Number(field("ReplicationFactor")),
        config,
    };
}

/** Parses the table `kafka-consumer-groups --describe --offsets` prints. */
export function parseGroupOffsets(text: string): PartitionOffsets[] {
    const rows: PartitionOffsets[] = [];
    const lines = text.split("\n").map((l) => l.trim());
    const header = lines.find((l) => l.startsWith("GROUP"));
    if (!header) return rows;
    const cols = header.split(/\s+/);
    const at = (name: string) => cols.indexOf(name);
    for (const line of lines) {
        if (!line || line.startsWith("GROUP") || line.startsWith("Consumer group")) continue;
        const f = line.split(/\s+/);
        if (f.length < cols.length - 3) continue;
        const num = (name: string): number | undefined => {
            const v = f[at(name)];
            return v === undefined || v === "-" ? undefined : Number(v);
        };
        const partition = num("PARTITION");
        const logEnd = num("LOG-END-OFFSET");
        if (partition === undefined || logEnd === undefined) continue;
        rows.push({
            topic: f[at("TOPIC")] ?? "",
            partition,
            committed: num("CURRENT-OFFSET"),
            logEnd,
            lag: num("LAG"),
        });
    }
    return rows.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

/**
 * Feeds the messages to Kafka's console producer on stdin, with backpressure. The producer
 * flushes and exits when stdin closes; delivery failures are logged by its callback at ERROR,
 * which is turned into a rejection here.
 */
/**
 * A producer for a broker this process did not start (the sandbox's, or any PLAINTEXT broker on
 * loopback), with the same semantics as `KafkaBroker.produce`.
 */
export async function kafkaProducer(
    bootstrap: string,
): Promise<{ produce(topic: string, messages: Iterable<string>): Promise<number> }> {
    const lib = await kafkaLibDir();
    return {
        produce: (topic, messages) =>
            produce(lib, ["--bootstrap-server", bootstrap], topic, messages),
    };
}

function produce(
    lib: string,
    endpointArgs: readonly string[],
    topic: string,
    messages: Iterable<string>,
): Promise<number> {
    return new Promise<number>((resolve, reject) => {
        const child = spawn(
            JAVA,
            [
                ...TOOL_JVM_FLAGS,
                "-cp",
                `${lib}/*`,
                "org.apache.kafka.tools.ConsoleProducer",
                ...endpointArgs,
                "--topic",
                topic,
                "--command-property",
                "acks=all",
                "--command-property",
                "linger.ms=10",
                "--command-property",
                "batch.size=524288",
                "--command-property",
                "compression.type=lz4",
                "--command-property",
                "delivery.timeout.ms=60000",
            ],
            { stdio: ["pipe", "ignore", "pipe"] },
        );
        trackChild(child);
        let stderr = "";
        child.stderr!.setEncoding("utf8").on("data", (d: string) => {
            stderr = tail(stderr + d, 20_000);
        });
        let count = 0;
        let failed: Error | undefined;
        child.on("error", (e) => (failed ??= e));
        child.stdin!.on("error", (e) => (failed ??= e));
        child.on("exit", (code, signal) => {
            const sendErrors = /Error when sending message|\bERROR\b/.test(stderr);
            if (failed) reject(failed);
            else if (code !== 0 || sendErrors) {
                reject(
                    new Error(
                        `console producer to ${topic} failed (${signal ?? code}):\n${tail(stderr, 3000)}`,
                    ),
                );
            } else resolve(count);
        });

        const iterator = messages[Symbol.iterator]();
        const stdin = child.stdin!;
        const pump = (): void => {
            let chunk = "";
            for (;;) {
                const next = iterator.next();
                if (next.done) {
                    if (chunk) stdin.write(chunk);
                    stdin.end();
                    return;
                }
                if (next.value.includes("\n") || next.value.includes("\r")) {
                    failed = new Error(
                        `message ${count} contains a line break; the console producer sends one message per line`,
                    );
                    stdin.end();
                    child.kill("SIGKILL");
                    return;
                }
                chunk += next.value + "\n";
                count++;
                if (chunk.length >= 1 << 20) {
                    if (!stdin.write(chunk)) {
                        stdin.once("drain", pump);
                        return;
                    }
                    chunk = "";
                }
            }
        };
        pump();
    });
}
