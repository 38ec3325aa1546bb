import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { LoadedQuery } from "../../schemas/query-model";
import { JobsSpec, QueryObject, jobsNetworkPolicy, queryObject } from "./manifests";

export interface ClickHouseJobsArgs extends JobsSpec {
    /** The declared queries (`loadQueries()`): a CronJob or a Job each. */
    readonly queries: readonly LoadedQuery[];
    /** One-off Jobs besides the queries' (rollup backfills), by resource name. */
    readonly extraJobs?: Readonly<Record<string, k8s.batch.v1.JobArgs>>;
}

/**
 * The declared queries of a ClickHouse instance as CronJobs and Jobs. A one-off Job runs once when
 * created; a change to it replaces it (a Job's pod template cannot change), which runs it again.
 */
export class ClickHouseJobs extends pulumi.ComponentResource {
    public readonly cronJobs: Readonly<Record<string, k8s.batch.v1.CronJob>>;
    public readonly jobs: Readonly<Record<string, k8s.batch.v1.Job>>;

    constructor(name: string, args: ClickHouseJobsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:jobs:ClickHouseJobs", name, {}, opts);
        const cronJobs: Record<string, k8s.batch.v1.CronJob> = {};
        const jobs: Record<string, k8s.batch.v1.Job> = {};
        // The same name after a replace: the old Job goes first.
        const job = { parent: this, deleteBeforeReplace: true };
        for (const { spec: q } of args.queries) {
            const o: QueryObject = queryObject(args, q);
            if (o.kind === "CronJob")
                cronJobs[q.name] = new k8s.batch.v1.CronJob(`${name}-${q.name}`, o.args, {
                    parent: this,
                });
            else jobs[q.name] = new k8s.batch.v1.Job(`${name}-${q.name}`, o.args, job);
        }
        new k8s.networking.v1.NetworkPolicy(`${name}-network`, jobsNetworkPolicy(args), {
            parent: this,
        });
        for (const [key, jobArgs] of Object.entries(args.extraJobs ?? {}))
            jobs[key] = new k8s.batch.v1.Job(`${name}-${key}`, jobArgs, job);
        this.cronJobs = cronJobs;
        this.jobs = jobs;
        this.registerOutputs({});
    }
}
