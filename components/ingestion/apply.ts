/**
 * Runs a plan's statements in order through `@clickhouse/client`. Nothing here decides what to run:
 * the planner did, and a plan that carries refusals is not run at all.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { StreamSpec } from "../../schemas/model";
import { canonicalize, readStreamState } from "./introspect";
import {
    ActualStreamState,
    CanonicalForms,
    DestructiveChangeRefusedError,
    PlanOptions,
    PlannedStatement,
    StreamPlan,
    canonicalRequests,
    describePlan,
    planStream,
} from "./planner";

export interface ApplyHooks {
    /** Called after each statement succeeded; throwing here stops the run (tests inject failures). */
    readonly afterStatement?: (statement: PlannedStatement, index: number) => void | Promise<void>;
}

/** A statement failed: which one, and the server's error as the cause. */
export class StatementFailedError extends Error {
    constructor(
        readonly statement: PlannedStatement,
        readonly index: number,
        readonly applied: readonly PlannedStatement[],
        cause: unknown,
    ) {
        super(
            `statement ${index + 1} failed (${statement.summary}): ${cause instanceof Error ? cause.message : String(cause)}\n  ${statement.sql}\n` +
                `${applied.length} earlier statement(s) were applied; run again to continue from the current state`,
            { cause },
        );
        this.name = "StatementFailedError";
    }
}

/**
 * Applies `plan.statements` one by one and returns those applied. Throws
 * DestructiveChangeRefusedError (before running anything) when the plan carries refusals, and
 * StatementFailedError when a statement fails. Either way, a later plan from the then-current state
 * continues the work: statements are not retried here.
 */
export async function applyPlan(
    client: ClickHouseClient,
    plan: StreamPlan,
    hooks: ApplyHooks = {},
): Promise<PlannedStatement[]> {
    if (plan.refusals.length > 0) throw new DestructiveChangeRefusedError(plan.refusals);
    const applied: PlannedStatement[] = [];
    for (const [index, statement] of plan.statements.entries()) {
        try {
            await client.command({
                query: statement.sql,
                ...(statement.settings
                    ? { clickhouse_settings: statement.settings as Record<string, string> }
                    : {}),
            });
        } catch (e) {
            throw new StatementFailedError(statement, index, applied, e);
        }
        applied.push(statement);
        await hooks.afterStatement?.(statement, index);
    }
    return applied;
}

export interface ServerPlan {
    readonly plan: StreamPlan;
    readonly actual: ActualStreamState | undefined;
    readonly canonicalForms: CanonicalForms;
}

/** Reads the stream's state and plans against it (four queries). */
export async function planFromServer(
    client: ClickHouseClient,
    spec: StreamSpec,
    options: PlanOptions,
): Promise<ServerPlan> {
    const [actual, canonicalForms] = await Promise.all([
        readStreamState(client, options.database, spec.name),
        canonicalize(client, canonicalRequests(spec, options)),
    ]);
    return {
        plan: planStream(spec, actual, { ...options, canonicalForms }),
        actual,
        canonicalForms,
    };
}

/** After applying, the server still differs from the spec: the plan did not converge. */
export class NotConvergedError extends Error {
    constructor(readonly remaining: StreamPlan) {
        super(
            `applied the plan, but the server still differs from the stream schema:\n${describePlan(
                remaining,
            )
                .map((l) => `  ${l}`)
                .join("\n")}`,
        );
        this.name = "NotConvergedError";
    }
}

export interface Reconciled {
    /** The plan that was applied. */
    readonly plan: StreamPlan;
    readonly applied: readonly PlannedStatement[];
    /** State read back after applying. */
    readonly actual: ActualStreamState | undefined;
}

/**
 * Plans from the live state, applies, reads back and plans again: the second plan must be empty,
 * so a run that "succeeds" without reaching the desired state is reported, not recorded as done.
 */
export async function reconcile(
    client: ClickHouseClient,
    spec: StreamSpec,
    options: PlanOptions,
    hooks: ApplyHooks = {},
): Promise<Reconciled> {
    const { plan } = await planFromServer(client, spec, options);
    const applied = await applyPlan(client, plan, hooks);
    const after = await planFromServer(client, spec, options);
    if (after.plan.statements.length > 0) throw new NotConvergedError(after.plan);
    return { plan, applied, actual: after.actual };
}
