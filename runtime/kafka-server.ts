/**
 * The broker JVM: its data directory and ports, the storage format, and the process itself,
 * started until it accepts clients and stopped gracefully or hard.
 */
import { ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Ports, ScramUser, renderServerProperties } from "./kafka-config";
import { JAVA, runTool } from "./kafka-tools";
import {
    canConnect,
    freePort,
    logSince,
    ownDir,
    readTail,
    sleep,
    trackChild,
    watchdog,
} from "./process";

/** The broker's directory: the one given, or a fresh temporary one this process owns. */
export function brokerDataDir(given: string | undefined): { dataDir: string; ownsDir: boolean } {
    const ownsDir = given === undefined;
    const dataDir = given ?? fs.mkdtempSync(path.join(os.tmpdir(), "kcs-kafka-"));
    fs.mkdirSync(dataDir, { recursive: true });
    if (ownsDir) {
        ownDir(dataDir);
    }
    return { dataDir, ownsDir };
}

export async function brokerPorts(withSasl: boolean): Promise<Ports> {
    return {
        plaintext: await freePort(),
        controller: await freePort(),
        sasl: withSasl ? await freePort() : undefined,
    };
}

/**
 * Formats the KRaft storage of the config file with a new cluster id, with the SCRAM user in its
 * metadata when given.
 */
export async function formatStorage(
    lib: string,
    propsFile: string,
    scram: ScramUser | undefined,
): Promise<void> {
    const clusterId = randomBytes(16).toString("base64url");
    // `--cluster-id=<id>` in one argument: a base64url id may start with '-', which the storage
    // tool would otherwise take for an option.
    const formatArgs = ["format", `--cluster-id=${clusterId}`, "-c", propsFile, "--standalone"];
    if (scram) {
        formatArgs.push(
            "--add-scram",
            `SCRAM-SHA-512=[name=${scram.username},password=${scram.password}]`,
        );
    }
    await runTool(lib, "kafka.tools.StorageTool", formatArgs);
}

/** Writes server.properties into the data directory and returns its path. */
export function writeServerProperties(
    dataDir: string,
    args: Omit<Parameters<typeof renderServerProperties>[0], "logDir">,
): string {
    const propsFile = path.join(dataDir, "server.properties");
    fs.writeFileSync(
        propsFile,
        renderServerProperties({ ...args, logDir: path.join(dataDir, "kraft-logs") }),
        { mode: 0o600 },
    );
    return propsFile;
}

/** The broker process of one data directory, started and stopped as often as asked. */
export class BrokerProcess {
    private child: ChildProcess | undefined;

    constructor(
        private readonly lib: string,
        private readonly propsFile: string,
        readonly logFile: string,
        private readonly plaintextPort: number,
        private readonly jvmOptions: readonly string[] = [],
    ) {}

    get pid(): number | undefined {
        return this.child?.pid;
    }

    get running(): boolean {
        const child = this.child;
        return child !== undefined && child.exitCode === null && child.signalCode === null;
    }

    /** Starts the JVM and resolves once the broker has started and accepts connections. */
    async launch(): Promise<void> {
        const fd = fs.openSync(this.logFile, "a");
        const proc = spawn(JAVA, this.jvmArgs(), { stdio: ["ignore", fd, fd] });
        fs.closeSync(fd);
        trackChild(proc);
        if (proc.pid !== undefined) watchdog(proc.pid);
        this.child = proc;
        let exited: string | undefined;
        proc.once("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));
        const deadline = Date.now() + 90_000;
        const startOffset = fs.statSync(this.logFile).size;
        for (;;) {
            if (exited) {
                throw new Error(
                    `Kafka broker ${exited} while starting:\n${readTail(this.logFile)}`,
                );
            }
            if (Date.now() > deadline) {
                proc.kill("SIGKILL");
                throw new Error(
                    `Kafka broker did not start within 90 s:\n${readTail(this.logFile)}`,
                );
            }
            if (logSince(this.logFile, startOffset).includes("Kafka Server started")) {
                if (await canConnect(this.plaintextPort)) return;
            }
            await sleep(200);
        }
    }

    /** Stops the JVM (SIGTERM, or SIGKILL when `hard`) and resolves once it has exited. */
    async terminate(hard: boolean): Promise<void> {
        const proc = this.child;
        this.child = undefined;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const gone = new Promise<void>((r) => proc.once("exit", () => r()));
        proc.kill(hard ? "SIGKILL" : "SIGTERM");
        // A graceful shutdown takes a few seconds; past 30 s the JVM is killed.
        const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
        await gone;
        clearTimeout(timer);
    }

    private jvmArgs(): string[] {
        return [
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            ...this.jvmOptions,
            "-cp",
            `${this.lib}/*`,
            "kafka.Kafka",
            this.propsFile,
        ];
    }
}
