/**
 * Planning a stream's rollups: each rollup table and view created, completed in place (a measure
 * added), refused or rebuilt (bucket, keys or a measure's function changed; a measure or a rollup
 * removed), and the backfill snapshot taken while ingestion is stopped.
 */
import { rollupObjectNames } from "../../../schemas/rollups";
import { normalizeSql, qualified, quoteIdent, quoteString } from "../../../schemas/sql";
import { RollupRole, parseMarker } from "../ownership";
import { PlanBuilder, WAIT_FOR_MUTATIONS, sameList } from "./builder";
import type { Canon } from "./canon";
import { impactQuery } from "./ddl";
import type { Desired } from "./desired";
import { DesiredRollup, desiredRollups, rollupTableDdl, rollupViewDdl } from "./rollup";
import type { ActualStreamState, ActualTable } from "./state";
import type { PlanOptions, PlannedStatement } from "./types";

export interface RollupPlan {
    /** Run while ingestion is stopped when `stopIngestion`, in order. */
    readonly statements: readonly PlannedStatement[];
    /** A view changes or a backfill snapshot is taken: no row may reach the target meanwhile. */
    readonly stopIngestion: boolean;
}

interface RollupContext {
    readonly d: Desired;
    readonly b: PlanBuilder;
    readonly canon: Canon;
    readonly options: PlanOptions;
    readonly related: Readonly<Record<string, ActualTable>>;
    /** The target exists before this plan (a new rollup over it may need a backfill). */
    readonly targetExists: boolean;
    /** Names of the stream's detached objects beyond its fixed roles. */
    readonly detached: ReadonlySet<string>;
    readonly out: PlannedStatement[];
}

const ROLES = ["rollup", "rollupMv", "rollupBackfill"] as const;
/** The ownership marker at the end of a comment, with the space before it. */
const MARKER_AT_END = /\s*\[kafka-clickhouse-stack[^\]]*\]$/;

export function planRollups(
    d: Desired,
    related: Readonly<Record<string, ActualTable>>,
    targetExists: boolean,
    canon: Canon,
    b: PlanBuilder,
    options: PlanOptions,
    detached: ReadonlySet<string> = new Set(),
): RollupPlan {
    const s: RollupContext = { d, b, canon, options, related, targetExists, detached, out: [] };
    const desired = desiredRollups(d.db, d.spec, d.stack);
    let stop = false;
    for (const r of desired) {
        if (attachDetached(s, r) || !ownsAll(s, r)) continue;
        stop = planOne(s, r) || stop;
    }
    dropRemoved(s, new Set(desired.map((r) => r.spec.name)));
    return { statements: s.out, stopIngestion: stop };
}

/**
 * A detached object under the rollup's names (its definition and marker unreadable) is attached,
 * tables before the view, and the rollup is planned on the next round, as detached stream objects
 * are. True when something was attached.
 */
function attachDetached(s: RollupContext, r: DesiredRollup): boolean {
    const found = [r.names.table, r.names.backfill, r.names.mv].filter((n) => s.detached.has(n));
    for (const name of found)
        add(s, {
            kind: "in-place",
            sql: `ATTACH TABLE IF NOT EXISTS ${qualified(s.d.db, name)}`,
            summary: `attach ${name}, found detached; plan again after this run to reconcile rollup ${r.spec.name}`,
        });
    return found.length > 0;
}

/** Refuses objects under the rollup's names that are not this rollup's. */
function ownsAll(s: RollupContext, r: DesiredRollup): boolean {
    const roles: Record<(typeof ROLES)[number], string> = {
        rollup: r.names.table,
        rollupMv: r.names.mv,
        rollupBackfill: r.names.backfill,
    };
    let ok = true;
    for (const role of ROLES) {
        const t = s.related[roles[role]];
        if (!t) continue;
        const m = parseMarker(t.comment);
        const object = `${s.d.db}.${t.name}`;
        const mine = m?.stream === s.d.spec.name && m.role === role && m.rollup === r.spec.name;
        const otherStack =
            mine &&
            s.options.stack !== undefined &&
            m.stack !== undefined &&
            m.stack !== s.options.stack;
        if (mine && !otherStack) continue;
        if ((m === undefined || otherStack) && s.options.adoptUnmarked) continue;
        ok = false;
        s.b.foreign(
            object,
            `${object} (${t.engine}) ${m ? `is marked as stream '${m.stream}''s ${m.role}${m.rollup ? ` of rollup '${m.rollup}'` : ""}${m.stack ? ` (stack '${m.stack}')` : ""}` : "carries no ownership marker"}; ` +
                `rollup '${r.spec.name}' of stream '${s.d.spec.name}' needs that name, and the plan leaves it untouched. Rename or drop it by hand, or rename the rollup`,
        );
    }
    return ok;
}

