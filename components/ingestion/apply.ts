/**
 * Runs a plan's statements in order through `@clickhouse/client`. Nothing here decides what to run:
 * the planner did, and a plan that carries refusals is not run at all. When a statement fails after
 * consumption was stopped, the stream's Kafka table and views are put back as they were before the
 * error is returned, so a failed update never leaves ingestion stopped.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { StreamSpec } from "../../schemas/model";
import { canonicalize, queryRows, readStreamState } from "./introspect";
import {
    ActualStreamState,
    CanonicalForms,
    Desired,
    DestructiveChangeRefusedError,
    PlanOptions,
    PlannedStatement,
    StreamPlan,
    buildDesired,
    canonicalRequests,
    describePlan,
    placeholderFor,
    planStream,
} from "./planner";

export interface ApplyHooks {
    /** Called after each statement succeeded; throwing here stops the run (tests inject failures). */
    readonly afterStatement?: (statement: PlannedStatement, index: number) => void | Promise<void>;
}

/** A statement failed: which one, the server's error as the cause, and what was restored. */
export class StatementFailedError extends Error {
    constructor(
        readonly statement: PlannedStatement,
        readonly index: number,
        readonly applied: readonly PlannedStatement[],
        cause: unknown,
        readonly restored: string,
    ) {
        super(
            `statement ${index + 1} failed (${statement.summary}): ${cause instanceof Error ? cause.message : String(cause)}\n  ${statement.sql}\n` +
                `${applied.length} earlier statement(s) were applied; ${restored}; run again to continue from the current state`,
            { cause },
        );
        this.name = "StatementFailedError";
    }
}

/**
 * Applies `plan.statements` one by one and returns those applied. Throws
 * DestructiveChangeRefusedError (before running anything) when the plan carries refusals, and
 * StatementFailedError when a statement fails. `before` is the state the plan was made from: with
 * it, a failure after the Kafka table was dropped restores the Kafka table and its views first.
 */
export async function applyPlan(
    client: ClickHouseClient,
    plan: StreamPlan,
    hooks: ApplyHooks = {},
    before?: ActualStreamState,
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
            applied.push(statement);
            await hooks.afterStatement?.(statement, index);
        } catch (e) {
            const restored = before ? await restoreIngestion(client, before) : "nothing to restore";
            // A failing hook (tests inject failures this way) stops the run like a failed statement.
            if (applied.includes(statement)) {
                if (e instanceof Error) e.message += ` (${restored})`;
                throw e;
            }
            throw new StatementFailedError(statement, index, applied, e, restored);
        }
    }
    return applied;
}

/**
 * Puts a stream's Kafka table and views back as `before` had them, when the Kafka table is gone
 * now (or is the plan's Null placeholder). Views go first, against a Null stand-in, so consumption
 * restarts with every view in place. Returns what it did, for the error message.
 */
export async function restoreIngestion(
    client: ClickHouseClient,
    before: ActualStreamState,
): Promise<string> {
    const kafka = before.tables.kafka;
    if (kafka?.engine !== "Kafka" || !kafka.createQuery) return "ingestion was not running before";
    try {
        const now = await readStreamState(client, before.database, before.stream);
        if (now?.tables.kafka?.engine === "Kafka") return "ingestion is running";
        const ref = `\`${before.database}\`.\`${kafka.name}\``;
        const run = (query: string) => client.command({ query });
        if (now?.tables.kafka) await run(`DROP TABLE IF EXISTS ${ref}`);
        const views = (["mv", "dlqMv"] as const).filter((role) => {
            const old = before.tables[role];
            const cur = now?.tables[role];
            return (
                old?.createQuery !== undefined &&
                (cur === undefined || cur.asSelect !== old.asSelect || cur.comment !== old.comment)
            );
        });
        if (views.length > 0) {
            await run(
                placeholderFor(
                    before.database,
                    kafka.name,
                    kafka.columns,
                    before.tables.dlqMv !== undefined,
                ),
            );
            for (const role of views) {
                await run(
                    `DROP TABLE IF EXISTS \`${before.database}\`.\`${before.tables[role]!.name}\``,
                );
                await run(before.tables[role]!.createQuery!);
            }
            await run(`DROP TABLE IF EXISTS ${ref}`);
        }
        await run(kafka.createQuery);
        return `ingestion restored: ${kafka.name}${views.length ? ` and its view(s) ${views.map((r) => before.tables[r]!.name).join(", ")}` : ""} recreated as they were`;
    } catch (e) {
        return (
            `RESTORING INGESTION FAILED (${e instanceof Error ? e.message.split("\n")[0] : String(e)}): ` +
            `consumption of the stream is stopped until a run succeeds; recreate it by hand with:\n  ${kafka.createQuery}`
        );
    }
}

