/**
 * The Kubernetes objects a stack renders, as the API server would receive them: every
 * `kubernetes:` resource the program registers under mocks (test/unit/mocks.ts), inputs resolved,
 * written as one multi-document YAML per stack. Auto-named objects get the mocks' stand-in name,
 * the one every reference to them (a StatefulSet's serviceName, a volume's configMap) resolved to.
 * Helm releases and `yaml/v2` files are left out: their objects come from a chart or a released
 * file, not from this program.
 */
import * as YAML from "yaml";
import { Recorded, runStack, standInName } from "./mocks";

/** Resource type prefixes whose objects this program does not write itself. */
const NOT_OURS = ["kubernetes:helm.sh/", "kubernetes:yaml/"];

export interface Manifest {
    readonly apiVersion: string;
    readonly kind: string;
    readonly metadata: { readonly name: string; readonly namespace?: string } & Record<
        string,
        unknown
    >;
    readonly [field: string]: unknown;
}

/** The plain Kubernetes objects among what a program registered, in registration order. */
export function toManifests(resources: readonly Recorded[]): Manifest[] {
    return resources
        .filter(
            (r) => r.type.startsWith("kubernetes:") && !NOT_OURS.some((p) => r.type.startsWith(p)),
        )
        .map((r) => {
            const { apiVersion, kind, metadata, ...rest } = r.inputs as Record<string, any>;
            if (typeof apiVersion !== "string" || typeof kind !== "string")
                throw new Error(`${r.type} ${r.name}: inputs carry no apiVersion/kind`);
            const meta = (metadata ?? {}) as Record<string, unknown>;
            const name = (meta.name as string | undefined) ?? standInName(r.name);
            return { apiVersion, kind, metadata: { ...meta, name }, ...rest } as Manifest;
        });
}

/** A stack's objects (its Pulumi.<stack>.yaml config, overridden by `overrides`). */
export async function renderStack(
    stack: string,
    overrides: Record<string, string> = {},
): Promise<Manifest[]> {
    return toManifests((await runStack(stack, overrides)).resources);
}

/** One YAML document per object, as `kubectl apply -f` reads them. */
export function toYaml(manifests: readonly Manifest[]): string {
    return manifests.map((m) => YAML.stringify(m, { lineWidth: 0 })).join("---\n");
}
