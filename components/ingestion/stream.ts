import * as pulumi from "@pulumi/pulumi";
import type { LoadedStream, StreamInput, StreamSpec } from "../../schemas/model";
import type { ConnectionSpec } from "./connection";
import type { StateSummary } from "./introspect";
import type { DestructiveChange } from "./planner";
import { streamIngestionProvider } from "./provider";

export interface StreamIngestionArgs {
    /** The stream: a loaded stream file (`loadStreams()`), or its spec. */
    readonly stream: pulumi.Input<LoadedStream | StreamSpec | StreamInput>;
    /** Database holding the stream's tables; created if missing. */
    readonly database: pulumi.Input<string>;
    /** Kafka bootstrap servers, `host:port` separated by commas. */
    readonly kafkaBrokers: pulumi.Input<string>;
    /**
     * How to reach ClickHouse. Holds no secret values: passwords and kubeconfigs are references
     * (`{ fromConfig }`, `{ fromEnv }`, `{ fromKubernetesSecret }`) resolved when the provider runs.
     */
    readonly connection: pulumi.Input<ConnectionSpec>;
    /**
     * Allow changes that delete or rewrite rows (drop/retype a column, rebuild for a new ORDER BY,
     * PARTITION BY or engine, replace a table holding rows): `true`, or the kinds allowed.
     * @default false
     */
    readonly allowDestructiveChanges?: pulumi.Input<boolean | DestructiveChange[]>;
    /** Drop the target and dead-letter tables (and their rows) when the resource is deleted. @default false */
    readonly dropTargetOnDelete?: pulumi.Input<boolean>;
    /**
     * A named collection in the server config holding the Kafka connection settings (SASL secrets
     * `from_env`). @default none: the server's `<kafka>` config section applies
     */
    readonly kafkaNamedCollection?: pulumi.Input<string>;
    /** kafka_num_consumers for streams that set none: min(partitions, this). @default 1 */
    readonly maxDefaultConsumers?: pulumi.Input<number>;
    /**
     * Owner written into the objects' ownership markers; objects marked by another owner are
     * refused. @default `<project>/<stack>`
     */
    readonly stack?: pulumi.Input<string>;
    /**
     * Take over objects under the stream's names that carry no ownership marker (or another
     * stack's marker for this stream). @default false
     */
    readonly adoptUnmarked?: pulumi.Input<boolean>;
}

/**
 * One stream's ingestion objects in ClickHouse (target, Kafka table, views, dead-letter table),
 * managed through reviewable SQL plans. `plannedStatements` is what the next update runs; it is
 * what `pulumi preview --diff` shows for this resource.
 */
export class StreamIngestion extends pulumi.dynamic.Resource {
    /** `[kind] sql` for each statement the next update runs (kind: create, in-place, rebuild, destructive). */
    public readonly plannedStatements!: pulumi.Output<string[]>;
    /** `[kind] summary` lines of that plan, with notes. */
    public readonly planSummary!: pulumi.Output<string[]>;
    /** `[kind] sql` of the statements the last create or update ran. */
    public readonly appliedStatements!: pulumi.Output<string[]>;
    /** Qualified names of the stream's objects. */
    public readonly objects!: pulumi.Output<
        Record<"target" | "kafka" | "mv" | "dlq" | "dlqMv", string | undefined> & {
            /** Each rollup's table and view (`<stream>_<rollup>`, `<stream>_<rollup>_mv`). */
            readonly rollups?: readonly string[];
        }
    >;
    /** What ClickHouse reported after the last apply or refresh. */
    public readonly observed!: pulumi.Output<StateSummary>;
    /** After `pulumi refresh`: how the server differs from the stream schema. */
    public readonly drift!: pulumi.Output<string[]>;
    public readonly streamName!: pulumi.Output<string>;

    constructor(name: string, args: StreamIngestionArgs, opts?: pulumi.CustomResourceOptions) {
        const stream = pulumi
            .output(args.stream)
            .apply((s) =>
                "spec" in s && "file" in s
                    ? (s as LoadedStream).spec
                    : (s as StreamSpec | StreamInput),
            );
        super(
            streamIngestionProvider,
            name,
            {
                stream,
                database: args.database,
                kafkaBrokers: args.kafkaBrokers,
                connection: args.connection,
                allowDestructiveChanges: args.allowDestructiveChanges ?? false,
                dropTargetOnDelete: args.dropTargetOnDelete ?? false,
                kafkaNamedCollection: args.kafkaNamedCollection,
                maxDefaultConsumers: args.maxDefaultConsumers,
                stack: args.stack ?? `${pulumi.getProject()}/${pulumi.getStack()}`,
                adoptUnmarked: args.adoptUnmarked ?? false,
                // Outputs, filled by the provider.
                plannedStatements: undefined,
                planSummary: undefined,
                appliedStatements: undefined,
                objects: undefined,
                observed: undefined,
                drift: undefined,
                streamName: undefined,
            },
            opts,
            "ingestion",
            "StreamIngestion",
        );
    }
}
