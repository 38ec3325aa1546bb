import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadStreams, validateStream } from "../../schemas/loader";
import { sampleMessages } from "../../schemas/sample";

describe("sample messages", () => {
    for (const { spec } of loadStreams()) {
        it(`${spec.name}: JSON objects keyed by source field, deterministic for a seed`, () => {
            const messages = sampleMessages(spec, 200, { seed: 7, startMs: Date.UTC(2026, 10, 1) });
            assert.equal(messages.length, 200);
            const required = spec.columns
                .filter((c) => c.default === undefined)
                .map((c) => c.source ?? c.name);
            const allowed = new Set(spec.columns.map((c) => c.source ?? c.name));
            for (const m of messages) {
                const obj = JSON.parse(m) as Record<string, unknown>;
                for (const f of required) assert.ok(f in obj, `${f} missing in ${m}`);
                for (const f of Object.keys(obj))
                    assert.ok(allowed.has(f), `unexpected field ${f}`);
            }
            const again = sampleMessages(spec, 200, { seed: 7, startMs: Date.UTC(2026, 10, 1) });
            // UUIDs are random by design; everything else repeats.
            const strip = (s: string) =>
                s.replace(
                    /"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"/g,
                    '"uuid"',
                );
            assert.deepEqual(again.map(strip), messages.map(strip));
        });
    }

    it("dotted sources become nested objects", () => {
        const { spec } = validateStream(
            {
                name: "n",
                topic: { name: "n" },
                columns: [
                    { name: "id", type: "UInt64" },
                    { name: "uid", type: "UInt32", source: "user.id", required: true },
                    { name: "city", type: "String", source: "user.address.city" },
                    { name: "dotted", type: "String", source: "a\\.b" },
                ],
                orderBy: ["id"],
            },
            "n.yaml",
        );
        for (const m of sampleMessages(spec, 20, { seed: 3 })) {
            const obj = JSON.parse(m) as {
                user: { id: unknown; address: { city: unknown } };
                "a.b": unknown;
            };
            assert.equal(typeof obj.user.id, "number", m);
            assert.equal(typeof obj.user.address.city, "string", m);
            assert.equal(typeof obj["a.b"], "string", m);
        }
    });

    it("every n-th message is malformed when asked", () => {
        const [stream] = loadStreams();
        const messages = sampleMessages(stream!.spec, 100, { malformedEvery: 10 });
        const broken = messages.filter((m) => {
            try {
                JSON.parse(m);
                return false;
            } catch {
                return true;
            }
        });
        assert.equal(broken.length, 10);
    });
});
