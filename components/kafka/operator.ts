import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import { VERSION_DEFAULTS } from "../../schemas/naming";
import { RESTRICTED_CONTAINER_SECURITY } from "./manifests";

/** The Strimzi operator's Helm chart (OCI). */
export const STRIMZI_CHART = "oci://quay.io/strimzi-helm/strimzi-kafka-operator";

/**
 * The CRD file Strimzi publishes with each release (its chart's README points Helm users at it,
 * because Helm installs CRDs once and never upgrades them).
 */
export function strimziCrdUrl(version: string): string {
    return `https://github.com/strimzi/strimzi-kafka-operator/releases/download/${version}/strimzi-crds-${version}.yaml`;
}

export interface StrimziOperatorArgs {
    readonly namespace: pulumi.Input<string>;
    /** Chart version. @default VERSION_DEFAULTS.strimzi (schemas/naming.ts) */
    readonly chartVersion?: string;
    /**
     * Where the CRDs come from: "upstream" is the release's CRD file ({@link strimziCrdUrl});
     * "path" the YAML files of `crdPath`. Either way the stack applies them (server-side apply)
     * and installs the chart without its CRDs, so a version bump updates them, which a Helm
     * release never does. @default "upstream"
     */
    readonly crdSource?: "upstream" | "path";
    readonly crdPath?: string;
}

/**
 * The Strimzi cluster operator, watching the stack's namespace. Custom resources depend on this
 * component, so `pulumi destroy` deletes them before the operator and no finalizer is left
 * without an operator to clear it. The CRDs are kept on destroy (`retainOnDelete`): deleting a
 * CRD deletes every Kafka of that kind in the whole cluster, other stacks' included.
 */
export class StrimziOperator extends pulumi.ComponentResource {
    /** Resources the Kafka CRs must wait for. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: StrimziOperatorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kafka-clickhouse:kafka:StrimziOperator", name, {}, opts);
        const crdSource = args.crdSource ?? "upstream";
        const version = args.chartVersion ?? VERSION_DEFAULTS.strimzi;
        const crdOpts = { parent: this, retainOnDelete: true };
        const crds =
            crdSource === "path"
                ? new k8s.yaml.v2.ConfigGroup(
                      `${name}-crds`,
                      { files: crdFiles(args.crdPath ?? "") },
                      crdOpts,
                  )
                : new k8s.yaml.v2.ConfigFile(
                      `${name}-crds`,
                      { file: strimziCrdUrl(version) },
                      crdOpts,
                  );
        const ready: pulumi.Resource[] = [crds];
        ready.push(
            new k8s.helm.v3.Release(
                `${name}-chart`,
                {
                    chart: STRIMZI_CHART,
                    version,
                    namespace: args.namespace,
                    skipCrds: true,
                    values: {
                        watchNamespaces: [],
                        replicas: 1,
                        // The namespace enforces Pod Security "restricted".
                        securityContext: RESTRICTED_CONTAINER_SECURITY,
                    },
                    atomic: true,
                },
                { parent: this, dependsOn: [crds] },
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