function add(s: RollupContext, st: PlannedStatement): void {
    s.out.push(st);
}

/** One desired rollup; true when ingestion must stop for it. */
function planOne(s: RollupContext, r: DesiredRollup): boolean {
    const table = s.related[r.names.table];
    const snapshot = s.related[r.names.backfill];
    if (!table) return create(s, r, snapshot !== undefined, s.related[r.names.mv] !== undefined);
    if (snapshot && !s.related[r.names.mv]) return resumeCreation(s, r);
    const reasons = rebuildReasons(r, table);
    if (reasons.length > 0) return rebuild(s, r, reasons, snapshot !== undefined);
    if (snapshot)
        s.b.notes.push(
            `backfill of rollup ${r.names.table} pending: ${r.names.backfill} holds the rows ${s.d.names.target} had before the rollup's view started; ` +
                `the backfill job runs rollupBackfillSql(...).insert once, then .cleanup`,
        );
    return evolve(s, r, table);
}

/** A new rollup: table, view, and with `backfill` over an existing target, the snapshot. */
function create(
    s: RollupContext,
    r: DesiredRollup,
    staleSnapshot: boolean,
    staleView: boolean,
): boolean {
    const { d } = s;
    if (staleView)
        add(s, {
            kind: "rebuild",
            sql: `DROP TABLE IF EXISTS ${qualified(d.db, r.names.mv)}`,
            summary: `drop ${r.names.mv}, left without its table ${r.names.table}`,
        });
    const backfill = r.spec.backfill && s.targetExists;
    if (staleSnapshot)
        add(s, {
            kind: "rebuild",
            sql: `DROP TABLE IF EXISTS ${qualified(d.db, r.names.backfill)}`,
            summary: `drop ${r.names.backfill}, left by an interrupted creation of rollup ${r.spec.name}`,
        });
    if (backfill) snapshot(s, r);
    add(s, {
        kind: "create",
        sql: rollupTableDdl(d.db, r),
        summary: `create rollup table ${r.names.table} (AggregatingMergeTree per ${r.spec.interval} by ${["bucket", ...r.spec.by].join(", ")})`,
    });
    add(s, {
        kind: "create",
        sql: rollupViewDdl(d.db, r),
        summary: `create view ${r.names.mv} (${d.names.target} -> ${r.names.table})`,
    });
    if (s.targetExists && !r.spec.backfill)
        s.b.notes.push(
            `rollup ${r.names.table} counts rows inserted from now on; rows already in ${d.names.target} are not in it (backfill: true counts them)`,
        );
    return backfill || staleView;
}

/**
 * A run died after the rollup table and its snapshot but before the view: rows may have reached
 * the target since (a failed run restores ingestion) that neither the snapshot nor the table
 * holds. The table only ever held the snapshot's aggregate (the backfill job's, if it ran), so it
 * is dropped and the creation starts again from a new snapshot, with ingestion stopped.
 */
function resumeCreation(s: RollupContext, r: DesiredRollup): boolean {
    add(s, {
        kind: "rebuild",
        sql: `DROP TABLE IF EXISTS ${qualified(s.d.db, r.names.table)}`,
        summary: `drop ${r.names.table}, left without its view by an interrupted creation (it holds no row the new snapshot does not count)`,
    });
    return create(s, r, true, false);
}

/**
 * The backfill snapshot: a table like the target holding its current parts (hard links, no copy),
 * taken while ingestion is stopped and before the rollup's view exists, so the view counts every
 * later row and the snapshot every earlier one.
 */
