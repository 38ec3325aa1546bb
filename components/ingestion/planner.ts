/**
 * The ingestion DDL planner: (desired stream, actual ClickHouse state) -> ordered SQL statements.
 *
 * Pure: no I/O, no clock, no randomness. `introspect.ts` reads the actual state and the canonical
 * spelling of the desired expressions from the server; `apply.ts` runs the plan. Every statement is
 * classified so a reviewer sees at a glance what a plan does:
 *
 * - `create`: creates an object that does not exist.
 * - `in-place`: changes an existing object and keeps its rows (ADD COLUMN, MODIFY TTL, MODIFY QUERY).
 * - `rebuild`: drops and recreates an object that holds no rows (Kafka table, views, placeholders).
 * - `destructive`: may delete or rewrite stored rows; refused unless the stack allows that change.
 *
 * Idempotency does not depend on remembering where a previous run stopped: a run always re-reads
 * the state and plans from it, and every intermediate state a plan passes through (Kafka table
 * dropped, placeholder in its place, half-copied rebuild table) is one this planner recognises and
 * continues from. Statements also use IF [NOT] EXISTS so a plan replayed verbatim is harmless.
 */
export { STREAM_OBJECT_ROLES, streamObjectNames } from "../../schemas/naming";
export type { StreamObjectNames, StreamObjectRole } from "../../schemas/naming";
// The comparison scanners live with the other SQL scanners; re-exported for the planner's tests.
export { normalizeSql, splitTopLevel } from "../../schemas/sql";

export {
    DESTRUCTIVE_CHANGES,
    DestructiveChangeRefusedError,
    describePlan,
    formatStatement,
    statementIdentity,
} from "./plan/types";
export type {
    DestructiveChange,
    ImpactQuery,
    PlanOptions,
    PlannedStatement,
    Refusal,
    StatementKind,
    StreamPlan,
} from "./plan/types";
export type { ActualColumn, ActualStreamState, ActualTable, CanonicalForms } from "./plan/state";
export { DEFAULT_FLUSH_INTERVAL_MS, buildDesired, withGroup } from "./plan/desired";
export type { Desired, DesiredColumn } from "./plan/desired";
export { canonicalRequests, unparsableFragments } from "./plan/canon";
export { placeholderFor } from "./plan/ddl";
export { planStream } from "./plan/stream";
export { isLosslessWidening } from "./plan/target";
export { expectedState } from "./plan/expected";
export { planDrop } from "./plan/drop";
