/**
 * The Kafka table, the two materialized views and the dead-letter table: how each differs from
 * the desired state, and the statements that bring it there.
 */
import { normalizeSql, qualified, quoteIdent, quoteString } from "../../../schemas/sql";
import { PlanBuilder, ROWLESS_ENGINES, WAIT_FOR_MUTATIONS, sameList } from "./builder";
import type { Canon } from "./canon";
import { dlqDdl, impactQuery, mvDdl, ttlCondition } from "./ddl";
import { DLQ_COLUMNS, Desired } from "./desired";
import type { ActualTable } from "./state";

/** Why the Kafka table must be (re)created; empty when it matches. */
export function kafkaDifferences(d: Desired, actual: ActualTable | undefined): string[] {
    if (!actual) return ["missing"];
    if (actual.engine !== "Kafka") return [`${d.names.kafka} is ${actual.engine}, not Kafka`];
    const out: string[] = [];
    if (normalizeSql(actual.engineArgs) !== d.kafkaEngineArgs)
        out.push(
            `named collection ${actual.engineArgs || "(none)"} -> ${d.kafkaEngineArgs || "(none)"}`,
        );
    const want = new Map(d.kafkaSettings);
    const keys = new Set([...want.keys(), ...Object.keys(actual.settings)]);
    for (const k of keys) {
        const w = want.get(k);
        const h = actual.settings[k];
        if (w !== h) out.push(`${k} ${h ?? "(unset)"} -> ${w ?? "(unset)"}`);
    }
    const have = actual.columns.map((c) => `${c.name} ${c.type}`);
    const wantCols = d.kafkaColumns.map((c) => `${c.name} ${c.type}`);
    if (!sameList(have, wantCols))
        out.push(`columns (${have.join(", ")}) -> (${wantCols.join(", ")})`);
    if (actual.comment !== d.comments.kafka) out.push("ownership marker");
    return out;
}

/** What a materialized view needs: nothing, creation, a new query, recreation, or a marker. */
export interface ViewPlan {
    readonly role: "mv" | "dlqMv";
    readonly kind: "none" | "create" | "modify" | "recreate" | "comment";
    readonly reason: string;
    readonly dropsRows: boolean;
}

/** Compares a view with the desired one; a table holding rows in its place is a guarded drop. */
export function planView(
    d: Desired,
    role: "mv" | "dlqMv",
    actual: ActualTable | undefined,
    canon: Canon,
    b: PlanBuilder,
    kafkaColumnsChange: boolean,
): ViewPlan {
    if (!actual) return { role, kind: "create", reason: "missing", dropsRows: false };
    if (actual.engine !== "MaterializedView") {
        const dropsRows = !ROWLESS_ENGINES.has(actual.engine);
        if (dropsRows)
            b.guard(
                "dropTable",
                d.names[role],
                `${d.names[role]} is a ${actual.engine} table holding rows, not a view; replacing it drops them`,
            );
        return {
            role,
            kind: "recreate",
            reason: `${d.names[role]} is ${actual.engine}, not a materialized view`,
            dropsRows,
        };
    }
    const to = `${d.db}.${role === "mv" ? d.names.target : d.names.dlq}`;
    if (normalizeSql(actual.toTable) !== to)
        return {
            role,
            kind: "recreate",
            reason: `writes to ${actual.toTable}, not ${to}`,
            dropsRows: false,
        };
    const select = role === "mv" ? d.mvSelect : d.dlqSelect;
    if (canon.query(select) !== normalizeSql(actual.asSelect))
        return { role, kind: "modify", reason: "query changes", dropsRows: false };
    // A view stores the column types its query had when defined: new Kafka column types need a
    // fresh definition even when the query text stays the same.
    if (role === "mv" && kafkaColumnsChange)
        return { role, kind: "modify", reason: "Kafka column types change", dropsRows: false };
    if (actual.comment !== d.comments[role])
        return { role, kind: "comment", reason: "ownership marker", dropsRows: false };
    return { role, kind: "none", reason: "", dropsRows: false };
}

