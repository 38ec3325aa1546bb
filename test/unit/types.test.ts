/**
 * The type parser alone: canonical spellings and refusals (test/fixtures/types.ts). The same table
 * runs against the real engine in test/integration/types.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { SqlInputError } from "../../schemas/sql";
import { isTimeZoneByIntl, parseType, timeZonesOf } from "../../schemas/types";
import { ACCEPTED_TYPES, REFUSED_TYPES, UNKNOWN_TIME_ZONE_TYPES } from "../fixtures/types";

describe("parseType", () => {
    for (const [input, canonical] of ACCEPTED_TYPES) {
        it(`accepts ${JSON.stringify(input)} as ${canonical}`, () => {
            assert.equal(parseType(input).text, canonical);
            // The canonical form is a fixed point: parsing what the engine reports changes nothing.
            assert.equal(parseType(canonical).text, canonical);
        });
    }
    for (const { type, message } of REFUSED_TYPES) {
        it(`refuses ${JSON.stringify(type)}`, () => {
            assert.throws(
                () => parseType(type),
                (e: unknown) => {
                    assert.ok(e instanceof SqlInputError, String(e));
                    assert.match(e.message, message);
                    return true;
                },
            );
        });
    }

    it("named Tuples keep their element names", () => {
        assert.deepEqual(parseType("Tuple(a String, b UInt8)").elementNames, ["a", "b"]);
        assert.equal(parseType("Tuple(String, UInt8)").elementNames, undefined);
    });

    it("enum items come out sorted by value whatever order they are written in", () => {
        const items = fc.uniqueArray(fc.integer({ min: -128, max: 127 }), {
            minLength: 1,
            maxLength: 12,
        });
        fc.assert(
            fc.property(items, (values) => {
                const written = values.map((v, i) => `'l${i}' = ${v}`).join(", ");
                const t = parseType(`Enum8(${written})`);
                const rendered = t.args.map((a) => Number(String(a).split(" = ")[1]));
                assert.deepEqual(
                    rendered,
                    [...values].sort((a, b) => a - b),
                );
                assert.equal(parseType(t.text).text, t.text);
            }),
        );
    });

    it("time zones are collected at any depth", () => {
        assert.deepEqual(
            timeZonesOf(parseType("Map(String, Array(DateTime64(3, 'Europe/Berlin')))")),
            ["Europe/Berlin"],
        );
        assert.deepEqual(timeZonesOf(parseType("Tuple(a DateTime('UTC'), b DateTime)")), ["UTC"]);
    });
});

describe("time zones without the engine (Intl)", () => {
    for (const tz of ["UTC", "Europe/Berlin", "America/New_York", "Etc/UTC", "US/Pacific", "EST"]) {
        it(`accepts ${tz}`, () => assert.equal(isTimeZoneByIntl(tz), true));
    }
    for (const type of UNKNOWN_TIME_ZONE_TYPES) {
        it(`refuses the zone of ${type}`, () => {
            const zones = timeZonesOf(parseType(type));
            assert.equal(zones.length, 1);
            assert.equal(isTimeZoneByIntl(zones[0]!), false);
        });
    }
});
