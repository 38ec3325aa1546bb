/**
 * The target table: how the live table differs from the desired one, and whether the change can
 * be made in place (ALTERs that keep the rows) or needs a rebuild (copy into a new table, swap).
 */
import {
    normalizeSql,
    qualified,
    quoteIdent,
    quoteString,
    splitTopLevel,
} from "../../../schemas/sql";
import { PlanBuilder, WAIT_FOR_MUTATIONS, sameList } from "./builder";
import type { Canon } from "./canon";
import { columnDef, impactQuery, targetDdl, ttlCondition } from "./ddl";
import type { Desired, DesiredColumn } from "./desired";
import type { ActualColumn, ActualTable } from "./state";
import type { PlannedStatement, StatementKind } from "./types";

export interface TargetPlan {
    readonly statements: PlannedStatement[];
    readonly rebuild: boolean;
    readonly stopIngestion: boolean;
}

/** How the live target's columns differ from the desired ones, by name and type. */
interface ColumnDiff {
    readonly actualCols: ReadonlyMap<string, ActualColumn>;
    readonly desiredNames: ReadonlySet<string>;
    readonly addedNames: ReadonlySet<string>;
    readonly dropped: readonly ActualColumn[];
    readonly retyped: readonly DesiredColumn[];
}

/** What keys and engine demand: reasons to rebuild (none: in place), or a sorting key extension. */
interface KeyChange {
    readonly reasons: readonly string[];
    /** The live sorting key, item by item (normalised). */
    readonly haveOrder: readonly string[];
    /** The desired ORDER BY, when it only appends columns this plan adds. */
    readonly extendOrderBy?: readonly string[];
}

export function planTarget(
    d: Desired,
    actual: ActualTable,
    canon: Canon,
    b: PlanBuilder,
): TargetPlan {
    const diff = diffColumns(d, actual);
    const keys = keyChanges(d, actual, canon, diff);
    if (keys.reasons.length > 0)
        return {
            statements: rebuild(d, diff, keys.reasons, b),
            rebuild: true,
            stopIngestion: true,
        };
    const statements = [
        ...dropColumns(d, diff, b),
        ...retypeColumns(d, diff, b),
        ...addAndMoveColumns(d, actual, diff, keys),
        ...defaultsAndComments(d, diff, canon),
        ...ttlChange(d, actual, canon, b),
    ];
    if (actual.comment !== d.comments.target) {
        statements.push(
            statement(
                "in-place",
                `ALTER TABLE ${targetRef(d)} MODIFY COMMENT ${quoteString(d.comments.target)}`,
                "set table comment: the stream description and the ownership marker (stream, role, consumer group)",
            ),
        );
    }
    // In-place changes need no stop of their own: when they touch what the view reads, the Kafka
    // columns change too, and that already stops ingestion first.
    return { statements, rebuild: false, stopIngestion: false };
}

function statement(
    kind: StatementKind,
    sql: string,
    summary: string,
    extra: Partial<PlannedStatement> = {},
): PlannedStatement {
    return { sql, kind, summary, ...extra };
}

function targetRef(d: Desired): string {
    return qualified(d.db, d.names.target);
}

function diffColumns(d: Desired, actual: ActualTable): ColumnDiff {
    const actualCols = new Map(actual.columns.map((c) => [c.name, c]));
    const desiredNames = new Set(d.columns.map((c) => c.name));
    return {
        actualCols,
        desiredNames,
        addedNames: new Set(d.columns.filter((c) => !actualCols.has(c.name)).map((c) => c.name)),
        dropped: actual.columns.filter((c) => !desiredNames.has(c.name)),
        retyped: d.columns.filter(
            (c) => actualCols.has(c.name) && actualCols.get(c.name)!.type !== c.type,
        ),
    };
}

