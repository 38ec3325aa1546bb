/**
 * The real Pulumi engine, offline: the locally built CLI, language host and providers
 * (tools/bootstrap.sh), a file backend, passphrase secrets, no plugin downloads and no update
 * checks. Used by the e2e tests, the sandbox and the CI ephemeral-stack job.
 */
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureTools } from "./kube";

export const PROJECT_DIR = path.resolve(__dirname, "..");
const PROJECT = "kafka-clickhouse-stack";

export interface EngineOptions {
    /**
     * Backend directory (file backend), or "local" for the one `. tools/env.sh` uses.
     * Default: a new temp directory, removed by dispose().
     */
    readonly backendDir?: string | "local";
    /** Extra environment for the engine and the program (e.g. KUBECONFIG). */
    readonly env?: Record<string, string>;
    /**
     * Type-check the program as a user's `pulumi up` does. Default false: the tests type-check
     * with `npm run typecheck`, and test/e2e/readme-shell.test.ts runs the checked path.
     */
    readonly typeCheck?: boolean;
}

export interface Engine {
    readonly command: PulumiCommand;
    readonly env: Record<string, string>;
    readonly backendDir: string;
    /**
     * Creates (or selects) a stack with the given config (keys without namespace): of this
     * project, or of another program (its folder and the project name its Pulumi.yaml gives).
     */
    stack(
        name: string,
        config: Record<string, string>,
        secrets?: Record<string, string>,
        program?: { readonly workDir: string; readonly project: string },
    ): Promise<Stack>;
    /** Removes the temp backend, when this engine made it. */
    dispose(): void;
}

/** A stack name no other run uses. */
/**
 * Stack config for a stack on the local runtime: small sizes, ephemeral storage (PVCs never bind on
 * kwok), the DDL provider on the local ClickHouse HTTP front, the Kafka tables on the local broker.
 */
export function localStackConfig(local: {
    readonly namespace: string;
    readonly streamsDir: string;
    readonly clickhouseUrl: string;
    readonly kafkaBootstrap: string;
}): Record<string, string> {
    return {
        namespace: local.namespace,
        streamsDir: local.streamsDir,
        kafkaEphemeralStorage: "true",
        clickhouseEphemeralStorage: "true",
        kafkaBrokerCpu: "100m",
        kafkaBrokerMemory: "512Mi",
        clickhouseCpu: "100m",
        clickhouseMemory: "512Mi",
        ingestionConnection: "url",
        ingestionUrl: local.clickhouseUrl,
        // The local ClickHouse server listens on loopback, plain HTTP.
        ingestionAllowInsecureHttp: "true",
        ingestionKafkaBrokers: local.kafkaBootstrap,
    };
}

export function uniqueStackName(prefix: string): string {
    return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

let localDefaults: { backendDir: string; passphraseFile: string } | undefined;

/**
 * The local backend and passphrase file of tools/pulumi-local.sh, which `. tools/env.sh` exports
 * too: one source, so a shell finds and decrypts the stacks the sandbox made.
 */
export function localPulumi(): { backendDir: string; passphraseFile: string } {
    if (localDefaults) return localDefaults;
    const script = path.join(PROJECT_DIR, "tools", "pulumi-local.sh");
    const res = spawnSync("bash", [script], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
    });
    if (res.error) throw res.error;
    if (res.status !== 0)
        throw new Error(`tools/pulumi-local.sh failed with exit code ${res.status}`);
    const vars = Object.fromEntries(
        res.stdout
            .trim()
            .split("\n")
            .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const url = vars.PULUMI_BACKEND_URL ?? "";
    if (!url.startsWith("file://") || !vars.PULUMI_CONFIG_PASSPHRASE_FILE)
        throw new Error(
            `tools/pulumi-local.sh printed no file backend and passphrase file:\n${res.stdout}`,
        );
    localDefaults = {
        backendDir: url.slice("file://".length),
        passphraseFile: vars.PULUMI_CONFIG_PASSPHRASE_FILE,
    };
    return localDefaults;
}

/** The caller's passphrase when it set one, else the local passphrase file. */
function passphraseEnv(): Record<string, string> {
    if (process.env.PULUMI_CONFIG_PASSPHRASE !== undefined)
        return { PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE };
    if (process.env.PULUMI_CONFIG_PASSPHRASE_FILE)
        return { PULUMI_CONFIG_PASSPHRASE_FILE: process.env.PULUMI_CONFIG_PASSPHRASE_FILE };
    return { PULUMI_CONFIG_PASSPHRASE_FILE: localPulumi().passphraseFile };
}

/** Environment that keeps the Pulumi engine off the network. */
export function offlineEnv(
    binDir: string,
    backendDir: string,
    typeCheck = false,
): Record<string, string> {
    const toolsRoot = path.dirname(binDir);
    return {
        // The bin dir also holds the dynamic-provider launcher (pulumi-resource-pulumi-nodejs).
        PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}`,
        // Use the providers registered in PULUMI_HOME, not whatever binaries are on PATH.
        PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
        PULUMI_HOME: path.join(toolsRoot, "pulumi-home"),
        PULUMI_BACKEND_URL: `file://${backendDir}`,
        ...passphraseEnv(),
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
        // Unless asked, program type-checking is left to `npm run typecheck`.
        PULUMI_NODEJS_TRANSPILE_ONLY: typeCheck ? "false" : "true",
        NODE_OPTIONS: "--no-deprecation",
    };
}

export async function startEngine(opts: EngineOptions = {}): Promise<Engine> {
    const binDir = ensureTools("pulumi");
    const ownBackend = opts.backendDir === undefined;
    const backendDir =
        opts.backendDir === "local"
            ? localPulumi().backendDir
            : (opts.backendDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "kcs-pulumi-state-")));
    fs.mkdirSync(backendDir, { recursive: true });
    const env = { ...offlineEnv(binDir, backendDir, opts.typeCheck), ...(opts.env ?? {}) };
    fs.mkdirSync(env.PULUMI_HOME!, { recursive: true });
    const command = await PulumiCommand.get({ root: path.dirname(binDir) });
    return {
        command,
        env,
        backendDir,
        async stack(name, config, secrets = {}, program) {
            const project = program?.project ?? PROJECT;
            const stack = await LocalWorkspace.createOrSelectStack(
                { stackName: name, workDir: program?.workDir ?? PROJECT_DIR },
                { envVars: env, pulumiCommand: command, pulumiHome: env.PULUMI_HOME },
            );
            const all: Record<string, { value: string; secret?: boolean }> = {};
            for (const [k, v] of Object.entries(config))
                all[k.includes(":") ? k : `${project}:${k}`] = { value: v };
            for (const [k, v] of Object.entries(secrets))
                all[`${project}:${k}`] = { value: v, secret: true };
            if (Object.keys(all).length > 0) await stack.setAllConfig(all);
            return stack;
        },
        dispose() {
            if (ownBackend) fs.rmSync(backendDir, { recursive: true, force: true });
        },
    };
}

/** Destroys a stack and removes it with its config file, whatever state it is in. */
export async function removeStack(
    stack: Stack,
    log: (line: string) => void = () => undefined,
): Promise<void> {
    try {
        await stack.destroy({ onOutput: log, continueOnError: true });
    } finally {
        await stack.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
        fs.rmSync(path.join(stack.workspace.workDir, `Pulumi.${stack.name}.yaml`), { force: true });
    }
}
