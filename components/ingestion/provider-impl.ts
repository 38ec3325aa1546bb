/**
 * The implementation of the stream ingestion dynamic provider. The stub in `provider.ts` is what
 * Pulumi serializes; it `require`s this module by path in whatever process runs the provider
 * (never serialized, so it imports what it needs like any module).
 *
 * Check validates the inputs, computes the plan against the live server (measured and rehearsed)
 * and returns it as the `plannedStatements` input, which is what `pulumi preview --diff` shows.
 * Create and update re-plan at apply time and refuse any destructive statement the reviewed plan
 * did not show.
 */
import type * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { claimEngine } from "../../schemas/engine";
import { StreamSchemaError, validateStream } from "../../schemas/loader";
import { IDENTIFIER, type StreamSpec } from "../../schemas/model";
import { streamObjectNames } from "../../schemas/naming";
import { rollupObjectNames } from "../../schemas/rollups";
import { SqlInputError } from "../../schemas/sql";
import {
    NotConvergedError,
    applyPlan,
    measureImpact,
    planFromServer,
    type ServerPlan,
} from "./apply";
import {
    ConnectionError,
    connectionProblems,
    openClient,
    withTransportReason,
    type ConnectionContext,
    type ConnectionSpec,
    type OpenedClient,
} from "./connection";
import { readStreamState, summarizeState, type StateSummary } from "./introspect";
import {
    DESTRUCTIVE_CHANGES,
    DestructiveChangeRefusedError,
    buildDesired,
    describePlan,
    formatStatement,
    planDrop,
    planStream,
    statementIdentity,
    unparsableFragments,
    type Desired,
    type PlanOptions,
    type StreamPlan,
} from "./planner";
import type {
    ProviderImplementation,
    StreamIngestionInputs,
    StreamIngestionOutputs,
} from "./provider";
import { rehearse, type RehearsalResult } from "./rehearse";

type CheckFailure = pulumi.dynamic.CheckFailure;

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

/** The settings a stream's inputs may leave unset, copied only when set. */
const OPTIONAL_SETTINGS = [
    "allowDestructiveChanges",
    "dropTargetOnDelete",
    "kafkaNamedCollection",
    "maxDefaultConsumers",
    "stack",
    "adoptUnmarked",
] as const;

/** Every input that is part of the resource's state (diff compares these). */
const SETTINGS = ["stream", "kafkaBrokers", "connection", ...OPTIONAL_SETTINGS] as const;

function optionalSettings(
    inputs: StreamIngestionInputs,
): Pick<StreamIngestionInputs, (typeof OPTIONAL_SETTINGS)[number]> {
    const out: Record<string, unknown> = {};
    for (const key of OPTIONAL_SETTINGS) {
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
    try {
        claimEngine(
            path.resolve(c.path),
            typeof c.configFile === "string" ? path.resolve(c.configFile) : "",
        );
    } catch {
        // Reported with the connection's own error when it is opened.
    }
}

async function withClient<T>(
    connection: ConnectionSpec,
    f: (opened: OpenedClient) => Promise<T>,
): Promise<T> {
    const opened = await openClient(connection, stackConfig ? { config: stackConfig } : {});
    try {
        return await f(opened);
    } catch (e) {
        throw withTransportReason(opened, e);
    } finally {
        await opened.close();
    }
}

const firstLine = (e: unknown): string =>
    e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e);

// ---------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------

