/**
 * The pipeline component from a program other than infra/ (test/programs/pipeline), on the real
 * Pulumi engine and a real Kubernetes API server (kwok), the DDL on the embedded engine.
 *
 * The stack is first deployed with the building blocks at its root, the way the project's stack
 * program registered them before the component existed, then moved under the component: the
 * preview of that move must create and delete nothing but the component itself (its children's
 * aliases), or a deployed stack would lose its namespace, StatefulSet and tables on upgrade.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { KubeCluster, startKube } from "../../runtime/kube";
import { loadStreams } from "../../schemas/loader";
import {
    Engine,
    PROJECT_DIR,
    removeStack,
    startEngine,
    uniqueStackName,
} from "../../runtime/pulumi";

const PROGRAM = {
    workDir: path.join(PROJECT_DIR, "test", "programs", "pipeline"),
    project: "kcs-pipeline-consumer",
};
const COMPONENT_TYPE = "kafka-clickhouse:pipeline:Pipeline";
const INGESTION_TYPE = "pulumi-nodejs:dynamic/ingestion:StreamIngestion";
const log = (line: string) => process.stderr.write(`[component] ${line}\n`);
const quiet = () => undefined;

interface StateResource {
    readonly urn: string;
    readonly type: string;
    readonly parent?: string;
}

async function resources(stack: Stack): Promise<StateResource[]> {
    const state = await stack.exportStack();
    return (state.deployment.resources ?? []) as StateResource[];
}

/** The objects the program manages: everything but the stack and the providers. */
function managed(all: readonly StateResource[]): StateResource[] {
    return all.filter(
        (r) => r.type !== "pulumi:pulumi:Stack" && !r.type.startsWith("pulumi:providers:"),
    );
}

describe(
    "e2e: the pipeline component instantiated by another program",
    { timeout: 20 * 60_000 },
    () => {
        let kube: KubeCluster;
        let engine: Engine;
        let stack: Stack;
        let embeddedPath: string;
        const name = uniqueStackName("component");

        before(async () => {
            log(`stack ${name}: starting the API server...`);
            kube = await startKube();
            await kube.applyCrds();
            embeddedPath = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-component-ch-"));
            engine = await startEngine({ env: { KUBECONFIG: kube.kubeconfig } });
            stack = await engine.stack(
                name,
                {
                    namespace: name.slice(0, 63),
                    streamsDir: path.join(PROJECT_DIR, "schemas", "streams"),
                    embeddedPath,
                    layout: "root",
                },
                {},
                PROGRAM,
            );
        });

        after(async () => {
            if (stack) await removeStack(stack, quiet).catch((e) => log(`cleanup: ${String(e)}`));
            engine?.dispose();
            await kube?.stop();
            if (embeddedPath) fs.rmSync(embeddedPath, { recursive: true, force: true });
        });

        let rootLayout: StateResource[] = [];

        it("1. up with the building blocks at the stack's root", async () => {
            const result = await stack.up({ onOutput: quiet });
            assert.equal(result.summary.result, "succeeded");
            rootLayout = managed(await resources(stack));
            assert.ok(
                rootLayout.some((r) => r.type === "kubernetes:apps/v1:StatefulSet"),
                "the ClickHouse StatefulSet is in the state",
            );
            assert.ok(
                rootLayout.some((r) => r.type === INGESTION_TYPE),
                `no stream ingestion among ${rootLayout.map((r) => r.type)}`,
            );
            assert.ok(!rootLayout.some((r) => r.type === COMPONENT_TYPE));
            log(`root layout: ${rootLayout.length} objects`);
        });

        it("2. moving them under the component creates and deletes nothing else", async () => {
            await stack.setConfig("layout", { value: "component" });
            const preview = await stack.preview({ diff: true, onOutput: quiet });
            const changes = preview.changeSummary;
            log(`preview of the move: ${JSON.stringify(changes)}`);
            log(
                preview.stdout
                    .split("\n")
                    .filter((l) => /^\s*[~+-]/.test(l))
                    .join("\n"),
            );
            // The component is the one new object; every child is the same object under a new parent.
            assert.equal(changes.create, 1, JSON.stringify(changes));
            // The namespace gains the Pod Security labels the component sets; nothing else changes.
            const updated = preview.stdout
                .split("\n")
                .filter((l) => l.includes("(update)"))
                .map((l) => l.trim());
            assert.deepEqual(updated, ["~ kubernetes:core/v1:Namespace: (update)"]);
            for (const op of ["delete", "replace", "create-replacement", "delete-replaced"])
                assert.equal(
                    changes[op as keyof typeof changes] ?? 0,
                    0,
                    `${op}: ${JSON.stringify(changes)}`,
                );
        });

        it("3. up under the component: the same objects, parented by it", async () => {
            const result = await stack.up({ onOutput: quiet });
            assert.equal(result.summary.result, "succeeded");
            const changes = result.summary.resourceChanges ?? {};
            assert.equal(changes.create, 1, JSON.stringify(changes));
            assert.equal(changes.delete ?? 0, 0, JSON.stringify(changes));
            const now = managed(await resources(stack));
            const component = now.find((r) => r.type === COMPONENT_TYPE);
            assert.ok(component, "the component is in the state");
            const children = now.filter((r) => r.parent === component.urn);
            assert.ok(children.length >= 4, `direct children: ${children.map((r) => r.urn)}`);
            // The same objects by type and name (a URN's last segment), one more: the component.
            const key = (r: StateResource) => `${r.type}::${r.urn.split("::").at(-1)}`;
            assert.deepEqual(
                now
                    .filter((r) => r !== component)
                    .map(key)
                    .sort(),
                rootLayout.map(key).sort(),
            );
            const plans = result.outputs["outputs"]?.value?.ingestionPlans as
                Record<string, string[]> | undefined;
            assert.ok(plans, "the component exports the ingestion plans");
            const streams = loadStreams(path.join(PROJECT_DIR, "schemas", "streams"));
            assert.deepEqual(Object.keys(plans).sort(), streams.map((s) => s.spec.name).sort());
            // Applied by the first up and unchanged since: nothing left to run.
            for (const [stream, statements] of Object.entries(plans))
                assert.deepEqual(statements, [], stream);
        });

        it("4. a ClickHouse config change rolls the StatefulSet: nothing holding data is replaced", async () => {
            await stack.setConfig("clickhouseLogLevel", { value: "debug" });
            const preview = await stack.preview({ diff: true, onOutput: quiet });
            const steps = (op: string) =>
                preview.stdout
                    .split("\n")
                    .filter((l) => l.includes(`(${op})`))
                    .map((l) => l.trim().replace(/^[-+~ ]+/, ""));
            log(`preview of the config change: ${JSON.stringify(preview.changeSummary)}`);
            // The new config.d is a new ConfigMap (the provider replaces ConfigMaps whose data
            // changes); it is created before the old one goes, so the StatefulSet only updates.
            assert.deepEqual(steps("replace"), ["kubernetes:core/v1:ConfigMap: (replace)"]);
            assert.deepEqual(steps("update"), ["kubernetes:apps/v1:StatefulSet: (update)"]);
            assert.deepEqual(steps("delete"), []);
            const result = await stack.up({ onOutput: quiet });
            assert.equal(result.summary.result, "succeeded");
            assert.equal(result.summary.resourceChanges?.replace, 1);
        });
    },
);
