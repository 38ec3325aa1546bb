/**
 * Kafka's command-line tools (topics, console producer and consumer, offsets, consumer groups),
 * run from the broker's jars against its PLAINTEXT listener, or its SASL listener for a client
 * that authenticates.
 */
import { ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { javaQuote, kafkaLibDir } from "./kafka-config";
import { trackChild } from "./process";

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

/** What the tools do on a broker; `KafkaBroker` has these. */
export interface KafkaTools {
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

export const JAVA = process.env.JAVA_HOME
    ? path.join(process.env.JAVA_HOME, "bin", "java")
    : "java";
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

export function runTool(
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

/** A broker the tools reach: its PLAINTEXT address, and where a SASL client connects. */
export interface ToolTarget {
    readonly lib: string;
    /** host:port of the PLAINTEXT listener. */
    readonly bootstrap: string;
    /** Port of the SASL_PLAINTEXT listener; undefined when the broker has none. */
    readonly saslPort: number | undefined;
    /** Where the client config files of SASL clients are written. */
    readonly dataDir: string;
}

/** Where a tool connects, and the client config file it needs for SASL. */
function endpoint(target: ToolTarget, auth: ClientAuth | undefined): string[] {
    if (!auth) return ["--bootstrap-server", target.bootstrap];
    if (target.saslPort === undefined)
        throw new Error("this broker has no SASL listener (start it with `scram`)");
    const mechanism = auth.mechanism ?? "SCRAM-SHA-512";
    const module =
        mechanism === "PLAIN"
            ? "org.apache.kafka.common.security.plain.PlainLoginModule"
            : "org.apache.kafka.common.security.scram.ScramLoginModule";
    const file = path.join(target.dataDir, `client-${randomBytes(4).toString("hex")}.properties`);
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
    return ["--bootstrap-server", `127.0.0.1:${target.saslPort}`, "--command-config", file];
}

/** The tools bound to one broker. */
export function kafkaTools(target: ToolTarget): KafkaTools {
    const { lib, bootstrap } = target;
    return {
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
        produce: (topic, messages, o = {}) =>
            consoleProduce(lib, endpoint(target, o.auth), topic, messages),
        consume: (topic, max, o = {}) => consoleConsume(target, topic, max, o),
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
}

async function consoleConsume(
    target: ToolTarget,
    topic: string,
    max: number,
    o: { timeoutMs?: number; auth?: ClientAuth; group?: string },
): Promise<string[]> {
    const timeoutMs = o.timeoutMs ?? 15_000;
    const { stdout, stderr } = await runTool(
        target.lib,
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        [
            ...endpoint(target, o.auth),
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
 * A producer for a broker this process did not start (the sandbox's, or any PLAINTEXT broker on
 * loopback), with the same semantics as `KafkaBroker.produce`.
 */
export async function kafkaProducer(
    bootstrap: string,
): Promise<{ produce(topic: string, messages: Iterable<string>): Promise<number> }> {
    const lib = await kafkaLibDir();
    return {
        produce: (topic, messages) =>
            consoleProduce(lib, ["--bootstrap-server", bootstrap], topic, messages),
    };
}

/** What a console producer run has sent so far, and why it failed if it did. */
interface ProduceState {
    count: number;
    failed: Error | undefined;
}

/**
 * Feeds the messages to Kafka's console producer on stdin, with backpressure. The producer
 * flushes and exits when stdin closes; delivery failures are logged by its callback at ERROR,
 * which is turned into a rejection here.
 */
function consoleProduce(
    lib: string,
    endpointArgs: readonly string[],
    topic: string,
    messages: Iterable<string>,
): Promise<number> {
    return new Promise<number>((resolve, reject) => {
        const child = spawn(JAVA, consoleProducerArgs(lib, endpointArgs, topic), {
            stdio: ["pipe", "ignore", "pipe"],
        });
        trackChild(child);
        let stderr = "";
        child.stderr!.setEncoding("utf8").on("data", (d: string) => {
            stderr = tail(stderr + d, 20_000);
        });
        const state: ProduceState = { count: 0, failed: undefined };
        child.on("error", (e) => (state.failed ??= e));
        child.stdin!.on("error", (e) => (state.failed ??= e));
        child.on("exit", (code, signal) => {
            const sendErrors = /Error when sending message|\bERROR\b/.test(stderr);
            if (state.failed) reject(state.failed);
            else if (code !== 0 || sendErrors) {
                reject(
                    new Error(
                        `console producer to ${topic} failed (${signal ?? code}):\n${tail(stderr, 3000)}`,
                    ),
                );
            } else resolve(state.count);
        });
        pumpLines(messages, child, state);
    });
}

function consoleProducerArgs(
    lib: string,
    endpointArgs: readonly string[],
    topic: string,
): string[] {
    return [
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
    ];
}

/** Writes the messages one per line in chunks of about 1 MiB, waiting for drain when told to. */
function pumpLines(messages: Iterable<string>, child: ChildProcess, state: ProduceState): void {
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
                state.failed = new Error(
                    `message ${state.count} contains a line break; the console producer sends one message per line`,
                );
                stdin.end();
                child.kill("SIGKILL");
                return;
            }
            chunk += next.value + "\n";
            state.count++;
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
}
