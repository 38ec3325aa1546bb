import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfigError, configSchema, destructiveAllowance, parseConfig } from "../../infra/config";
import { kraftMetadataVersion } from "../../components/kafka/manifests";
import { VERSION_DEFAULTS } from "../../schemas/naming";
import { GENERATED } from "../../scripts/generate";
import { ROOT, stackFileConfig } from "./mocks";

function errorOf(fn: () => unknown): ConfigError {
    try {
        fn();
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
        return e;
    }
    assert.fail("expected a ConfigError");
}

describe("stack config", () => {
    it("the shipped stack files parse", () => {
        const dev = parseConfig(stackFileConfig("dev"), "dev");
        assert.equal(dev.kafkaBrokers, 1);
        assert.equal(dev.kafkaControllers, 0);
        assert.equal(dev.kafkaPlainListener, true);
        const prod = parseConfig(stackFileConfig("prod"), "prod");
        assert.equal(prod.kafkaBrokers, 3);
        assert.equal(prod.kafkaControllers, 3);
        assert.equal(prod.clickhouseImage, "clickhouse/clickhouse-server:26.3.9");
        assert.equal(prod.kafkaMetadataVersion, "4.3-IV0");
        assert.equal(prod.clickhouseSystemLogTtlDays, 7);
    });

    it("prod sizes its controllers below its brokers", () => {
        const prod = parseConfig(stackFileConfig("prod"), "prod");
        const bytes = (q: string) => Number(q.replace(/Gi$/, "")) * 2 ** 30;
        const cores = (q: string) => (q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q));
        assert.ok(cores(prod.kafkaControllerCpu) < cores(prod.kafkaBrokerCpu));
        assert.ok(bytes(prod.kafkaControllerMemory) < bytes(prod.kafkaBrokerMemory));
        assert.ok(bytes(prod.kafkaControllerStorageSize) < bytes(prod.kafkaStorageSize));
    });

    it("the default metadata version is the one the default Kafka version starts with", () => {
        const cfg = parseConfig({}, "dev");
        assert.equal(cfg.kafkaVersion, VERSION_DEFAULTS.kafka);
        assert.equal(cfg.kafkaMetadataVersion, kraftMetadataVersion(VERSION_DEFAULTS.kafka));
        assert.equal(cfg.clickhouseSystemLogTtlDays, 7);
        assert.equal(
            parseConfig({ clickhouseSystemLogTtlDays: "0" }, "dev").clickhouseSystemLogTtlDays,
            0,
        );
        // An older metadata version under a newer Kafka is the middle of an upgrade: allowed.
        assert.equal(
            parseConfig({ kafkaVersion: "4.3.1", kafkaMetadataVersion: "4.2-IV1" }, "dev")
                .kafkaMetadataVersion,
            "4.2-IV1",
        );
    });

    const cases: Array<[string, Record<string, string>, RegExp]> = [
        [
            "unknown key, with a suggestion",
            { kafkaBroker: "3" },
            /kafka-clickhouse-stack:kafkaBroker: unknown key; did you mean 'kafkaBrokers'\?/,
        ],
        [
            "wrong type",
            { kafkaBrokers: "three" },
            /kafka-clickhouse-stack:kafkaBrokers: .*number.* \(got "three"\)/,
        ],
        [
            "bad boolean",
            { kafkaMetrics: "yes" },
            /kafka-clickhouse-stack:kafkaMetrics: .*boolean.* \(got "yes"\)/,
        ],
        [
            "bad enum",
            { kafkaMode: "msk" },
            /kafka-clickhouse-stack:kafkaMode: .*"strimzi".*"external"/,
        ],
        [
            "bad quantity",
            { clickhouseMemory: "4 GB" },
            /kafka-clickhouse-stack:clickhouseMemory: must be a Kubernetes quantity/,
        ],
        [
            "even quorum",
            { kafkaControllers: "2" },
            /kafkaControllers: 2 controllers .* use an odd number/,
        ],
        [
            "external without bootstrap",
            { kafkaMode: "external" },
            /kafkaExternalBootstrap: required when kafkaMode is 'external'/,
        ],
        [
            "credentials in the URL",
            { ingestionConnection: "url", ingestionUrl: "https://admin:pw@ch:8443" },
            /ingestionUrl: must not carry credentials/,
        ],
        [
            "a DDL user without the Secret of its password",
            { ingestionUser: "preview" },
            /ingestionPasswordSecret: set ingestionUser and ingestionPasswordSecret together/,
        ],
        [
            "a password Secret without its DDL user",
            { ingestionPasswordSecret: "clickhouse-preview" },
            /ingestionUser: set ingestionUser and ingestionPasswordSecret together/,
        ],
        [
            "an unknown destructive change kind",
            { allowDestructiveChangeKinds: "ttl,dropEverything" },
            /allowDestructiveChangeKinds: a comma-separated list of dropColumn, retypeColumn, rebuildTable, dropTable, ttl \(got "ttl,dropEverything"\)/,
        ],
        [
            "a negative system log TTL",
            { clickhouseSystemLogTtlDays: "-1" },
            /kafka-clickhouse-stack:clickhouseSystemLogTtlDays: .*>=0.* \(got "-1"\)/,
        ],
        [
            "a fractional system log TTL",
            { clickhouseSystemLogTtlDays: "1.5" },
            /kafka-clickhouse-stack:clickhouseSystemLogTtlDays: .*int.* \(got "1.5"\)/,
        ],
        [
            "a malformed metadata version",
            { kafkaMetadataVersion: "latest" },
            /kafkaMetadataVersion: must be a KRaft metadata version such as 4.3-IV0 \(got "latest"\)/,
        ],
        [
            "a metadata version newer than the Kafka version",
            { kafkaVersion: "4.2.0", kafkaMetadataVersion: "4.3-IV0" },
            /kafkaMetadataVersion: 4.3-IV0 is from a later release than kafkaVersion 4.2.0; use 4.2-IV1 or lower/,
        ],
        [
            "a bad controller quantity",
            { kafkaControllerMemory: "2 GB" },
            /kafkaControllerMemory: must be a Kubernetes quantity/,
        ],
        [
            "crd path missing",
            { strimziCrdSource: "path" },
            /strimziCrdPath: required when strimziCrdSource is 'path'/,
        ],
        [
            "a plain http:// URL without ingestionAllowInsecureHttp",
            { ingestionConnection: "url", ingestionUrl: "http://ch.db.svc:8123" },
            /ingestionUrl: http:\/\/ch\.db\.svc:8123 is plain http:\/\/, .*use https:\/\/ \(and clickhouseTls\), or set ingestionAllowInsecureHttp to true/,
        ],
        [
            "TLS from a Secret without its name",
            { clickhouseTls: "secret" },
            /clickhouseTlsSecret: required when clickhouseTls is 'secret'/,
        ],
        [
            "TLS from cert-manager without an issuer",
            { clickhouseTls: "cert-manager" },
            /clickhouseTlsIssuer: required when clickhouseTls is 'cert-manager'/,
        ],
        [
            "an unknown TLS source",
            { clickhouseTls: "on" },
            /clickhouseTls: .*"off".*"secret".*"cert-manager"/,
        ],
    ];
    for (const [title, raw, message] of cases) {
        it(`rejects ${title}, naming the key and the stack`, () => {
            const e = errorOf(() => parseConfig(raw, "staging"));
            assert.match(e.message, /invalid configuration for stack 'staging'/);
            assert.match(e.message, message);
        });
    }

    it("allowDestructiveChanges allows all; allowDestructiveChangeKinds allows some; neither allows none", () => {
        assert.equal(
            destructiveAllowance(parseConfig({ allowDestructiveChanges: "true" }, "dev")),
            true,
        );
        assert.deepEqual(
            destructiveAllowance(
                parseConfig({ allowDestructiveChangeKinds: "ttl, dropColumn" }, "dev"),
            ),
            ["ttl", "dropColumn"],
        );
        assert.equal(destructiveAllowance(parseConfig({}, "dev")), false);
    });

    it("accepts http:// with ingestionAllowInsecureHttp, and https:// without it", () => {
        const url = { ingestionConnection: "url", ingestionUrl: "http://127.0.0.1:8123" };
        assert.equal(
            parseConfig({ ...url, ingestionAllowInsecureHttp: "true" }, "dev")
                .ingestionAllowInsecureHttp,
            true,
        );
        assert.equal(
            parseConfig({ ...url, ingestionUrl: "https://ch.db.svc:8443" }, "dev").ingestionUrl,
            "https://ch.db.svc:8443",
        );
    });

    it("reports every problem at once", () => {
        const e = errorOf(() => parseConfig({ kafkaBroker: "1", clickhouseReplicas: "x" }, "dev"));
        assert.equal(e.problems.length, 2);
    });

    it("Pulumi.yaml declares exactly the keys of the schema", () => {
        const text = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
        for (const key of Object.keys(configSchema.shape))
            assert.match(text, new RegExp(`^  ${key}:$`, "m"), key);
    });

    it("generated files are up to date (npm run generate)", () => {
        for (const [file, make] of Object.entries(GENERATED)) {
            assert.equal(
                fs.readFileSync(path.join(ROOT, file), "utf8"),
                make(),
                `${file} is stale: run npm run generate`,
            );
        }
    });

    it("the local runtime runs the versions the stack deploys by default (tools/*/pom.xml)", () => {
        const pinned = (file: string, tag: string) =>
            new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(
                fs.readFileSync(path.join(ROOT, file), "utf8"),
            )?.[1];
        // The broker the tests and the sandbox start, and the CRDs the tests check against.
        assert.equal(pinned("tools/kafka/pom.xml", "kafka.version"), VERSION_DEFAULTS.kafka);
        assert.equal(pinned("tools/strimzi/pom.xml", "strimzi.version"), VERSION_DEFAULTS.strimzi);
    });

    it("tool versions pinned in tools/versions.env match package.json", () => {
        // A missing pin file is a broken checkout: a failure, never a skip.
        assert.ok(
            fs.existsSync(path.join(ROOT, "tools/versions.env")),
            "tools/versions.env is not in this checkout: restore it (git checkout tools/versions.env)",
        );
        const env = Object.fromEntries(
            fs
                .readFileSync(path.join(ROOT, "tools/versions.env"), "utf8")
                .split("\n")
                .filter((l) => /^[A-Z_]+=/.test(l))
                .map((l) => l.split("=", 2) as [string, string]),
        );
        const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
        assert.equal(pkg.dependencies["@pulumi/pulumi"], env.PULUMI_VERSION);
        assert.equal(pkg.dependencies["@pulumi/kubernetes"], env.PULUMI_KUBERNETES_VERSION);
        assert.equal(pkg.dependencies["@pulumi/kafka"], env.PULUMI_KAFKA_VERSION);
        assert.equal(pkg.dependencies["@pulumi/random"], env.PULUMI_RANDOM_VERSION);
    });
});
