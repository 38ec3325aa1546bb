/**
 * ClickHouse data types as stream files spell them: parsed, checked against the rules the engine
 * enforces when a column is created, and rendered in the engine's own canonical spelling (the text
 * `system.columns.type` reports), so desired and actual types compare as strings and a plan
 * converges. test/integration/types.test.ts checks every rule and spelling here against the engine.
 */
import { SqlInputError, tokenize } from "./sql";

const SIMPLE_TYPES = new Set([
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "UInt128",
    "UInt256",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Int128",
    "Int256",
    "Float32",
    "Float64",
    "BFloat16",
    "Bool",
    "String",
    "UUID",
    "Date",
    "Date32",
    "IPv4",
    "IPv6",
    "JSON",
]);

/** Parsed ClickHouse type. `text` is its canonical spelling, as `system.columns.type` shows it. */
export interface ChType {
    readonly name: string;
    /** Inner types, numbers, quoted strings; Enum items as `'label' = value`, sorted by value. */
    readonly args: ReadonlyArray<ChType | string | number>;
    readonly text: string;
    /** Named Tuple: the element names, in order (unnamed Tuples have none). */
    readonly elementNames?: readonly string[];
}

/** Types that cannot be wrapped in Nullable (the engine refuses them). */
const NOT_NULLABLE = new Set(["Array", "Map", "Tuple", "Nullable", "LowCardinality"]);

/**
 * What LowCardinality may wrap under the engine's default settings: strings and UUID. Numbers,
 * dates and IPs are "suspicious" (refused unless allow_suspicious_low_cardinality_types, which this
 * project never sets); Decimal, Enum, DateTime64 and composite types are refused outright.
 */
const LOW_CARDINALITY_INNER = new Set(["String", "FixedString", "UUID"]);

const ENUM_RANGE = { Enum8: [-128, 127], Enum16: [-32768, 32767] } as const;

/**
 * Tuple element names the engine reserves (`null`) or prints back-quoted (so they would never
 * compare equal to the name as written). Found by creating a Tuple element under every word of
 * `system.keywords`; the integration test repeats that search.
 */
export const RESERVED_TUPLE_ELEMENT_NAMES: ReadonlySet<string> = new Set([
    "null",
    "all",
    "distinct",
    "from",
    "select",
    "table",
    "values",
]);

const TUPLE_ELEMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses and canonicalises a ClickHouse type. Throws SqlInputError naming what is wrong: a type
 * this returns is one the engine creates under its default settings, spelled as it reports it.
 * Time zones are not checked here (see `timeZonesOf`; which ones exist depends on the engine).
 */
