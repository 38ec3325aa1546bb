/**
 * The Pulumi dynamic provider for stream ingestion DDL.
 *
 * Pulumi serializes a dynamic provider's methods together with everything they capture, and runs
 * them later in a plain Node process (the dynamic provider host) that has no TypeScript loader.
 * Capturing this project's TypeScript modules by value breaks (`serializeFunction` cannot follow
 * the compiled output's forward references), so `streamIngestionProvider` is a stub: each method
 * captures two path strings and `require`s the implementation (this same module) when called,
 * registering a TypeScript loader (tsx, else ts-node) if the file is `.ts`. The stub also resolves
 * the module relative to the project directory first, so state written on one machine still
 * deletes and refreshes on another checkout, and an edited implementation takes effect for
 * existing resources without a replace.
 *
 * Check computes the plan against the live server and returns it as the `plannedStatements` input,
 * which is what `pulumi preview --diff` shows. Update re-plans at apply time and refuses any
 * destructive statement the reviewed plan did not show.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- the serialized stub can only reach
   modules through require at run time, and the implementation loads its modules lazily so the
   Pulumi program that imports this file loads none of them. */
import type * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import type { StreamInput, StreamSpec } from "../../schemas/model";
import type { StateSummary } from "./introspect";
import type { ConnectionContext, ConnectionSpec, OpenedClient } from "./connection";
import type { DestructiveChange, PlanOptions, StreamPlan } from "./planner";

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
        Record<"target" | "kafka" | "mv" | "dlq" | "dlqMv", string | undefined>
    >;
    /** `[kind] sql` of the statements the last create/update ran. */
    readonly appliedStatements: readonly string[];
    /** What the server reported after the last apply or refresh. */
    readonly observed: StateSummary;
    /** Refresh only: what differs from the stream schema (empty after an apply). */
    readonly drift: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// The serializable stub
// ---------------------------------------------------------------------------------------------

const IMPLEMENTATION_FILE = __filename;
const IMPLEMENTATION_RELATIVE = path.relative(process.cwd(), __filename);

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

/** The provider to hand to `pulumi.dynamic.Resource`. Captures only two strings. */
export const streamIngestionProvider: pulumi.dynamic.ResourceProvider = {
    configure: (req) => implementation().configure(req),
    check: (olds, news) => implementation().check(olds, news),
    diff: (id, olds, news) => implementation().diff(id, olds, news),
    create: (inputs) => implementation().create(inputs),
    update: (id, olds, news) => implementation().update(id, olds, news),
    delete: (id, props) => implementation().delete(id, props),
    read: (id, props) => implementation().read(id, props),
};

// ---------------------------------------------------------------------------------------------
// The implementation (loaded by the stub; never serialized)
// ---------------------------------------------------------------------------------------------

type ProviderImplementation = Required<
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

/** The stack config, from `configure` (resolves `{ fromConfig }` secrets). */
let stackConfig: ConnectionContext["config"];

/** The unknown-value sentinel Pulumi uses on the wire during previews. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

const containsUnknown = (v: unknown): boolean =>
    v === UNKNOWN ||
    (Array.isArray(v)
        ? v.some(containsUnknown)
        : typeof v === "object" && v !== null
          ? Object.values(v).some(containsUnknown)
          : false);

function deps() {
    return {
        ...(require("../../schemas/loader") as typeof import("../../schemas/loader")),
        ...(require("../../schemas/model") as typeof import("../../schemas/model")),
        ...(require("../../schemas/sql") as typeof import("../../schemas/sql")),
        ...(require("./planner") as typeof import("./planner")),
        ...(require("./introspect") as typeof import("./introspect")),
        ...(require("./apply") as typeof import("./apply")),
        ...(require("./connection") as typeof import("./connection")),
        ...(require("./rehearse") as typeof import("./rehearse")),
        ...(require("../../schemas/engine") as typeof import("../../schemas/engine")),
    };
}

/** The settings a stream's inputs may leave unset, copied only when set. */
function optionalSettings(
    inputs: StreamIngestionInputs,
): Pick<
    StreamIngestionInputs,
    | "allowDestructiveChanges"
    | "dropTargetOnDelete"
    | "kafkaNamedCollection"
    | "maxDefaultConsumers"
    | "stack"
    | "adoptUnmarked"
