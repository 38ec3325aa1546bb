import * as pulumi from "@pulumi/pulumi";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { clickhouseSpec } from "../../components/clickhouse/clickhouse";
import { POD_ANNOTATIONS, statefulSet } from "../../components/clickhouse/manifests";
import { Recorded, mockPassword, ofType, runStack } from "./mocks";

/** The key of the pods' credentials checksum: generated like a password, stored in no Secret. */
const CHECKSUM_KEY = "clickhouse-credentials-checksum-key";

/** Every generated password the mocks hand out, by RandomPassword name. */
function generated(resources: { type: string; name: string }[]): string[] {
    return ofType(resources as never, "random:index/randomPassword:RandomPassword")
        .filter((r: { name: string }) => r.name !== CHECKSUM_KEY)
        .map((r: { name: string }) => mockPassword(r.name));
}

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

describe("no password in clear outside Secrets", () => {
    for (const stack of ["dev", "prod"]) {
        it(`${stack}: generated passwords reach Secrets and nothing else`, async () => {
            const { resources, outputs } = await runStack(stack);
            const passwords = generated(resources);
            // Kafka users (ClickHouse's, producers'), ClickHouse admin and read-only.
            for (const name of [
                "kafka-clickhouse-password",
                "clickhouse-admin-password",
                "clickhouse-readonly-password",
            ])
                assert.ok(passwords.includes(mockPassword(name)), `${name} is generated`);
            const key = mockPassword(CHECKSUM_KEY);
            assert.ok(
                ofType(resources, "random:index/randomPassword:RandomPassword").some(
                    (r) => r.name === CHECKSUM_KEY,
                ),
                "the checksum key is generated",
            );
            for (const r of resources)
                if (!r.type.startsWith("random:"))
                    assert.ok(!JSON.stringify(r.inputs).includes(key), `${r.name} holds the key`);

            // Positive control: the passwords do reach their Secrets, so the search below can find them.
            const secretsText = JSON.stringify(
                ofType(resources, "kubernetes:core/v1:Secret").map((s) => s.inputs),
            );
            for (const p of passwords)
                assert.ok(secretsText.includes(p), `password ${p} is stored in a Secret`);

            for (const r of resources) {
                if (r.type === "kubernetes:core/v1:Secret" || r.type.startsWith("random:"))
                    continue;
                const text = JSON.stringify(r.inputs);
                for (const p of passwords)
                    assert.ok(!text.includes(p), `${r.type} ${r.name} holds a password in clear`);
            }
            const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
            for (const c of sts!.inputs.spec.template.spec.containers) {
                for (const e of c.env) {
                    if (/PASSWORD/.test(e.name))
                        assert.equal(e.value, undefined, `${e.name} must come from a secretKeyRef`);
                    // ClickHouse users' passwords reach the pod only as their SHA-256.
                    const key = e.valueFrom?.secretKeyRef?.key as string | undefined;
                    if (key && /^(admin|readonly)-password/.test(key))
                        assert.match(key, /-sha256$/, `${e.name} reads the plaintext ${key}`);
                }
            }
            // No plaintext, no bare hash of a password in the pod template (a hash of a weak
            // password can be tested offline): the credentials checksum is keyed.
            const template = JSON.stringify(sts!.inputs.spec.template);
            for (const p of passwords) assert.ok(!template.includes(sha256(p)), "a password hash");
            const outText = JSON.stringify(outputs);
            for (const p of passwords)
                assert.ok(!outText.includes(p), "stack outputs hold no password");
        });
    }

    it("a password set in stack config is kept secret and only lands in a Secret", async () => {
        const admin = "configured-admin-pw-93b1";
        const external = "configured-kafka-pw-1c0d";
        const { resources, outputs } = await runStack(
            "dev",
            { kafkaMode: "external", kafkaExternalBootstrap: "k:9093", kafkaExternalUsername: "u" },
            {
                clickhouseAdminPassword: pulumi.secret(admin),
                kafkaExternalPassword: pulumi.secret(external),
            },
        );
        for (const r of resources) {
            if (r.type === "kubernetes:core/v1:Secret" || r.type === "pulumi:providers:kafka")
                continue;
            const text = JSON.stringify(r.inputs);
            assert.ok(
                !text.includes(admin) && !text.includes(external),
                `${r.type} ${r.name} holds a configured password`,
            );
        }
        assert.ok(!JSON.stringify(outputs).includes(admin));
        const secretText = JSON.stringify(
            ofType(resources, "kubernetes:core/v1:Secret").map((s) => s.inputs),
        );
        assert.ok(secretText.includes(admin) && secretText.includes(external));
    });
});