/** The statements a view plan needs. */
export function emitView(d: Desired, v: ViewPlan, b: PlanBuilder): void {
    const ref = qualified(d.db, d.names[v.role]);
    const select = v.role === "mv" ? d.mvSelect : d.dlqSelect;
    const what =
        v.role === "mv"
            ? `view ${d.names.mv} (rows without _error -> ${d.names.target})`
            : `view ${d.names.dlqMv} (rows with _error -> ${d.names.dlq})`;
    switch (v.kind) {
        case "create":
            b.add("create", mvDdl(d, v.role), `create ${what}`);
            return;
        case "modify":
            b.add(
                "in-place",
                `ALTER TABLE ${ref} MODIFY QUERY ${select}`,
                `change the query of ${what}: ${v.reason}`,
            );
            return;
        case "recreate":
            if (v.dropsRows)
                b.destructive(
                    "dropTable",
                    `DROP TABLE IF EXISTS ${ref}`,
                    `drop ${d.names[v.role]}: ${v.reason}`,
                );
            else
                b.add(
                    "rebuild",
                    `DROP TABLE IF EXISTS ${ref}`,
                    `drop ${d.names[v.role]}: ${v.reason}`,
                );
            b.add(v.dropsRows ? "create" : "rebuild", mvDdl(d, v.role), `recreate ${what}`);
            return;
        case "comment":
            b.add(
                "in-place",
                `ALTER TABLE ${ref} MODIFY COMMENT ${quoteString(d.comments[v.role])}`,
                `mark ${d.names[v.role]} as stream ${d.spec.name}'s ${v.role}`,
            );
            return;
        case "none":
            return;
    }
}

/** The dead-letter table: created, or completed (columns, marker, retention) in place. */
export function planDlq(
    d: Desired,
    actual: ActualTable | undefined,
    canon: Canon,
    b: PlanBuilder,
): void {
    const ref = qualified(d.db, d.names.dlq);
    if (!actual) {
        b.add(
            "create",
            dlqDdl(d),
            `create dead-letter table ${d.names.dlq} (keeps ${d.spec.deadLetterTtlDays} days)`,
        );
        return;
    }
    const have = new Map(actual.columns.map((c) => [c.name, c.type]));
    let prev: string | undefined;
    for (const c of DLQ_COLUMNS) {
        if (!have.has(c.name)) {
            b.add(
                "in-place",
                `ALTER TABLE ${ref} ADD COLUMN IF NOT EXISTS ${quoteIdent(c.name)} ${c.type}${c.default ? ` DEFAULT ${c.default}` : ""} ${prev ? `AFTER ${quoteIdent(prev)}` : "FIRST"}`,
                `add missing dead-letter column ${c.name}`,
            );
        } else if (have.get(c.name) !== c.type) {
            b.notes.push(
                `dead-letter column ${d.names.dlq}.${c.name} is ${have.get(c.name)}, expected ${c.type}; left as it is`,
            );
        }
        prev = c.name;
    }
    if (actual.comment !== d.comments.dlq) {
        b.add(
            "in-place",
            `ALTER TABLE ${ref} MODIFY COMMENT ${quoteString(d.comments.dlq)}`,
            `mark ${d.names.dlq} as stream ${d.spec.name}'s dead-letter table`,
        );
    }
    if (normalizeSql(actual.ttl) !== canon.ttl(d.dlqTtl)) {
        // Keeping dead letters longer deletes nothing; a shorter (or unreadable) retention does.
        const days = /toIntervalDay\((\d+)\)|INTERVAL (\d+) DAY/i.exec(actual.ttl);
        const was = days ? Number(days[1] ?? days[2]) : undefined;
        const shorter = was === undefined || d.spec.deadLetterTtlDays < was;
        const sql = `ALTER TABLE ${ref} MODIFY TTL ${d.dlqTtl}`;
        const summary = `keep dead letters ${d.spec.deadLetterTtlDays} days${was !== undefined ? ` (was ${was})` : ""}`;
        if (!shorter) {
            b.add("in-place", sql, summary, { settings: WAIT_FOR_MUTATIONS });
        } else {
            b.guard(
                "ttl",
                d.names.dlq,
                `keeping dead letters of ${d.names.dlq} ${d.spec.deadLetterTtlDays} days deletes those already older`,
            );
            b.destructive("ttl", sql, `${summary}: older dead letters are deleted`, {
                settings: WAIT_FOR_MUTATIONS,
                impact: impactQuery(d.db, d.names.dlq, "deletes", ttlCondition(d.dlqTtl)),
            });
        }
    }
}
