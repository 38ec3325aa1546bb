/**
 * What a local broker is made of before it starts: the Kafka jars of the pinned version and the
 * server.properties of a single-node KRaft broker on loopback.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** A SCRAM-SHA-512 user, created in the cluster metadata when the storage is formatted. */
export interface ScramUser {
    readonly username: string;
    readonly password: string;
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

export interface Ports {
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

/** A Java string literal, as JAAS config values are written. */
export function javaQuote(s: string): string {
    return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
