/**
 * The benchmark's clock and its words: progress lines (stderr), elapsed time, and the rounding and
 * formatting of the figures it reports.
 */
import { performance } from "node:perf_hooks";
import { sleep } from "../../runtime/process";

/** Progress goes to stderr so stdout carries only the table. */
export function log(line: string): void {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

export { sleep };

export function elapsedMs(since: number): number {
    return performance.now() - since;
}

export const now = (): number => performance.now();

export function round(n: number, digits = 0): number {
    const f = 10 ** digits;
    return Math.round(n * f) / f;
}

/** 1234567 -> "1,234,567". */
export function fmt(n: number): string {
    return Math.round(n).toLocaleString("en-US");
}

/** A case's wall time as its result reports it. */
export function caseSeconds(started: number): number {
    return round(elapsedMs(started) / 1000, 1);
}

/**
 * A progress line at most every `everyMs` of a case's own clock (`t`, ms since it started
 * measuring); the line is built only when it is written.
 */
export function progressLog(everyMs: number): (t: number, line: () => string) => void {
    let last = 0;
    return (t, line) => {
        if (t - last <= everyMs) return;
        last = t;
        log(line());
    };
}

/** Quantile of a sorted array (nearest rank). */
export function quantile(sorted: readonly number[], q: number): number {
    if (sorted.length === 0) return NaN;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[i]!;
}
