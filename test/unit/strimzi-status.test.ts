import fc from "fast-check";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
    CustomResource,
    assignNodeIds,
    desiredAcls,
    kafkaReadyStatus,
    nodePoolStatus,
    sameStatus,
    userFailedStatus,
} from "../../runtime/strimzi-status";

const pool = (name: string, replicas: number, nodeIds?: number[]): CustomResource => ({
    metadata: { name, namespace: "ns", generation: 2 },
    spec: { replicas, roles: ["broker", "controller"] },
    ...(nodeIds ? { status: { nodeIds } } : {}),
});

describe("the Strimzi stand-in's status contract (pure part)", () => {
    it("a node pool's status never has a Ready condition, nor any condition without warnings", () => {
        const status = nodePoolStatus({
            pool: pool("dual-role", 1),
            cluster: "events",
            nodeIds: [0],
            clusterId: "abc",
        });
        assert.deepEqual(status, {
            observedGeneration: 2,
            nodeIds: [0],
            clusterId: "abc",
            roles: ["controller", "broker"],
            replicas: 1,
            labelSelector:
                "strimzi.io/cluster=events,strimzi.io/name=events-kafka,strimzi.io/kind=Kafka,strimzi.io/pool-name=dual-role",
        });
    });

    it("node ids: unique, one per replica, and a pool keeps its ids while its size holds", () => {
        fc.assert(
            fc.property(
                fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }),
                (sizes) => {
                    const first = assignNodeIds(sizes.map((n, i) => pool(`p${i}`, n)));
                    const all = [...first.values()].flat();
                    assert.equal(new Set(all).size, all.length);
                    sizes.forEach((n, i) => assert.equal(first.get(`p${i}`)!.length, n));
                    const again = assignNodeIds(
                        sizes.map((n, i) => pool(`p${i}`, n, first.get(`p${i}`))),
                    );
                    assert.deepEqual(again, first);
                },
            ),
        );
    });

    it("Kafka Ready carries listeners and the node pools; a failed user is NotReady, never Ready False", () => {
        const kafka: CustomResource = {
            metadata: { name: "events", namespace: "ns", generation: 3 },
            spec: { kafka: { listeners: [{ name: "tls", port: 9093, tls: true }] } },
        };
        const s = kafkaReadyStatus({
            kafka,
            pools: [pool("b", 1), pool("a", 1)],
            clusterId: "x",
            caCertificate: "PEM",
            now: "t",
        }) as any;
        assert.deepEqual(s.conditions, [
            { type: "Ready", status: "True", lastTransitionTime: "t" },
        ]);
        assert.equal(s.observedGeneration, 3);
        assert.deepEqual(s.listeners, [
            {
                name: "tls",
                addresses: [{ host: "events-kafka-bootstrap.ns.svc", port: 9093 }],
                bootstrapServers: "events-kafka-bootstrap.ns.svc:9093",
                certificates: ["PEM"],
            },
        ]);
        assert.deepEqual(s.kafkaNodePools, [{ name: "a" }, { name: "b" }]);
        const failed = userFailedStatus(kafka, "InvalidResourceException", "no secret", "t") as any;
        assert.deepEqual(
            failed.conditions.map((c: any) => [c.type, c.status]),
            [["NotReady", "True"]],
        );
    });

    it("ACL rules expand to one binding per operation; the status diff ignores transition times", () => {
        const user: CustomResource = {
            metadata: { name: "u", namespace: "ns" },
            spec: {
                authorization: {
                    type: "simple",
                    acls: [
                        {
                            resource: { type: "topic", name: "t" },
                            operations: ["Read", "Describe"],
                        },
                    ],
                },
            },
        };
        assert.deepEqual(
            desiredAcls(user).map((a) => [
                a.resourceName,
                a.operation,
                a.patternType,
                a.host,
                a.permission,
            ]),
            [
                ["t", "Read", "literal", "*", "allow"],
                ["t", "Describe", "literal", "*", "allow"],
            ],
        );
        assert.ok(
            sameStatus(
                { conditions: [{ type: "Ready", lastTransitionTime: "a" }] },
                { conditions: [{ type: "Ready", lastTransitionTime: "b" }] },
            ),
        );
        assert.ok(!sameStatus({ observedGeneration: 1 }, { observedGeneration: 2 }));
    });
});
