import { randomUUID } from "node:crypto";
import type { ColumnSpec, StreamSpec } from "./model";
import { parseSourcePath } from "./sources";
import { ChType, parseType } from "./types";

/**
 * Realistic sample messages for a stream, derived from its column types: what the sandbox
 * produces and what the benchmarks ingest. Deterministic for a seed, so runs compare.
 */
export interface SampleOptions {
    /** Seed of the pseudo-random sequence. @default 1 */
    readonly seed?: number;
    /** Every n-th message is malformed (to exercise the dead-letter path); 0 for none. @default 0 */
    readonly malformedEvery?: number;
    /** Event time of the first message, ms since epoch. @default Date.now() */
    readonly startMs?: number;
    /** Milliseconds between consecutive events. @default 10 */
    readonly stepMs?: number;
}

/** Words that make common column names look real; anything else gets `<name>-<n>`. */
const VOCABULARY: Record<string, readonly string[]> = {
    event_type: ["page_view", "click", "scroll", "add_to_cart", "checkout"],
    country: ["DE", "FR", "US", "BR", "JP", "IN", "GB"],
    device: ["desktop", "mobile", "tablet"],
    firmware: ["1.4.2", "1.5.0", "2.0.1"],
    currency: ["EUR", "USD", "GBP"],
    url: ["/", "/pricing", "/docs", "/blog/launch", "/signup", "/checkout"],
    referrer: ["", "https://search.example/", "https://news.example/item"],
};

/** A small, fast, seedable generator (mulberry32). */
function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

function pad(n: number, width = 2): string {
    return String(n).padStart(width, "0");
}

function dateTime(ms: number, precision: number): string {
    const d = new Date(ms);
    const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    return precision > 0
        ? `${base}.${pad(d.getUTCMilliseconds(), 3).slice(0, precision).padEnd(precision, "0")}`
        : base;
}

function valueFor(
    column: ColumnSpec,
    type: ChType,
    i: number,
    ms: number,
    random: () => number,
): unknown {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    switch (type.name) {
        case "Nullable":
            return random() < 0.1 ? null : valueFor(column, type.args[0] as ChType, i, ms, random);
        case "LowCardinality":
            return valueFor(column, type.args[0] as ChType, i, ms, random);
        case "UUID":
            return randomUUID();
        case "DateTime":
            return dateTime(ms, 0);
        case "DateTime64":
            return dateTime(ms, Number(type.args[0]));
        case "Date":
        case "Date32":
            return dateTime(ms, 0).slice(0, 10);
        case "Bool":
            return random() < 0.5;
        case "UInt8":
        case "UInt16":
        case "UInt32":
        case "UInt64":
        case "UInt128":
        case "UInt256":
            return column.name === "version" ? i + 1 : Math.floor(random() * 100_000);
        case "Int8":
        case "Int16":
        case "Int32":
        case "Int64":
        case "Int128":
        case "Int256":
            return Math.floor(random() * 20_000) - 10_000;
        case "Float32":
        case "Float64":
        case "BFloat16":
            return Math.round((random() * 60 - 10) * 100) / 100;
        case "Decimal":
            return Number((random() * 500).toFixed(Number(type.args[1])));
        case "FixedString":
            return pick(VOCABULARY[column.name] ?? ["ABC"])
                .slice(0, Number(type.args[0]))
                .padEnd(Number(type.args[0]), "X");
        case "Enum8":
        case "Enum16":
            return pick(type.args as string[]).replace(/^'(.*)' = -?\d+$/, "$1");
        case "Array":
            return [valueFor(column, type.args[0] as ChType, i, ms, random)];
        case "Map":
            return { source: "sample" };
        case "IPv4":
            return `10.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}`;
        case "IPv6":
            return "2001:db8::1";
        case "String":
        default: {
            const words = VOCABULARY[column.name];
            return words ? pick(words) : `${column.name}-${Math.floor(random() * 1000)}`;
        }
    }
}

/** `count` messages for a stream, one JSON (or CSV/TSV) line each. */
export function sampleMessages(
    spec: StreamSpec,
    count: number,
    options: SampleOptions = {},
): string[] {
    const random = rng(options.seed ?? 1);
    const start = options.startMs ?? Date.now();
    const step = options.stepMs ?? 10;
    const types = spec.columns.map((c) => parseType(c.type));
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
        const malformed = options.malformedEvery ? (i + 1) % options.malformedEvery === 0 : false;
        const ms = start + i * step;
        const values = spec.columns.map((c, j) => valueFor(c, types[j]!, i, ms, random));
        if (spec.format === "JSONEachRow") {
            const obj: Record<string, unknown> = {};
            spec.columns.forEach((c, j) => {
                // Fields with a default are sometimes left out, as real producers do.
                if (c.default !== undefined && random() < 0.2) return;
                // A dotted source is a path into nested objects (schemas/sources.ts).
                const keys = parseSourcePath(c.source ?? c.name);
                let into = obj;
                for (const k of keys.slice(0, -1))
                    into = (into[k] ??= {}) as Record<string, unknown>;
                into[keys.at(-1)!] = values[j];
            });
            const text = JSON.stringify(obj);
            out.push(
                malformed
                    ? `${text.slice(0, Math.max(1, Math.floor(text.length / 2)))} <truncated #${i}`
                    : text,
            );
        } else {
            const sep = spec.format === "CSV" ? "," : "\t";
            const text = values
                .map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v)))
                .join(sep);
            out.push(malformed ? `not${sep}enough` : text);
        }
    }
    return out;
}
