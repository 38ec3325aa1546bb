/**
 * Reading declared files (stream files, query files): one YAML or JSON document, size- and
 * nesting-bounded, parsed to a plain value, and zod's findings turned into problems that name the
 * file and the key. Shared by the stream loader (loader.ts) and the query loader (queries.ts).
 */
import * as path from "node:path";
import * as YAML from "yaml";
import type { z } from "zod";
import { MAX_FILE_BYTES, MAX_YAML_ALIASES, documentProblem, tooLarge } from "./checks";

/** One problem found in a declared file: where, and what to do. */
export interface SchemaProblem {
    readonly file: string;
    /** Dotted path inside the file, e.g. `columns[2].type`; empty for the whole file. */
    readonly path: string;
    readonly message: string;
}

export const DOCUMENT_EXTENSIONS = [".yaml", ".yml", ".json"];

/** The document's value, or why it cannot be read (size, YAML errors, alias bombs, nesting). */
export function readDocument(
    text: string,
    file: string,
): { raw: unknown } | { problems: SchemaProblem[] } {
    const refused = documentProblem(text);
    if (refused) return { problems: [{ file, path: "", message: refused }] };
    const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
        return {
            problems: doc.errors.map((e) => ({
                file,
                path: "",
                message: `not valid YAML/JSON (line ${e.linePos?.[0]?.line ?? "?"}): ${e.message.split("\n")[0]}`,
            })),
        };
    }
    let raw: unknown;
    try {
        raw = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (e) {
        // yaml throws a ReferenceError when aliases expand past maxAliasCount (billion laughs).
        const message = e instanceof Error ? e.message : String(e);
        return {
            problems: [
                {
                    file,
                    path: "",
                    message: `YAML aliases expand too far (${message}); write the values out instead of nesting aliases (at most ${MAX_YAML_ALIASES})`,
                },
            ],
        };
    }
    return { raw };
}

/** The problem of a file too large to read, or undefined. */
export function fileSizeProblem(size: number, file: string): SchemaProblem | undefined {
    return size > MAX_FILE_BYTES ? { file, path: "", message: tooLarge(size) } : undefined;
}

/** zod's issues as problems naming the file and the key; `schemaFile` is where to check spelling. */
export function zodProblems(
    issues: readonly z.core.$ZodIssue[],
    file: string,
    schemaFile: string,
): SchemaProblem[] {
    return issues.map((i) => ({
        file,
        path: formatPath(i.path),
        message:
            i.code === "unrecognized_keys"
                ? `${i.message}; check the spelling against ${schemaFile}`
                : i.code === "invalid_key"
                  ? // A record key: zod's own text ("Invalid key in record") names no rule.
                    `invalid key: ${i.issues.map((k) => k.message).join("; ")}`
                  : i.message,
    }));
}

export function formatPath(p: ReadonlyArray<PropertyKey>): string {
    return p
        .map((k, i) => (typeof k === "number" ? `[${k}]` : `${i === 0 ? "" : "."}${String(k)}`))
        .join("");
}

/** A file's name as messages show it: relative to the working directory when inside it. */
export function displayPath(file: string): string {
    const rel = path.relative(process.cwd(), file);
    return rel.startsWith("..") ? file : rel;
}
