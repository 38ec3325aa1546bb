import * as pulumi from "@pulumi/pulumi";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mockPassword, ofType, runStack } from "./mocks";

/** Every generated password the mocks hand out, by RandomPassword name. */
function generated(resources: { type: string; name: string }[]): string[] {
    return ofType(resources as never, "random:index/randomPassword:RandomPassword").map(
        (r: { name: string }) => mockPassword(r.name),
    );
}

describe("no password in clear outside Secrets", () => {
    for (const stack of ["dev", "prod"]) {
        it(`${stack}: generated passwords reach Secrets and nothing else`, async () => {
            const { resources, outputs } = await runStack(stack);
            const passwords = generated(resources);
            assert.equal(passwords.length, 3, "Kafka user, ClickHouse admin and read-only");

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
                }
            }
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
