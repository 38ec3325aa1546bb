/**
 * tools/bootstrap.sh caches each tool under a key made of exactly the tools/versions.env pins its
 * build reads and its recipe (the functions that build it, and for the bridged providers the
 * tools/go files copied into the build). `--print-keys` prints those keys without building
 * anything; these tests change one input at a time in temporary copies and check which keys move.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { ROOT } from "./mocks";

const TOOLS = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "pulumi",
    "pulumi-language-nodejs",
    "pulumi-resource-kubernetes",
    "pulumi-resource-kafka",
    "pulumi-resource-random",
];
const KUBE = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"];
const BRIDGED = ["pulumi-resource-kafka", "pulumi-resource-random"];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-bootstrap-keys-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const VERSIONS = fs.readFileSync(path.join(ROOT, "tools", "versions.env"), "utf8");

/** Runs `bootstrap.sh --print-keys` of `toolsDir` with `versions` as its versions.env. */
function keys(versions = VERSIONS, toolsDir = path.join(ROOT, "tools")): Map<string, string> {
    const file = path.join(tmp, `versions-${Math.random().toString(36).slice(2)}.env`);
    fs.writeFileSync(file, versions);
    const out = execFileSync("bash", [path.join(toolsDir, "bootstrap.sh"), "--print-keys"], {
        encoding: "utf8",
        env: { ...process.env, KCS_VERSIONS_FILE: file },
    });
    return new Map(
        out
            .trim()
            .split("\n")
            .map((l) => l.split(" ") as [string, string]),
    );
}

/** The tools whose keys differ between two runs (the set key is reported separately). */
function changed(a: Map<string, string>, b: Map<string, string>): string[] {
    return TOOLS.filter((t) => a.get(t) !== b.get(t));
}

function withPin(name: string, value: string): string {
    const re = new RegExp(`^${name}=.*$`, "m");
    assert.match(VERSIONS, re, `${name} is not in tools/versions.env`);
    return VERSIONS.replace(re, `${name}=${value}`);
}

/** A copy of bootstrap.sh and tools/go to edit. */
function toolsCopy(): string {
    const dir = fs.mkdtempSync(path.join(tmp, "tools-"));
    fs.copyFileSync(path.join(ROOT, "tools", "bootstrap.sh"), path.join(dir, "bootstrap.sh"));
    fs.cpSync(path.join(ROOT, "tools", "go"), path.join(dir, "go"), { recursive: true });
    return dir;
}

describe("tools/bootstrap.sh cache keys", () => {
    const base = keys();

    it("prints one 16-hex key per tool and one for the set", () => {
        assert.deepEqual([...base.keys()], [...TOOLS, "set"]);
        for (const [tool, key] of base) assert.match(key, /^[0-9a-f]{16}$/, tool);
        assert.equal(new Set(base.values()).size, base.size, "keys are distinct");
    });

    it("is stable: the same inputs give the same keys", () => {
        assert.deepEqual(keys(), base);
    });

    const cases: [pin: string, value: string, tools: string[]][] = [
        ["ETCD_VERSION", "3.6.9", ["etcd"]],
        ["KUBERNETES_VERSION", "1.36.0", [...KUBE, "kwok"]],
        ["KWOK_VERSION", "0.7.0", ["kwok"]],
        ["PULUMI_CLI_VERSION", "3.258.0", ["pulumi"]],
        ["PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION", "3.191.0", ["pulumi-language-nodejs"]],
        ["PULUMI_KUBERNETES_PROVIDER_VERSION", "4.24.0", ["pulumi-resource-kubernetes"]],
        ["PULUMI_KAFKA_PROVIDER_VERSION", "3.13.1", ["pulumi-resource-kafka"]],
        ["PULUMI_RANDOM_PROVIDER_VERSION", "4.21.1", ["pulumi-resource-random"]],
        // One wrapper module requires both Terraform providers, so both depend on these.
        ["TF_KAFKA_VERSION", "0.13.0", BRIDGED],
        ["PULUMI_TERRAFORM_BRIDGE_VERSION", "3.134.0", BRIDGED],
        ["BOOTSTRAP_RECIPE", "2", TOOLS],
        // The npm SDK versions only name the registered plugins: the set changes, no tool.
        ["PULUMI_KAFKA_VERSION", "3.13.1", []],
        ["PULUMI_VERSION", "3.269.0", []],
    ];
    for (const [pin, value, tools] of cases) {
        it(`${pin} changed: ${tools.length ? tools.join(", ") : "no tool"} rebuilt`, () => {
            const next = keys(withPin(pin, value));
            assert.deepEqual(changed(base, next), tools);
            assert.notEqual(next.get("set"), base.get("set"), "the set of a new pin is new");
        });
    }

    it("every pin in tools/versions.env is part of some key", () => {
        const pins = VERSIONS.split("\n")
            .filter((l) => /^[A-Z_]+=/.test(l))
            .map((l) => l.slice(0, l.indexOf("=")));
        assert.ok(pins.length > 15, `only ${pins.length} pins found`);
        for (const pin of pins)
            assert.notEqual(keys(withPin(pin, "changed")).get("set"), base.get("set"), pin);
    });

    it("comments and blank lines in versions.env change no key", () => {
        assert.deepEqual(keys(`# a note\n\n${VERSIONS.replace(/^# .*$/gm, "# edited")}`), base);
    });

    it("editing the function that builds a tool changes that tool's key only", () => {
        const dir = toolsCopy();
        const file = path.join(dir, "bootstrap.sh");
        const src = fs.readFileSync(file, "utf8");
        const edited = src.replace(/^build_etcd\(\) \{\n/m, '$&  echo "a new step"\n');
        assert.notEqual(edited, src, "build_etcd() not found");
        fs.writeFileSync(file, edited);
        assert.deepEqual(changed(base, keys(VERSIONS, dir)), ["etcd"]);
        // A comment is not part of the recipe.
        fs.writeFileSync(file, src.replace(/^build_etcd\(\) \{\n/m, "$&  # a remark\n"));
        assert.deepEqual(changed(base, keys(VERSIONS, dir)), []);
    });

    it("editing a tools/go file changes the key of the provider built from it only", () => {
        const dir = toolsCopy();
        fs.appendFileSync(path.join(dir, "go", "bridged", "kafka", "tokens.go"), "\n// edited\n");
        assert.deepEqual(changed(base, keys(VERSIONS, dir)), ["pulumi-resource-kafka"]);
        fs.appendFileSync(path.join(dir, "go", "bridged", "shim", "shim.go"), "\n// edited\n");
        assert.deepEqual(changed(base, keys(VERSIONS, dir)), BRIDGED);
    });
});
