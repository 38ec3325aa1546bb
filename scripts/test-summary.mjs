/**
 * The node:test reporter of scripts/test.sh: node's usual output (spec on a terminal, TAP
 * otherwise), then a summary that says what the counts do not: every skipped or todo test with
 * its reason, and every failed test with the first line of its error, each with its file.
 * In TAP the summary lines are comments ("# ..."), so the output stays valid TAP.
 * Plain JavaScript: node loads reporters without the TypeScript loader (tsx) of the test files.
 */
import * as path from "node:path";
import { Readable } from "node:stream";
import { spec, tap } from "node:test/reporters";

/** @typedef {{ kind: "skipped" | "todo" | "failed", where: string, reason: string }} Noted */

/** @param {{ name: string, file?: string }} data */
function where(data) {
    const file = data.file ? path.relative(process.cwd(), data.file) : "(no file)";
    return `${file}: ${data.name}`;
}

/** @param {string | boolean | undefined} flag */
function why(flag) {
    return typeof flag === "string" && flag !== "" ? flag : "(no reason given)";
}

/**
 * Failed tests, not the suites and files that fail because one of their tests did.
 * @returns {Noted | undefined}
 */
function failure(data) {
    const error = data.details.error;
    // A failed suite lists its tests as cancelled; the suite itself is listed with the reason.
    if (["subtestsFailed", "cancelledByParent"].includes(error?.failureType)) return undefined;
    const cause = error?.cause instanceof Error ? error.cause : error;
    const first = String(cause?.message || cause).split("\n")[0];
    return { kind: "failed", where: where(data), reason: first };
}

/** @returns {Noted | undefined} */
function note(event) {
    if (event.type === "test:fail") return failure(event.data);
    if (event.type !== "test:pass") return undefined;
    const { skip, todo } = event.data;
    if (skip !== undefined && skip !== false)
        return { kind: "skipped", where: where(event.data), reason: why(skip) };
    if (todo !== undefined && todo !== false)
        return { kind: "todo", where: where(event.data), reason: why(todo) };
    return undefined;
}

/** @param {readonly Noted[]} noted */
function render(noted) {
    const lines = ["", "# summary"];
    for (const kind of ["skipped", "todo", "failed"]) {
        const these = noted.filter((n) => n.kind === kind);
        lines.push(`# ${these.length} ${kind}${these.length ? ":" : ""}`);
        for (const n of these) lines.push(`#   ${n.where}`, `#     ${n.reason}`);
    }
    return `${lines.join("\n")}\n`;
}

/** @param {AsyncIterable<{ type: string, data: any }>} source */
export default async function* summary(source) {
    /** @type {Noted[]} */
    const noted = [];
    async function* watched() {
        for await (const event of source) {
            const n = note(event);
            if (n) noted.push(n);
            yield event;
        }
    }
    const usual = process.stdout.isTTY ? Readable.from(watched()).pipe(new spec()) : tap(watched());
    for await (const chunk of usual) yield String(chunk);
    yield render(noted);
}
