/**
 * ClickHouse data types as stream files spell them: parsed, checked against the rules the engine
 * enforces when a column is created, and rendered in the engine's own canonical spelling (the text
 * `system.columns.type` reports), so desired and actual types compare as strings and a plan
 * converges. test/integration/types.test.ts checks every rule and spelling here against the engine.
 */
import { SqlInputError, quoteString, tokenize } from "./sql";

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
    const reader = new TypeReader(input);
    const result = reader.type();
    reader.end();
    return result;
}

type Token = ReturnType<typeof tokenize>[number];

/** A cursor over the tokens of one type text; every error quotes the whole text. */
class TypeReader {
    private readonly tokens: readonly Token[];
    private pos = 0;

    constructor(readonly input: string) {
        this.tokens = tokenize(input);
    }

    peek(offset = 0): Token | undefined {
        return this.tokens[this.pos + offset];
    }
    next(): Token | undefined {
        return this.tokens[this.pos++];
    }
    /** Consumes `text` if it comes next. */
    accept(text: string): boolean {
        if (this.peek()?.text !== text) return false;
        this.pos++;
        return true;
    }
    expect(text: string): void {
        const t = this.tokens[this.pos];
        if (t?.text !== text) throw new SqlInputError(`expected '${text}' in type '${this.input}'`);
        this.pos++;
    }
    int(min: number, max: number): number {
        const t = this.next();
        if (t?.kind !== "number" || !/^\d+$/.test(t.text))
            throw new SqlInputError(`expected an integer in type '${this.input}'`);
        const n = Number(t.text);
        if (n < min || n > max)
            throw new SqlInputError(`${n} is out of range ${min}..${max} in type '${this.input}'`);
        return n;
    }
    str(): string {
        const t = this.next();
        if (t?.kind !== "string")
            throw new SqlInputError(`expected a quoted string in type '${this.input}'`);
        if (/[\\\n]/.test(t.text))
            throw new SqlInputError(`escapes are not allowed in type arguments of '${this.input}'`);
        return t.text;
    }
    /** One type, with its arguments. */
    type(): ChType {
        const t = this.next();
        if (!t || t.kind !== "ident")
            throw new SqlInputError(`expected a type name in '${this.input}'`);
        const name = t.text;
        if (SIMPLE_TYPES.has(name)) {
            if (this.peek()?.text === "(")
                throw new SqlInputError(`type ${name} takes no arguments`);
            return make(name, []);
        }
        const read = COMPOSITE_TYPES.get(name);
        if (!read) throw new SqlInputError(`unknown ClickHouse type '${name}'`);
        return read(this, name);
    }
    /** `(Type)`: the one type argument of a wrapper. */
    wrapped(): ChType {
        this.expect("(");
        const inner = this.type();
        this.expect(")");
        return inner;
    }
    end(): void {
        const t = this.peek();
        if (t) throw new SqlInputError(`unexpected '${t.text}' after type in '${this.input}'`);
    }
}

function make(name: string, args: Array<ChType | string | number>): ChType {
    return {
        name,
        args,
        text: args.length === 0 ? name : `${name}(${args.map(argText).join(", ")})`,
    };
}

/** How each type with arguments (or optional ones) is read after its name. */
const COMPOSITE_TYPES = new Map<string, (r: TypeReader, name: string) => ChType>([
    ["Nullable", readNullable],
    ["LowCardinality", readLowCardinality],
    ["Array", (r, name) => make(name, [r.wrapped()])],
    ["Map", readMap],
    ["Tuple", readTuple],
    ["FixedString", readFixedString],
    ["Decimal", readDecimal],
    ["Decimal32", readSizedDecimal],
    ["Decimal64", readSizedDecimal],
    ["Decimal128", readSizedDecimal],
    ["Decimal256", readSizedDecimal],
    ["DateTime", readDateTime],
    ["DateTime64", readDateTime64],
    ["Enum", readEnum],
    ["Enum8", readEnum],
    ["Enum16", readEnum],
]);

