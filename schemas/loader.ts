import * as fs from "node:fs";
import * as path from "node:path";
import {
    MAX_FILE_BYTES,
    MAX_NESTING,
    collisionProblems,
    columnProblems,
    controlCharacterProblems,
    engineProblems,
    nestingDepth,
    tooLarge,
    topicProblems,
} from "./checks";
import { SchemaProblem, displayPath, readDocument, zodProblems } from "./document";
import { LoadedStream, StreamSpec, streamSchema } from "./model";
import { sourceProblems } from "./sources";
import { rollupCollisionProblems, rollupProblems } from "./rollups";
import { ExprField, parseExpression } from "./expr";
import { SqlInputError } from "./sql";
import { parseType } from "./types";

/** The directory holding the shipped stream files. */
export const DEFAULT_STREAMS_DIR = path.join(__dirname, "streams");

export type { SchemaProblem } from "./document";

/** Every problem found while loading stream files, so one run reports them all. */
export class StreamSchemaError extends Error {
    constructor(readonly problems: readonly SchemaProblem[]) {
        super(
            "invalid stream schema:\n" +
                problems
                    .map((p) => `  ${p.file}${p.path ? `: ${p.path}` : ""}: ${p.message}`)
                    .join("\n"),
        );
        this.name = "StreamSchemaError";
    }
}

const EXTENSIONS = [".yaml", ".yml", ".json"];

/**
 * Loads and validates every stream file of a directory. Throws StreamSchemaError listing every
 * problem (file, path, message) before anything is returned, so a stack never registers
 * resources from a half-valid set of streams.
 */
export function loadStreams(dir: string = DEFAULT_STREAMS_DIR): LoadedStream[] {
    if (!fs.existsSync(dir)) {
        throw new StreamSchemaError([
            {
                file: dir,
                path: "",
                message: "directory does not exist; set streamsDir to a folder of stream files",
            },
        ]);
    }
    const files = fs
        .readdirSync(dir)
        .filter((f) => EXTENSIONS.includes(path.extname(f)))
        .sort()
        .map((f) => path.join(dir, f));
    const problems: SchemaProblem[] = [];
    const streams: LoadedStream[] = [];
    for (const file of files) {
        const size = fs.statSync(file).size;
        const result: Result =
            size > MAX_FILE_BYTES
                ? { problems: [{ file: displayPath(file), path: "", message: tooLarge(size) }] }
                : parseStreamText(fs.readFileSync(file, "utf8"), displayPath(file));
        if ("problems" in result) problems.push(...result.problems);
        else streams.push(result.stream);
    }
    problems.push(...collisionProblems(streams), ...rollupCollisionProblems(streams));
    if (problems.length > 0) throw new StreamSchemaError(problems);
    return streams;
}

/** Parses one stream document (YAML or JSON text). `file` is used in messages only. */
export function parseStream(text: string, file: string): LoadedStream {
    const result = parseStreamText(text, file);
    if ("problems" in result) throw new StreamSchemaError(result.problems);
    return result.stream;
}

/** Validates an already-parsed object (as the dynamic provider receives it). */
export function validateStream(raw: unknown, file: string): LoadedStream {
    const result = validateObject(raw, file);
    if ("problems" in result) throw new StreamSchemaError(result.problems);
    return result.stream;
}

type Result = { stream: LoadedStream } | { problems: SchemaProblem[] };

function parseStreamText(text: string, file: string): Result {
    const read = readDocument(text, file);
    return "problems" in read ? read : validateObject(read.raw, file);
}

function validateObject(raw: unknown, file: string): Result {
    try {
        return checkObject(raw, file);
    } catch (e) {
        // Nothing may escape without the file's name: a bug here still says which file hit it.
        return { problems: [{ file, path: "", message: `cannot be checked: ${errText(e)}` }] };
    }
}

function checkObject(raw: unknown, file: string): Result {
    if (nestingDepth(raw) > MAX_NESTING)
        return {
            problems: [
                {
                    file,
                    path: "",
                    message: `nested more than ${MAX_NESTING} levels deep; stream files nest a few levels`,
                },
            ],
        };
    const characters = controlCharacterProblems(raw).map((p) => ({ file, ...p }));
    const parsed = streamSchema.safeParse(raw);
    if (!parsed.success) {
        return {
            problems: [
                ...characters,
                ...zodProblems(parsed.error.issues, file, "schemas/stream.schema.json"),
            ],
        };
    }
    const spec = parsed.data;
    const problems = [
        ...characters,
        ...semanticProblems(spec, file),
        ...[...topicProblems(spec), ...columnProblems(spec), ...rollupProblems(spec)].map((p) => ({
            file,
            ...p,
        })),
    ];
    // The engine sees a stream's expressions only once everything else about it is valid.
    if (problems.length === 0) problems.push(...engineProblems(spec).map((p) => ({ file, ...p })));
    if (problems.length > 0) return { problems };
    return { stream: { file, spec: normalise(spec) } };
}

