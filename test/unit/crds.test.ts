import Ajv from "ajv";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { ROOT, Recorded, runStack } from "./mocks";

/** The Strimzi 1.2.0 CRDs shipped as fixtures beside the repository. */
const CRD_DIR = path.resolve(ROOT, "..", "shared", "fixtures", "strimzi-1.2.0", "crds");

/** kind -> validator of the whole object (apiVersion, kind, metadata, spec) for the served v1 version. */
function loadValidators(): Map<string, (doc: unknown) => string[]> {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const out = new Map<string, (doc: unknown) => string[]>();
    for (const file of fs.readdirSync(CRD_DIR).filter((f) => f.endsWith(".yaml"))) {
        const crd = YAML.parse(fs.readFileSync(path.join(CRD_DIR, file), "utf8"));
        const version = crd.spec.versions.find(
            (v: { name: string; served: boolean }) => v.name === "v1" && v.served,
        );
        assert.ok(version, `${file} serves kafka.strimzi.io/v1`);
        const schema = version.schema.openAPIV3Schema;
        const validate = ajv.compile(schema);
        out.set(crd.spec.names.kind, (doc) =>
            validate(doc)
                ? []
                : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`),
        );
    }
    return out;
}

function manifestOf(r: Recorded): Record<string, unknown> {
    const { apiVersion, kind, metadata, spec } = r.inputs;
    return { apiVersion, kind, metadata, spec };
}

describe("Strimzi resources validate against the real 1.2.0 CRD schemas", () => {
    const validators = loadValidators();

    it("the fixtures provide every kind the stack emits", () => {
        for (const kind of ["Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"])
            assert.ok(validators.has(kind), kind);
    });

    it("a broken resource is rejected (the validator can fail)", () => {
        const errors = validators.get("KafkaUser")!({
            apiVersion: "kafka.strimzi.io/v1",
            kind: "KafkaUser",
            metadata: { name: "x" },
            spec: { authentication: { type: "scram-sha-1" } },
        });
        assert.ok(
            errors.some((e) => e.includes("/spec/authentication/type")),
            errors.join("; "),
        );
    });

    for (const stack of ["dev", "prod"]) {
        it(`${stack}: every Strimzi CR is valid`, async () => {
            const { resources } = await runStack(stack);
            const crs = resources.filter((r) => r.type.startsWith("kubernetes:kafka.strimzi.io/"));
            assert.ok(
                crs.length >= 6,
                `expected Kafka, pools, topics and a user; got ${crs.length}`,
            );
            for (const r of crs) {
                const kind = r.type.split(":").pop()!;
                const errors = validators.get(kind)!(manifestOf(r));
                assert.deepEqual(errors, [], `${kind} ${r.name}: ${errors.join("; ")}`);
            }
        });
    }
});