function snapshot(s: RollupContext, r: DesiredRollup): void {
    const { d } = s;
    const ref = qualified(d.db, r.names.backfill);
    const target = qualified(d.db, d.names.target);
    // Marked in the same statement: a run dying right after it leaves a snapshot the next plan
    // recognises (CREATE TABLE ... AS alone copies the target's comment, marker included).
    add(s, {
        kind: "create",
        sql: `CREATE TABLE IF NOT EXISTS ${ref} AS ${target} COMMENT ${quoteString(r.comments.backfill)}`,
        summary: `create ${r.names.backfill}, the backfill snapshot of ${d.names.target} for rollup ${r.spec.name} (marked as such)`,
    });
    if (d.ttl)
        add(s, {
            kind: "in-place",
            sql: `ALTER TABLE ${ref} REMOVE TTL`,
            summary: `keep every snapshot row until the backfill ran (no TTL on ${r.names.backfill})`,
        });
    add(s, {
        kind: "in-place",
        sql: `ALTER TABLE ${ref} ATTACH PARTITION ALL FROM ${target}`,
        summary: `snapshot every row of ${d.names.target} into ${r.names.backfill} (hard links; the backfill job aggregates it)`,
    });
    s.b.notes.push(
        `rollup ${r.names.table} is created with backfill: ${r.names.backfill} keeps the rows ${d.names.target} holds now; ` +
            `the backfill job runs rollupBackfillSql(...).insert once, then .cleanup`,
    );
}

/** Bucket, keys and measure definitions the table was made with; any change needs a rebuild. */
function rebuildReasons(r: DesiredRollup, t: ActualTable): string[] {
    const reasons: string[] = [];
    if (t.engine !== "AggregatingMergeTree")
        reasons.push(`engine ${t.engine} -> AggregatingMergeTree`);
    const definition = t.comment.replace(MARKER_AT_END, "");
    if (definition !== r.definition)
        reasons.push(`bucket: ${definition || "(unknown)"} -> ${r.definition}`);
    const keys = r.keys.map((k) => k.name);
    const have = t.sortingKey.split(",").map((k) => normalizeSql(k));
    if (!sameList(have, keys)) reasons.push(`keys (${have.join(", ")}) -> (${keys.join(", ")})`);
    const cols = new Map(t.columns.map((c) => [c.name, c]));
    for (const k of r.keys) {
        const c = cols.get(k.name);
        if (c && c.type !== k.type) reasons.push(`key ${k.name} ${c.type} -> ${k.type}`);
    }
    for (const m of r.measures) {
        const c = cols.get(m.name);
        if (c && (c.type !== m.type || c.comment !== m.definition))
            reasons.push(`measure ${m.name} ${c.comment || c.type} -> ${m.definition}`);
    }
    return reasons;
}

/** Rebuild: the table is dropped and made again (empty, or refilled by the backfill). */
function rebuild(
    s: RollupContext,
    r: DesiredRollup,
    reasons: string[],
    staleSnapshot: boolean,
): boolean {
    const { d, b } = s;
    b.guard(
        "rebuildTable",
        r.names.table,
        `rollup ${r.spec.name} changes (${reasons.join("; ")}): rebuilding ${r.names.table} drops every aggregated row. ` +
            `Instead declare a new rollup name with backfill: true (it counts the target's rows exactly), and remove this rollup once the new one is filled`,
    );
    const extra = { change: "rebuildTable" as const };
    add(s, {
        kind: "rebuild",
        sql: `DROP TABLE IF EXISTS ${qualified(d.db, r.names.mv)}`,
        summary: `drop view ${r.names.mv} (its rollup is rebuilt)`,
    });
    add(s, {
        kind: "destructive",
        sql: `DROP TABLE IF EXISTS ${qualified(d.db, r.names.table)}`,
        summary: `drop rollup table ${r.names.table} to rebuild it (${reasons.join("; ")})`,
        ...extra,
        impact: impactQuery(d.db, r.names.table, "drops"),
    });
    create(s, r, staleSnapshot, false);
    return true;
}

