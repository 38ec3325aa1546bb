/**
 * Expected state: what the objects look like once a plan for a stream has been applied, in the
 * shape `introspect` reads them.
 */
import type { StreamSpec } from "../../../schemas/model";
import type { StreamObjectRole } from "../../../schemas/naming";
import { Canon } from "./canon";
import { DLQ_COLUMNS, Desired, buildDesired } from "./desired";
import { desiredRollups } from "./rollup";
import type { ActualColumn, ActualStreamState, ActualTable } from "./state";
import type { PlanOptions } from "./types";

/**
 * The state a fully applied plan leaves, in the shape `introspect` reads (expressions in the
 * server's spelling when `options.canonicalForms` is given). Planning `spec` against it yields an
 * empty plan; comparing it with what the server reports checks the DDL did what the plan says.
 */
export function expectedState(
    spec: StreamSpec,
    options: PlanOptions,
    /** `buildDesired(spec, options)`, when the caller built it already. */
    d: Desired = buildDesired(spec, options),
): ActualStreamState {
    const canon = new Canon(options.canonicalForms);
    const tables: Partial<Record<StreamObjectRole, ActualTable>> = {
        target: expectedTarget(d, canon),
        kafka: table(d.names.kafka, "Kafka", {
            engineArgs: d.kafkaEngineArgs,
            columns: d.kafkaColumns.map((c) => column(c.name, c.type)),
            settings: Object.fromEntries(d.kafkaSettings),
            comment: d.comments.kafka,
        }),
        mv: table(d.names.mv, "MaterializedView", {
            columns: d.columns.map((c) => column(c.name, c.type)),
            asSelect: canon.query(d.mvSelect),
            toTable: `${d.db}.${d.names.target}`,
            comment: d.comments.mv,
        }),
        ...(d.deadLetter ? expectedDeadLetter(d, canon) : {}),
    };
    const related = expectedRollups(d, canon);
    return {
        database: d.db,
        stream: d.spec.name,
        tables,
        detached: [],
        ...(Object.keys(related).length > 0 ? { related } : {}),
    };
}

/** Each rollup's table and view (a backfill snapshot is transient: not expected). */
function expectedRollups(d: Desired, canon: Canon): Record<string, ActualTable> {
    const out: Record<string, ActualTable> = {};
    for (const r of desiredRollups(d.db, d.spec, d.stack)) {
        const columns = [...r.keys, ...r.measures];
        out[r.names.table] = table(r.names.table, "AggregatingMergeTree", {
            columns: columns.map((c) => column(c.name, c.type, undefined, c.definition)),
            sortingKey: r.keys.map((k) => k.name).join(", "),
            primaryKey: r.keys.map((k) => k.name).join(", "),
            partitionKey: "toYYYYMM(bucket)",
            comment: r.comments.table,
        });
        out[r.names.mv] = table(r.names.mv, "MaterializedView", {
            columns: columns.map((c) => column(c.name, c.type)),
            asSelect: canon.query(r.select),
            toTable: `${d.db}.${r.names.table}`,
            comment: r.comments.mv,
        });
    }
    return out;
}

/** The target table: columns with their defaults, keys and TTL as the server spells them. */
function expectedTarget(d: Desired, canon: Canon): ActualTable {
    const order = canon.orderBy(d.orderBy).join(", ");
    return table(d.names.target, d.engine, {
        engineArgs: d.engineArgs,
        columns: d.columns.map((c) =>
            column(
                c.name,
                c.type,
                c.default !== undefined ? canon.expr(c.default) : undefined,
                c.comment,
            ),
        ),
        sortingKey: order,
        primaryKey: order,
        partitionKey: d.partitionBy ? canon.expr(d.partitionBy) : "",
        ttl: d.ttl ? canon.ttl(d.ttl) : "",
        comment: d.comments.target,
    });
}

/** The dead-letter table and the view that fills it. */
function expectedDeadLetter(
    d: Desired,
    canon: Canon,
): Pick<Record<StreamObjectRole, ActualTable>, "dlq" | "dlqMv"> {
    return {
        dlq: table(d.names.dlq, "MergeTree", {
            columns: DLQ_COLUMNS.map((c) =>
                column(c.name, c.type, c.default !== undefined ? canon.expr(c.default) : undefined),
            ),
            sortingKey: "topic, partition, offset",
            primaryKey: "topic, partition, offset",
            partitionKey: "toYYYYMMDD(received_at)",
            ttl: canon.ttl(d.dlqTtl),
            settings: { ttl_only_drop_parts: "1" },
            comment: d.comments.dlq,
        }),
        dlqMv: table(d.names.dlqMv, "MaterializedView", {
            columns: DLQ_COLUMNS.map((c) => column(c.name, c.type)),
            asSelect: canon.query(d.dlqSelect),
            toTable: `${d.db}.${d.names.dlq}`,
            comment: d.comments.dlqMv,
        }),
    };
}

function column(name: string, type: string, def?: string, comment?: string): ActualColumn {
    return {
        name,
        type,
        defaultKind: def !== undefined ? "DEFAULT" : "",
        defaultExpression: def !== undefined ? def : "",
        comment: comment ?? "",
        inSortingKey: false,
        inPartitionKey: false,
    };
}

function table(name: string, engine: string, over: Partial<ActualTable>): ActualTable {
    return {
        name,
        engine,
        engineArgs: "",
        columns: [],
        sortingKey: "",
        partitionKey: "",
        primaryKey: "",
        ttl: "",
        settings: {},
        comment: "",
        asSelect: "",
        toTable: "",
        ...over,
    };
}
