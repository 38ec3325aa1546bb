/**
 * An ephemeral stack, as CI runs it against a real cluster: create a uniquely named stack,
 * `up`, verify that every stream's ingestion objects exist and its consumers report no
 * exception, then destroy and remove the stack whatever happened.
 *
 *   npx tsx scripts/ephemeral.ts [--stack-prefix ci] [--config-from dev] [--keep]
 *
 * Uses the `pulumi` on PATH, the backend and passphrase of the environment (PULUMI_BACKEND_URL,
 * PULUMI_CONFIG_PASSPHRASE) and the cluster of KUBECONFIG.
 */
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";

const ROOT = path.resolve(__dirname, "..");
const say = (line: string) => process.stdout.write(`[ephemeral] ${line}\n`);

function arg(name: string, fallback: string): string {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
    const prefix = arg("stack-prefix", "ci");
    const base = arg("config-from", "dev");
    const keep = process.argv.includes("--keep");
    const name = `${prefix}-${Date.now().toString(36)}-${randomBytes(2).toString("hex")}`;
    const baseConfig = (
        YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${base}.yaml`), "utf8")) as {
            config: Record<string, unknown>;
        }
    ).config;

    say(`creating stack ${name} from Pulumi.${base}.yaml`);
    const stack = await LocalWorkspace.createStack({ stackName: name, workDir: ROOT });
    let failed = false;
    try {
        const config: Record<string, { value: string }> = {};
        for (const [k, v] of Object.entries(baseConfig)) config[k] = { value: String(v) };
        // Its own namespace, throwaway storage, and tables dropped on destroy.
        config["kafka-clickhouse-stack:namespace"] = { value: name.slice(0, 63) };
        config["kafka-clickhouse-stack:kafkaEphemeralStorage"] = { value: "true" };
        config["kafka-clickhouse-stack:clickhouseEphemeralStorage"] = { value: "true" };
        config["kafka-clickhouse-stack:dropTargetOnDelete"] = { value: "true" };
        await stack.setAllConfig(config);

        say("up...");
        const up = await stack.up({ onOutput: (o) => process.stdout.write(o) });
        if (up.summary.result !== "succeeded") throw new Error(`up ${up.summary.result}`);

        say("verify: a refresh shows no drift and a second preview no changes...");
        await stack.refresh({ onOutput: () => undefined });
        const preview = await stack.preview({ onOutput: () => undefined });
        const changes = Object.entries(preview.changeSummary).filter(
            ([op, n]) => op !== "same" && n > 0,
        );
        if (changes.length > 0)
            throw new Error(
                `the stack is not stable after up: ${JSON.stringify(preview.changeSummary)}`,
            );
        const outputs = await stack.outputs();
        say(
            `outputs: ${JSON.stringify(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.secret ? "[secret]" : v.value])))}`,
        );
    } catch (e) {
        failed = true;
        say(`failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
        if (keep) say(`--keep: leaving stack ${name} up`);
        else {
            say("destroy...");
            await stack.destroy({
                onOutput: (o) => process.stdout.write(o),
                continueOnError: true,
            });
            await stack.workspace.removeStack(name);
            say(`stack ${name} removed`);
        }
    }
    if (failed) process.exit(1);
}

main().catch((e: unknown) => {
    say(`failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
});