/** Engine, ORDER BY, PARTITION BY and key column types: any change there needs a rebuild. */
function keyChanges(d: Desired, actual: ActualTable, canon: Canon, diff: ColumnDiff): KeyChange {
    const reasons: string[] = [];
    if (
        actual.engine !== d.engine ||
        normalizeSql(actual.engineArgs) !== normalizeSql(d.engineArgs)
    ) {
        reasons.push(
            `engine ${actual.engine}${actual.engineArgs ? `(${actual.engineArgs})` : ""} -> ${d.engine}${d.engineArgs ? `(${d.engineArgs})` : ""}`,
        );
    }
    const order = orderByChange(d, actual, canon, diff);
    if (order.reason !== undefined) reasons.push(order.reason);
    const wantPartition = d.partitionBy ? canon.expr(d.partitionBy) : "";
    if (normalizeSql(actual.partitionKey) !== wantPartition) {
        reasons.push(
            `PARTITION BY ${actual.partitionKey || "(none)"} -> ${wantPartition || "(none)"}`,
        );
    }
    const keyRetypes = diff.retyped.filter((c) => {
        const a = diff.actualCols.get(c.name)!;
        return a.inSortingKey || a.inPartitionKey;
    });
    if (keyRetypes.length > 0)
        reasons.push(`key column(s) ${keyRetypes.map((c) => c.name).join(", ")} change type`);
    return {
        reasons,
        haveOrder: order.haveOrder,
        ...(order.extendOrderBy ? { extendOrderBy: order.extendOrderBy } : {}),
    };
}

/** The sorting key: unchanged, extended in place, or changed (a rebuild reason). */
function orderByChange(
    d: Desired,
    actual: ActualTable,
    canon: Canon,
    diff: ColumnDiff,
): { haveOrder: string[]; reason?: string; extendOrderBy?: string[] } {
    const wantOrder = canon.orderBy(d.orderBy);
    const haveOrder = actual.sortingKey
        ? splitTopLevel(actual.sortingKey, ",").map(normalizeSql)
        : [];
    if (sameList(wantOrder, haveOrder)) return { haveOrder };
    // ClickHouse can extend the sorting key in place with columns added by the same ALTER
    // (and only if they have no default).
    const extendable =
        haveOrder.length > 0 &&
        sameList(wantOrder.slice(0, haveOrder.length), haveOrder) &&
        d.orderByColumns.slice(haveOrder.length).every((refs) => {
            return (
                refs.length > 0 &&
                refs.every(
                    (r) =>
                        diff.addedNames.has(r) &&
                        d.columns.find((c) => c.name === r)!.default === undefined,
                )
            );
        });
    if (extendable) return { haveOrder, extendOrderBy: d.orderBy.slice() };
    return { haveOrder, reason: `ORDER BY (${haveOrder.join(", ")}) -> (${wantOrder.join(", ")})` };
}

/** Rebuild: copy into a new table with the desired definition, then swap names atomically. */
function rebuild(
    d: Desired,
    diff: ColumnDiff,
    reasons: readonly string[],
    b: PlanBuilder,
): PlannedStatement[] {
    for (const c of diff.dropped)
        b.guard(
            "dropColumn",
            d.names.target,
            `dropping column '${c.name}' of ${d.names.target} deletes its data`,
        );
    for (const c of diff.retyped) {
        b.guard(
            "retypeColumn",
            d.names.target,
            `changing column '${c.name}' of ${d.names.target} from ${diff.actualCols.get(c.name)!.type} to ${c.type} rewrites its data`,
        );
    }
    b.guard(
        "rebuildTable",
        d.names.target,
        `rebuilding ${d.names.target} (${reasons.join("; ")}) rewrites every row into a new table`,
    );
    const tableRef = targetRef(d);
    const scratch = qualified(d.db, d.names.rebuild);
    const copied = d.columns
        .filter((c) => diff.actualCols.has(c.name))
        .map((c) => quoteIdent(c.name));
    const extra = { change: "rebuildTable" as const };
    const without = diff.dropped.length
        ? `, without column(s) ${diff.dropped.map((c) => c.name).join(", ")}`
        : "";
    return [
        statement(
            "rebuild",
            `DROP TABLE IF EXISTS ${scratch}`,
            `clear scratch table ${d.names.rebuild} of an earlier attempt`,
        ),
        statement(
            "destructive",
            targetDdl(d, d.names.rebuild),
            `create ${d.names.rebuild} with the new definition (${reasons.join("; ")})`,
            extra,
        ),
        ...(copied.length > 0
            ? [
                  statement(
                      "destructive",
                      `INSERT INTO ${scratch} (${copied.join(", ")}) SELECT ${copied.join(", ")} FROM ${tableRef} SETTINGS max_partitions_per_insert_block = 0`,
                      `copy every row of ${d.names.target} into ${d.names.rebuild}${without}`,
                      { ...extra, impact: impactQuery(d.db, d.names.target, "copies") },
                  ),
              ]
            : []),
        statement(
            "destructive",
            `EXCHANGE TABLES ${tableRef} AND ${scratch}`,
            `swap ${d.names.rebuild} in as ${d.names.target} (atomic)`,
            extra,
        ),
        statement(
            "destructive",
            `DROP TABLE IF EXISTS ${scratch}`,
            `drop the previous version of ${d.names.target}`,
            extra,
        ),
    ];
}

