// The benchmark (bench/index.ts) in its quick mode, once: it must start what it needs, run every
// case against the real broker and engine, and report figures for each. No timing is asserted:
// figures depend on the machine; the benchmark itself reports them against the targets.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CASE_NAMES } from "../../bench/cases/common";

const ROOT = path.resolve(__dirname, "..", "..");

/** Runs the benchmark; `signal` (the test's) stops it with SIGTERM, which stops its servers too. */
function runBench(
    args: readonly string[],
    signal: AbortSignal,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "bench/index.ts", ...args], {
            cwd: ROOT,
            stdio: ["ignore", "pipe", "pipe"],
            signal,
            killSignal: "SIGTERM",
        });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => {
            stderr += d;
            // Progress, so a slow run shows where it is.
            process.stderr.write(d);
        });
        child.on("error", reject);
        child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
}

interface Report {
    machine: Record<string, unknown>;
    cases: Record<string, { figures: Record<string, unknown> }>;
    errors: Record<string, string>;
    ratios: Record<string, unknown>;
    targets: Array<{ name: string; measured: string }>;
}

describe("benchmark quick mode", () => {
    it("runs every case and reports figures for each", { timeout: 600_000 }, async (t) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-bench-smoke-"));
        try {
            const out = path.join(dir, "result.json");
            const run = await runBench(["--quick", "--out", out], t.signal);
            assert.equal(run.code, 0, `bench exited with ${run.code}:\n${run.stderr.slice(-4000)}`);
            const report = JSON.parse(fs.readFileSync(out, "utf8")) as Report;
            assert.deepEqual(report.errors, {});
            for (const name of CASE_NAMES) {
                const figures = report.cases[name]?.figures;
                assert.ok(figures, `no result for case ${name}`);
                const numbers = Object.values(figures).filter(
                    (v) => typeof v === "number" && Number.isFinite(v),
                );
                assert.ok(
                    numbers.length > 0,
                    `case ${name} reported no figures: ${JSON.stringify(figures)}`,
                );
            }
            for (const ratio of ["pipelineOverLimit", "pipelineOverNaive"]) {
                const v = report.ratios[ratio];
                assert.ok(
                    typeof v === "number" && v > 0,
                    `ratio ${ratio} missing: ${JSON.stringify(report.ratios)}`,
                );
            }
            assert.equal(typeof report.machine["cores"], "number");
            assert.ok(report.targets.length >= 4, `targets: ${JSON.stringify(report.targets)}`);
            // The table goes to stdout with the ratios measured in this run.
            assert.match(run.stdout, /pipelineOverLimit/);
            assert.match(run.stdout, /pipelineOverNaive/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