function readNullable(r: TypeReader, name: string): ChType {
    const inner = r.wrapped();
    if (NOT_NULLABLE.has(inner.name)) {
        throw new SqlInputError(
            `Nullable(${inner.text}) is not allowed: ${inner.name} cannot be inside Nullable`,
        );
    }
    return make(name, [inner]);
}

function readLowCardinality(r: TypeReader, name: string): ChType {
    const inner = r.wrapped();
    const base = inner.name === "Nullable" ? (inner.args[0] as ChType) : inner;
    if (!LOW_CARDINALITY_INNER.has(base.name)) {
        throw new SqlInputError(
            `LowCardinality(${inner.text}) is not allowed: ClickHouse accepts LowCardinality only around String, FixedString or UUID (optionally Nullable); use ${inner.text} itself`,
        );
    }
    return make(name, [inner]);
}

function readMap(r: TypeReader, name: string): ChType {
    r.expect("(");
    const k = r.type();
    r.expect(",");
    const v = r.type();
    r.expect(")");
    const keyBase = k.name === "LowCardinality" ? (k.args[0] as ChType) : k;
    if (keyBase.name === "Nullable") {
        throw new SqlInputError(
            `Map key type ${k.text} is not allowed: a Map key cannot be Nullable; use ${(keyBase.args[0] as ChType).text}`,
        );
    }
    return make(name, [k, v]);
}

function readFixedString(r: TypeReader, name: string): ChType {
    r.expect("(");
    const n = r.int(1, 1 << 20);
    r.expect(")");
    return make(name, [n]);
}

function readDecimal(r: TypeReader, name: string): ChType {
    r.expect("(");
    const p = r.int(1, 76);
    const s = r.accept(",") ? r.int(0, p) : 0;
    r.expect(")");
    return make(name, [p, s]);
}

const DECIMAL_PRECISION: Readonly<Record<string, number>> = {
    Decimal32: 9,
    Decimal64: 18,
    Decimal128: 38,
    Decimal256: 76,
};

/** `Decimal32(S)` and its siblings: the engine reports them as `Decimal(P, S)`. */
function readSizedDecimal(r: TypeReader, name: string): ChType {
    const max = DECIMAL_PRECISION[name]!;
    r.expect("(");
    const s = r.int(0, max);
    r.expect(")");
    return { name: "Decimal", args: [max, s], text: `Decimal(${max}, ${s})` };
}

function readDateTime(r: TypeReader, name: string): ChType {
    if (r.peek()?.text !== "(") return make(name, []);
    r.expect("(");
    const tz = r.str();
    r.expect(")");
    return make(name, [tz]);
}

function readDateTime64(r: TypeReader, name: string): ChType {
    r.expect("(");
    const args: Array<string | number> = [r.int(0, 9)];
    if (r.accept(",")) args.push(r.str());
    r.expect(")");
    return make(name, args);
}

function readTuple(r: TypeReader): ChType {
    r.expect("(");
    const names: string[] = [];
    const items: ChType[] = [];
    do {
        if (items.length > 0) r.next();
        // `name Type` (named element) or `Type`: a name is an identifier followed by another.
        if (r.peek()?.kind === "ident" && r.peek(1)?.kind === "ident") {
            names.push(tupleElementName(r.next()!.text, names, r.input));
        }
        items.push(r.type());
    } while (r.peek()?.text === ",");
    r.expect(")");
    if (names.length > 0 && names.length !== items.length)
        throw new SqlInputError(
            `name every element of the Tuple or none in '${r.input}' (ClickHouse refuses a mix)`,
        );
    const parts = items.map((t, i) => (names.length > 0 ? `${names[i]} ${t.text}` : t.text));
    return {
        name: "Tuple",
        args: items,
        text: `Tuple(${parts.join(", ")})`,
        ...(names.length > 0 ? { elementNames: names } : {}),
    };
}