export function parseType(input: string): ChType {
    const tokens = tokenize(input);
    let pos = 0;
    const peek = (offset = 0) => tokens[pos + offset];
    const expect = (text: string) => {
        const t = tokens[pos];
        if (t?.text !== text) throw new SqlInputError(`expected '${text}' in type '${input}'`);
        pos++;
    };
    const int = (min: number, max: number): number => {
        const t = tokens[pos++];
        if (t?.kind !== "number" || !/^\d+$/.test(t.text))
            throw new SqlInputError(`expected an integer in type '${input}'`);
        const n = Number(t.text);
        if (n < min || n > max)
            throw new SqlInputError(`${n} is out of range ${min}..${max} in type '${input}'`);
        return n;
    };
    const str = (): string => {
        const t = tokens[pos++];
        if (t?.kind !== "string")
            throw new SqlInputError(`expected a quoted string in type '${input}'`);
        if (/[\\\n]/.test(t.text))
            throw new SqlInputError(`escapes are not allowed in type arguments of '${input}'`);
        return t.text;
    };
    const parse = (): ChType => {
        const t = tokens[pos++];
        if (!t || t.kind !== "ident") throw new SqlInputError(`expected a type name in '${input}'`);
        const name = t.text;
        const hasArgs = peek()?.text === "(";
        const make = (args: Array<ChType | string | number>): ChType => ({
            name,
            args,
            text: args.length === 0 ? name : `${name}(${args.map(argText).join(", ")})`,
        });
        if (SIMPLE_TYPES.has(name)) {
            if (hasArgs) throw new SqlInputError(`type ${name} takes no arguments`);
            return make([]);
        }
        switch (name) {
            case "Nullable": {
                expect("(");
                const inner = parse();
                expect(")");
                if (NOT_NULLABLE.has(inner.name)) {
                    throw new SqlInputError(
                        `Nullable(${inner.text}) is not allowed: ${inner.name} cannot be inside Nullable`,
                    );
                }
                return make([inner]);
            }
            case "LowCardinality": {
                expect("(");
                const inner = parse();
                expect(")");
                const base = inner.name === "Nullable" ? (inner.args[0] as ChType) : inner;
                if (!LOW_CARDINALITY_INNER.has(base.name)) {
                    throw new SqlInputError(
                        `LowCardinality(${inner.text}) is not allowed: ClickHouse accepts LowCardinality only around String, FixedString or UUID (optionally Nullable); use ${inner.text} itself`,
                    );
                }
                return make([inner]);
            }
            case "Array": {
                expect("(");
                const inner = parse();
                expect(")");
                return make([inner]);
            }
            case "Map": {
                expect("(");
                const k = parse();
                expect(",");
                const v = parse();
                expect(")");
                const keyBase = k.name === "LowCardinality" ? (k.args[0] as ChType) : k;
                if (keyBase.name === "Nullable") {
                    throw new SqlInputError(
                        `Map key type ${k.text} is not allowed: a Map key cannot be Nullable; use ${(keyBase.args[0] as ChType).text}`,
                    );
                }
                return make([k, v]);
            }
            case "Tuple":
                return parseTuple();
            case "FixedString": {
                expect("(");
                const n = int(1, 1 << 20);
                expect(")");
                return make([n]);
            }
            case "Decimal": {
                expect("(");
                const p = int(1, 76);
                let s = 0;
                if (peek()?.text === ",") {
                    pos++;
                    s = int(0, p);
                }
                expect(")");
                return make([p, s]);
            }
            case "Decimal32":
            case "Decimal64":
            case "Decimal128":
            case "Decimal256": {
                const max = { Decimal32: 9, Decimal64: 18, Decimal128: 38, Decimal256: 76 }[name];
                expect("(");
                const s = int(0, max);
                expect(")");
                return { name: "Decimal", args: [max, s], text: `Decimal(${max}, ${s})` };
            }
            case "DateTime": {
                if (!hasArgs) return make([]);
                expect("(");
                const tz = str();
                expect(")");
                return make([tz]);
            }
            case "DateTime64": {
                expect("(");
                const precision = int(0, 9);
                const args: Array<string | number> = [precision];
                if (peek()?.text === ",") {
                    pos++;
                    args.push(str());
                }
                expect(")");
                return make(args);
            }
            case "Enum":
            case "Enum8":
            case "Enum16":
                return parseEnum(name);
            default:
                throw new SqlInputError(`unknown ClickHouse type '${name}'`);
        }
    };
    const parseTuple = (): ChType => {
        expect("(");
        const names: string[] = [];
        const items: ChType[] = [];
        do {
            if (items.length > 0) pos++;
            // `name Type` (named element) or `Type`: a name is an identifier followed by another.
            if (peek()?.kind === "ident" && peek(1)?.kind === "ident") {
                const n = tokens[pos++]!.text;
                if (
                    !TUPLE_ELEMENT_NAME.test(n) ||
                    RESERVED_TUPLE_ELEMENT_NAMES.has(n.toLowerCase())
                )
                    throw new SqlInputError(
                        `Tuple element name '${n}' is reserved by ClickHouse in '${input}'; rename the element`,
                    );
                if (names.includes(n))
                    throw new SqlInputError(`duplicate Tuple element name '${n}' in '${input}'`);
                names.push(n);
            }
            items.push(parse());
        } while (peek()?.text === ",");
        expect(")");
        if (names.length > 0 && names.length !== items.length)
            throw new SqlInputError(
                `name every element of the Tuple or none in '${input}' (ClickHouse refuses a mix)`,
            );
        const parts = items.map((t, i) => (names.length > 0 ? `${names[i]} ${t.text}` : t.text));
        return {
            name: "Tuple",
            args: items,
            text: `Tuple(${parts.join(", ")})`,
            ...(names.length > 0 ? { elementNames: names } : {}),
        };
    };
    const parseEnum = (written: "Enum" | "Enum8" | "Enum16"): ChType => {
        expect("(");
        if (peek()?.text === ")")
            throw new SqlInputError(`${written} needs at least one 'label' = value in '${input}'`);
        const items: Array<{ label: string; value: number }> = [];
        const explicit: boolean[] = [];
        do {
            if (items.length > 0) pos++;
            const labelToken = tokens[pos++];
            if (labelToken?.kind !== "string")
                throw new SqlInputError(`enum labels must be quoted strings in '${input}'`);
            const label = enumLabel(labelToken.text, input);
            // ClickHouse numbers an element without a value one above the previous one (from 1).
            let value = (items[items.length - 1]?.value ?? 0) + 1;
            if (peek()?.text === "=") {
                pos++;
                let sign = 1;
                if (peek()?.text === "-" || peek()?.text === "+") {
                    sign = tokens[pos++]!.text === "-" ? -1 : 1;
                }
                const n = tokens[pos++];
                if (n?.kind !== "number" || !/^\d+$/.test(n.text))
                    throw new SqlInputError(`enum values must be integers in '${input}'`);
                value = sign * Number(n.text);
                explicit.push(true);
            } else explicit.push(false);
            const sameLabel = items.find((i) => i.label === label);
            if (sameLabel)
                throw new SqlInputError(
                    `duplicate enum label ${quoteEnumLabel(label)} (= ${sameLabel.value} and = ${value}) in '${input}'`,
                );
            const sameValue = items.find((i) => i.value === value);
            if (sameValue)
                throw new SqlInputError(
                    `duplicate enum value ${value} (${quoteEnumLabel(sameValue.label)} and ${quoteEnumLabel(label)}) in '${input}'`,
                );
            items.push({ label, value });
        } while (peek()?.text === ",");
        expect(")");
        // ClickHouse numbers items without a value from the one before (the first from 1), and
        // refuses a list whose items after the first mix numbered and unnumbered ones.
        if (explicit.slice(1).includes(false) && explicit.slice(1).includes(true))
            throw new SqlInputError(
                `items after the first must all have a value or all have none in '${input}'; give every item a value`,
            );
        const fits8 = items.every((i) => i.value >= -128 && i.value <= 127);
        const name = written === "Enum" ? (fits8 ? "Enum8" : "Enum16") : written;
        const [min, max] = ENUM_RANGE[name];
        const outside = items.find((i) => i.value < min || i.value > max);
        if (outside)
            throw new SqlInputError(
                `enum value ${outside.value} of ${quoteEnumLabel(outside.label)} is outside ${name}'s range ${min}..${max} in '${input}'` +
                    (name === "Enum8" ? "; use Enum16" : ""),
            );
        const rendered = [...items]
            .sort((a, b) => a.value - b.value)
            .map((i) => `${quoteEnumLabel(i.label)} = ${i.value}`);
        return { name, args: rendered, text: `${name}(${rendered.join(", ")})` };
    };
    const result = parse();
    if (pos !== tokens.length)
        throw new SqlInputError(`unexpected '${tokens[pos]!.text}' after type in '${input}'`);
    return result;
}

