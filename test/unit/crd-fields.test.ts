/**
 * The API server keeps only the fields a CRD's structural schema declares and drops the rest
 * without a word; JSON Schema validation (crds.test.ts) accepts them. So every field the stack
 * sets on a Strimzi CR (metadataVersion, the security templates) must be declared in the real
 * 1.2.0 schema, or it would silently do nothing.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { strimziCrdDir } from "../../runtime/strimzi";
import { runStack } from "./mocks";

type Schema = {
    properties?: Record<string, Schema>;
    items?: Schema;
    additionalProperties?: Schema | boolean;
    "x-kubernetes-preserve-unknown-fields"?: boolean;
};

function specSchemas(): Map<string, Schema> {
    const dir = strimziCrdDir();
    const out = new Map<string, Schema>();
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
        const crd = YAML.parse(fs.readFileSync(path.join(dir, file), "utf8"));
        const v1 = crd.spec.versions.find((v: { name: string }) => v.name === "v1");
        out.set(crd.spec.names.kind, v1.schema.openAPIV3Schema.properties.spec);
    }
    return out;
}

/** Paths of `value` the schema does not declare (what the API server would prune). */
function undeclared(schema: Schema, value: unknown, at: string): string[] {
    if (schema["x-kubernetes-preserve-unknown-fields"]) return [];
    if (Array.isArray(value))
        return schema.items
            ? value.flatMap((v, i) => undeclared(schema.items!, v, `${at}[${i}]`))
            : [];
    if (value === null || typeof value !== "object") return [];
    return Object.entries(value).flatMap(([key, v]) => {
        const child =
            schema.properties?.[key] ??
            (typeof schema.additionalProperties === "object"
                ? schema.additionalProperties
                : undefined);
        if (child) return undeclared(child, v, `${at}.${key}`);
        return schema.additionalProperties === true ? [] : [`${at}.${key}`];
    });
}

describe("every field set on a Strimzi CR is declared in its 1.2.0 schema", () => {
    const schemas = specSchemas();

    it("the check finds an undeclared field (it can fail)", () => {
        const kafka = schemas.get("Kafka")!;
        assert.deepEqual(
            undeclared(kafka, { kafka: { metadataVersio: "4.3-IV0", version: "4.3.1" } }, "spec"),
            ["spec.kafka.metadataVersio"],
        );
        assert.deepEqual(
            undeclared(
                kafka,
                {
                    kafka: {
                        template: { kafkaContainer: { securityContext: { runAsNonRot: true } } },
                    },
                },
                "spec",
            ),
            ["spec.kafka.template.kafkaContainer.securityContext.runAsNonRot"],
        );
    });

    for (const stack of ["dev", "prod"]) {
        it(`${stack}: nothing would be pruned`, async () => {
            const { resources } = await runStack(stack);
            const crs = resources.filter((r) => r.type.startsWith("kubernetes:kafka.strimzi.io/"));
            assert.ok(crs.some((r) => r.type.endsWith(":Kafka")));
            for (const r of crs) {
                const kind = r.type.split(":").pop()!;
                assert.deepEqual(undeclared(schemas.get(kind)!, r.inputs.spec, "spec"), [], r.name);
            }
        });
    }
});
