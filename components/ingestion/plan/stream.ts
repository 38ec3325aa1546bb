/**
 * Planning one stream: the order of the steps that take its objects from the actual state to the
 * desired one. Ingestion stops first when anything it depends on changes, the target and
 * dead-letter tables change next, and consumption restarts last with every view in place.
 */
import type { StreamSpec } from "../../../schemas/model";
import type { StreamObjectRole } from "../../../schemas/naming";
import { qualified, quoteIdent } from "../../../schemas/sql";
import { PlanBuilder, ROWLESS_ENGINES, sameList } from "./builder";
import { Canon } from "./canon";
import { kafkaDdl, placeholderDdl, targetDdl } from "./ddl";
import { Desired, buildDesired, withGroup } from "./desired";
import { checkOwnership, kafkaGroupOf, planRename, resolveGroup } from "./rename";
import { RollupPlan, planRollups } from "./rollup-plan";
import type { ActualStreamState, ActualTable } from "./state";
import { TargetPlan, planTarget } from "./target";
import type { PlanOptions, StreamPlan } from "./types";
import { ViewPlan, emitView, kafkaDifferences, planDlq, planView } from "./views";

/** What every step reads: the desired state, the found objects, and where statements go. */
interface StreamContext {
    readonly d: Desired;
    readonly b: PlanBuilder;
    readonly canon: Canon;
    readonly tables: Readonly<Partial<Record<StreamObjectRole, ActualTable>>>;
    readonly detached: ReadonlySet<StreamObjectRole>;
    /** Tables named `<stream>_...` beyond the fixed roles (rollup objects among them). */
    readonly related: Readonly<Record<string, ActualTable>>;
    readonly detachedRelated: ReadonlySet<string>;
}

/** Whether ingestion must stop, and what then changes while it is stopped. */
interface Ingestion {
    readonly target: TargetPlan | undefined;
    /** Why the Kafka table is (re)created; empty when it stays. */
    readonly kafkaReasons: readonly string[];
    /** The views that change. */
    readonly views: readonly ViewPlan[];
    readonly stopIngestion: boolean;
    readonly recreateKafka: boolean;
    readonly kafkaExists: boolean;
    /** The rollups' statements, run while ingestion is stopped if it stops. */
    readonly rollups: RollupPlan;
}

/**
 * Plans the statements that take the stream's objects from `actual` to `desired`.
 * `actual` undefined means none of the stream's objects exist. Throws SqlInputError for inputs
 * that cannot be rendered safely; refused destructive changes are carried in `plan.refusals`.
 */
export function planStream(
    desired: StreamSpec,
    found: ActualStreamState | undefined,
    options: PlanOptions,
    /** The objects of `desired.renamedFrom`, when the stream file declares a rename. */
    previous?: ActualStreamState,
    /** `buildDesired(desired, options)`, when the caller built it already (check, apply). */
    prebuilt?: Desired,
): StreamPlan {
    const group = resolveGroup(desired, options.database, found, previous);
    const d = prebuilt ? withGroup(prebuilt, group) : buildDesired(desired, options, group);
    const b = new PlanBuilder(d, options);
    const owners = [desired.name, ...(previous ? [previous.stream] : [])];
    for (const state of [found, previous]) checkOwnership(state, owners, options, b);
    if (b.refusals.length > 0) return b.build();
    const actual = planRename(d, found, previous, b);
    const s: StreamContext = {
        d,
        b,
        canon: new Canon(options.canonicalForms),
        tables: actual?.tables ?? {},
        detached: new Set(actual?.detached ?? []),
        related: actual?.related ?? {},
        detachedRelated: new Set(actual?.detachedRelated ?? []),
    };
    if (!actual) announceNewStream(s);
    attachDetached(s);
    const ingestion = assessIngestion(s);
    stopConsumption(s, ingestion);
    dropLeftoverRebuild(s, ingestion);
    noteDottedSources(s);
    planTargetTable(s, ingestion);
    planDeadLetterTable(s);
    b.statements.push(...ingestion.rollups.statements);
    startConsumption(s, ingestion);
    return b.build();
}

function ref(s: StreamContext, role: StreamObjectRole): string {
    return qualified(s.d.db, s.d.names[role]);
}