/**
 * The label of an enum item, from its quoted token. `\'`, `''` and `\\` are the only escapes
 * (ClickHouse's other escapes produce control characters, which no label needs).
 */
function enumLabel(token: string, input: string): string {
    const body = token.slice(1, -1);
    let out = "";
    for (let i = 0; i < body.length; i++) {
        const c = body[i]!;
        if (c === "\\") {
            const next = body[i + 1];
            if (next !== "'" && next !== "\\")
                throw new SqlInputError(
                    `enum label ${token} in '${input}' uses an escape other than \\' or \\\\; write the character itself`,
                );
            out += next;
            i++;
        } else if (c === "'") {
            out += "'"; // the tokenizer only lets '' through here
            i++;
        } else out += c;
    }
    if (/[\u0000-\u001f\u007f-\u009f]/.test(out))
        throw new SqlInputError(`enum label ${token} in '${input}' contains a control character`);
    return out;
}

/** A label as ClickHouse prints it in a type name: single quotes, `\'` and `\\`. */
function quoteEnumLabel(label: string): string {
    return "'" + label.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
}

function argText(a: ChType | string | number): string {
    return typeof a === "object" ? a.text : String(a);
}

/** Every time zone a parsed type names (DateTime('tz'), DateTime64(p, 'tz'), at any depth). */
export function timeZonesOf(t: ChType): string[] {
    const own =
        t.name === "DateTime" || t.name === "DateTime64"
            ? t.args.filter((a): a is string => typeof a === "string").map((a) => a.slice(1, -1))
            : [];
    return [...own, ...t.args.flatMap((a) => (typeof a === "object" ? timeZonesOf(a) : []))];
}

let intlZones: ReadonlySet<string> | undefined;

/**
 * Whether a time zone name is one ClickHouse loads, judged without the engine: the IANA names
 * Node knows (`Intl.supportedValuesOf`) plus their aliases (`Etc/UTC`, `US/Pacific`, `EST`), spelled
 * with the exact case ClickHouse needs (it refuses `utc` and `europe/berlin`). The engine's own list
 * (`system.time_zones`) is the authority when it is available; see `schemas/engine.ts`.
 */
export function isTimeZoneByIntl(tz: string): boolean {
    intlZones ??= new Set([...Intl.supportedValuesOf("timeZone"), "UTC"]);
    if (intlZones.has(tz)) return true;
    let resolved: string;
    try {
        resolved = new Intl.DateTimeFormat("en-US", { timeZone: tz }).resolvedOptions().timeZone;
    } catch {
        return false;
    }
    // Intl accepts any case; ClickHouse wants the exact spelling. A miscased canonical name differs
    // from Intl's answer in case only. Aliases (US/Pacific -> America/Los_Angeles) cannot be
    // compared that way: their segments must look like tz database names (capitalised words,
    // or short or digit-bearing codes such as EST, PRC, NZ-CHAT, EST5EDT).
    if (resolved.toLowerCase() === tz.toLowerCase()) return resolved === tz;
    return tz
        .split("/")
        .every((seg) => /^[A-Z]/.test(seg) && (seg.length <= 3 || /[a-z0-9+-]/.test(seg)));
}
