import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../../infra/config";
import { destroyImpact } from "../../infra/destroy";
import { runStack, stackFileConfig } from "./mocks";

const config = (overrides: Record<string, string>) =>
    parseConfig({ ...stackFileConfig("dev"), ...overrides }, "dev");

describe("what pulumi destroy deletes (the onDestroy output)", () => {
    const cases: Array<{
        name: string;
        overrides: Record<string, string>;
        deleted: RegExp[];
        kept: RegExp[];
        blocked: boolean;
    }> = [
        {
            name: "own namespace: everything in it goes, target tables too, whatever retention says",
            overrides: { createNamespace: "true", clickhouseEphemeralStorage: "false" },
            deleted: [
                /^namespace .* ClickHouse data volumes \(PVCs\) and the Kafka volumes/,
                /^Kafka topics and their messages: the Topic Operator/,
                /^target and dead-letter tables: not dropped .* live on the data that goes/,
            ],
            kept: [],
            blocked: false,
        },
        {
            name: "shared namespace, Retain: the ClickHouse volumes and the target tables stay",
            overrides: {
                createNamespace: "false",
                clickhouseEphemeralStorage: "false",
                kafkaEphemeralStorage: "false",
            },
            deleted: [/^Kafka topics/, /^ClickHouse Kafka tables and materialized views/],
            kept: [
                /^ClickHouse data volumes \(PVCs\): persistentVolumeClaimRetentionPolicy Retain/,
                /^Kafka volumes \(node pools use deleteClaim: false\)/,
                /^target and dead-letter tables \(dropTargetOnDelete: false\)/,
            ],
            blocked: false,
        },
        {
            name: "shared namespace, Delete and dropTargetOnDelete: the data goes",
            overrides: {
                createNamespace: "false",
                clickhouseEphemeralStorage: "false",
                clickhouseVolumeRetention: "Delete",
                dropTargetOnDelete: "true",
            },
            deleted: [/clickhouseVolumeRetention: Delete/, /dropTargetOnDelete: true/],
            kept: [],
            blocked: false,
        },
        {
            name: "protectData: destroy stops before the data",
            overrides: { protectData: "true" },
            deleted: [],
            kept: [],
            blocked: true,
        },
    ];

    for (const c of cases) {
        it(c.name, () => {
            const impact = destroyImpact(config(c.overrides));
            for (const re of c.deleted)
                assert.ok(
                    impact.deleted.some((l) => re.test(l)),
                    `${re}: ${impact.deleted.join(" | ")}`,
                );
            for (const re of c.kept)
                assert.ok(
                    impact.kept.some((l) => re.test(l)),
                    `${re}: ${impact.kept.join(" | ")}`,
                );
            assert.equal(impact.blockedBy !== undefined, c.blocked);
            // Nothing is both deleted and kept.
            for (const k of impact.kept) assert.ok(!impact.deleted.includes(k));
        });
    }

    it("is a stack output, so every preview shows it", async () => {
        const { outputs } = await runStack("prod");
        const impact = outputs.onDestroy as ReturnType<typeof destroyImpact>;
        assert.match(impact.blockedBy ?? "", /^protectData: true protects the namespace/);
        assert.ok(impact.kept.some((l) => /^Strimzi CRDs/.test(l)));
    });
});