export interface ServerPlan {
    readonly plan: StreamPlan;
    readonly actual: ActualStreamState | undefined;
    /** The objects of the stream named in `renamedFrom`, if any. */
    readonly previous: ActualStreamState | undefined;
    readonly canonicalForms: CanonicalForms;
}

/**
 * Reads the stream's state (and a renamed stream's) and plans against it. `desired`:
 * `buildDesired(spec, options)` when the caller built it already (it is not built again).
 */
export async function planFromServer(
    client: ClickHouseClient,
    spec: StreamSpec,
    options: PlanOptions,
    desired?: Desired,
): Promise<ServerPlan> {
    const d = desired ?? buildDesired(spec, options);
    const [actual, previous, canonicalForms] = await Promise.all([
        readStreamState(client, options.database, spec.name),
        spec.renamedFrom !== undefined
            ? readStreamState(client, options.database, spec.renamedFrom)
            : undefined,
        canonicalize(client, canonicalRequests(spec, options, d)),
    ]);
    return {
        plan: planStream(spec, actual, { ...options, canonicalForms }, previous, d),
        actual,
        previous,
        canonicalForms,
    };
}

interface ImpactRow {
    total: string | number;
    affected: string | number;
    bytes: string | number | null;
}

/**
 * Measures what each destructive statement does to the live table (rows deleted by a TTL, rows
 * copied by a rebuild, ...) and writes it into the statement (`measured`, shown in previews) and
 * into the refusals of the same change. Read-only queries; a table that does not exist yet
 * measures as empty.
 */
export async function measureImpact(
    client: ClickHouseClient,
    plan: StreamPlan,
): Promise<StreamPlan> {
    const measured = new Map<string, string>();
    const statements = await Promise.all(
        plan.statements.map(async (st) => {
            if (!st.impact) return st;
            let text: string;
            try {
                const [row] = await queryRows<ImpactRow>(client, st.impact.sql);
                const total = Number(row?.total ?? 0);
                const affected = Number(row?.affected ?? 0);
                const bytes = Number(row?.bytes ?? 0);
                const share = total > 0 ? (bytes * affected) / total : 0;
                text = `${st.impact.verb} ${affected.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} rows (~${formatBytes(share)}) now`;
            } catch (e) {
                text = `not measured (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`;
            }
            if (st.change)
                measured.set(st.change, [measured.get(st.change), text].filter(Boolean).join("; "));
            return { ...st, measured: text };
        }),
    );
    const refusals = plan.refusals.map((r) => {
        const m = r.change !== "foreignObject" ? measured.get(r.change) : undefined;
        return m ? { ...r, message: `${r.message}. Measured: ${m}` } : r;
    });
    return { ...plan, statements, refusals };
}

function formatBytes(n: number): string {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i++;
    }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
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
 * Plans from the live state, applies (restoring ingestion if a statement fails), reads back and
 * plans again: the second plan must be empty, so a run that "succeeds" without reaching the
 * desired state is reported, not recorded as done.
 */
export async function reconcile(
    client: ClickHouseClient,
    spec: StreamSpec,
    options: PlanOptions,
    hooks: ApplyHooks = {},
): Promise<Reconciled> {
    const { plan, actual: before } = await planFromServer(client, spec, options);
    const applied = await applyPlan(client, plan, hooks, before);
    const after = await planFromServer(client, spec, options);
    if (after.plan.statements.length > 0) throw new NotConvergedError(after.plan);
    return { plan, applied, actual: after.actual };
}
