/** Removing a stream: the statements that drop its objects, and what is kept and why. */
import { IDENTIFIER } from "../../../schemas/model";
import { StreamObjectRole, streamObjectNames } from "../../../schemas/naming";
import { SqlInputError, qualified } from "../../../schemas/sql";
import { markerText, ownership, parseMarker } from "../ownership";
import { ROWLESS_ENGINES } from "./builder";
import type { ActualStreamState } from "./state";
import type { PlanOptions, PlannedStatement, StatementKind, StreamPlan } from "./types";

/**
 * Statements that remove a stream: the Kafka table first (stops consumption), then the views;
 * the target and dead-letter tables only with `dropTargetOnDelete`. With `actual` undefined every
 * object is dropped with IF EXISTS (nothing known, nothing assumed).
 */
export function planDrop(
    stream: string,
    actual: ActualStreamState | undefined,
    options: Pick<PlanOptions, "database" | "dropTargetOnDelete" | "stack" | "adoptUnmarked">,
): StreamPlan {
    if (!IDENTIFIER.test(options.database))
        throw new SqlInputError(`database ${JSON.stringify(options.database)} is not a valid name`);
    if (!IDENTIFIER.test(stream))
        throw new SqlInputError(`stream name ${JSON.stringify(stream)} is not a valid name`);
    const names = streamObjectNames(stream);
    const statements: PlannedStatement[] = [];
    const notes: string[] = [];
    const ref = (role: StreamObjectRole) => qualified(options.database, names[role]);
    const drop = (role: StreamObjectRole, kind: StatementKind, summary: string) =>
        statements.push({
            sql: `DROP TABLE IF EXISTS ${ref(role)}`,
            kind,
            summary,
            ...(kind === "destructive" ? { change: "dropTable" as const } : {}),
        });
    for (const role of ["kafka", "mv", "dlqMv", "target", "dlq", "rebuild"] as const) {
        const keepsRows = role === "target" || role === "dlq" || role === "rebuild";
        if (actual?.detached.includes(role)) {
            // Its comment (the ownership marker) is unreadable while detached: attach it only;
            // the next round reads it and drops it if it is this stream's.
            statements.push({
                sql: `ATTACH TABLE IF NOT EXISTS ${ref(role)}`,
                kind: "in-place",
                summary: `attach ${names[role]}, found detached, to read whose it is`,
            });
            continue;
        }
        const t = actual?.tables[role];
        if (!t) continue;
        const o = ownership(t.comment, role, [stream], options.stack);
        const own =
            o.kind === "own" || (o.kind !== "otherStream" && options.adoptUnmarked === true);
        if (!own) {
            notes.push(
                `${options.database}.${t.name} (${t.engine}) is not stream ${stream}'s (${o.kind === "unmarked" ? "no ownership marker" : `marked ${markerText(o.marker)}`}); left in place`,
            );
            continue;
        }
        if (!keepsRows) {
            if (!ROWLESS_ENGINES.has(t.engine)) {
                notes.push(
                    `${names[role]} is a ${t.engine} table holding rows, not a stream object; left in place`,
                );
                continue;
            }
            drop(
                role,
                "rebuild",
                role === "kafka"
                    ? "stop consumption: drop the Kafka table"
                    : `drop view ${names[role]}`,
            );
        } else if (options.dropTargetOnDelete) {
            drop(role, "destructive", `drop ${names[role]} and its rows (dropTargetOnDelete)`);
        } else {
            notes.push(
                `${names[role]} is kept with its rows (set dropTargetOnDelete: true to drop it)`,
            );
        }
    }
    // Other detached `<stream>_...` objects (rollup tables, views, snapshots): attached likewise.
    for (const name of actual?.detachedRelated ?? [])
        statements.push({
            sql: `ATTACH TABLE IF NOT EXISTS ${qualified(options.database, name)}`,
            kind: "in-place",
            summary: `attach ${name}, found detached, to read whose it is`,
        });
    statements.push(...dropRollups(stream, actual, options, notes));
    return { database: options.database, stream, statements, refusals: [], notes };
}

/**
 * The stream's rollup objects (by their markers): views dropped, tables and backfill snapshots
 * only with `dropTargetOnDelete`, like the target.
 */
function dropRollups(
    stream: string,
    actual: ActualStreamState | undefined,
    options: Pick<PlanOptions, "database" | "dropTargetOnDelete" | "stack">,
    notes: string[],
): PlannedStatement[] {
    const own = Object.values(actual?.related ?? {}).filter((t) => {
        const m = parseMarker(t.comment);
        return (
            m?.stream === stream &&
            m.role.startsWith("rollup") &&
            (options.stack === undefined || m.stack === undefined || m.stack === options.stack)
        );
    });
    const views = own.filter((t) => t.engine === "MaterializedView");
    const tables = own.filter((t) => t.engine !== "MaterializedView");
    const drop = (name: string) => `DROP TABLE IF EXISTS ${qualified(options.database, name)}`;
    const out: PlannedStatement[] = views.map((t) => ({
        sql: drop(t.name),
        kind: "rebuild",
        summary: `drop rollup view ${t.name}`,
    }));
    for (const t of tables) {
        if (options.dropTargetOnDelete)
            out.push({
                sql: drop(t.name),
                kind: "destructive",
                change: "dropTable",
                summary: `drop ${t.name} and its rows (dropTargetOnDelete)`,
            });
        else
            notes.push(`${t.name} is kept with its rows (set dropTargetOnDelete: true to drop it)`);
    }
    return out;
}