/** Problems with the inputs other than the stream, phrased with the setting to fix. */
function inputProblems(news: StreamIngestionInputs): CheckFailure[] {
    const failures: CheckFailure[] = [];
    const fail = (property: string, reason: string) => failures.push({ property, reason });
    if (typeof news.database !== "string" || !IDENTIFIER.test(news.database)) {
        fail(
            "database",
            `database ${JSON.stringify(news.database)} must be lower-case snake_case (a letter or _ then letters, digits or _, at most 63)`,
        );
    }
    for (const p of connectionProblems(news.connection)) fail("connection", p);
    const allow = news.allowDestructiveChanges;
    if (
        allow !== undefined &&
        typeof allow !== "boolean" &&
        !(Array.isArray(allow) && allow.every((a) => DESTRUCTIVE_CHANGES.includes(a)))
    ) {
        fail(
            "allowDestructiveChanges",
            `allowDestructiveChanges must be true, false or a list of ${DESTRUCTIVE_CHANGES.map((c) => `"${c}"`).join(", ")}`,
        );
    }
    if (news.dropTargetOnDelete !== undefined && typeof news.dropTargetOnDelete !== "boolean")
        fail("dropTargetOnDelete", "dropTargetOnDelete must be a boolean");
    if (news.kafkaNamedCollection !== undefined && !IDENTIFIER.test(news.kafkaNamedCollection)) {
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

/**
 * The inputs' problems, and the stream validated (the only time check validates it). No spec
 * when the stream is not known yet (it comes from a resource not created yet).
 */
function validateInputs(news: StreamIngestionInputs): {
    readonly failures: CheckFailure[];
    readonly spec?: StreamSpec;
} {
    const failures = inputProblems(news);
    if (containsUnknown(news.stream)) return { failures };
    try {
        return { failures, spec: validateStream(news.stream, "stream").spec };
    } catch (e) {
        if (!(e instanceof StreamSchemaError)) throw e;
        for (const p of e.problems)
            failures.push({
                property: "stream",
                reason: `${p.path ? `${p.path}: ` : ""}${p.message}`,
            });
        return { failures };
    }
}

/** What check found on the server: the plan measured, and rehearsed when it can run. */
interface ServerPreview extends ServerPlan {
    readonly unparsable: readonly string[];
    readonly rehearsal: RehearsalResult | undefined;
}

async function previewOnServer(
    client: OpenedClient["client"],
    spec: StreamSpec,
    options: PlanOptions,
    desired: Desired,
): Promise<ServerPreview> {
    const planned = await planFromServer(client, spec, options, desired);
    const measured = await measureImpact(client, planned.plan);
    const unparsable = unparsableFragments(planned.canonicalForms);
    const rehearsal =
        unparsable.length === 0 && measured.refusals.length === 0
            ? await rehearse(spec, options, measured, planned, client)
            : undefined;
    return { ...planned, plan: measured, unparsable, rehearsal };
}

/** The plan check shows, its notes, or why there is none. */
type Preview =
    | { readonly plan: StreamPlan; readonly notes: readonly string[] }
    | { readonly failures: CheckFailure[] }
    /** An existing resource whose server does not answer: the plan is made when the update runs. */
    | { readonly deferred: string };

/** Plans on the live server; when it does not answer, plans offline for a new resource. */
async function preview(
    connection: ConnectionSpec,
    spec: StreamSpec,
    options: PlanOptions,
    desired: Desired,
    olds: Partial<StreamIngestionInputs>,
): Promise<Preview> {
    let server: ServerPreview;
    try {
        server = await withClient(connection, ({ client }) =>
            previewOnServer(client, spec, options, desired),
        );
    } catch (e) {
        if (e instanceof SqlInputError)
            return { failures: [{ property: "stream", reason: e.message }] };
        if (e instanceof ConnectionError && e.configProblem)
            return { failures: [{ property: "connection", reason: e.message }] };
        if (olds && olds.database !== undefined) return { deferred: firstLine(e) };
        // A new resource whose server does not exist yet (created in the same deployment).
        return {
            plan: planStream(spec, undefined, options, undefined, desired),
            notes: [
                "ClickHouse was not reachable during preview; this plan assumes none of the stream's objects exist",
            ],
        };
    }
    if (server.unparsable.length > 0) {
        return {
            failures: server.unparsable.map((q) => ({
                property: "stream",
                reason: `ClickHouse cannot parse: ${q}`,
            })),
        };
    }
    const rehearsal = server.rehearsal;
    if (rehearsal && !rehearsal.ok) {
        return {
            failures: [
                {
                    property: "stream",
                    reason: `the plan failed its rehearsal on the embedded engine, so it will not run: ${rehearsal.message}`,
                },
            ],
        };
    }
    const notes = rehearsal
        ? [
              `rehearsed: the plan ran on a copy of the live objects (${rehearsal.engine === "embedded" ? "embedded engine" : "server parser only"}) and converged`,
          ]
        : [];
    return { plan: server.plan, notes };
}

/** The check result for a preview: the plan as inputs, or why the inputs fail. */
function checkResult(
    news: StreamIngestionInputs,
    inputs: StreamIngestionInputs,
    result: Preview,
): pulumi.dynamic.CheckResult {
    if ("failures" in result) return { inputs: news, failures: result.failures };
    if ("deferred" in result) {
        return {
            inputs: {
                ...inputs,
                plannedStatements: [
                    `-- ClickHouse not reachable during check (${result.deferred}); the plan is made when the update runs`,
                ],
                planSummary: [],
            },
        };
    }
    const { plan, notes } = result;
    if (plan.refusals.length > 0) {
        return {
            inputs: news,
            failures: plan.refusals.map((r) => ({
                property: "allowDestructiveChanges",
                reason: `${r.message}\nthe plan would run:\n${plan.statements.map((s) => `  ${formatStatement(s)}`).join("\n")}`,
            })),
        };
    }
    return {
        inputs: {
            ...inputs,
            plannedStatements: plan.statements.map(formatStatement),
            planSummary: [...describePlan(plan), ...notes.map((n) => `[note] ${n}`)],
        },
    };
}

async function check(
    olds: Partial<StreamIngestionInputs>,
    news: StreamIngestionInputs,
): Promise<pulumi.dynamic.CheckResult> {
    claimEmbedded(news.connection);
    const { failures, spec } = validateInputs(news);
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
    let desired: Desired;
    try {
        // What the planner renders, checked before connecting; built once for the whole check.
        desired = buildDesired(spec, options);
    } catch (e) {
        if (e instanceof SqlInputError)
            return { inputs: news, failures: [{ property: "stream", reason: e.message }] };
        throw e;
    }
    return checkResult(
        news,
        inputs,
        await preview(inputs.connection, spec, options, desired, olds),
    );
}

// ---------------------------------------------------------------------------------------------
// diff
// ---------------------------------------------------------------------------------------------

/**
 * A setting as diff compares it. Who the provider connects as (user, password reference) is not
 * the resource's state: switching a preview to a read-only user must not show every stream as
 * changed.
 */
function comparable(key: (typeof SETTINGS)[number], v: unknown): unknown {
    if (key !== "connection" || typeof v !== "object" || v === null) return v ?? null;
    const { username: _u, password: _p, ...where } = v as Record<string, unknown>;
    void _u;
    void _p;
    return where;
}

async function diff(
    _id: string,
    olds: StreamIngestionOutputs,
    news: StreamIngestionInputs,
): Promise<pulumi.dynamic.DiffResult & { plannedStatements?: readonly string[] }> {
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
    const inputsChanged = SETTINGS.some(
        (k) =>
            JSON.stringify(comparable(k, olds[k])) !==
            JSON.stringify(comparable(k, (news as unknown as Record<string, unknown>)[k])),
    );
    const statements = Array.isArray(planned) ? planned : [];
    return {
        changes: planned === UNKNOWN ? undefined : statements.length > 0 || inputsChanged,
        replaces: [],
        stables: ["database"],
        deleteBeforeReplace: false,
        plannedStatements: statements,
    };
}

// ---------------------------------------------------------------------------------------------
// create, update, delete, read
// ---------------------------------------------------------------------------------------------

function outputs(
    inputs: StreamIngestionInputs,
    spec: StreamSpec,
    applied: readonly string[],
    observed: StateSummary,
    remaining: readonly string[],
    drift: readonly string[],
): StreamIngestionOutputs {
    const names = streamObjectNames(spec.name);
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
            rollups: (spec.rollups ?? []).flatMap((r) => {
                const n = rollupObjectNames(spec.name, r.name);
                return [q(n.table), q(n.mv)];
            }),
        },
        plannedStatements: remaining,
        planSummary: [],
        appliedStatements: applied,
        observed,
        drift,
    };
}

