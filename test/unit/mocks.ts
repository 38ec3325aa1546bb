import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { StackConfig, StackSecrets, parseConfig } from "../../infra/config";
import { PipelineOutputs, createPipeline } from "../../infra/pipeline";
import { loadQueries } from "../../schemas/queries";
import { loadStreams } from "../../schemas/loader";

/** One resource the program registered, with the inputs it passed. */
export interface Recorded {
    readonly type: string;
    readonly name: string;
    readonly inputs: Record<string, any>;
    /** The `protect` and `retainOnDelete` options the engine received (inherited ones included). */
    readonly protect: boolean;
    readonly retainOnDelete: boolean;
}

export const ROOT = path.resolve(__dirname, "..", "..");

/** Why a test that needs the embedded engine fails without it (never a skip: chdb is a dependency). */
export const NO_ENGINE =
    "the embedded engine (chdb) did not load: run npm install (chdb is a dependency) and unset KCS_NO_LOCAL_ENGINE";

/**
 * The name an auto-named Kubernetes object gets under mocks (the engine adds a random suffix to
 * the resource name; the mocks make it stable).
 */
export function standInName(resourceName: string): string {
    return `${resourceName}-generated`;
}

/** Distinctive values the mocked RandomPassword returns, so tests can look for leaks. */
export function mockPassword(name: string): string {
    return `MOCKPW_${name.replace(/[^A-Za-z0-9]/g, "_")}_7f3c9a`;
}

/**
 * Records every registered resource. Any provider function call fails: the program is meant to
 * be pure wiring, so an unmocked call is a bug to look at.
 */
export function installMocks(stack: string): Recorded[] {
    const recorded: Recorded[] = [];
    // The mocks see no resource options: read them from the registration request itself.
    const options = new Map<string, { protect: boolean; retainOnDelete: boolean }>();
    pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                const opts = options.get(`${args.type}::${args.name}`);
                recorded.push({
                    type: args.type,
                    name: args.name,
                    inputs: args.inputs,
                    protect: opts?.protect ?? false,
                    retainOnDelete: opts?.retainOnDelete ?? false,
                });
                const state: Record<string, unknown> = { ...args.inputs };
                if (args.type === "random:index/randomPassword:RandomPassword")
                    state.result = mockPassword(args.name);
                if (args.type.startsWith("kubernetes:")) {
                    const meta = (args.inputs.metadata ?? {}) as Record<string, unknown>;
                    state.metadata = { ...meta, name: meta.name ?? standInName(args.name) };
                }
                return { id: `${args.name}-id`, state };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                throw new Error(
                    `unexpected provider call ${args.token}: mock it or remove the call`,
                );
            },
        },
        "kafka-clickhouse-stack",
        stack,
        false,
    );
    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource(req: RegisterRequest, callback: unknown): void;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, callback) => {
        options.set(`${req.getType()}::${req.getName()}`, {
            protect: req.getProtect() === true,
            retainOnDelete: req.getRetainondelete() === true,
        });
        register(req, callback);
    };
    return recorded;
}

interface RegisterRequest {
    getType(): string;
    getName(): string;
    getProtect(): boolean | undefined;
    getRetainondelete(): boolean | undefined;
}

/** The config a stack file sets, as raw strings keyed without the project prefix. */
export function stackFileConfig(stack: string): Record<string, string> {
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
        config?: Record<string, unknown>;
    };
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        raw[k.replace(/^kafka-clickhouse-stack:/, "")] = String(v);
    }
    return raw;
}

/** Resolves an Output's value under mocks. */
export function valueOf<T>(o: pulumi.Input<T>): Promise<T> {
    return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
}

/**
 * Runs the stack program for a stack's config under mocks and returns what it registered and
 * exported, with every output resolved.
 */
export async function runStack(
    stack: string,
    overrides: Record<string, string> = {},
    secrets: StackSecrets = {},
): Promise<{ resources: Recorded[]; config: StackConfig; outputs: Record<string, unknown> }> {
    const resources = installMocks(stack);
    const config = parseConfig({ ...stackFileConfig(stack), ...overrides }, stack);
    const streams = loadStreams(path.join(ROOT, config.streamsDir));
    const queries = loadQueries(path.join(ROOT, config.queriesDir));
    const out: PipelineOutputs = createPipeline(config, secrets, streams, queries);
    const outputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(out))
        outputs[k] = await valueOf(v as pulumi.Input<unknown>);
    // Let registrations that were queued behind the outputs finish.
    await new Promise((r) => setTimeout(r, 50));
    return { resources, config, outputs };
}

export function ofType(resources: Recorded[], type: string): Recorded[] {
    return resources.filter((r) => r.type === type);
}

/** Strimzi CRs by kind (they all register as kubernetes:kafka.strimzi.io/v1:<Kind>). */
export function strimzi(resources: Recorded[], kind: string): Recorded[] {
    return ofType(resources, `kubernetes:kafka.strimzi.io/v1:${kind}`);
}
