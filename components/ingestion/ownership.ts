/**
 * Ownership markers: every object the planner creates carries, at the end of its table comment,
 * `[kafka-clickhouse-stack stream=<name> role=<role> ...]`. A plan only drops, replaces or alters
 * an object whose marker names its own stream and role; anything else under a derived name (a
 * hand-made table, another stream's object, another stack's) is refused with a message saying
 * whose it is. The target's marker also records the consumer group, so the group a deployed stream
 * reads with survives the Kafka table being dropped and recreated.
 */
import type { StreamObjectRole } from "../../schemas/naming";

/** Roles of a rollup's objects: its table, its view, its backfill snapshot. */
export type RollupRole = "rollup" | "rollupMv" | "rollupBackfill";

export interface OwnershipMarker {
    readonly stream: string;
    readonly role: StreamObjectRole | RollupRole;
    /** The rollup's name (rollup objects only). */
    readonly rollup?: string;
    /** Consumer group (target tables only). */
    readonly group?: string;
    /** `project/stack` that created the object, when the provider knows it. */
    readonly stack?: string;
}

const TAG = "kafka-clickhouse-stack";
// Values are identifiers, group names (Kafka's [A-Za-z0-9._-]) or project/stack names.
const VALUE = /^[A-Za-z0-9._/-]+$/;
const MARKER = /\[kafka-clickhouse-stack((?: [a-z]+=[A-Za-z0-9._/-]+)+)\]$/;

/** The marker text, e.g. `[kafka-clickhouse-stack stream=orders role=target group=g]`. */
export function markerText(m: OwnershipMarker): string {
    const fields: Array<[string, string | undefined]> = [
        ["stream", m.stream],
        ["role", m.role],
        ["rollup", m.rollup],
        ["group", m.group],
        ["stack", m.stack],
    ];
    const parts = fields
        .filter((f): f is [string, string] => f[1] !== undefined && f[1] !== "")
        .map(([k, v]) => {
            if (!VALUE.test(v)) throw new Error(`ownership marker ${k}=${JSON.stringify(v)}`);
            return `${k}=${v}`;
        });
    return `[${TAG} ${parts.join(" ")}]`;
}

/** A comment that ends with the marker: `<text> [kafka-clickhouse-stack ...]`. */
export function withMarker(text: string, m: OwnershipMarker): string {
    return text ? `${text} ${markerText(m)}` : markerText(m);
}

/** The marker at the end of a comment, or undefined when the comment carries none. */
export function parseMarker(comment: string): OwnershipMarker | undefined {
    const m = MARKER.exec(comment.trimEnd());
    if (!m) return undefined;
    const fields = new Map(
        m[1]!
            .trim()
            .split(" ")
            .map((kv) => {
                const i = kv.indexOf("=");
                return [kv.slice(0, i), kv.slice(i + 1)] as const;
            }),
    );
    const stream = fields.get("stream");
    const role = fields.get("role");
    if (stream === undefined || role === undefined) return undefined;
    return {
        stream,
        role: role as StreamObjectRole | RollupRole,
        ...(fields.has("rollup") ? { rollup: fields.get("rollup")! } : {}),
        ...(fields.has("group") ? { group: fields.get("group")! } : {}),
        ...(fields.has("stack") ? { stack: fields.get("stack")! } : {}),
    };
}

/** Who owns an object found under one of a stream's derived names. */
export type Ownership =
    | { readonly kind: "own" }
    | { readonly kind: "unmarked" }
    | { readonly kind: "otherStack"; readonly marker: OwnershipMarker }
    | { readonly kind: "otherStream"; readonly marker: OwnershipMarker };

/**
 * Classifies an object. `streams` are the stream names whose objects this plan may touch (the
 * stream itself, and the stream it is renamed from). The scratch table of a rebuild carries the
 * target's marker (it becomes the target), and the Null placeholder the Kafka table's.
 */
export function ownership(
    comment: string,
    role: StreamObjectRole,
    streams: readonly string[],
    stack: string | undefined,
): Ownership {
    const marker = parseMarker(comment);
    if (!marker) return { kind: "unmarked" };
    const roleMatches =
        marker.role === role ||
        (role === "rebuild" && marker.role === "target") ||
        (role === "target" && marker.role === "rebuild");
    if (!streams.includes(marker.stream) || !roleMatches) return { kind: "otherStream", marker };
    if (stack !== undefined && marker.stack !== undefined && marker.stack !== stack)
        return { kind: "otherStack", marker };
    return { kind: "own" };
}
