import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";

/** The Strimzi operator's Helm chart (OCI). */
export const STRIMZI_CHART = "oci://quay.io/strimzi-helm/strimzi-kafka-operator";

export interface StrimziOperatorArgs {
    readonly namespace: pulumi.Input<string>;
    /** Chart version. @default "1.2.0" */
    readonly chartVersion?: string;
    /**
     * Where the CRDs come from: "upstream" lets the chart install them; "path" applies the YAML
     * files of `crdPath` (server-side apply) and installs the chart without its CRDs.
     * @default "upstream"
     */
    readonly crdSource?: "upstream" | "path";
    readonly crdPath?: string;
}

/**
 * The Strimzi cluster operator, watching the stack's namespace. Custom resources depend on this
 * component, so `pulumi destroy` deletes them before the operator and no finalizer is left
 * without an operator to clear it.
 */
export class StrimziOperator extends pulumi.ComponentResource {
    /** Resources the Kafka CRs must wait for. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: StrimziOperatorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:kafka:StrimziOperator", name, {}, opts);
        const crdSource = args.crdSource ?? "upstream";
        const ready: pulumi.Resource[] = [];
        if (crdSource === "path") {
            ready.push(
                new k8s.yaml.v2.ConfigGroup(
                    `${name}-crds`,
                    { files: crdFiles(args.crdPath ?? "") },
                    { parent: this },
                ),
            );
        }
        ready.push(
            new k8s.helm.v3.Release(
                `${name}-chart`,
                {
                    chart: STRIMZI_CHART,
                    version: args.chartVersion ?? "1.2.0",
                    namespace: args.namespace,
                    skipCrds: crdSource === "path",
                    values: { watchNamespaces: [], replicas: 1 },
                    atomic: true,
                },
                { parent: this, dependsOn: [...ready] },
            ),
        );
        this.ready = ready;
        this.registerOutputs({});
    }
}

/** The CRD files of a folder; a clear error when the folder has none. */
export function crdFiles(dir: string): string[] {
    const resolved = path.resolve(dir);
    const files = fs.existsSync(resolved)
        ? fs
              .readdirSync(resolved)
              .filter((f) => /\.ya?ml$/.test(f))
              .sort()
              .map((f) => path.join(resolved, f))
        : [];
    if (files.length === 0) {
        throw new Error(
            `strimziCrdPath '${dir}' holds no .yaml files; point it at the CRD folder of a Strimzi release`,
        );
    }
    return files;
}
