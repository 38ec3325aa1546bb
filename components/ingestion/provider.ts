/**
 * The Pulumi dynamic provider for stream ingestion DDL: the stub that Pulumi serializes.
 *
 * Pulumi serializes a dynamic provider's methods together with everything they capture, and runs
 * them later in a plain Node process (the dynamic provider host) that has no TypeScript loader.
 * Capturing this project's TypeScript modules by value breaks (`serializeFunction` cannot follow
 * the compiled output's forward references), so `streamIngestionProvider` is a stub: each method
 * captures two path strings and `require`s the implementation (`provider-impl.ts`, beside this
 * file) when called, registering a TypeScript loader (tsx, else ts-node) if the file is `.ts`.
 * The stub resolves the module relative to the project directory first, so state written on one
 * machine still deletes and refreshes on another checkout, and an edited implementation takes
 * effect for existing resources without a replace. The Pulumi program that imports this file
 * loads none of the implementation's modules.
 *
 * Check computes the plan against the live server and returns it as the `plannedStatements` input,
 * which is what `pulumi preview --diff` shows. Update re-plans at apply time and refuses any
 * destructive statement the reviewed plan did not show.
 */
import type * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import type { StreamInput, StreamSpec } from "../../schemas/model";
import type { StateSummary } from "./introspect";
import type { ConnectionSpec } from "./connection";
import type { DestructiveChange } from "./planner";

/** Inputs as the provider sees them (plain values; see `StreamIngestionArgs` for the resource). */
export interface StreamIngestionInputs {
    readonly stream: StreamInput | StreamSpec;
    readonly database: string;
    readonly kafkaBrokers: string;
    readonly connection: ConnectionSpec;
    readonly allowDestructiveChanges?: boolean | readonly DestructiveChange[];
    readonly dropTargetOnDelete?: boolean;
    readonly kafkaNamedCollection?: string;
    readonly maxDefaultConsumers?: number;
    /** `project/stack`, written into ownership markers (see ownership.ts). */
    readonly stack?: string;
    /** Take over unmarked objects under the stream's names (PlanOptions.adoptUnmarked). */
    readonly adoptUnmarked?: boolean;
    /** Set by check: `[kind] sql` for each statement the next update runs. */
    readonly plannedStatements?: readonly string[];
    /** Set by check: `[kind] summary` lines, refusals and notes. */
    readonly planSummary?: readonly string[];
}

export interface StreamIngestionOutputs extends StreamIngestionInputs {
    readonly stream: StreamSpec;
    readonly streamName: string;
    /** Qualified names of the stream's objects. */
    readonly objects: Readonly<
        Record<"target" | "kafka" | "mv" | "dlq" | "dlqMv", string | undefined> & {
            /** Each rollup's table and view (`<stream>_<rollup>`, `<stream>_<rollup>_mv`). */
            readonly rollups?: readonly string[];
        }
    >;
    /** `[kind] sql` of the statements the last create/update ran. */
    readonly appliedStatements: readonly string[];
    /** What the server reported after the last apply or refresh. */
    readonly observed: StateSummary;
    /** Refresh only: what differs from the stream schema (empty after an apply). */
    readonly drift: readonly string[];
}

/** What the implementation module exports as `providerImplementation`. */
export type ProviderImplementation = Required<
    Pick<
        pulumi.dynamic.ResourceProvider,
        "configure" | "check" | "diff" | "create" | "update" | "delete" | "read"
    >
> & {
    diff(
        id: string,
        olds: StreamIngestionOutputs,
        news: StreamIngestionInputs,
    ): Promise<pulumi.dynamic.DiffResult & { plannedStatements?: readonly string[] }>;
};

// Computed when the program loads this file; the stub captures the two strings.
const IMPLEMENTATION_FILE = path.join(__dirname, `provider-impl${path.extname(__filename)}`);
const IMPLEMENTATION_RELATIVE = path.relative(process.cwd(), IMPLEMENTATION_FILE);

/* eslint-disable @typescript-eslint/no-require-imports -- the serialized stub reaches modules
   only through require at run time, in whatever process runs the provider. */

/** Loads the implementation module in whatever process runs the provider. */
function implementation(): ProviderImplementation {
    const nodePath = require("node:path") as typeof import("node:path");
    const fs = require("node:fs") as typeof import("node:fs");
    const candidates = [
        nodePath.resolve(process.cwd(), IMPLEMENTATION_RELATIVE),
        IMPLEMENTATION_FILE,
    ];
    const file = candidates.find((f) => fs.existsSync(f)) ?? IMPLEMENTATION_FILE;
    const load = () =>
        (require(file) as { providerImplementation: ProviderImplementation })
            .providerImplementation;
    try {
        return load();
    } catch (e) {
        if (!file.endsWith(".ts")) throw e;
        try {
            (require("tsx/cjs/api") as { register(): unknown }).register();
        } catch {
            try {
                (require("ts-node") as { register(o: object): unknown }).register({
                    transpileOnly: true,
                });
            } catch {
                throw new Error(
                    `cannot load ${file}: install tsx or ts-node, or compile the project (npm run build)`,
                );
            }
        }
        return load();
    }
}

/* eslint-enable @typescript-eslint/no-require-imports */

/** The provider to hand to `pulumi.dynamic.Resource`. Captures only two strings. */
export const streamIngestionProvider: ProviderImplementation = {
    configure: (req) => implementation().configure(req),
    check: (olds, news) => implementation().check(olds, news),
    diff: (id, olds, news) => implementation().diff(id, olds, news),
    create: (inputs) => implementation().create(inputs),
    update: (id, olds, news) => implementation().update(id, olds, news),
    delete: (id, props) => implementation().delete(id, props),
    read: (id, props) => implementation().read(id, props),
};

/**
 * Resources deployed before the stub and the implementation moved apart hold, in their state, a
 * stub that loads this file and calls its `providerImplementation` (Pulumi deletes and refreshes
 * with the stub stored in state): this keeps them deleting and refreshing. In process it is the
 * implementation itself, reached through the stub.
 */
export const providerImplementation: ProviderImplementation = streamIngestionProvider;