function semanticProblems(spec: StreamSpec, file: string): SchemaProblem[] {
    const problems: SchemaProblem[] = [];
    const add = (p: string, message: string) => problems.push({ file, path: p, message });
    const names = new Set(spec.columns.map((c) => c.name));
    const seen = new Set<string>();
    const sources = new Set<string>();
    const columnTypes = new Map(spec.columns.map((c) => [c.name, c.type]));
    const checkExpr = (p: string, expr: string, field: ExprField) => {
        try {
            parseExpression(expr, { field, columns: names, columnTypes });
        } catch (e) {
            add(p, `${exprExcerpt(expr)}: ${errText(e)}`);
        }
    };
    spec.columns.forEach((c, i) => {
        if (seen.has(c.name)) add(`columns[${i}].name`, `duplicate column '${c.name}'`);
        seen.add(c.name);
        const source = c.source ?? c.name;
        if (sources.has(source))
            add(`columns[${i}].source`, `field '${source}' already fills another column`);
        sources.add(source);
        if (c.name.startsWith("_"))
            add(
                `columns[${i}].name`,
                `'${c.name}': names starting with '_' are reserved for Kafka virtual columns`,
            );
        try {
            parseType(c.type);
        } catch (e) {
            add(
                `columns[${i}].type`,
                `${errText(e)}; use a ClickHouse type such as String, Int64, DateTime64(3, 'UTC')`,
            );
        }
        if (c.default !== undefined) checkExpr(`columns[${i}].default`, c.default, "default");
    });
    spec.orderBy.forEach((o, i) => checkExpr(`orderBy[${i}]`, o, "orderBy"));
    if (spec.partitionBy) checkExpr("partitionBy", spec.partitionBy, "partitionBy");
    if (spec.ttl) checkExpr("ttl", spec.ttl, "ttl");
    if (spec.engine.type === "ReplacingMergeTree" && spec.engine.version) {
        const v = spec.columns.find(
            (c) => c.name === (spec.engine as { version?: string }).version,
        );
        if (!v)
            add(
                "engine.version",
                `version column '${spec.engine.version}' is not among the columns`,
            );
        else if (!/^(U?Int\d+|Date|Date32|DateTime|DateTime64)/.test(safeTypeName(v.type))) {
            add(
                "engine.version",
                `version column '${v.name}' must be an unsigned integer, Date or DateTime type, not ${v.type}`,
            );
        }
    }
    for (const p of sourceProblems(spec)) add(p.path, p.message);
    const consumers = spec.consumer.consumers;
    if (consumers !== undefined && consumers > spec.topic.partitions) {
        add(
            "consumer.consumers",
            `${consumers} consumers for ${spec.topic.partitions} partitions: the extra consumers would idle; use at most ${spec.topic.partitions}`,
        );
    }
    if (
        spec.format !== "JSONEachRow" &&
        spec.columns.some((c) => c.source !== undefined && c.source !== c.name)
    ) {
        add(
            "columns",
            `'source' renames fields of JSON messages only; ${spec.format} columns are positional`,
        );
    }
    return problems;
}

/** Canonical spelling of types so they compare equal to what ClickHouse reports. */
function normalise(spec: StreamSpec): StreamSpec {
    return {
        ...spec,
        columns: spec.columns.map((c) => ({ ...c, type: parseType(c.type).text })),
    };
}

function safeTypeName(type: string): string {
    try {
        const t = parseType(type);
        return t.name === "LowCardinality" ? String((t.args[0] as { name: string }).name) : t.text;
    } catch {
        return type;
    }
}

/** The expression as messages quote it: short, with control characters escaped. */
function exprExcerpt(expr: string): string {
    const short = expr.length > 80 ? `${expr.slice(0, 77)}...` : expr;
    return /[\u0000-\u001f\u007f-\u009f]/.test(short) ? JSON.stringify(short) : `'${short}'`;
}

function errText(e: unknown): string {
    if (e instanceof SqlInputError) return e.message;
    return e instanceof Error ? e.message : String(e);
}
