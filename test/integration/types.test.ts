/**
 * `parseType` against the real engine (chdb's standalone, synchronous `query`, no data directory):
 * every type the parser accepts is one the engine creates, and the canonical text the parser returns
 * is exactly what `system.columns.type` reports, or plans never converge. Table cases
 * (test/fixtures/types.ts) plus generated types (fast-check), Tuple element names over every
 * keyword, and the Intl time-zone fallback against `system.time_zones`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { RESERVED_TUPLE_ELEMENT_NAMES, isTimeZoneByIntl, parseType } from "../../schemas/types";
import { ACCEPTED_TYPES, REFUSED_TYPES, UNKNOWN_TIME_ZONE_TYPES } from "../fixtures/types";

const chdb = require("chdb") as { query(sql: string, format?: string): string };

/** The engine's spelling of a type, or its error. */
function engineType(type: string): { type: string } | { error: string } {
    try {
        const out = chdb.query(
            `CREATE TABLE default.t_types (c ${type}) ENGINE = Memory; ` +
                "SELECT type FROM system.columns WHERE database = 'default' AND table = 't_types'",
            "JSONEachRow",
        );
        return { type: (JSON.parse(out.trim()) as { type: string }).type };
    } catch (e) {
        return { error: (e as Error).message.split("\n")[0]! };
    } finally {
        chdb.query("DROP TABLE IF EXISTS default.t_types");
    }
}

function parsed(type: string): { text: string } | { error: string } {
    try {
        return { text: parseType(type).text };
    } catch (e) {
        return { error: (e as Error).message };
    }
}

describe("canonical types equal what the engine reports", () => {
    it(`every accepted type of the table (${ACCEPTED_TYPES.length})`, () => {
        for (const [input, canonical] of ACCEPTED_TYPES) {
            const engine = engineType(input);
            assert.deepEqual(engine, { type: canonical }, input);
            assert.equal(parseType(input).text, canonical, input);
        }
    });

    it(`every refused type of the table (${REFUSED_TYPES.length}): the engine refuses it too, or it is a choice`, () => {
        for (const { type, engine } of REFUSED_TYPES) {
            assert.ok("error" in parsed(type), type);
            const answer = engineType(type);
            assert.equal("error" in answer, engine, `${type}: ${JSON.stringify(answer)}`);
        }
    });

    it("generated types: parser accepts => engine accepts with the same text", () => {
        let accepted = 0;
        let refusedByBoth = 0;
        fc.assert(
            fc.property(typeArbitrary(), (type) => {
                const mine = parsed(type);
                const engine = engineType(type);
                if ("text" in mine) {
                    accepted++;
                    assert.deepEqual(engine, { type: mine.text }, type);
                } else if ("error" in engine) {
                    refusedByBoth++;
                } else {
                    // The parser refuses a type the engine takes: only the documented choices.
                    assert.match(
                        mine.error,
                        /reserved by ClickHouse|escape other than|control character/,
                        `${type} is refused (${mine.error}) but the engine takes it as ${engine.type}`,
                    );
                }
            }),
            { numRuns: 400, seed: 20261201 },
        );
        // The generator must exercise both sides, or the property proves nothing.
        assert.ok(accepted > 100, `accepted ${accepted}`);
        assert.ok(refusedByBoth > 30, `refused ${refusedByBoth}`);
    });

    it("Tuple element names: reserved = those the engine refuses or back-quotes, over every keyword", () => {
        const keywords = chdb
            .query("SELECT keyword FROM system.keywords", "JSONEachRow")
            .trim()
            .split("\n")
            .map((l) => (JSON.parse(l) as { keyword: string }).keyword);
        const words = new Set(
            keywords.flatMap((k) => k.split(/\s+/)).filter((w) => /^[A-Za-z_]\w*$/.test(w)),
        );
        assert.ok(words.size > 200, `${words.size} keywords`);
        for (const word of [...words].flatMap((w) => [w.toLowerCase(), w.toUpperCase()])) {
            const engine = engineType(`Tuple(${word} String)`);
            const special = "error" in engine || engine.type.includes("`");
            assert.equal(
                RESERVED_TUPLE_ELEMENT_NAMES.has(word.toLowerCase()),
                special,
                `${word}: ${JSON.stringify(engine)}`,
            );
        }
    });
});