function announceNewStream({ d, b }: StreamContext): void {
    b.add(
        "create",
        `CREATE DATABASE IF NOT EXISTS ${quoteIdent(d.db)}`,
        `create database ${d.db} if missing`,
    );
    b.notes.push(
        `new stream: ${d.names.target} starts empty and consumer group ${d.group} starts reading ${d.spec.topic.name} ` +
            `from its earliest retained message; if this stream was renamed, set renamedFrom: <old name> to keep its table and group`,
    );
}

/** Detached objects other than the Kafka table are someone's manual work: attach, plan again. */
function attachDetached(s: StreamContext): void {
    for (const role of s.detached) {
        if (role === "kafka") continue;
        s.b.add(
            "in-place",
            `ATTACH TABLE IF NOT EXISTS ${ref(s, role)}`,
            `attach ${s.d.names[role]}, found detached; plan again after this run to reconcile it`,
        );
    }
}

/** What changes in the target, the Kafka table and the views, and whether ingestion stops. */
function assessIngestion(s: StreamContext): Ingestion {
    const { d, b, canon, tables, detached } = s;
    const target =
        tables.target && !detached.has("target")
            ? planTarget(d, tables.target, canon, b)
            : undefined;
    const kafkaReasons = detached.has("kafka")
        ? ["found detached (definition unknown)"]
        : kafkaDifferences(d, tables.kafka);
    const kafkaColumnsChange =
        tables.kafka !== undefined &&
        !sameList(
            tables.kafka.columns.map((c) => `${c.name} ${c.type}`),
            d.kafkaColumns.map((c) => `${c.name} ${c.type}`),
        );
    const mvPlan = planView(d, "mv", tables.mv, canon, b, kafkaColumnsChange);
    const dlqMvPlan = d.deadLetter
        ? planView(d, "dlqMv", tables.dlqMv, canon, b, false)
        : undefined;
    const kafkaExists = tables.kafka !== undefined || detached.has("kafka");
    // Replacing a view while the Kafka table runs would let rows pass with no view to take them.
    const viewRecreated = mvPlan.kind === "recreate" || dlqMvPlan?.kind === "recreate";
    const targetExists = tables.target !== undefined || detached.has("target");
    const rollups = planRollups(d, s.related, targetExists, canon, b, b.options, s.detachedRelated);
    const stopIngestion =
        kafkaReasons.length > 0 ||
        (target?.stopIngestion ?? false) ||
        viewRecreated ||
        (rollups.stopIngestion && kafkaExists);
    const recreateKafka = kafkaReasons.length > 0 || (stopIngestion && kafkaExists);
    if (kafkaReasons.length === 0 && recreateKafka) {
        kafkaReasons.push(
            target?.stopIngestion
                ? "unchanged; recreated after the target change"
                : viewRecreated
                  ? "unchanged; recreated after the views change"
                  : "unchanged; recreated after the rollups change",
        );
    }
    const views = [mvPlan, ...(dlqMvPlan ? [dlqMvPlan] : [])].filter((v) => v.kind !== "none");
    return { target, kafkaReasons, views, stopIngestion, recreateKafka, kafkaExists, rollups };
}

/**
 * Stops ingestion first. The Kafka engine keeps no rows and its offsets live in the consumer
 * group, so dropping it is the stateless form of DETACH: nothing is hidden in a detached state,
 * and the recreated table resumes from the committed offsets.
 */
function stopConsumption(s: StreamContext, ingestion: Ingestion): void {
    const { d, b, tables, detached } = s;
    if (!ingestion.stopIngestion || !ingestion.kafkaExists) return;
    if (detached.has("kafka")) {
        b.add(
            "rebuild",
            `ATTACH TABLE IF NOT EXISTS ${ref(s, "kafka")}`,
            `re-attach ${d.names.kafka}, found detached, so it can be replaced`,
        );
    }
    if (tables.kafka !== undefined && !ROWLESS_ENGINES.has(tables.kafka.engine)) {
        b.guard(
            "dropTable",
            d.names.kafka,
            `${d.names.kafka} is a ${tables.kafka.engine} table holding rows, not a Kafka table; replacing it drops them`,
        );
        b.destructive(
            "dropTable",
            `DROP TABLE IF EXISTS ${ref(s, "kafka")}`,
            `drop ${d.names.kafka} (${tables.kafka.engine}) to replace it with the Kafka table`,
        );
    } else {
        b.add(
            "rebuild",
            `DROP TABLE IF EXISTS ${ref(s, "kafka")}`,
            `stop consumption: drop the Kafka table (${ingestion.kafkaReasons.join("; ")}); offsets stay committed in group ${kafkaGroupOf(tables.kafka) ?? d.group}`,
        );
    }
}