/** A Tuple element's name, checked against the reserved words and the names before it. */
function tupleElementName(n: string, before: readonly string[], input: string): string {
    if (!TUPLE_ELEMENT_NAME.test(n) || RESERVED_TUPLE_ELEMENT_NAMES.has(n.toLowerCase()))
        throw new SqlInputError(
            `Tuple element name '${n}' is reserved by ClickHouse in '${input}'; rename the element`,
        );
    if (before.includes(n))
        throw new SqlInputError(`duplicate Tuple element name '${n}' in '${input}'`);
    return n;
}

interface EnumItem {
    readonly label: string;
    readonly value: number;
    /** Whether the item was written with `= value`. */
    readonly explicit: boolean;
}

function readEnum(r: TypeReader, written: string): ChType {
    r.expect("(");
    if (r.peek()?.text === ")")
        throw new SqlInputError(`${written} needs at least one 'label' = value in '${r.input}'`);
    const items: EnumItem[] = [];
    do {
        if (items.length > 0) r.next();
        items.push(enumItem(r, items));
    } while (r.peek()?.text === ",");
    r.expect(")");
    // ClickHouse numbers items without a value from the one before (the first from 1), and
    // refuses a list whose items after the first mix numbered and unnumbered ones.
    const explicit = items.slice(1).map((i) => i.explicit);
    if (explicit.includes(false) && explicit.includes(true))
        throw new SqlInputError(
            `items after the first must all have a value or all have none in '${r.input}'; give every item a value`,
        );
    const fits8 = items.every((i) => i.value >= -128 && i.value <= 127);
    const name = written === "Enum" ? (fits8 ? "Enum8" : "Enum16") : written;
    const [min, max] = ENUM_RANGE[name as keyof typeof ENUM_RANGE];
    const outside = items.find((i) => i.value < min || i.value > max);
    if (outside)
        throw new SqlInputError(
            `enum value ${outside.value} of ${quoteString(outside.label)} is outside ${name}'s range ${min}..${max} in '${r.input}'` +
                (name === "Enum8" ? "; use Enum16" : ""),
        );
    const rendered = [...items]
        .sort((a, b) => a.value - b.value)
        .map((i) => `${quoteString(i.label)} = ${i.value}`);
    return { name, args: rendered, text: `${name}(${rendered.join(", ")})` };
}

/** One `'label' [= value]` of an Enum, checked against the items before it. */
function enumItem(r: TypeReader, before: readonly EnumItem[]): EnumItem {
    const labelToken = r.next();
    if (labelToken?.kind !== "string")
        throw new SqlInputError(`enum labels must be quoted strings in '${r.input}'`);
    const label = enumLabel(labelToken.text, r.input);
    // ClickHouse numbers an element without a value one above the previous one (from 1).
    let value = (before[before.length - 1]?.value ?? 0) + 1;
    const explicit = r.accept("=");
    if (explicit) {
        let sign = 1;
        if (r.peek()?.text === "-" || r.peek()?.text === "+") {
            sign = r.next()!.text === "-" ? -1 : 1;
        }
        const n = r.next();
        if (n?.kind !== "number" || !/^\d+$/.test(n.text))
            throw new SqlInputError(`enum values must be integers in '${r.input}'`);
        value = sign * Number(n.text);
    }
    const sameLabel = before.find((i) => i.label === label);
    if (sameLabel)
        throw new SqlInputError(
            `duplicate enum label ${quoteString(label)} (= ${sameLabel.value} and = ${value}) in '${r.input}'`,
        );
    const sameValue = before.find((i) => i.value === value);
    if (sameValue)
        throw new SqlInputError(
            `duplicate enum value ${value} (${quoteString(sameValue.label)} and ${quoteString(label)}) in '${r.input}'`,
        );
    return { label, value, explicit };
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
