/**
 * What every planning step writes into: the statements in order, the refusals and the notes, plus
 * the rules that decide which destructive changes the options allow.
 */
import type { Desired } from "./desired";
import type {
    DestructiveChange,
    PlanOptions,
    PlannedStatement,
    Refusal,
    StatementKind,
    StreamPlan,
} from "./types";

/** Engines whose tables hold no rows of their own: dropping them loses nothing. */
export const ROWLESS_ENGINES = new Set(["Kafka", "Null", "MaterializedView", "View"]);

/** ALTERs that start mutations wait for them, so errors surface on the statement that caused them. */
export const WAIT_FOR_MUTATIONS = { mutations_sync: 2 } as const;

export class PlanBuilder {
    readonly statements: PlannedStatement[] = [];
    readonly refusals: Refusal[] = [];
    readonly notes: string[] = [];
    constructor(
        private readonly d: Desired,
        readonly options: PlanOptions,
    ) {}

    add(
        kind: StatementKind,
        sql: string,
        summary: string,
        extra: Partial<PlannedStatement> = {},
    ): void {
        this.statements.push({ sql, kind, summary, ...extra });
    }

    destructive(
        change: DestructiveChange,
        sql: string,
        summary: string,
        extra: Partial<PlannedStatement> = {},
    ): void {
        this.add("destructive", sql, summary, { change, ...extra });
    }

    /** Refuses the plan outright: an object under a derived name is not this stream's. */
    foreign(object: string, message: string): void {
        this.refusals.push({ change: "foreignObject", object, message });
    }

    /** Records a destructive change once; refused unless the options allow it. */
    guard(change: DestructiveChange, object: string, what: string): void {
        if (allows(this.options.allowDestructiveChanges, change)) return;
        if (
            this.refusals.some(
                (r) => r.change === change && r.object === object && r.message.startsWith(what),
            )
        )
            return;
        this.refusals.push({
            change,
            object,
            message:
                `${what} (stream '${this.d.spec.name}'); to allow it set allowDestructiveChanges: true ` +
                `(or a list including "${change}")`,
        });
    }

    build(): StreamPlan {
        return {
            database: this.d.db,
            stream: this.d.spec.name,
            statements: this.statements,
            refusals: this.refusals,
            notes: this.notes,
        };
    }
}

function allows(
    setting: PlanOptions["allowDestructiveChanges"],
    change: DestructiveChange,
): boolean {
    if (setting === true) return true;
    if (Array.isArray(setting)) return setting.includes(change);
    return false;
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
    return a.length === b.length && a.every((x, i) => x === b[i]);
}
