/**
 * What the planner produces (statements with kinds, refusals, notes), the options it plans with,
 * and how a plan is shown to a reviewer.
 */
import type { CanonicalForms } from "./state";

export type StatementKind = "create" | "in-place" | "rebuild" | "destructive";

/** Changes that can lose or rewrite stored rows; each must be allowed explicitly. */
export type DestructiveChange =
    "dropColumn" | "retypeColumn" | "rebuildTable" | "dropTable" | "ttl";
export const DESTRUCTIVE_CHANGES: readonly DestructiveChange[] = [
    "dropColumn",
    "retypeColumn",
    "rebuildTable",
    "dropTable",
    "ttl",
];

/**
 * How to measure what a destructive statement does to the live table, shown in previews. The
 * query returns one row: `total` rows in the table, `affected` rows, `bytes` of the table.
 */
export interface ImpactQuery {
    readonly sql: string;
    /** Verb phrase for the affected rows: "deletes", "copies", "rewrites", "drops the values of". */
    readonly verb: string;
}

export interface PlannedStatement {
    readonly sql: string;
    readonly kind: StatementKind;
    /** One line for humans: what the statement does and why. */
    readonly summary: string;
    /** Which destructive change this statement belongs to (destructive statements only). */
    readonly change?: DestructiveChange;
    /** Session settings the statement needs (e.g. wait for the mutation an ALTER starts). */
    readonly settings?: Readonly<Record<string, string | number>>;
    /** Destructive statements: how to measure their effect on the live table. */
    readonly impact?: ImpactQuery;
    /** The measured effect, e.g. "deletes 5,120 of 1,000,000 rows (~41 MiB) now". */
    readonly measured?: string;
}

/** A destructive change the options do not allow. The plan still lists its statements. */
export interface Refusal {
    /** `foreignObject`: an object under a derived name that this stream does not own. */
    readonly change: DestructiveChange | "foreignObject";
    readonly object: string;
    readonly message: string;
}

export interface StreamPlan {
    readonly database: string;
    readonly stream: string;
    readonly statements: readonly PlannedStatement[];
    /** Non-empty: the plan must not be applied (see `DestructiveChangeRefusedError`). */
    readonly refusals: readonly Refusal[];
    /** Things a reviewer should know that need no statement (e.g. a kept dead-letter table). */
    readonly notes: readonly string[];
}

export interface PlanOptions {
    /** Database holding the stream's tables. */
    readonly database: string;
    /** Kafka bootstrap servers, comma separated `host:port`. */
    readonly kafkaBrokers: string;
    /**
     * Allow changes that delete or rewrite stored rows: `true` for all of them, or a list naming
     * the kinds allowed. @default false (refused, with a message naming this setting)
     */
    readonly allowDestructiveChanges?: boolean | readonly DestructiveChange[];
    /** `planDrop` also drops the target and dead-letter tables. @default false (kept) */
    readonly dropTargetOnDelete?: boolean;
    /**
     * Named collection (defined in server config, where its secrets come `from_env`) that the
     * Kafka engine reads its connection settings from. @default none: settings from the server's
     * `<kafka>` config section
     */
    readonly kafkaNamedCollection?: string;
    /** `kafka_num_consumers` when the stream sets none: min(partitions, this). @default 1 */
    readonly maxDefaultConsumers?: number;
    /** Server-canonical spellings of desired expressions (see `CanonicalForms`). */
    readonly canonicalForms?: CanonicalForms;
    /**
     * `project/stack` written into ownership markers; objects marked by another stack are refused.
     * @default none (markers carry no stack, and a stack in a found marker is not checked)
     */
    readonly stack?: string;
    /**
     * Take over objects under the stream's names that carry no ownership marker, or another
     * stack's marker for the same stream (objects of an earlier version of this project, a
     * migrated stack). Objects marked as another stream's are never taken over.
     * @default false (refused, with a message naming this setting)
     */
    readonly adoptUnmarked?: boolean;
}

export class DestructiveChangeRefusedError extends Error {
    constructor(readonly refusals: readonly Refusal[]) {
        super(
            `refused destructive change(s):\n${refusals.map((r) => `  - ${r.message}`).join("\n")}`,
        );
        this.name = "DestructiveChangeRefusedError";
    }
}

/** `[kind] sql`: how a statement is shown in previews and outputs. */
export function formatStatement(st: PlannedStatement): string {
    return `[${st.kind}] ${st.sql}${st.measured !== undefined ? `${IMPACT_SEPARATOR}${st.measured}` : ""}`;
}

const IMPACT_SEPARATOR = " -- impact: ";

/** A formatted statement without its measured impact (which changes as rows arrive). */
export function statementIdentity(formatted: string): string {
    const i = formatted.lastIndexOf(IMPACT_SEPARATOR);
    return i === -1 ? formatted : formatted.slice(0, i);
}

/** `[kind] summary` lines, refusals and notes: the human-readable side of a plan. */
export function describePlan(plan: StreamPlan): string[] {
    return [
        ...plan.statements.map((s) => `[${s.kind}] ${s.summary}`),
        ...plan.refusals.map((r) => `[refused] ${r.message}`),
        ...plan.notes.map((n) => `[note] ${n}`),
    ];
}
