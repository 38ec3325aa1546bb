/**
 * The linters the unit tier runs (tools/lint/*.sh): each script builds or installs its tool once
 * per pinned version into the cache and prints the binaries last on stdout. `./run test` runs the
 * scripts itself and exports the paths (KCS_ACTIONLINT, KCS_KUBE_SCORE, ...); without them a test
 * runs the script, and a script that fails fails the test with its reason (never a skip).
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { ROOT } from "./mocks";

/** Last `lines` lines a tools/lint script printed on stdout (its binaries). */
export function lintTool(script: string, lines: number): string[] {
    const res = spawnSync("bash", [path.join(ROOT, "tools", "lint", script)], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
    });
    if (res.status !== 0)
        throw new Error(
            `tools/lint/${script} failed (exit ${res.status}): its messages above say why; ` +
                `fix that, or export the tool's path as ./run test does`,
        );
    return res.stdout.trim().split("\n").slice(-lines);
}

const resolved = new Map<string, string>();

/** One tool's binary: the path in `envVar` when set, else the one `script` prints last. */
export function lintBinary(envVar: string, script: string): string {
    const fromEnv = process.env[envVar];
    if (fromEnv) return fromEnv;
    let bin = resolved.get(script);
    if (!bin) {
        bin = lintTool(script, 1)[0]!;
        resolved.set(script, bin);
    }
    return bin;
}