function dropColumns(d: Desired, diff: ColumnDiff, b: PlanBuilder): PlannedStatement[] {
    return diff.dropped.map((c) => {
        b.guard(
            "dropColumn",
            d.names.target,
            `dropping column '${c.name}' of ${d.names.target} deletes its data`,
        );
        return statement(
            "destructive",
            `ALTER TABLE ${targetRef(d)} DROP COLUMN IF EXISTS ${quoteIdent(c.name)}`,
            `drop column ${c.name} (${c.type})`,
            {
                change: "dropColumn",
                settings: WAIT_FOR_MUTATIONS,
                impact: impactQuery(d.db, d.names.target, `drops column ${c.name} from`),
            },
        );
    });
}

/** Type changes: lossless widenings in place, anything else destructive. */
function retypeColumns(d: Desired, diff: ColumnDiff, b: PlanBuilder): PlannedStatement[] {
    return diff.retyped.map((c) => {
        const from = diff.actualCols.get(c.name)!.type;
        const sql = `ALTER TABLE ${targetRef(d)} MODIFY COLUMN IF EXISTS ${quoteIdent(c.name)} ${c.type}`;
        if (isLosslessWidening(from, c.type)) {
            return statement(
                "in-place",
                sql,
                `widen column ${c.name} ${from} -> ${c.type} (lossless; rewrites the column)`,
                { settings: WAIT_FOR_MUTATIONS },
            );
        }
        b.guard(
            "retypeColumn",
            d.names.target,
            `changing column '${c.name}' of ${d.names.target} from ${from} to ${c.type} rewrites its data and can fail or lose precision`,
        );
        return statement("destructive", sql, `change column ${c.name} ${from} -> ${c.type}`, {
            change: "retypeColumn",
            settings: WAIT_FOR_MUTATIONS,
            impact: impactQuery(d.db, d.names.target, `rewrites column ${c.name} in`),
        });
    });
}

/**
 * Adds and moves, in desired order, so the final column order equals the stream's. An extension
 * of the sorting key rides on the ALTER adding the last column it refers to.
 */
function addAndMoveColumns(
    d: Desired,
    actual: ActualTable,
    diff: ColumnDiff,
    keys: KeyChange,
): PlannedStatement[] {
    const out: PlannedStatement[] = [];
    const tableRef = targetRef(d);
    const extendOrderBy = keys.extendOrderBy;
    const order = actual.columns.filter((c) => diff.desiredNames.has(c.name)).map((c) => c.name);
    const suffixRefs = new Set(
        extendOrderBy ? d.orderByColumns.slice(keys.haveOrder.length).flat() : [],
    );
    const extendWith = [...d.columns].reverse().find((c) => suffixRefs.has(c.name))?.name;
    d.columns.forEach((c, i) => {
        const prev = i === 0 ? undefined : d.columns[i - 1]!.name;
        const position = prev === undefined ? "FIRST" : `AFTER ${quoteIdent(prev)}`;
        const at = order.indexOf(c.name);
        const want = prev === undefined ? 0 : order.indexOf(prev) + 1;
        if (at === -1) {
            const orderClause =
                extendOrderBy && c.name === extendWith
                    ? `, MODIFY ORDER BY (${extendOrderBy.join(", ")})`
                    : "";
            out.push(
                statement(
                    "in-place",
                    `ALTER TABLE ${tableRef} ADD COLUMN IF NOT EXISTS ${columnDef(c)} ${position}${orderClause}`,
                    `add column ${c.name} ${c.type}${c.default !== undefined ? ` DEFAULT ${c.default}` : ""}${orderClause ? " and extend ORDER BY with it" : ""}`,
                ),
            );
            order.splice(want, 0, c.name);
        } else if (at !== want) {
            out.push(
                statement(
                    "in-place",
                    `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} ${c.type} ${position}`,
                    `move column ${c.name} ${prev === undefined ? "first" : `after ${prev}`}`,
                ),
            );
            order.splice(at, 1);
            order.splice(prev === undefined ? 0 : order.indexOf(prev) + 1, 0, c.name);
        }
    });
    return out;
}

