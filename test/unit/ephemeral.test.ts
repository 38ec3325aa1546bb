import Ajv from "ajv";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import type { StreamHealth } from "../../components/ingestion";
import { loadStreams } from "../../schemas/loader";
import {
    changesIn,
    createdAt,
    ephemeralStackName,
    ephemeralStacks,
    ingestionProblems,
    producerUserManifest,
    stacksToSweep,
} from "../../scripts/ephemeral";
import { strimziCrdDir } from "../../runtime/strimzi";
import { ROOT } from "./mocks";

const STREAMS = loadStreams(path.join(ROOT, "schemas/streams")).map((s) => s.spec);

function health(stream: string, h: Partial<StreamHealth>): StreamHealth {
    return {
        stream,
        assignedPartitions: 0,
        recentExceptions: [],
        rowsIngested: 0,
        rowsRejected: 0,
        consumers: [],
        ...h,
    };
}

describe("scripts/ephemeral.ts: stack names, sweeping, drift", () => {
    it("a stack name carries its creation time, read back to the millisecond", () => {
        const at = Date.UTC(2026, 11, 1, 6, 30);
        const name = ephemeralStackName("pr12-", at);
        assert.match(name, /^pr12-[0-9a-z]+-[0-9a-f]{4}$/);
        assert.equal(createdAt(name, "pr12-")?.getTime(), at);
        assert.equal(createdAt(`org/project/${name}`, "pr12-")?.getTime(), at);
        assert.equal(createdAt(name, "pr13-"), undefined);
        assert.equal(createdAt("pr12-dev", "pr12-"), undefined);
    });

    it("the sweeper picks the prefix's stacks older than the limit, and only those", () => {
        const now = new Date();
        const hoursAgo = (h: number) => now.getTime() - h * 3_600_000;
        const stacks = [
            { name: ephemeralStackName("pr1-", hoursAgo(30)) },
            { name: ephemeralStackName("pr2-", hoursAgo(2)) },
            { name: ephemeralStackName("ci-", hoursAgo(48)) },
            { name: "pr-handmade", lastUpdate: new Date(hoursAgo(25)).toISOString() },
            { name: "pr-fresh-handmade", lastUpdate: new Date(hoursAgo(1)).toISOString() },
            { name: "prod", lastUpdate: new Date(hoursAgo(100)).toISOString() },
            { name: "pr-never-updated" },
        ];
        // Hand-made stacks are never swept, however old: "pr" must not reach "prod".
        assert.deepEqual(stacksToSweep(stacks, "pr", 24, now), [stacks[0]!.name]);
        assert.deepEqual(ephemeralStacks(stacks, "pr2-"), [stacks[1]!.name]);
        assert.deepEqual(ephemeralStacks(stacks, "pr"), [stacks[0]!.name, stacks[1]!.name]);
    });

    for (const [summary, want] of [
        [{ same: 40 }, []],
        [{ same: 39, update: 1 }, ["update: 1"]],
        [{ create: 2, delete: 0, same: 3 }, ["create: 2"]],
        [undefined, []],
    ] as const) {
        it(`changes in ${JSON.stringify(summary)}: ${JSON.stringify(want)}`, () => {
            assert.deepEqual(changesIn(summary), want);
        });
    }
});

describe("scripts/ephemeral.ts: the ingestion checks", () => {
    const all = (h: Partial<StreamHealth>) =>
        STREAMS.map((s) => health(s.name, { assignedPartitions: s.topic.partitions, ...h }));

    it("passes when every partition is assigned, every event is a row and none a dead letter", () => {
        assert.deepEqual(ingestionProblems(STREAMS, all({ rowsIngested: 200 }), 200, true), []);
    });

    it("reports unassigned partitions with the consumer's exception", () => {
        const h = all({ rowsIngested: 200 });
        const web = STREAMS.find((s) => s.name === "web_events")!;
        h[STREAMS.indexOf(web)] = health(web.name, {
            assignedPartitions: 0,
            lastException: "SASL authentication failed",
            rowsIngested: 200,
        });
        assert.deepEqual(ingestionProblems(STREAMS, h, 200, true), [
            `web_events: 0 of ${web.topic.partitions} partitions assigned (last exception: SASL authentication failed)`,
        ]);
    });

    it("a dead letter from a valid event fails, and so do missing rows at the end", () => {
        const problems = ingestionProblems(
            STREAMS,
            all({ rowsIngested: 150, rowsRejected: 1 }),
            200,
            true,
        );
        for (const s of STREAMS) {
            assert.ok(problems.includes(`${s.name}: 1 valid events became dead letters`));
            if (s.engine.type !== "ReplacingMergeTree")
                assert.ok(problems.includes(`${s.name}: 150 rows of 200 events`), s.name);
        }
        // Before the end, rows still arriving are not a problem.
        assert.ok(ingestionProblems(STREAMS, all({ rowsIngested: 150 }), 200, false).length === 0);
    });

    it("a deduplicating target needs rows, not all of them", () => {
        const orders = STREAMS.find((s) => s.engine.type === "ReplacingMergeTree");
        assert.ok(orders, "a shipped stream uses ReplacingMergeTree");
        const h = all({ rowsIngested: 200 });
        h[STREAMS.indexOf(orders)] = health(orders.name, {
            assignedPartitions: orders.topic.partitions,
            rowsIngested: 180,
        });
        assert.deepEqual(ingestionProblems(STREAMS, h, 200, true), []);
        h[STREAMS.indexOf(orders)] = health(orders.name, {
            assignedPartitions: orders.topic.partitions,
            rowsIngested: 0,
        });
        assert.deepEqual(ingestionProblems(STREAMS, h, 200, true), [
            `${orders.name}: 0 rows of 200 events`,
        ]);
    });
});

describe("scripts/ephemeral.ts: the producer's KafkaUser", () => {
    const crd = YAML.parse(
        fs.readFileSync(path.join(strimziCrdDir(), "044-Crd-kafkauser.yaml"), "utf8"),
    );
    const schema = crd.spec.versions.find((v: { name: string }) => v.name === "v1").schema
        .openAPIV3Schema;
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

    it("is a valid Strimzi 1.2 KafkaUser that may write the streams' topics only", () => {
        const m = producerUserManifest("pr1-x", "events", ["web.events", "shop.orders"]);
        assert.ok(validate(m), JSON.stringify(validate.errors));
        const spec = m.spec as {
            authorization: { acls: { resource: { name: string }; operations: string[] }[] };
        };
        assert.deepEqual(
            spec.authorization.acls.map((a) => [a.resource.name, a.operations]),
            [
                ["web.events", ["Write", "Describe"]],
                ["shop.orders", ["Write", "Describe"]],
            ],
        );
    });

    it("the schema check can fail", () => {
        const m = producerUserManifest("ns", "events", ["t"]);
        (m.spec as { authentication: { type: string } }).authentication.type = "scram-sha-1";
        assert.equal(validate(m), false);
    });
});
