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
import * as fs from "node:fs";
import * as path from "node:path";
import { type ScramUser, kafkaLibDir } from "./kafka-config";
import {
    BrokerProcess,
    brokerDataDir,
    brokerPorts,
    formatStorage,
    writeServerProperties,
} from "./kafka-server";
import { type KafkaTools, kafkaTools } from "./kafka-tools";
import { freePort, releaseDir } from "./process";

export { freePort };
export { KAFKA_VERSION, kafkaLibDir, renderServerProperties } from "./kafka-config";
export type { ScramUser } from "./kafka-config";
export { kafkaProducer, parseGroupOffsets, parseTopicDescription } from "./kafka-tools";
export type { ClientAuth, PartitionOffsets } from "./kafka-tools";

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
    /** Extra JVM options, before the classpath (e.g. a `-javaagent:`). @default none */
    readonly jvmOptions?: readonly string[];
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

export interface KafkaBroker extends KafkaTools {
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
}

/** Formats storage and starts a single-node KRaft broker; resolves once it accepts clients. */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
    const lib = await kafkaLibDir();
    const { dataDir, ownsDir } = brokerDataDir(opts.dataDir);
    const ports = await brokerPorts(opts.scram !== undefined);
    const propsFile = writeServerProperties(dataDir, {
        ports,
        ...(opts.scram ? { scram: opts.scram } : {}),
        alsoPlain: opts.alsoPlain ?? false,
        defaultPartitions: opts.defaultPartitions ?? 1,
        extra: opts.serverProperties ?? {},
    });
    await formatStorage(lib, propsFile, opts.scram);
    const server = new BrokerProcess(
        lib,
        propsFile,
        path.join(dataDir, "broker.log"),
        ports.plaintext,
        opts.jvmOptions ?? [],
    );
    await server.launch();

    const bootstrap = `127.0.0.1:${ports.plaintext}`;
    let stopped = false;
    const broker: KafkaBroker = {
        bootstrap,
        sasl: saslListener(opts, ports.sasl),
        dataDir,
        logFile: server.logFile,
        get pid() {
            return server.pid;
        },
        get running() {
            return server.running;
        },
        async restart(o = {}) {
            await server.terminate(o.hard ?? false);
            await server.launch();
        },
        async halt(o = {}) {
            await server.terminate(o.hard ?? false);
        },
        async resume() {
            if (stopped) throw new Error("the broker was stopped for good; start a new one");
            if (!broker.running) await server.launch();
        },
        async stop() {
            if (stopped) return;
            stopped = true;
            await server.terminate(false);
            if (ownsDir) {
                fs.rmSync(dataDir, { recursive: true, force: true });
                releaseDir(dataDir);
            }
        },
        ...kafkaTools({ lib, bootstrap, saslPort: ports.sasl, dataDir }),
    };
    return broker;
}

function saslListener(opts: StartKafkaOptions, port: number | undefined): SaslListener | undefined {
    if (!opts.scram || port === undefined) return undefined;
    return {
        bootstrap: `127.0.0.1:${port}`,
        securityProtocol: "SASL_PLAINTEXT",
        mechanisms: opts.alsoPlain ? ["SCRAM-SHA-512", "PLAIN"] : ["SCRAM-SHA-512"],
        username: opts.scram.username,
        password: opts.scram.password,
    };
}
