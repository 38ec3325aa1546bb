/**
 * Canonical forms: the wrapper queries whose server formatting the planner compares against what
 * `system.*` reports, and the comparison side (`Canon`) that reads the answers.
 */
import type { StreamSpec } from "../../../schemas/model";
import { normalizeSql, splitTopLevel } from "../../../schemas/sql";
import { Desired, buildDesired } from "./desired";
import { desiredRollups } from "./rollup";
import type { CanonicalForms } from "./state";
import type { PlanOptions } from "./types";

const TTL_WRAPPER = "ALTER TABLE t MODIFY TTL ";

/**
 * The wrapper queries whose server formatting the planner compares against `system.*` text.
 * `introspect.canonicalize` sends them in one query; the result is `PlanOptions.canonicalForms`.
 */
export function canonicalRequests(
    spec: StreamSpec,
    options: PlanOptions,
    /** `buildDesired(spec, options)`, when the caller built it already. */
    d: Desired = buildDesired(spec, options),
): string[] {
    const out = new Set<string>();
    for (const c of d.columns) if (c.default !== undefined) out.add(`SELECT ${c.default}`);
    out.add(`SELECT ${d.orderBy.join(", ")}`);
    if (d.partitionBy) out.add(`SELECT ${d.partitionBy}`);
    if (d.ttl) out.add(TTL_WRAPPER + d.ttl);
    out.add(TTL_WRAPPER + d.dlqTtl);
    out.add(d.mvSelect);
    out.add(d.dlqSelect);
    for (const r of desiredRollups(d.db, spec)) out.add(r.select);
    return [...out];
}

/** Fragments the server could not parse (null in `canonicalForms`), for clear check errors. */
export function unparsableFragments(forms: CanonicalForms): string[] {
    return [...forms].filter(([, v]) => v === null).map(([k]) => k);
}

/** Desired SQL fragments in the spelling `system.*` reports them in (normalised). */
export class Canon {
    constructor(private readonly forms: CanonicalForms | undefined) {}
    private server(query: string): string | undefined {
        return this.forms?.get(query) ?? undefined;
    }
    expr(expr: string): string {
        const f = this.server(`SELECT ${expr}`);
        return normalizeSql(f !== undefined && f.startsWith("SELECT ") ? f.slice(7) : expr);
    }
    orderBy(items: readonly string[]): string[] {
        const f = this.server(`SELECT ${items.join(", ")}`);
        if (f !== undefined && f.startsWith("SELECT "))
            return splitTopLevel(f.slice(7), ",").map(normalizeSql);
        return items.map(normalizeSql);
    }
    ttl(ttl: string): string {
        const f = this.server(TTL_WRAPPER + ttl);
        const m = f !== undefined ? /^ALTER TABLE t \(MODIFY TTL (.*)\)$/s.exec(f) : null;
        return normalizeSql(m ? m[1]! : ttl);
    }
    query(select: string): string {
        return normalizeSql(this.server(select) ?? select);
    }
}
