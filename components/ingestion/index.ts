/** Stream ingestion: ClickHouse DDL for Kafka streams, planned, reviewed and applied by Pulumi. */
export { StreamIngestion } from "./stream";
export type { StreamIngestionArgs } from "./stream";
export { streamIngestionProvider } from "./provider";
export type { StreamIngestionInputs, StreamIngestionOutputs } from "./provider";
export {
    DESTRUCTIVE_CHANGES,
    DestructiveChangeRefusedError,
    buildDesired,
    canonicalRequests,
    describePlan,
    expectedState,
    formatStatement,
    planDrop,
    planStream,
} from "./planner";
export { streamObjectNames } from "../../schemas/naming";
export type {
    ActualColumn,
    ActualStreamState,
    ActualTable,
    CanonicalForms,
    Desired,
    DestructiveChange,
    PlanOptions,
    PlannedStatement,
    Refusal,
    StatementKind,
    StreamPlan,
} from "./planner";
export type { StreamObjectNames, StreamObjectRole } from "../../schemas/naming";
export {
    canonicalize,
    readDatabaseState,
    readStreamState,
    streamState,
    summarizeState,
} from "./introspect";
export type { DatabaseState, StateSummary } from "./introspect";
export {
    NotConvergedError,
    StatementFailedError,
    applyPlan,
    planFromServer,
    reconcile,
} from "./apply";
export type { ApplyHooks, Reconciled, ServerPlan } from "./apply";
export { ConnectionError, connectionProblems, openClient } from "./connection";
export type {
    ConnectionContext,
    ConnectionSpec,
    EmbeddedConnection,
    HttpConnection,
    KubeconfigSource,
    OpenedClient,
    PortForwardConnection,
    SecretSource,
} from "./connection";
export { readIngestionHealth } from "./health";
export type { ConsumerHealth, StreamHealth } from "./health";