/** A completed or abandoned rebuild leaves its scratch table; the target is authoritative. */
function dropLeftoverRebuild(s: StreamContext, ingestion: Ingestion): void {
    if (!s.tables.rebuild || (ingestion.target?.rebuild ?? false)) return;
    s.b.add(
        "rebuild",
        `DROP TABLE IF EXISTS ${ref(s, "rebuild")}`,
        `drop ${s.d.names.rebuild}, left by an interrupted rebuild (${s.d.names.target} holds the complete data)`,
    );
}

/**
 * Sources with a dot were top-level keys before nested paths existed: say so when a plan
 * switches such a field to a path, since the same file now reads other data.
 */
function noteDottedSources({ d, b, tables }: StreamContext): void {
    const wantKafka = new Set(d.kafkaColumns.map((c) => c.name));
    for (const c of tables.kafka?.columns ?? []) {
        if (c.name.includes(".") && !wantKafka.has(c.name)) {
            b.notes.push(
                `the Kafka table read a top-level field named '${c.name}'; it is now read as a nested path. ` +
                    `If messages carry a key with that literal dot, write source: ${c.name.replace(/\\/g, "\\\\").replace(/\./g, "\\.")}`,
            );
        }
    }
}

function planTargetTable({ d, b, tables, detached }: StreamContext, ingestion: Ingestion): void {
    if (!tables.target && !detached.has("target")) {
        b.add(
            "create",
            targetDdl(d, d.names.target),
            `create target table ${d.names.target} (${d.engine})`,
        );
    } else if (ingestion.target) {
        for (const st of ingestion.target.statements) b.statements.push(st);
    }
}

function planDeadLetterTable({ d, b, canon, tables }: StreamContext): void {
    if (d.deadLetter) planDlq(d, tables.dlq, canon, b);
    else if (tables.dlq)
        b.notes.push(
            `dead-letter table ${d.names.dlq} is kept: onError is 'fail' but it holds earlier dead letters; drop it by hand when no longer needed`,
        );
}

/** Views, then the Kafka table, so that consumption starts with every view in place. */
function startConsumption(s: StreamContext, ingestion: Ingestion): void {
    const { d, b } = s;
    if (!ingestion.recreateKafka) {
        for (const v of ingestion.views) emitView(d, v, b);
        dropDeadLetterView(s);
        return;
    }
    if (ingestion.views.length > 0) {
        // Views are defined against a Null table with the Kafka table's columns; when the real
        // one is created in a single statement, all of them are already attached.
        b.add(
            "create",
            placeholderDdl(d),
            `placeholder ${d.names.kafka} (Null engine, same columns) so the views can be defined before consumption starts`,
        );
        for (const v of ingestion.views) emitView(d, v, b);
        dropDeadLetterView(s);
        b.add(
            "rebuild",
            `DROP TABLE IF EXISTS ${ref(s, "kafka")}`,
            `drop the placeholder ${d.names.kafka}`,
        );
    } else {
        dropDeadLetterView(s);
    }
    const why = ingestion.kafkaExists
        ? `recreate the Kafka table (${ingestion.kafkaReasons.join("; ")})`
        : "create the Kafka table";
    b.add(
        ingestion.kafkaExists ? "rebuild" : "create",
        kafkaDdl(d),
        `${why}; consumption of ${d.spec.topic.name} starts here`,
    );
}

/** With onError 'fail' the dead-letter view goes before a Kafka table without `_error` exists. */
function dropDeadLetterView(s: StreamContext): void {
    if (s.d.deadLetter || s.tables.dlqMv === undefined) return;
    s.b.add(
        "rebuild",
        `DROP VIEW IF EXISTS ${ref(s, "dlqMv")}`,
        `drop ${s.d.names.dlqMv}: onError is 'fail'`,
    );
}