/** Measures added (in place) or removed (destructive), the view replaced while ingestion stops. */
function evolve(s: RollupContext, r: DesiredRollup, t: ActualTable): boolean {
    const { d, b } = s;
    const ref = qualified(d.db, r.names.table);
    const want = new Set([...r.keys, ...r.measures].map((c) => c.name));
    const have = new Set(t.columns.map((c) => c.name));
    const dropped = t.columns.filter((c) => !want.has(c.name));
    const added = r.measures.filter((m) => !have.has(m.name));
    const view = s.related[r.names.mv];
    const viewChanges =
        !view ||
        dropped.length + added.length > 0 ||
        normalizeSql(view.toTable) !== `${d.db}.${r.names.table}` ||
        s.canon.query(r.select) !== normalizeSql(view.asSelect);
    if (viewChanges && view)
        add(s, {
            kind: "rebuild",
            sql: `DROP TABLE IF EXISTS ${qualified(d.db, r.names.mv)}`,
            summary: `drop view ${r.names.mv} to define it again (ingestion is stopped meanwhile)`,
        });
    for (const c of dropped) {
        b.guard(
            "dropColumn",
            r.names.table,
            `removing measure '${c.name}' of rollup ${r.names.table} deletes its values`,
        );
        add(s, {
            kind: "destructive",
            sql: `ALTER TABLE ${ref} DROP COLUMN IF EXISTS ${quoteIdent(c.name)}`,
            summary: `drop measure ${c.name} (${c.comment || c.type}) of rollup ${r.spec.name}`,
            change: "dropColumn",
            settings: WAIT_FOR_MUTATIONS,
            impact: impactQuery(d.db, r.names.table, `drops measure ${c.name} from`),
        });
    }
    for (const m of added) {
        const i = r.measures.indexOf(m);
        const prev = i === 0 ? r.keys[r.keys.length - 1]!.name : r.measures[i - 1]!.name;
        add(s, {
            kind: "in-place",
            sql: `ALTER TABLE ${ref} ADD COLUMN IF NOT EXISTS ${quoteIdent(m.name)} ${m.type} COMMENT ${quoteString(m.definition!)} AFTER ${quoteIdent(prev)}`,
            summary: `add measure ${m.name} = ${m.definition} to rollup ${r.spec.name} (buckets before it hold its empty value)`,
        });
    }
    if (t.comment !== r.comments.table)
        add(s, {
            kind: "in-place",
            sql: `ALTER TABLE ${ref} MODIFY COMMENT ${quoteString(r.comments.table)}`,
            summary: `mark ${r.names.table} as rollup ${r.spec.name} of stream ${d.spec.name}`,
        });
    if (viewChanges) {
        add(s, {
            kind: view ? "rebuild" : "create",
            sql: rollupViewDdl(d.db, r),
            summary: `${view ? "recreate" : "create"} view ${r.names.mv} (${d.names.target} -> ${r.names.table})`,
        });
    } else if (view && view.comment !== r.comments.mv) {
        add(s, {
            kind: "in-place",
            sql: `ALTER TABLE ${qualified(d.db, r.names.mv)} MODIFY COMMENT ${quoteString(r.comments.mv)}`,
            summary: `mark ${r.names.mv} as rollup ${r.spec.name}'s view`,
        });
    }
    return viewChanges && s.targetExists;
}