> {
    const out: Record<string, unknown> = {};
    for (const key of [
        "allowDestructiveChanges",
        "dropTargetOnDelete",
        "kafkaNamedCollection",
        "maxDefaultConsumers",
        "stack",
        "adoptUnmarked",
    ] as const) {
        if (inputs[key] !== undefined) out[key] = inputs[key];
    }
    return out;
}

function planOptions(
    inputs: StreamIngestionInputs,
    olds?: Partial<StreamIngestionOutputs>,
): PlanOptions {
    return {
        database: inputs.database,
        kafkaBrokers: inputs.kafkaBrokers,
        ...optionalSettings(inputs),
        ...(createdBeforeMarkers(olds) ? { adoptUnmarked: true } : {}),
    };
}

/**
 * A resource whose state has no `stack` was created by a release that wrote no ownership markers:
 * Pulumi's state proves the unmarked objects under its names are its own, so it takes them over
 * (and marks them) on its next update, and deletes them on delete.
 */
function createdBeforeMarkers(olds?: Partial<StreamIngestionOutputs>): boolean {
    return olds !== undefined && olds.database !== undefined && olds.stack === undefined;
}

/**
 * An embedded connection names the process's one chdb engine: claim it before the loader or the
 * rehearsal would start one on a temporary directory (chdb cannot switch within a process).
 */
function claimEmbedded(connection: unknown): void {
    const c = connection as { kind?: unknown; path?: unknown; configFile?: unknown } | undefined;
    if (c?.kind !== "embedded" || typeof c.path !== "string") return;
    const nodePath = require("node:path") as typeof import("node:path");
    try {
        deps().claimEngine(
            nodePath.resolve(c.path),
            typeof c.configFile === "string" ? nodePath.resolve(c.configFile) : "",
        );
    } catch {
        // Reported with the connection's own error when it is opened.
    }
}

async function withClient<T>(
    connection: ConnectionSpec,
    f: (opened: OpenedClient) => Promise<T>,
): Promise<T> {
    const opened = await deps().openClient(connection, stackConfig ? { config: stackConfig } : {});
    try {
        return await f(opened);
    } finally {
        await opened.close();
    }
}

function inputProblems(news: StreamIngestionInputs): pulumi.dynamic.CheckFailure[] {
    const d = deps();
    const failures: pulumi.dynamic.CheckFailure[] = [];
    const fail = (property: string, reason: string) => failures.push({ property, reason });
    if (typeof news.database !== "string" || !d.IDENTIFIER.test(news.database)) {
        fail(
            "database",
            `database ${JSON.stringify(news.database)} must be lower-case snake_case (a letter or _ then letters, digits or _, at most 63)`,
        );
    }
    for (const p of d.connectionProblems(news.connection)) fail("connection", p);
    const allow = news.allowDestructiveChanges;
    if (
        allow !== undefined &&
        typeof allow !== "boolean" &&
        !(Array.isArray(allow) && allow.every((a) => d.DESTRUCTIVE_CHANGES.includes(a)))
    ) {
        fail(
            "allowDestructiveChanges",
            `allowDestructiveChanges must be true, false or a list of ${d.DESTRUCTIVE_CHANGES.map((c) => `"${c}"`).join(", ")}`,
        );
    }
    if (news.dropTargetOnDelete !== undefined && typeof news.dropTargetOnDelete !== "boolean")
        fail("dropTargetOnDelete", "dropTargetOnDelete must be a boolean");
    if (news.kafkaNamedCollection !== undefined && !d.IDENTIFIER.test(news.kafkaNamedCollection)) {
        fail(
            "kafkaNamedCollection",
            "kafkaNamedCollection must be the name of a named collection defined in the server config",
        );
    }
    if (
        news.maxDefaultConsumers !== undefined &&
        !(Number.isInteger(news.maxDefaultConsumers) && news.maxDefaultConsumers >= 1)
    ) {
        fail("maxDefaultConsumers", "maxDefaultConsumers must be an integer >= 1");
    }
    if (news.stack !== undefined && !/^[A-Za-z0-9._/-]{1,200}$/.test(news.stack))
        fail("stack", "stack must be a project/stack name (letters, digits, '.', '_', '-', '/')");
    if (news.adoptUnmarked !== undefined && typeof news.adoptUnmarked !== "boolean")
        fail("adoptUnmarked", "adoptUnmarked must be a boolean");
    return failures;
}

