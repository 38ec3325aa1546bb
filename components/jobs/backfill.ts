/**
 * The backfill Job of each rollup declared with `backfill: true`: it aggregates the snapshot the
 * planner took of the target when the rollup was created (exactly the rows its view never saw)
 * into the rollup, then drops the snapshot. Two requests in order; no retry, because the insert
 * run twice would count the snapshot twice (after the drop, a rerun fails and changes nothing).
 */
import type * as k8s from "@pulumi/kubernetes";
import { createHash } from "node:crypto";
import type { StreamSpec } from "../../schemas/model";
import { rollupBackfillSql } from "../ingestion/plan/rollup";
import { JobsSpec, stepsJob } from "./manifests";

/** Generous: a backfill aggregates every stored row of the stream once. */
export const BACKFILL_TIMEOUT_SECONDS = 6 * 3600;

/** A Kubernetes name for `<stream>-<rollup>-backfill` within `room` characters. */
export function backfillJobKey(stream: string, rollup: string, room: number): string {
    const plain = `${stream}-${rollup}-backfill`.replace(/_/g, "-");
    if (plain.length <= room) return plain;
    const hash = createHash("sha256").update(plain).digest("hex").slice(0, 8);
    return `${plain.slice(0, room - 9).replace(/-+$/, "")}-${hash}`;
}

/** Backfill Jobs by resource key. */
export function backfillJobs(
    spec: JobsSpec,
    streams: readonly StreamSpec[],
): Record<string, k8s.batch.v1.JobArgs> {
    const out: Record<string, k8s.batch.v1.JobArgs> = {};
    const room = 63 - spec.clickhouseName.length - 1;
    for (const stream of streams) {
        for (const rollup of stream.rollups ?? []) {
            if (!rollup.backfill) continue;
            const sql = rollupBackfillSql(spec.database, stream, rollup);
            const key = backfillJobKey(stream.name, rollup.name, room);
            const step = { timeoutSeconds: BACKFILL_TIMEOUT_SECONDS };
            out[key] = stepsJob(
                spec,
                key,
                "rollup-backfill",
                [
                    { ...step, sql: sql.insert },
                    { ...step, sql: sql.cleanup },
                ],
                `backfill of rollup ${rollup.name} of stream ${stream.name}: aggregate the snapshot, then drop it`,
            );
        }
    }
    return out;
}
