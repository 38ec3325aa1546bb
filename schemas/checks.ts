/**
 * Stream file checks beyond the schema's shape, so that no error escapes the loader to fail
 * mid-apply: the document itself (size, nesting, aliases), characters, types and values the engine
 * would refuse, topic names Kafka refuses, and collisions between streams (derived table names,
 * topics, consumer groups). Each problem names the key and the fix; the loader adds the file.
 */
import { askEngine, engineNames } from "./engine";
import { canonicalExpression } from "./expr";
import { IDENTIFIER, LoadedStream, StreamSpec } from "./model";
import { defaultConsumerGroup, legacyConsumerGroup, streamObjectNames } from "./naming";
import { quoteIdent, quoteString } from "./sql";
import { ChType, isTimeZoneByIntl, parseType, timeZonesOf } from "./types";

export interface KeyProblem {
    /** Dotted path inside the file, e.g. `columns[2].type`; empty for the whole file. */
    readonly path: string;
    readonly message: string;
}

// ---------------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------------

/** Largest stream file read: real ones are a few KiB; the YAML parser's cost is not linear. */
export const MAX_FILE_BYTES = 1024 * 1024;
/** Most aliases (`*name`) a document may expand; stream files need few or none. */
export const MAX_YAML_ALIASES = 100;
/** Deepest nesting accepted; a stream file needs 4 levels. */
export const MAX_NESTING = 32;
/**
 * Deepest indentation (columns) of a line. The YAML parser recurses once per nesting level and
 * runs out of stack or memory on deep documents, so nesting is bounded before it parses.
 */
const MAX_INDENT = 256;

/** Why a document is refused before the YAML parser sees it, or undefined. */
export function documentProblem(text: string): string | undefined {
    const bytes = Buffer.byteLength(text, "utf8");
    if (bytes > MAX_FILE_BYTES) return tooLarge(bytes);
    let flow = 0;
    let maxFlow = 0;
    let lineStart = true;
    let indent = 0;
    let dashes = 0;
    for (let i = 0; i < text.length; i++) {
        const c = text[i]!;
        if (c === "\n") {
            lineStart = true;
            indent = 0;
            dashes = 0;
            continue;
        }
        if (lineStart) {
            if (c === " ") {
                if (++indent > MAX_INDENT)
                    return `a line is indented more than ${MAX_INDENT} columns; stream files nest a few levels deep`;
                continue;
            }
            // `- - - x`: each compact sequence indicator opens one more level on the same line.
            if (c === "-" && (text[i + 1] === " " || text[i + 1] === "\n")) {
                if (++dashes > MAX_NESTING)
                    return `nested more than ${MAX_NESTING} levels deep; stream files nest a few levels`;
                i++;
                continue;
            }
            lineStart = false;
        }
        // Brackets inside quoted strings count too: only a string of dozens of unclosed brackets
        // could be refused wrongly, and the message says what to change.
        if (c === "[" || c === "{") {
            if (++flow > maxFlow) maxFlow = flow;
            if (maxFlow > MAX_NESTING)
                return `nested more than ${MAX_NESTING} levels deep ('[' or '{'); stream files nest a few levels`;
        } else if ((c === "]" || c === "}") && flow > 0) flow--;
    }
    return undefined;
}

export function tooLarge(bytes: number): string {
    return `file is ${bytes} bytes; stream files are limited to ${MAX_FILE_BYTES} bytes (1 MiB): split it or remove what is not a stream`;
}

/** Nesting depth of a parsed value (after YAML aliases are expanded). */
export function nestingDepth(value: unknown, limit = MAX_NESTING + 1): number {
    if (typeof value !== "object" || value === null || limit <= 0) return 0;
    let max = 0;
    for (const v of Object.values(value)) max = Math.max(max, nestingDepth(v, limit - 1));
    return 1 + max;
}

// ---------------------------------------------------------------------------------------------
// Characters
// ---------------------------------------------------------------------------------------------

/**
 * C0 and C1 controls, DEL, line/paragraph separators and bidirectional overrides: none belongs in
 * a name, type, expression, comment or config value, and several change what a reviewer sees.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** A description may span lines (it becomes a one-line table comment). */