describe("time zones", () => {
    const zones = chdb.query("SELECT time_zone FROM system.time_zones", "TSV").trim().split("\n");
    const known = new Set(zones);

    it("the engine refuses the unknown zones of the fixtures", () => {
        for (const type of UNKNOWN_TIME_ZONE_TYPES) assert.ok("error" in engineType(type), type);
        assert.ok(!known.has("utc") && known.has("UTC") && known.has("US/Pacific"));
    });

    it("the Intl fallback agrees with system.time_zones (measured: all but 'Factory')", () => {
        const refused = zones.filter((z) => !isTimeZoneByIntl(z));
        assert.deepEqual(refused, ["Factory"]);
        const missing = Intl.supportedValuesOf("timeZone").filter((z) => !known.has(z));
        // Zones newer than the engine's tzdata: accepted by the fallback, refused by the engine.
        assert.ok(missing.length <= 3, missing.join(" "));
        // Miscased spellings the engine refuses: the fallback refuses all but a few aliases.
        const variants = zones
            .flatMap((z) => [z.toLowerCase(), z.toUpperCase()])
            .filter((v) => !known.has(v));
        const wronglyAccepted = variants.filter((v) => isTimeZoneByIntl(v));
        assert.ok(
            wronglyAccepted.length <= variants.length / 100,
            `${wronglyAccepted.length}/${variants.length}: ${wronglyAccepted.join(" ")}`,
        );
    });
});

/** ClickHouse type strings, valid and not, in the shapes stream files use. */
function typeArbitrary(): fc.Arbitrary<string> {
    const zone = fc.constantFrom("", "UTC", "Europe/Berlin", "Asia/Kolkata");
    const label = fc.constantFrom("a", "b", "it\\'s", "x''y", "back\\\\slash", "é", "", " ", "A");
    const enumType = fc
        .tuple(
            fc.constantFrom("Enum8", "Enum16", "Enum"),
            fc.array(
                fc.tuple(
                    label,
                    fc.option(fc.integer({ min: -33000, max: 33000 }), { nil: undefined }),
                ),
                { minLength: 0, maxLength: 4 },
            ),
        )
        .map(
            ([name, items]) =>
                `${name}(${items.map(([l, v]) => (v === undefined ? `'${l}'` : `'${l}' = ${v}`)).join(", ")})`,
        );
    const leaf = fc.oneof(
        fc.constantFrom(
            "UInt8",
            "Int64",
            "UInt256",
            "Float32",
            "Float64",
            "Bool",
            "String",
            "UUID",
            "Date",
            "Date32",
            "IPv4",
            "DateTime",
            "JSON",
        ),
        fc.integer({ min: 0, max: 4 }).map((n) => `FixedString(${n})`),
        fc
            .tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 40 }))
            .map(([p, s]) => `Decimal(${p}, ${s})`),
        zone.map((z) => (z ? `DateTime('${z}')` : "DateTime")),
        fc
            .tuple(fc.integer({ min: 0, max: 10 }), zone)
            .map(([p, z]) => (z ? `DateTime64(${p}, '${z}')` : `DateTime64(${p})`)),
        enumType,
    );
    const element = fc.constantFrom("a", "b", "Value", "from", "null", "where", "x_1");
    const { type } = fc.letrec<{ type: string }>((tie) => ({
        type: fc.oneof(
            { depthSize: "small", withCrossShrink: true },
            leaf,
            tie("type").map((t) => `Nullable(${t})`),
            tie("type").map((t) => `LowCardinality(${t})`),
            tie("type").map((t) => `Array(${t})`),
            fc.tuple(tie("type"), tie("type")).map(([k, v]) => `Map(${k}, ${v})`),
            fc
                .tuple(
                    fc.array(fc.tuple(element, tie("type")), { minLength: 1, maxLength: 3 }),
                    fc.boolean(),
                )
                .map(
                    ([items, named]) =>
                        `Tuple(${items.map(([n, t]) => (named ? `${n} ${t}` : t)).join(", ")})`,
                ),
        ),
    }));
    return type;
}
