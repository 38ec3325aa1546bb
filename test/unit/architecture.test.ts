/**
 * The modules outside test/ import one way: no module reaches itself through its imports, so a
 * column's way from the stream file to the SQL statement (loader -> desired state -> plan ->
 * statement, with introspect reading the live state beside it) never returns to a module it
 * already left. Type-only imports count too: they tie the modules' shapes together just the same.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";
import { ROOT } from "./mocks";

const PRODUCT = ["components", "schemas", "infra", "runtime", "scripts", "bench"];

function sourceFiles(dir: string): string[] {
    return (fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[])
        .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
        .map((f) => path.join(dir, f));
}

/** Each product module's relative imports (and re-exports), as repository paths. */
function importGraph(): Map<string, string[]> {
    const graph = new Map<string, string[]>();
    const files = PRODUCT.flatMap(sourceFiles);
    const known = new Set(files);
    for (const file of files) {
        const info = ts.preProcessFile(fs.readFileSync(path.join(ROOT, file), "utf8"), true, true);
        const targets = info.importedFiles
            .map((i) => i.fileName)
            .filter((name) => name.startsWith("."))
            .map((name) => {
                const base = path.join(path.dirname(file), name);
                return [`${base}.ts`, path.join(base, "index.ts")].find((f) => known.has(f));
            })
            .filter((f): f is string => f !== undefined);
        graph.set(file, targets);
    }
    return graph;
}

/** The import cycles, each as the path that closes it (a -> b -> a). */
function cycles(graph: Map<string, string[]>): string[][] {
    const found: string[][] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (node: string): void => {
        state.set(node, "open");
        stack.push(node);
        for (const next of graph.get(node) ?? []) {
            if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
            else if (!state.has(next)) visit(next);
        }
        stack.pop();
        state.set(node, "done");
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node);
    return found;
}

describe("module structure", () => {
    const graph = importGraph();

    it("reads the product's modules and their imports", () => {
        assert.ok(graph.size > 40, `only ${graph.size} modules found`);
        assert.ok(
            graph.get(path.join("components", "ingestion", "apply.ts"))!.length > 0,
            "apply.ts imports nothing?",
        );
    });

    it("no product module imports itself through others", () => {
        assert.deepEqual(
            cycles(graph).map((c) => c.join(" -> ")),
            [],
        );
    });

    it("the cycle finder finds a cycle (control)", () => {
        const sample = new Map([
            ["a", ["b"]],
            ["b", ["c"]],
            ["c", ["a"]],
        ]);
        assert.deepEqual(cycles(sample), [["a", "b", "c", "a"]]);
    });

    it("introspect reads the live state without the planner", () => {
        const introspect = graph.get(path.join("components", "ingestion", "introspect.ts"))!;
        assert.deepEqual(
            introspect.filter(
                (f) =>
                    f.includes(`ingestion${path.sep}plan`) &&
                    !f.endsWith(`plan${path.sep}state.ts`),
            ),
            [],
        );
    });
});