const CONTROL_IN_DESCRIPTION =
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Every key and string value of a raw document holding a control character. */
export function controlCharacterProblems(raw: unknown): KeyProblem[] {
    const problems: KeyProblem[] = [];
    const visit = (v: unknown, p: string, depth: number) => {
        if (depth > MAX_NESTING) return;
        if (typeof v === "string") {
            const rule = p === "description" ? CONTROL_IN_DESCRIPTION : CONTROL;
            const m = rule.exec(v);
            if (m)
                problems.push({
                    path: p,
                    message: `contains the control character U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")} at position ${m.index}; remove it (write plain text${p === "description" ? "; line breaks are fine here" : ""})`,
                });
        } else if (Array.isArray(v)) {
            v.forEach((item, i) => visit(item, `${p}[${i}]`, depth + 1));
        } else if (typeof v === "object" && v !== null) {
            for (const [k, item] of Object.entries(v)) {
                const m = CONTROL.exec(k);
                // A key with control characters is shown escaped, so the path can be read.
                const shown = m ? JSON.stringify(k).slice(1, -1) : k;
                const kp = p ? `${p}.${shown}` : shown;
                if (m)
                    problems.push({
                        path: kp,
                        message: `the key contains the control character U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}; retype the key`,
                    });
                else visit(item, kp, depth + 1);
            }
        }
    };
    visit(raw, "", 0);
    return problems;
}

// ---------------------------------------------------------------------------------------------
// One stream: types, values, settings, topic
// ---------------------------------------------------------------------------------------------

/** Topic names Kafka refuses beyond its character rule (checked by the schema). */
export function topicProblems(spec: StreamSpec): KeyProblem[] {
    const name = spec.topic.name;
    if (name === "." || name === "..")
        return [
            {
                path: "topic.name",
                message: `Kafka refuses the topic name '${name}'; use a name such as '${spec.name.replace(/_/g, ".")}'`,
            },
        ];
    if (name.startsWith("__"))
        return [
            {
                path: "topic.name",
                message: `'${name}': names starting with '__' are Kafka's internal topics (__consumer_offsets); drop the leading underscores`,
            },
        ];
    return [];
}

/** Types and defaults a column cannot have although they parse (see `parseType` for the rest). */
export function columnProblems(spec: StreamSpec): KeyProblem[] {
    const problems: KeyProblem[] = [];
    spec.columns.forEach((c, i) => {
        let t: ChType;
        try {
            t = parseType(c.type);
        } catch {
            return; // reported by the loader with the parser's message
        }
        for (const tz of timeZonesOf(t)) {
            if (!isTimeZone(tz))
                problems.push({
                    path: `columns[${i}].type`,
                    message: `unknown time zone '${tz}' in ${c.type}; use a time zone ClickHouse knows, spelled exactly (e.g. 'UTC', 'Europe/Berlin', 'America/New_York')`,
                });
        }
        if (c.default !== undefined && (t.name === "Tuple" || t.name === "JSON"))
            problems.push({
                path: `columns[${i}].default`,
                message: `a default on a ${t.name} column cannot be applied to Kafka messages; drop the default`,
            });
    });
    return problems;
}

let engineZones: ReadonlySet<string> | null | undefined;

function isTimeZone(tz: string): boolean {
    if (engineZones === undefined)
        engineZones = engineNames("SELECT time_zone FROM system.time_zones", "time_zone") ?? null;
    return engineZones ? engineZones.has(tz) : isTimeZoneByIntl(tz);
}

/**
 * What only the engine can answer: whether each default fits its column's type, and whether each
 * format setting exists and takes its value. Run only on streams that passed every other check (it
 * sends their expressions to the embedded engine, with no data and read-only). Without the engine
 * (chdb not installed, or an embedded session open in this process) these are skipped: defaults
 * are then checked when the server plans (`pulumi preview`), setting names by the schema's pattern.
 */