/** What a rotation changes: the Secret's hash keys and the pod-template annotations. */
async function clickhouseState(admin: string): Promise<{
    secret: Record<string, string>;
    annotations: Record<string, string>;
}> {
    const { resources } = await runStack(
        "dev",
        {},
        { clickhouseAdminPassword: pulumi.secret(admin) },
    );
    const credentials = ofType(resources, "kubernetes:core/v1:Secret").find(
        (s: Recorded) => s.name === "clickhouse-credentials",
    )!;
    const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
    // Secret-wrapped under the mocks: { <signature>: ..., value }.
    const data = credentials.inputs.stringData;
    return {
        secret: data.value ?? data,
        annotations: sts!.inputs.spec.template.metadata.annotations,
    };
}

describe("password rotation (issue 12, acceptance 4)", () => {
    it("a new admin password changes the Secret's hash and the pods' credentials checksum, nothing else", async () => {
        const before = await clickhouseState("admin-pw-before-5e1a");
        const same = await clickhouseState("admin-pw-before-5e1a");
        const after = await clickhouseState("admin-pw-after-9c2b");

        assert.equal(before.secret["admin-password"], "admin-pw-before-5e1a");
        assert.equal(before.secret["admin-password-sha256"], sha256("admin-pw-before-5e1a"));
        assert.equal(after.secret["admin-password-sha256"], sha256("admin-pw-after-9c2b"));
        assert.equal(
            after.secret["readonly-password-sha256"],
            sha256(mockPassword("clickhouse-readonly-password")),
        );

        const checksum = POD_ANNOTATIONS.credentialsChecksum;
        // A plain string: the StatefulSet is not made secret by it.
        assert.match(before.annotations[checksum]!, /^[0-9a-f]{32}$/);
        assert.equal(same.annotations[checksum], before.annotations[checksum], "stable");
        assert.notEqual(
            after.annotations[checksum],
            before.annotations[checksum],
            "rolls the pods",
        );
        assert.equal(
            after.annotations[POD_ANNOTATIONS.configHash],
            before.annotations[POD_ANNOTATIONS.configHash],
            "the ConfigMaps do not change: they name the variables, not the values",
        );
        for (const value of Object.values(after.annotations)) {
            assert.ok(!sha256("admin-pw-after-9c2b").startsWith(value), "not the bare hash");
            assert.ok(!value.includes("admin-pw-after-9c2b"));
        }
    });

    it("a new Kafka SASL password (external mode) rolls the pods too", async () => {
        const checksum = async (password: string) => {
            const { resources } = await runStack(
                "dev",
                {
                    kafkaMode: "external",
                    kafkaExternalBootstrap: "k:9093",
                    kafkaExternalUsername: "u",
                },
                {
                    clickhouseAdminPassword: pulumi.secret("admin-pw-fixed-01"),
                    kafkaExternalPassword: pulumi.secret(password),
                },
            );
            const [sts] = ofType(resources, "kubernetes:apps/v1:StatefulSet");
            const env = sts!.inputs.spec.template.spec.containers[0].env as Array<{
                name: string;
            }>;
            assert.ok(
                env.some((e) => e.name === "KAFKA_SASL_PASSWORD"),
                "the pod reads it",
            );
            return sts!.inputs.spec.template.metadata.annotations[
                POD_ANNOTATIONS.credentialsChecksum
            ] as string;
        };
        const before = await checksum("kafka-pw-before-71");
        assert.equal(await checksum("kafka-pw-before-71"), before);
        assert.notEqual(await checksum("kafka-pw-after-72"), before);
    });

    it("the config hash covers users.d: a renamed user rolls the pods", () => {
        const refs = {
            serviceAccount: "sa",
            credentialsSecret: "creds",
            configMap: "config",
            usersConfigMap: "users",
            headlessService: "headless",
            credentialsChecksum: "c",
        };
        const hash = (readonlyUser?: string) => {
            const args = {
                namespace: "ns",
                image: "clickhouse/clickhouse-server:26.3.9",
                storage: { ephemeral: true } as const,
                cpu: "1",
                memory: "1Gi",
                database: "ingest",
                ...(readonlyUser ? { readonlyUser } : {}),
            };
            const sts = statefulSet(clickhouseSpec("ch", args), refs);
            return (sts.spec as { template: { metadata: { annotations: Record<string, string> } } })
                .template.metadata.annotations[POD_ANNOTATIONS.configHash];
        };
        assert.equal(hash(), hash("reader"), "reader is the default");
        assert.notEqual(hash(), hash("analyst"));
    });
});