function outputs(
    inputs: StreamIngestionInputs,
    spec: StreamSpec,
    applied: readonly string[],
    observed: StateSummary,
    remaining: readonly string[],
    drift: readonly string[],
): StreamIngestionOutputs {
    const d = deps();
    const names = d.streamObjectNames(spec.name);
    const q = (t: string) => `${inputs.database}.${t}`;
    const deadLetter = spec.onError === "deadLetter";
    return {
        stream: spec,
        database: inputs.database,
        kafkaBrokers: inputs.kafkaBrokers,
        // References only (stack config keys, env names, Secret names): nothing secret.
        connection: inputs.connection,
        ...optionalSettings(inputs),
        streamName: spec.name,
        objects: {
            target: q(names.target),
            kafka: q(names.kafka),
            mv: q(names.mv),
            dlq: deadLetter ? q(names.dlq) : undefined,
            dlqMv: deadLetter ? q(names.dlqMv) : undefined,
        },
        plannedStatements: remaining,
        planSummary: [],
        appliedStatements: applied,
        observed,
        drift,
    };
}

/**
 * Applies the live plan for create and update. A destructive statement that was not among the
 * statements check showed (`reviewed`) is refused: the server changed between preview and apply.
 */
async function applyLive(
    inputs: StreamIngestionInputs,
    olds?: StreamIngestionOutputs,
): Promise<StreamIngestionOutputs> {
    const d = deps();
    claimEmbedded(inputs.connection);
    const spec = d.validateStream(
        inputs.stream,
        `stream ${JSON.stringify((inputs.stream as { name?: unknown }).name)}`,
    ).spec;
    const options = planOptions(inputs, olds);
    return withClient(inputs.connection, async ({ client }) => {
        const { plan, actual, previous } = await d.planFromServer(client, spec, options);
        const reviewed = new Set(
            (Array.isArray(inputs.plannedStatements) ? inputs.plannedStatements : []).map(
                d.statementIdentity,
            ),
        );
        const unreviewed = plan.statements.filter(
            (s) => s.kind === "destructive" && !reviewed.has(d.formatStatement(s)),
        );
        if (unreviewed.length > 0 && Array.isArray(inputs.plannedStatements)) {
            throw new Error(
                `ClickHouse changed since the plan was shown; these destructive statements were not in it:\n${unreviewed.map((s) => `  ${d.formatStatement(s)}`).join("\n")}\nRun pulumi preview again to review the new plan.`,
            );
        }
        if (plan.refusals.length > 0) throw new d.DestructiveChangeRefusedError(plan.refusals);
        const rehearsal = await d.rehearse(spec, options, plan, { actual, previous }, client);
        if (!rehearsal.ok)
            throw new Error(
                `the plan was not applied: ${rehearsal.message}\nNothing was changed on the server.`,
            );
        const applied = await d.applyPlan(client, plan, {}, actual);
        const after = await d.planFromServer(client, spec, options);
        if (after.plan.statements.length > 0) throw new d.NotConvergedError(after.plan);
        return outputs(
            inputs,
            spec,
            applied.map(d.formatStatement),
            d.summarizeState(after.actual),
            [],
            [],
        );
    });
}