export function engineProblems(spec: StreamSpec): KeyProblem[] {
    const problems: KeyProblem[] = [];
    const types = spec.columns.map((c) => parseType(c.type).text);
    const structure = quoteString(
        spec.columns.map((c, i) => `${quoteIdent(c.name)} ${types[i]}`).join(", "),
    );
    spec.columns.forEach((c, i) => {
        if (c.default === undefined) return;
        const type = types[i]!;
        // The default as the planner renders it into DDL (from the parsed expression), so the
        // engine judges exactly what the server would get.
        const rendered = canonicalExpression(c.default, { field: "default", columns: [] });
        // No rows: constants are still folded, so a literal that cannot become the type fails;
        // column references are checked for their types only.
        let answer = askEngine(`SELECT CAST((${rendered}) AS ${type}) FROM null(${structure})`);
        // CAST wraps integers silently (300 -> UInt8 is 44); accurateCast refuses what does not fit.
        if (answer?.ok && INTEGER.test(baseName(type)))
            answer = askEngine(
                `SELECT accurateCast((${rendered}), ${quoteString(type)}) FROM null(${structure})`,
            );
        if (answer && !answer.ok)
            problems.push({
                path: `columns[${i}].default`,
                message: `'${c.default}' is not a valid default for ${type}: ${answer.error}; write a value of type ${type}`,
            });
    });
    const known = settingNames();
    for (const [key, value] of Object.entries(spec.formatSettings)) {
        if (known && !known.has(key)) {
            problems.push({
                path: `formatSettings.${key}`,
                message: `'${key}' is not a ClickHouse setting (system.settings); check the spelling, e.g. input_format_skip_unknown_fields`,
            });
            continue;
        }
        const literal =
            typeof value === "string"
                ? quoteString(value)
                : typeof value === "boolean"
                  ? value
                      ? "1"
                      : "0"
                  : String(value);
        const answer = askEngine("SELECT 1", `${key} = ${literal}`);
        if (answer && !answer.ok)
            problems.push({
                path: `formatSettings.${key}`,
                message: `${literal} is not a valid value: ${answer.error}; see the setting in the ClickHouse documentation`,
            });
    }
    return problems;
}

const INTEGER = /^U?Int\d+$/;

function baseName(type: string): string {
    let t = parseType(type);
    while (t.name === "Nullable" || t.name === "LowCardinality") t = t.args[0] as ChType;
    return t.name;
}

let settings: ReadonlySet<string> | null | undefined;

function settingNames(): ReadonlySet<string> | undefined {
    if (settings === undefined)
        settings = engineNames("SELECT name FROM system.settings", "name") ?? null;
    return settings ?? undefined;
}

// ---------------------------------------------------------------------------------------------
// Between streams
// ---------------------------------------------------------------------------------------------

export interface FileProblem extends KeyProblem {
    readonly file: string;
}

/**
 * Collisions between the streams of one set: derived object names (a stream named like another's
 * `_kafka` table would have its table dropped by the other's plan), topics (also those Kafka
 * treats as one: `a.b` and `a_b`), consumer groups, and renames onto another stream's names.
 * The later file (in load order) gets the problem; the message names the earlier one.
 */
export function collisionProblems(streams: readonly LoadedStream[]): FileProblem[] {
    const problems: FileProblem[] = [];
    const report: Report = (file, path, message) => problems.push({ file, path, message });
    const objects: ObjectOwners = new Map();
    const topics: TopicOwners = new Map();
    for (const stream of streams) {
        claimObjectNames(stream, objects, report);
        claimTopic(stream, topics, report);
    }
    groupCollisions(streams, report);
    renameCollisions(streams, objects, report);
    return problems;
}

type Report = (file: string, path: string, message: string) => void;
/** Derived object name -> the stream that owns it, with the object's role (`target`, `kafka`...). */
type ObjectOwners = Map<string, { file: string; stream: string; role: string }>;
/** Topic name with '.' as '_' (Kafka's view of it) -> the topic as declared and its file. */
type TopicOwners = Map<string, { file: string; topic: string }>;

/** Registers the stream's object names, or reports the first one another stream already owns. */
function claimObjectNames({ file, spec }: LoadedStream, objects: ObjectOwners, report: Report) {
    const names = streamObjectNames(spec.name);
    const clash = Object.entries(names)
        .map(([role, name]) => ({ role, name, other: objects.get(name) }))
        .find((c) => c.other !== undefined);
    if (clash?.other) {
        const o = clash.other;
        report(
            file,
            "name",
            o.stream === spec.name
                ? `duplicate stream '${spec.name}' (also in ${o.file}); stream names must be unique`
                : `stream '${spec.name}' collides with stream '${o.stream}' in ${o.file}: both would own the table '${clash.name}' (${roleText(clash.role, spec.name)}, and ${roleText(o.role, o.stream)}); rename one of them, avoiding the suffixes ${SUFFIXES}`,
        );
    } else {
        for (const [role, name] of Object.entries(names))
            objects.set(name, { file, stream: spec.name, role });
    }
}