/** Objects of rollups the stream no longer declares: views dropped, tables only if allowed. */
function dropRemoved(s: RollupContext, keep: ReadonlySet<string>): void {
    const { d, b } = s;
    const removed = Object.values(s.related).flatMap((t) => {
        const m = parseMarker(t.comment);
        if (!m || m.stream !== d.spec.name || !m.rollup || keep.has(m.rollup)) return [];
        if (!(ROLES as readonly string[]).includes(m.role)) return [];
        if (s.options.stack !== undefined && m.stack !== undefined && m.stack !== s.options.stack) {
            b.notes.push(`${t.name} is marked as stack '${m.stack}''s; left in place`);
            return [];
        }
        return [{ t, role: m.role as RollupRole, rollup: m.rollup }];
    });
    const order: RollupRole[] = ["rollupMv", "rollup", "rollupBackfill"];
    removed.sort(
        (x, y) => order.indexOf(x.role) - order.indexOf(y.role) || x.t.name.localeCompare(y.t.name),
    );
    for (const { t, role, rollup } of removed) {
        const ref = qualified(d.db, t.name);
        if (role === "rollup") {
            b.guard(
                "dropTable",
                t.name,
                `rollup '${rollup}' is no longer declared: dropping ${t.name} deletes its aggregated rows`,
            );
            add(s, {
                kind: "destructive",
                sql: `DROP TABLE IF EXISTS ${ref}`,
                summary: `drop rollup table ${t.name} (rollup ${rollup} removed from the stream file)`,
                change: "dropTable",
                impact: impactQuery(d.db, t.name, "deletes"),
            });
        } else {
            add(s, {
                kind: "rebuild",
                sql: `DROP TABLE IF EXISTS ${ref}`,
                summary:
                    role === "rollupMv"
                        ? `drop view ${t.name} (rollup ${rollup} removed)`
                        : `drop backfill snapshot ${t.name} (rollup ${rollup} removed; ${d.names.target} keeps the rows)`,
            });
        }
    }
}

/**
 * A declared rename (`renamedFrom`) carries the rollups the stream still declares: each one's
 * table, pending backfill snapshot and view are renamed (the rows kept) and marked for the new
 * stream, the table's definition text kept, so a change made with the rename is still seen. The
 * renamed view still reads the old target's name and writes to the old table's, so the rest of the
 * plan defines it again (ingestion stopped). Returns `related` as it is after these statements.
 */
export function renameRollups(
    d: Desired,
    previous: ActualStreamState,
    related: Readonly<Record<string, ActualTable>>,
    b: PlanBuilder,
): Record<string, ActualTable> {
    const out: Record<string, ActualTable> = { ...related };
    const stack = b.options.stack;
    const own = (t: ActualTable, role: RollupRole, rollup: string) => {
        const m = parseMarker(t.comment);
        return (
            m?.stream === previous.stream &&
            m.role === role &&
            m.rollup === rollup &&
            (stack === undefined || m.stack === undefined || m.stack === stack)
        );
    };
    for (const r of desiredRollups(d.db, d.spec, d.stack)) {
        const old = rollupObjectNames(previous.stream, r.spec.name);
        const moves = [
            ["rollup", old.table, r.names.table, renamedDefinition(r, previous.stream, d)],
            ["rollupBackfill", old.backfill, r.names.backfill, () => r.comments.backfill],
            ["rollupMv", old.mv, r.names.mv, () => r.comments.mv],
        ] as const;
        for (const [role, from, to, comment] of moves) {
            const t = previous.related?.[from];
            if (!t || !own(t, role, r.spec.name)) continue;
            if (out[to]) {
                b.notes.push(
                    `rename: ${from} is left in place, ${to} exists already; drop the unwanted one by hand`,
                );
                continue;
            }
            b.add(
                "in-place",
                `RENAME TABLE ${qualified(d.db, from)} TO ${qualified(d.db, to)}`,
                `rename: ${from} becomes ${to}${role === "rollupMv" ? " (defined again below)" : " with its rows"}`,
            );
            const text = comment(t.comment);
            b.add(
                "in-place",
                `ALTER TABLE ${qualified(d.db, to)} MODIFY COMMENT ${quoteString(text)}`,
                `mark ${to} as stream ${d.spec.name}'s`,
            );
            out[to] = { ...t, name: to, comment: text };
        }
    }
    return out;
}

/** The renamed table's comment: its own definition, read for the new stream, and the new marker. */
function renamedDefinition(
    r: DesiredRollup,
    oldStream: string,
    d: Desired,
): (comment: string) => string {
    return (comment) => {
        const was = comment.replace(MARKER_AT_END, "");
        const prefix = `rollup ${r.spec.name} of stream ${oldStream}: `;
        const definition = was.startsWith(prefix)
            ? `rollup ${r.spec.name} of stream ${d.spec.name}: ${was.slice(prefix.length)}`
            : was;
        const marker = MARKER_AT_END.exec(r.comments.table)![0].trim();
        return definition ? `${definition} ${marker}` : marker;
    };
}