const IMPLEMENTATION: ProviderImplementation = {
    async configure(req) {
        stackConfig = req.config;
    },

    async check(olds: Partial<StreamIngestionInputs>, news: StreamIngestionInputs) {
        const d = deps();
        claimEmbedded(news.connection);
        const failures = inputProblems(news);
        let spec: StreamSpec | undefined;
        if (!containsUnknown(news.stream)) {
            try {
                spec = d.validateStream(news.stream, "stream").spec;
            } catch (e) {
                if (!(e instanceof d.StreamSchemaError)) throw e;
                for (const p of e.problems)
                    failures.push({
                        property: "stream",
                        reason: `${p.path ? `${p.path}: ` : ""}${p.message}`,
                    });
            }
        }
        if (failures.length > 0 || !spec) return { inputs: news, failures };
        const inputs: StreamIngestionInputs = { ...news, stream: spec };
        if (containsUnknown({ ...news, __provider: undefined })) {
            // Connection or brokers come from resources not created yet: planned when they are.
            return {
                inputs: {
                    ...inputs,
                    plannedStatements: UNKNOWN as unknown as string[],
                    planSummary: UNKNOWN as unknown as string[],
                },
            };
        }
        const options = planOptions(inputs, olds as Partial<StreamIngestionOutputs>);
        let plan: StreamPlan;
        const notes: string[] = [];
        try {
            d.canonicalRequests(spec, options); // validates what the planner renders
        } catch (e) {
            if (e instanceof d.SqlInputError)
                return { inputs: news, failures: [{ property: "stream", reason: e.message }] };
            throw e;
        }
        try {
            const server = await withClient(inputs.connection, async ({ client }) => {
                const planned = await d.planFromServer(client, spec!, options);
                const measured = await d.measureImpact(client, planned.plan);
                const unparsable = d.unparsableFragments(planned.canonicalForms);
                const rehearsal =
                    unparsable.length === 0 && measured.refusals.length === 0
                        ? await d.rehearse(spec!, options, measured, planned, client)
                        : undefined;
                return { ...planned, plan: measured, unparsable, rehearsal };
            });
            if (server.unparsable.length > 0) {
                return {
                    inputs: news,
                    failures: server.unparsable.map((q) => ({
                        property: "stream",
                        reason: `ClickHouse cannot parse: ${q}`,
                    })),
                };
            }
            if (server.rehearsal && !server.rehearsal.ok) {
                return {
                    inputs: news,
                    failures: [
                        {
                            property: "stream",
                            reason: `the plan failed its rehearsal on the embedded engine, so it will not run: ${server.rehearsal.message}`,
                        },
                    ],
                };
            }
            if (server.rehearsal)
                notes.push(
                    `rehearsed: the plan ran on a copy of the live objects (${server.rehearsal.engine === "embedded" ? "embedded engine" : "server parser only"}) and converged`,
                );
            plan = server.plan;
        } catch (e) {
            if (e instanceof d.SqlInputError)
                return { inputs: news, failures: [{ property: "stream", reason: e.message }] };
            if (e instanceof d.ConnectionError && e.configProblem)
                return { inputs: news, failures: [{ property: "connection", reason: e.message }] };
            if (olds && olds.database !== undefined) {
                // An existing resource whose server is unreachable now: the plan is made at apply.
                const reason = e instanceof Error ? e.message.split("\n")[0] : String(e);
                return {
                    inputs: {
                        ...inputs,
                        plannedStatements: [
                            `-- ClickHouse not reachable during check (${reason}); the plan is made when the update runs`,
                        ],
                        planSummary: [],
                    },
                };
            }
            // A new resource whose server does not exist yet (created in the same deployment).
            plan = d.planStream(spec, undefined, options);
            notes.push(
                "ClickHouse was not reachable during preview; this plan assumes none of the stream's objects exist",
            );
        }
        if (plan.refusals.length > 0) {
            return {
                inputs: news,
                failures: plan.refusals.map((r) => ({
                    property: "allowDestructiveChanges",
                    reason: `${r.message}\nthe plan would run:\n${plan.statements.map((s) => `  ${d.formatStatement(s)}`).join("\n")}`,
                })),
            };
        }
        return {
            inputs: {
                ...inputs,
                plannedStatements: plan.statements.map(d.formatStatement),
                planSummary: [...d.describePlan(plan), ...notes.map((n) => `[note] ${n}`)],
            },
        };
    },

    async diff(_id: string, olds: StreamIngestionOutputs, news: StreamIngestionInputs) {
        const newName = (news.stream as { name?: unknown })?.name;
        const replaces: string[] = [];
        if (olds.database !== news.database) replaces.push("database");
        const renamedFrom = (news.stream as { renamedFrom?: unknown })?.renamedFrom;
        if (
            olds.streamName !== undefined &&
            newName !== olds.streamName &&
            renamedFrom !== olds.streamName
        )
            replaces.push("stream");
        // The stream's identity (its table names) changes: new objects, then the old ones go.
        // Delete first: both would otherwise consume the same topic in the same consumer group.
        if (replaces.length > 0)
            return { changes: true, replaces, deleteBeforeReplace: true, stables: [] };
        const planned = news.plannedStatements as readonly string[] | string | undefined;
        const unknownPlan = planned === UNKNOWN;
        const settings = [
            "stream",
            "kafkaBrokers",
            "connection",
            "allowDestructiveChanges",
            "dropTargetOnDelete",
            "kafkaNamedCollection",
            "maxDefaultConsumers",
            "stack",
            "adoptUnmarked",
        ] as const;
        // Who the provider connects as (user, password reference) is not the resource's state:
        // switching a preview to a read-only user must not show every stream as changed.
        const comparable = (k: (typeof settings)[number], v: unknown) => {
            if (k !== "connection" || typeof v !== "object" || v === null) return v ?? null;
            const { username: _u, password: _p, ...where } = v as Record<string, unknown>;
            void _u;
            void _p;
            return where;
        };
        const inputsChanged = settings.some(
            (k) =>
                JSON.stringify(comparable(k, olds[k])) !==
                JSON.stringify(comparable(k, (news as unknown as Record<string, unknown>)[k])),
        );
        const statements = Array.isArray(planned) ? planned : [];
        return {
            changes: unknownPlan ? undefined : statements.length > 0 || inputsChanged,
            replaces: [],
            stables: ["database"],
            deleteBeforeReplace: false,
            plannedStatements: statements,
        };
    },

    async create(inputs: StreamIngestionInputs) {
        const outs = await applyLive(inputs);
        return { id: `${inputs.database}.${outs.streamName}`, outs };
    },

    async update(_id: string, olds: StreamIngestionOutputs, news: StreamIngestionInputs) {
        return { outs: await applyLive(news, olds) };
    },

    async delete(_id: string, props: StreamIngestionOutputs) {
        const d = deps();
        await withClient(props.connection, async ({ client }) => {
            // Two rounds: detached objects are attached first, then dropped if they are ours.
            for (let round = 0; round < 2; round++) {
                const actual = await d.readStreamState(client, props.database, props.streamName);
                const plan = d.planDrop(props.streamName, actual, {
                    database: props.database,
                    ...(props.dropTargetOnDelete ? { dropTargetOnDelete: true } : {}),
                    ...(props.stack !== undefined ? { stack: props.stack } : {}),
                    ...(props.adoptUnmarked || props.stack === undefined
                        ? { adoptUnmarked: true }
                        : {}),
                });
                await d.applyPlan(client, plan);
                if (!plan.statements.some((s) => s.sql.startsWith("ATTACH"))) break;
            }
        });
    },

    async read(id: string, props: StreamIngestionOutputs) {
        const d = deps();
        claimEmbedded(props.connection);
        const spec = d.validateStream(props.stream, "stream").spec;
        const options = planOptions(props, props);
        return withClient(props.connection, async ({ client }) => {
            const { plan, actual } = await d.planFromServer(client, spec, options);
            if (!actual) return { id: "" }; // every object is gone: the resource no longer exists
            const drift = d.describePlan(plan).filter((l) => !l.startsWith("[note]"));
            return {
                id,
                // The stored inputs lose the plan the last update ran, so a preview after a
                // refresh (`pulumi preview --diff --refresh`) shows only what will run next.
                inputs: {
                    stream: props.stream,
                    database: props.database,
                    kafkaBrokers: props.kafkaBrokers,
                    connection: props.connection,
                    ...optionalSettings(props),
                    plannedStatements: [],
                    planSummary: [],
                } satisfies StreamIngestionInputs,
                props: outputs(
                    props,
                    spec,
                    props.appliedStatements ?? [],
                    d.summarizeState(actual),
                    plan.statements.map(d.formatStatement),
                    drift,
                ),
            };
        });
    },
};

export const providerImplementation: ProviderImplementation = IMPLEMENTATION;