/** Registers the stream's topic, or reports the topic Kafka would take it for. */
function claimTopic({ file, spec }: LoadedStream, topics: TopicOwners, report: Report) {
    const topic = spec.topic.name;
    // Kafka refuses a topic whose name differs from an existing one only in '.' versus '_'.
    const key = topic.replace(/\./g, "_");
    const otherTopic = topics.get(key);
    if (otherTopic)
        report(
            file,
            "topic.name",
            otherTopic.topic === topic
                ? `topic '${topic}' is already declared by ${otherTopic.file}; one stream per topic`
                : `topic '${topic}' collides with topic '${otherTopic.topic}' of ${otherTopic.file}: Kafka treats '.' and '_' as the same in topic names and refuses the second; rename one topic`,
        );
    else topics.set(key, { file, topic });
}

/** An explicit consumer group must not be another stream's group, explicit or default. */
function groupCollisions(streams: readonly LoadedStream[], report: Report) {
    const groups = new Map<string, { file: string; stream: string }>();
    for (const { file, spec } of streams) {
        const group = spec.consumer.group;
        if (group === undefined) continue;
        const other = groups.get(group);
        if (other)
            report(
                file,
                "consumer.group",
                `consumer group '${group}' is also the group of stream '${other.stream}' in ${other.file}: the two streams would split the topics' partitions between them; give each stream its own group`,
            );
        else groups.set(group, { file, stream: spec.name });
    }
    for (const { file, spec } of streams) {
        const group = spec.consumer.group;
        if (group === undefined) continue;
        const owner = streams.find(
            (s) =>
                s.spec.name !== spec.name &&
                s.spec.consumer.group === undefined &&
                isDefaultGroupOf(group, s.spec.name),
        );
        if (owner)
            report(
                file,
                "consumer.group",
                `consumer group '${group}' is the default group of stream '${owner.spec.name}' in ${owner.file}: the two streams would split partitions between them; choose another group name`,
            );
    }
}

/** A rename's old name must not be a name another stream uses now, nor another rename's. */
function renameCollisions(streams: readonly LoadedStream[], objects: ObjectOwners, report: Report) {
    const renames = new Map<string, string>();
    for (const { file, spec } of streams) {
        const from = spec.renamedFrom;
        if (from === undefined) continue;
        const owner = objects.get(from);
        if (owner && owner.stream !== spec.name)
            report(
                file,
                "renamedFrom",
                `renamedFrom '${from}' is the ${roleText(owner.role, owner.stream)} of stream '${owner.stream}' in ${owner.file}: the rename would take that stream's table; remove renamedFrom or fix the old name`,
            );
        const twice = renames.get(from);
        if (twice)
            report(
                file,
                "renamedFrom",
                `renamedFrom '${from}' is also claimed by ${twice}; only one stream can take over the old tables`,
            );
        else renames.set(from, file);
    }
}

const SUFFIXES = Object.values(streamObjectNames(""))
    .filter((s) => s !== "")
    .map((s) => `'${s}'`)
    .join(", ");

const ROLE_WORDS: Readonly<Record<string, string>> = {
    target: "target table",
    kafka: "Kafka table",
    mv: "materialized view",
    dlq: "dead-letter table",
    dlqMv: "dead-letter view",
    rebuild: "rebuild scratch table",
};

function roleText(role: string, stream: string): string {
    return `the ${ROLE_WORDS[role] ?? role} of '${stream}'`;
}

/**
 * Whether a group is a default group of a stream: the first release's, or the per-database one for
 * any database (the loader does not know the database; a database name has no '-').
 */
function isDefaultGroupOf(group: string, stream: string): boolean {
    if (group === legacyConsumerGroup(stream)) return true;
    const [before, after] = defaultConsumerGroup("\u0000", stream).split("\u0000") as [
        string,
        string,
    ];
    if (!group.startsWith(before) || !group.endsWith(after)) return false;
    return IDENTIFIER.test(group.slice(before.length, group.length - after.length));
}