/**
 * Refuses a destructive statement that was not among the statements check showed (`reviewed`):
 * the server changed between preview and apply.
 */
function refuseUnreviewed(plan: StreamPlan, reviewed: StreamIngestionInputs["plannedStatements"]) {
    if (!Array.isArray(reviewed)) return;
    const shown = new Set(reviewed.map(statementIdentity));
    const unreviewed = plan.statements.filter(
        (s) => s.kind === "destructive" && !shown.has(formatStatement(s)),
    );
    if (unreviewed.length > 0) {
        throw new Error(
            `ClickHouse changed since the plan was shown; these destructive statements were not in it:\n${unreviewed.map((s) => `  ${formatStatement(s)}`).join("\n")}\nRun pulumi preview again to review the new plan.`,
        );
    }
}

/** Applies the live plan for create and update, once it is reviewed and rehearsed. */
async function applyLive(
    inputs: StreamIngestionInputs,
    olds?: StreamIngestionOutputs,
): Promise<StreamIngestionOutputs> {
    claimEmbedded(inputs.connection);
    const spec = validateStream(
        inputs.stream,
        `stream ${JSON.stringify((inputs.stream as { name?: unknown }).name)}`,
    ).spec;
    const options = planOptions(inputs, olds);
    return withClient(inputs.connection, async ({ client }) => {
        const { plan, actual, previous } = await planFromServer(client, spec, options);
        refuseUnreviewed(plan, inputs.plannedStatements);
        if (plan.refusals.length > 0) throw new DestructiveChangeRefusedError(plan.refusals);
        const rehearsal = await rehearse(spec, options, plan, { actual, previous }, client);
        if (!rehearsal.ok)
            throw new Error(
                `the plan was not applied: ${rehearsal.message}\nNothing was changed on the server.`,
            );
        const applied = await applyPlan(client, plan, {}, actual);
        const after = await planFromServer(client, spec, options);
        if (after.plan.statements.length > 0) throw new NotConvergedError(after.plan);
        const observed = summarizeState(after.actual);
        return outputs(inputs, spec, applied.map(formatStatement), observed, [], []);
    });
}

