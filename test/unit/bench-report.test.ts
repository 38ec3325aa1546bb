/**
 * The benchmark's sentences are computed from its figures (issue 14): the batched case's reading
 * of where the CPU per row goes says what the two figures say, whichever way they fall.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { perMessageShare } from "../../bench/index";

describe("benchmark report sentences", () => {
    it("says the cost goes with the number of messages only when batching removes most of it", () => {
        assert.equal(
            perMessageShare(10.5, 2.4),
            ", so 77% of the CPU per row (8.1 us) goes with the number of Kafka messages",
        );
        assert.equal(
            perMessageShare(5, 4),
            ", so only 20% of the CPU per row goes with the number of Kafka messages: most of it is per row",
        );
        assert.equal(
            perMessageShare(3, 4),
            ", so only 0% of the CPU per row goes with the number of Kafka messages: most of it is per row",
        );
        assert.equal(perMessageShare(undefined, 2), "");
    });
});