/** Column defaults and comments of the columns that exist already. */
function defaultsAndComments(d: Desired, diff: ColumnDiff, canon: Canon): PlannedStatement[] {
    const out: PlannedStatement[] = [];
    const tableRef = targetRef(d);
    for (const c of d.columns) {
        const a = diff.actualCols.get(c.name);
        if (!a) continue;
        out.push(...defaultChange(tableRef, c, a, canon));
        if ((c.comment ?? "") !== a.comment) {
            out.push(
                statement(
                    "in-place",
                    c.comment
                        ? `ALTER TABLE ${tableRef} COMMENT COLUMN ${quoteIdent(c.name)} ${quoteString(c.comment)}`
                        : `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} REMOVE COMMENT`,
                    c.comment ? `set comment of ${c.name}` : `remove comment of ${c.name}`,
                ),
            );
        }
    }
    return out;
}

function defaultChange(
    tableRef: string,
    c: DesiredColumn,
    a: ActualColumn,
    canon: Canon,
): PlannedStatement[] {
    const want = c.default !== undefined ? canon.expr(c.default) : "";
    const have =
        a.defaultKind === "DEFAULT" || a.defaultKind === ""
            ? normalizeSql(a.defaultExpression)
            : `${a.defaultKind} ${a.defaultExpression}`;
    if (want === have) return [];
    const out: PlannedStatement[] = [];
    // Rows written before the column existed read its default when queried: write the current
    // values into them first, so the new default applies to new rows only.
    const keyColumn = a.inSortingKey || a.inPartitionKey;
    if (a.defaultKind === "DEFAULT" || !keyColumn) {
        out.push(
            statement(
                "in-place",
                a.defaultKind === "DEFAULT"
                    ? `ALTER TABLE ${tableRef} MATERIALIZE COLUMN ${quoteIdent(c.name)}`
                    : `ALTER TABLE ${tableRef} UPDATE ${quoteIdent(c.name)} = ${quoteIdent(c.name)} WHERE 1`,
                `store the current values of ${c.name} in every row before its default changes (existing rows keep what they read today)`,
                { settings: WAIT_FOR_MUTATIONS },
            ),
        );
    }
    out.push(
        statement(
            "in-place",
            c.default !== undefined
                ? `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} DEFAULT ${c.default}`
                : `ALTER TABLE ${tableRef} MODIFY COLUMN ${quoteIdent(c.name)} REMOVE DEFAULT`,
            c.default !== undefined
                ? `set default of ${c.name} to ${c.default}`
                : `remove default of ${c.name}`,
        ),
    );
    return out;
}

function ttlChange(
    d: Desired,
    actual: ActualTable,
    canon: Canon,
    b: PlanBuilder,
): PlannedStatement[] {
    const wantTtl = d.ttl ? canon.ttl(d.ttl) : "";
    if (normalizeSql(actual.ttl) === wantTtl) return [];
    const tableRef = targetRef(d);
    if (!d.ttl) return [statement("in-place", `ALTER TABLE ${tableRef} REMOVE TTL`, "remove TTL")];
    // A new or changed TTL is applied to the stored rows too: those past it are deleted.
    b.guard(
        "ttl",
        d.names.target,
        `setting TTL ${d.ttl} on ${d.names.target} deletes every stored row already past it`,
    );
    return [
        statement(
            "destructive",
            `ALTER TABLE ${tableRef} MODIFY TTL ${d.ttl}`,
            `set TTL ${d.ttl}${actual.ttl ? ` (was ${actual.ttl})` : ""}: rows already past it are deleted`,
            {
                change: "ttl",
                settings: WAIT_FOR_MUTATIONS,
                impact: impactQuery(d.db, d.names.target, "deletes", ttlCondition(d.ttl)),
            },
        ),
    ];
}

/** Type changes that keep every value: a wider integer, float, or a wrapper that only adds. */
export function isLosslessWidening(from: string, to: string): boolean {
    if (
        to === `Nullable(${from})` ||
        to === `LowCardinality(${from})` ||
        from === `LowCardinality(${to})`
    )
        return true;
    if (to === `LowCardinality(Nullable(${from}))`) return true;
    const int = /^(U?)Int(8|16|32|64|128|256)$/;
    const f = int.exec(from);
    const t = int.exec(to);
    if (f && t) {
        const fBits = Number(f[2]);
        const tBits = Number(t[2]);
        if (f[1] === t[1]) return tBits > fBits;
        return f[1] === "U" && t[1] === "" && tBits > fBits;
    }
    if (from === "Float32" && to === "Float64") return true;
    if (from === "Date" && to === "Date32") return true;
    return false;
}