async function remove(_id: string, props: StreamIngestionOutputs): Promise<void> {
    await withClient(props.connection, async ({ client }) => {
        // Two rounds: detached objects are attached first, then dropped if they are ours.
        for (let round = 0; round < 2; round++) {
            const actual = await readStreamState(client, props.database, props.streamName);
            const plan = planDrop(props.streamName, actual, {
                database: props.database,
                ...(props.dropTargetOnDelete ? { dropTargetOnDelete: true } : {}),
                ...(props.stack !== undefined ? { stack: props.stack } : {}),
                ...(props.adoptUnmarked || props.stack === undefined
                    ? { adoptUnmarked: true }
                    : {}),
            });
            await applyPlan(client, plan);
            if (!plan.statements.some((s) => s.sql.startsWith("ATTACH"))) break;
        }
    });
}

async function read(id: string, props: StreamIngestionOutputs): Promise<pulumi.dynamic.ReadResult> {
    claimEmbedded(props.connection);
    const spec = validateStream(props.stream, "stream").spec;
    const options = planOptions(props, props);
    return withClient(props.connection, async ({ client }) => {
        const { plan, actual } = await planFromServer(client, spec, options);
        if (!actual) return { id: "" }; // every object is gone: the resource no longer exists
        const drift = describePlan(plan).filter((l) => !l.startsWith("[note]"));
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
                summarizeState(actual),
                plan.statements.map(formatStatement),
                drift,
            ),
        };
    });
}

/** Loaded by the stub in `provider.ts`. */
export const providerImplementation: ProviderImplementation = {
    async configure(req) {
        stackConfig = req.config;
    },
    check,
    diff,
    async create(inputs: StreamIngestionInputs) {
        const outs = await applyLive(inputs);
        return { id: `${inputs.database}.${outs.streamName}`, outs };
    },
    async update(_id: string, olds: StreamIngestionOutputs, news: StreamIngestionInputs) {
        return { outs: await applyLive(news, olds) };
    },
    delete: remove,
    read,
};
