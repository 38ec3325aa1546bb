/**
 * What a plan takes over from the objects it finds: whose they are (ownership markers), the
 * consumer group their offsets are committed in, and a declared rename's tables and rows.
 */
import type { StreamSpec } from "../../../schemas/model";
import {
    STREAM_OBJECT_ROLES,
    StreamObjectRole,
    defaultConsumerGroup,
    legacyConsumerGroup,
    streamObjectNames,
} from "../../../schemas/naming";
import { qualified } from "../../../schemas/sql";
import { ownership, parseMarker } from "../ownership";
import type { PlanBuilder } from "./builder";
import type { Desired } from "./desired";
import { renameRollups } from "./rollup-plan";
import type { ActualStreamState, ActualTable } from "./state";
import type { PlanOptions } from "./types";

/**
 * Refuses objects under the stream's derived names that are not its own: another stream's
 * (never taken over), unmarked or another stack's (taken over only with `adoptUnmarked`).
 */
export function checkOwnership(
    state: ActualStreamState | undefined,
    owners: readonly string[],
    options: PlanOptions,
    b: PlanBuilder,
): void {
    if (!state) return;
    for (const role of STREAM_OBJECT_ROLES) {
        const t = state.tables[role];
        if (!t) continue;
        const o = ownership(t.comment, role, owners, options.stack);
        const object = `${state.database}.${t.name}`;
        if (o.kind === "own") continue;
        if (o.kind === "otherStream" && o.marker.stream === owners[0]) {
            b.foreign(
                object,
                `${object} is stream '${o.marker.stream}''s ${o.marker.role}, found where its ${role} belongs; the plan leaves it untouched. ` +
                    `Rename or drop it by hand`,
            );
        } else if (o.kind === "otherStream") {
            b.foreign(
                object,
                `${object} belongs to stream '${o.marker.stream}' (its ${o.marker.role}), but stream '${owners[0]}' derives the same name for its ${role}; ` +
                    `the plan leaves it untouched. Rename one of the two streams`,
            );
        } else if (!options.adoptUnmarked) {
            const whose =
                o.kind === "unmarked"
                    ? "carries no ownership marker (made by hand, or by an earlier version of this project)"
                    : `is marked as stack '${o.marker.stack}''s`;
            b.foreign(
                object,
                `${object} (${t.engine}) ${whose}; stream '${owners[0]}' needs that name for its ${role}, and the plan leaves it untouched. ` +
                    `Rename or drop it by hand, or, if it is this stream's, set ingestionAdoptExisting: true (adoptUnmarked) for one run to take it over`,
            );
        }
    }
}

/** The group a live Kafka table reads with, if it is a Kafka table. */
export function kafkaGroupOf(kafka: ActualTable | undefined): string | undefined {
    const setting = kafka?.engine === "Kafka" ? kafka.settings["kafka_group_name"] : undefined;
    return setting !== undefined && /^'[A-Za-z0-9._-]+'$/.test(setting)
        ? setting.slice(1, -1)
        : undefined;
}

/**
 * The consumer group of the stream's Kafka table. A deployed stream keeps the group its offsets
 * are committed in: the one recorded in its target's marker, else its Kafka table's, else the
 * first release's default. New streams get a group unique per database.
 */
export function resolveGroup(
    spec: StreamSpec,
    database: string,
    actual: ActualStreamState | undefined,
    previous: ActualStreamState | undefined,
): string {
    if (spec.consumer.group !== undefined) return spec.consumer.group;
    for (const state of [actual, previous]) {
        const group = state?.tables.target && parseMarker(state.tables.target.comment)?.group;
        if (group) return group;
    }
    for (const state of [actual, previous]) {
        const group = kafkaGroupOf(state?.tables.kafka);
        if (group !== undefined) return group;
    }
    if (previous?.tables.target) return legacyConsumerGroup(previous.stream);
    if (actual?.tables.target) return legacyConsumerGroup(spec.name);
    return defaultConsumerGroup(database, spec.name);
}

/**
 * A declared rename (`renamedFrom`): stop the old stream's consumption, drop its views, rename its
 * target and dead-letter tables and its rollups' tables, and plan the rest against them under
 * their new names, so rows, and the consumer group (with its committed offsets), carry over.
 */
export function planRename(
    d: Desired,
    actual: ActualStreamState | undefined,
    previous: ActualStreamState | undefined,
    b: PlanBuilder,
): ActualStreamState | undefined {
    // Only rollup objects left (a run died after renaming the target): they are carried still.
    const rollupsLeft = Object.values(previous?.related ?? {}).some(
        (t) => parseMarker(t.comment)?.stream === previous!.stream,
    );
    if (!previous || (Object.keys(previous.tables).length === 0 && !rollupsLeft)) return actual;
    const old = streamObjectNames(previous.stream);
    const oldRef = (role: StreamObjectRole) => qualified(d.db, old[role]);
    const both = (["target", "dlq"] as const).filter(
        (role) => previous.tables[role] && actual?.tables[role],
    );
    if (both.length > 0) {
        const role = both[0]!;
        b.foreign(
            `${d.db}.${old[role]}`,
            `stream '${d.spec.name}' is renamed from '${previous.stream}', but both ${d.db}.${old[role]} and ${d.db}.${d.names[role]} exist; ` +
                `keep one (drop the unwanted one by hand), or remove renamedFrom`,
        );
        return actual;
    }
    for (const role of ["kafka", "mv", "dlqMv", "rebuild"] as const) {
        if (!previous.tables[role]) continue;
        b.add(
            "rebuild",
            `DROP TABLE IF EXISTS ${oldRef(role)}`,
            role === "kafka"
                ? `rename: stop consumption of ${old.kafka}; offsets stay committed in group ${d.group}`
                : `rename: drop ${old[role]} (recreated under the new name)`,
        );
    }
    const tables: Partial<Record<StreamObjectRole, ActualTable>> = { ...(actual?.tables ?? {}) };
    for (const role of ["target", "dlq"] as const) {
        const t = previous.tables[role];
        if (!t) continue;
        b.add(
            "in-place",
            `RENAME TABLE ${oldRef(role)} TO ${qualified(d.db, d.names[role])}`,
            `rename: ${old[role]} becomes ${d.names[role]} with its rows`,
        );
        tables[role] = { ...t, name: d.names[role] };
    }
    const related = renameRollups(d, previous, actual?.related ?? {}, b);
    b.notes.push(
        `stream '${previous.stream}' is renamed to '${d.spec.name}': its rows and consumer group ${d.group} are kept`,
    );
    return {
        database: d.db,
        stream: d.spec.name,
        tables,
        detached: actual?.detached ?? [],
        ...(Object.keys(related).length > 0 ? { related } : {}),
        ...(actual?.detachedRelated ? { detachedRelated: actual.detachedRelated } : {}),
    };
}
