/**
 * The real Pulumi engine, offline: the locally built CLI, language host and providers
 * (tools/bootstrap.sh), a file backend, passphrase secrets, no plugin downloads and no update
 * checks. Used by the e2e tests, the sandbox and the CI ephemeral-stack job.
 */
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureTools } from "./kube";

export const PROJECT_DIR = path.resolve(__dirname, "..", "..");
const PROJECT = "kafka-clickhouse-stack";

export interface EngineOptions {
    /** Backend directory (file backend). Default: a new temp directory, removed by dispose(). */
    readonly backendDir?: string;
    /** Extra environment for the engine and the program (e.g. KUBECONFIG). */
    readonly env?: Record<string, string>;
}

export interface Engine {
    readonly command: PulumiCommand;
    readonly env: Record<string, string>;
    readonly backendDir: string;
    /** Creates (or selects) a stack of this project with the given config (keys without namespace). */
    stack(
        name: string,
        config: Record<string, string>,
        secrets?: Record<string, string>,
    ): Promise<Stack>;
    /** Removes the temp backend, when this engine made it. */
    dispose(): void;
}

/** A stack name no other run uses. */
export function uniqueStackName(prefix: string): string {
    return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

/** Environment that keeps the Pulumi engine off the network. */
export function offlineEnv(binDir: string, backendDir: string): Record<string, string> {
    const toolsRoot = path.dirname(binDir);
    return {
        // The bin dir also holds the dynamic-provider launcher (pulumi-resource-pulumi-nodejs).
        PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}`,
        // Use the providers registered in PULUMI_HOME, not whatever binaries are on PATH.
        PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
        PULUMI_HOME: path.join(toolsRoot, "pulumi-home"),
        PULUMI_BACKEND_URL: `file://${backendDir}`,
        PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? "kcs-local-only",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
        // Program type-checking happens in `npm run typecheck`; the engine only transpiles.
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
        NODE_OPTIONS: "--no-deprecation",
    };
}

export async function startEngine(opts: EngineOptions = {}): Promise<Engine> {
    const binDir = ensureTools("pulumi");
    const ownBackend = opts.backendDir === undefined;
    const backendDir =
        opts.backendDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "kcs-pulumi-state-"));
    fs.mkdirSync(backendDir, { recursive: true });
    const env = { ...offlineEnv(binDir, backendDir), ...(opts.env ?? {}) };
    fs.mkdirSync(env.PULUMI_HOME!, { recursive: true });
    const command = await PulumiCommand.get({ root: path.dirname(binDir) });
    return {
        command,
        env,
        backendDir,
        async stack(name, config, secrets = {}) {
            const stack = await LocalWorkspace.createOrSelectStack(
                { stackName: name, workDir: PROJECT_DIR },
                { envVars: env, pulumiCommand: command, pulumiHome: env.PULUMI_HOME },
            );
            const all: Record<string, { value: string; secret?: boolean }> = {};
            for (const [k, v] of Object.entries(config))
                all[k.includes(":") ? k : `${PROJECT}:${k}`] = { value: v };
            for (const [k, v] of Object.entries(secrets))
                all[`${PROJECT}:${k}`] = { value: v, secret: true };
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
        fs.rmSync(path.join(PROJECT_DIR, `Pulumi.${stack.name}.yaml`), { force: true });
    }
}
