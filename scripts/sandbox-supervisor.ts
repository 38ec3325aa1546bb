/**
 * The sandbox's long-lived half, started detached by `./run sandbox`: it owns the local
 * Kubernetes API server (kwok), the Kafka broker and the ClickHouse engine (chdb behind its HTTP
 * interface), writes where they listen to `.sandbox/state.json`, and stops them all on SIGTERM.
 * The harnesses kill their children if this process dies; what cannot be killed that way (the
 * API server's components run in sessions of their own; the data folders) is written to
 * `.sandbox/registry.jsonl` as it starts, so the next `./run sandbox` or `down` finds it.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderKafkaConfig } from "../components/clickhouse/render";
import { startClickHouseServer } from "../runtime/chserver";
import { startKafka } from "../runtime/kafka";
import { STANDIN_BROKER_PROPERTIES, startStrimziStandIn } from "../runtime/strimzi-standin";
import { startKube } from "../runtime/kube";
import { activateRegistry } from "../runtime/process-registry";
import { strimziCrdDir } from "../runtime/strimzi";
import {
    CLICKHOUSE_DIR,
    KAFKA_DIR,
    REGISTRY_FILE,
    SANDBOX_DIR,
    STATE_FILE,
    SandboxState,
} from "./sandbox-state";

const log = (line: string) =>
    process.stdout.write(`[supervisor ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

function requiredEnv(name: string): string {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set: start the sandbox with ./run sandbox`);
    delete process.env[name];
    return value;
}

async function main(): Promise<void> {
    fs.mkdirSync(SANDBOX_DIR, { recursive: true });
    const registry = activateRegistry(REGISTRY_FILE);
    registry.recordFolder(KAFKA_DIR, "Kafka data (KRaft logs)");
    registry.recordFolder(CLICKHOUSE_DIR, "ClickHouse data");
    log("starting the Kubernetes API server (kwok), the Kafka broker and ClickHouse...");
    const [kube, broker, clickhouse] = await Promise.all([
        startKube({ name: "kcs-sandbox", log }),
        startKafka({
            dataDir: KAFKA_DIR,
            defaultPartitions: 3,
            // A SASL listener and the standard authorizer, so the KafkaUser's credentials and
            // ACLs the Strimzi stand-in writes are real; the tools and ClickHouse use PLAINTEXT.
            scram: { username: "kcs-harness", password: randomBytes(12).toString("hex") },
            serverProperties: STANDIN_BROKER_PROPERTIES,
        }),
        startClickHouseServer({
            dataDir: CLICKHOUSE_DIR,
            log: path.join(SANDBOX_DIR, "clickhouse.log"),
            // The Kafka client settings the StatefulSet's config.d/kafka.xml carries, without SASL.
            configXml: renderKafkaConfig({ securityProtocol: "PLAINTEXT" }),
            username: "admin",
            password: requiredEnv("KCS_SANDBOX_CLICKHOUSE_PASSWORD"),
        }),
    ]);
    const crdDir = strimziCrdDir();
    log(`applying the Strimzi CRDs from ${crdDir}...`);
    await kube.applyCrds(crdDir);
    // The Strimzi operator cannot run here: its stand-in reports the status Strimzi 1.2 reports
    // and creates the topics, SCRAM credentials and ACLs on the broker, as its operators would.
    const strimzi = await startStrimziStandIn({
        kubeconfig: kube.kubeconfig,
        kafkaBootstrap: broker.bootstrap,
        log: (line) => log(`strimzi: ${line}`),
    });
    const state: SandboxState = {
        supervisorPid: process.pid,
        kubeconfig: kube.kubeconfig,
        kafkaBootstrap: broker.bootstrap,
        clickhouseUrl: clickhouse.url,
        kafkaLog: broker.logFile,
        clickhouseLog: clickhouse.logFile ?? "",
    };
    fs.writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));
    log(`ready: ${JSON.stringify(state)}`);

    let stopping = false;
    const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log(`${signal}: stopping ClickHouse, the broker and the API server...`);
        await strimzi.stop();
        await Promise.allSettled([clickhouse.stop(), broker.stop(), kube.stop()]);
        fs.rmSync(STATE_FILE, { force: true });
        log("stopped");
        process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    // Stay alive: the Kafka engine consumes in this process tree for as long as the sandbox is up.
    setInterval(() => undefined, 60_000);
}

main().catch((e: unknown) => {
    log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
});
