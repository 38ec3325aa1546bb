/**
 * Writes the files derived from the code's schemas, or with --check fails when they are stale:
 * - schemas/stream.schema.json: JSON Schema of a stream file, for editors;
 * - the `config:` block of Pulumi.yaml: every stack config key with its type, default and description.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { SECRET_KEYS, configSchema } from "../infra/config";
import { streamSchema } from "../schemas/model";

const root = path.resolve(__dirname, "..");

export function streamJsonSchema(): string {
    const schema = z.toJSONSchema(streamSchema, { io: "input", target: "draft-2020-12" }) as Record<
        string,
        unknown
    >;
    return (
        JSON.stringify(
            {
                title: "kafka-clickhouse-stack stream",
                description:
                    "One ingestion stream: a Kafka topic and the ClickHouse tables it fills.",
                ...schema,
            },
            null,
            2,
        ) + "\n"
    );
}

const SECRET_DESCRIPTIONS: Record<(typeof SECRET_KEYS)[number], string> = {
    kafkaExternalPassword: "External mode: SASL password (pulumi config set --secret).",
    clickhouseAdminPassword:
        "ClickHouse admin password; generated when unset (pulumi config set --secret).",
};

export function pulumiYaml(): string {
    const lines = [
        "# Generated config block: edit infra/config.ts, then run `npm run generate`.",
        "name: kafka-clickhouse-stack",
        "description: Real-time Kafka -> ClickHouse ingestion pipeline on Kubernetes",
        "runtime:",
        "  name: nodejs",
        "  options:",
        "    typescript: true",
        "main: infra/index.ts",
        "config:",
    ];
    const json = z.toJSONSchema(configSchema, { io: "input" }) as {
        properties: Record<
            string,
            { type?: string; default?: unknown; description?: string; enum?: unknown[] }
        >;
    };
    for (const [key, prop] of Object.entries(json.properties)) {
        const type =
            prop.type === "number" || prop.type === "integer"
                ? "integer"
                : prop.type === "boolean"
                  ? "boolean"
                  : "string";
        const choices = prop.enum ? ` One of: ${prop.enum.join(", ")}.` : "";
        lines.push(`  ${key}:`);
        lines.push(`    type: ${type}`);
        lines.push(`    description: ${JSON.stringify((prop.description ?? "") + choices)}`);
        lines.push(`    default: ${JSON.stringify(prop.default)}`);
    }
    for (const key of SECRET_KEYS) {
        lines.push(
            `  ${key}:`,
            "    type: string",
            "    secret: true",
            `    description: ${JSON.stringify(SECRET_DESCRIPTIONS[key])}`,
        );
    }
    return lines.join("\n") + "\n";
}

export const GENERATED: Record<string, () => string> = {
    "schemas/stream.schema.json": streamJsonSchema,
    "Pulumi.yaml": pulumiYaml,
};

if (require.main === module) {
    const check = process.argv.includes("--check");
    let stale = 0;
    for (const [file, make] of Object.entries(GENERATED)) {
        const target = path.join(root, file);
        const text = make();
        const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
        if (current === text) continue;
        if (check) {
            console.error(`${file} is stale: run 'npm run generate' and commit it`);
            stale++;
        } else {
            fs.writeFileSync(target, text);
            console.log(`wrote ${file}`);
        }
    }
    process.exit(stale > 0 ? 1 : 0);
}
