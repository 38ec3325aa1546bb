/**
 * Ephemeral stacks on a real test cluster, as CI runs them (.github/workflows/ephemeral.yml).
 *
 *   npx tsx scripts/ephemeral.ts run --prefix pr12- [--config-from dev] [--keep]
 *     Creates the stack `<prefix><base36 time>-<random>` from Pulumi.<config-from>.yaml in its own
 *     namespace, runs `up`, then verifies, failing on the first check that does not hold:
 *       1. a refresh finds no drift (refresh changes no resource),
 *       2. a second preview shows no changes,
 *       3. every stream's Kafka table has all the partitions of its topic assigned,
 *       4. valid sample events, produced to every topic through a throwaway KafkaUser, land as
 *          rows (all of them; some fewer for deduplicating ReplacingMergeTree targets),
 *       5. and none of them becomes a dead letter.
 *     Then destroys and removes the stack, unless --keep.
 *   npx tsx scripts/ephemeral.ts destroy --prefix pr12-
 *     Destroys and removes every stack `run` named with the prefix (no other stack, ever).
 *   npx tsx scripts/ephemeral.ts sweep --prefix pr --older-than-hours 24
 *     The same for such stacks created more than that many hours ago.
 *
 * Uses the `pulumi` on PATH, the backend and passphrase of the environment (PULUMI_BACKEND_URL,
 * PULUMI_CONFIG_PASSPHRASE), and the cluster of KUBECONFIG, where a Strimzi 1.2 operator must
 * watch all namespaces (README, "Pull requests and CI for users"); kubectl must be on PATH.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import * as YAML from "yaml";
import { openClient, readIngestionHealth } from "../components/ingestion";
import type { StreamHealth } from "../components/ingestion";
import { StackConfig, parseConfig } from "../infra/config";
import { loadStreams } from "../schemas/loader";
import type { StreamSpec } from "../schemas/model";
import { SECRET_KEYS, VERSION_DEFAULTS } from "../schemas/naming";
import { sampleMessages } from "../schemas/sample";

const ROOT = path.resolve(__dirname, "..");
const PROJECT = "kafka-clickhouse-stack";
const say = (line: string) => process.stdout.write(`[ephemeral] ${line}\n`);

/** Valid sample events produced per stream. */
export const EVENTS_PER_STREAM = 200;
/** The KafkaUser (and its Secret) the producer pods authenticate as. */
export const PRODUCER_USER = "ephemeral-producer";

// ---------------------------------------------------------------------------------------------
// Pure helpers (tested in test/unit/ephemeral.test.ts)
// ---------------------------------------------------------------------------------------------

/** A stack name that carries its creation time: `<prefix><base36 ms>-<4 hex>`. */
export function ephemeralStackName(prefix: string, nowMs = Date.now()): string {
    return `${prefix}${nowMs.toString(36)}-${randomBytes(2).toString("hex")}`;
}

/**
 * Creation time of a stack named by ephemeralStackName with this prefix or a longer one (a sweep
 * over "pr" reads "pr12-..."), or undefined for any other name.
 */
export function createdAt(name: string, prefix: string): Date | undefined {
    const short = name.split("/").pop() ?? name;
    if (!short.startsWith(prefix)) return undefined;
    const m = /(?:^|-)([0-9a-z]{8,})-[0-9a-f]{4}$/.exec(short.slice(prefix.length));
    if (!m) return undefined;
    const ms = Number.parseInt(m[1]!, 36);
    // Only times this scheme can have written: a word that happens to parse is not one.
    return ms > Date.UTC(2020, 0, 1) && ms < Date.now() + 86_400_000 ? new Date(ms) : undefined;
}

/**
 * The stacks a sweep destroys: named by ephemeralStackName with the prefix (never any other
 * stack, so a prefix "pr" cannot reach "prod") and created before `now - olderThanHours`.
 */
export function stacksToSweep(
    stacks: readonly { name: string }[],
    prefix: string,
    olderThanHours: number,
    now = new Date(),
): string[] {
    const limit = now.getTime() - olderThanHours * 3_600_000;
    return stacks
        .filter((s) => {
            const at = createdAt(s.name, prefix);
            return at !== undefined && at.getTime() < limit;
        })
        .map((s) => s.name);
}

/** The stacks `destroy --prefix` removes: only those named by ephemeralStackName. */
export function ephemeralStacks(stacks: readonly { name: string }[], prefix: string): string[] {
    return stacks.filter((s) => createdAt(s.name, prefix) !== undefined).map((s) => s.name);
}

/** Operations of a refresh or preview summary other than "same": drift, or pending changes. */
export function changesIn(summary: Record<string, number | undefined> | undefined): string[] {
    return Object.entries(summary ?? {})
        .filter(([op, n]) => op !== "same" && (n ?? 0) > 0)
        .map(([op, n]) => `${op}: ${n}`);
}

/** The KafkaUser the producer pods use: SCRAM-SHA-512, allowed to write the streams' topics only. */
export function producerUserManifest(
    namespace: string,
    cluster: string,
    topics: readonly string[],
): Record<string, unknown> {
    return {
        apiVersion: "kafka.strimzi.io/v1",
        kind: "KafkaUser",
        metadata: {
            name: PRODUCER_USER,
            namespace,
            labels: { "strimzi.io/cluster": cluster },
        },
        spec: {
            authentication: { type: "scram-sha-512" },
            authorization: {
                type: "simple",
                acls: topics.map((name) => ({
                    resource: { type: "topic", name, patternType: "literal" },
                    operations: ["Write", "Describe"],
                })),
            },
        },
    };
}

/**
 * What the ingestion health says is still wrong after producing `produced` valid events per
 * stream; empty when every check holds. `final` also requires every event to have landed.
 */
export function ingestionProblems(
    streams: readonly StreamSpec[],
    health: readonly StreamHealth[],
    produced: number,
    final: boolean,
): string[] {
    const problems: string[] = [];
    for (const spec of streams) {
        const h = health.find((x) => x.stream === spec.name);
        if (!h) {
            problems.push(`${spec.name}: no health reported`);
            continue;
        }
        if (h.assignedPartitions !== spec.topic.partitions)
            problems.push(
                `${spec.name}: ${h.assignedPartitions} of ${spec.topic.partitions} partitions assigned${h.lastException ? ` (last exception: ${h.lastException})` : ""}`,
            );
        if (h.rowsRejected > 0)
            problems.push(`${spec.name}: ${h.rowsRejected} valid events became dead letters`);
        const dedup = spec.engine.type === "ReplacingMergeTree";
        if (final && (dedup ? h.rowsIngested === 0 : h.rowsIngested < produced))
            problems.push(`${spec.name}: ${h.rowsIngested} rows of ${produced} events`);
        if (h.rowsIngested > produced)
            problems.push(`${spec.name}: ${h.rowsIngested} rows, more than the ${produced} events`);
    }
    return problems;
}

// ---------------------------------------------------------------------------------------------
// Cluster side
// ---------------------------------------------------------------------------------------------

function kubectl(args: string[], input?: string, timeoutMs = 300_000): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = execFile(
            "kubectl",
            args,
            { timeout: timeoutMs, maxBuffer: 64 << 20 },
            (err, stdout, stderr) =>
                err
                    ? reject(
                          new Error(`kubectl ${args.join(" ")} failed: ${stderr || err.message}`),
                      )
                    : resolve(stdout),
        );
        if (input !== undefined) child.stdin?.end(input);
    });
}

async function poll<T>(
    what: string,
    timeoutMs: number,
    step: () => Promise<{ done: boolean; value: T; detail: string }>,
): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
        const r = await step();
        if (r.done) return r.value;
        if (r.detail !== last) say(`  waiting for ${what}: ${r.detail}`);
        last = r.detail;
        if (Date.now() > deadline)
            throw new Error(
                `timed out after ${timeoutMs / 1000}s waiting for ${what}: ${r.detail}`,
            );
        await new Promise((res) => setTimeout(res, 5_000));
    }
}

/** Produces the lines to a topic from a pod running Kafka's console producer, as PRODUCER_USER. */
async function produce(
    config: StackConfig,
    topic: string,
    lines: readonly string[],
): Promise<void> {
    const pod = `ephemeral-producer-${randomBytes(3).toString("hex")}`;
    // The Kafka image of the Strimzi release the stack deploys.
    const image = `quay.io/strimzi/kafka:${VERSION_DEFAULTS.strimzi}-kafka-${config.kafkaVersion}`;
    const bootstrap = `${config.kafkaClusterName}-kafka-bootstrap.${config.namespace}.svc:9092`;
    // The JAAS line comes from the user's Secret, never from this process or the pod spec.
    const overrides = {
        spec: {
            containers: [
                {
                    name: pod,
                    image,
                    stdin: true,
                    stdinOnce: true,
                    command: [
                        "sh",
                        "-c",
                        'exec bin/kafka-console-producer.sh --bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" --producer-property security.protocol=SASL_PLAINTEXT --producer-property sasl.mechanism=SCRAM-SHA-512 --producer-property "sasl.jaas.config=$JAAS"',
                    ],
                    env: [
                        { name: "BOOTSTRAP", value: bootstrap },
                        { name: "TOPIC", value: topic },
                        {
                            name: "JAAS",
                            valueFrom: {
                                secretKeyRef: {
                                    name: PRODUCER_USER,
                                    key: SECRET_KEYS.kafkaSaslJaasConfig,
                                },
                            },
                        },
                    ],
                },
            ],
        },
    };
    await kubectl(
        [
            "-n",
            config.namespace,
            "run",
            pod,
            "--rm",
            "-i",
            "--restart=Never",
            `--image=${image}`,
            `--overrides=${JSON.stringify(overrides)}`,
            "--pod-running-timeout=5m",
        ],
        lines.join("\n") + "\n",
        600_000,
    );
}

async function verifyIngestion(stack: Stack, config: StackConfig): Promise<void> {
    const streams = loadStreams(path.resolve(ROOT, config.streamsDir)).map((s) => s.spec);
    const outputs = await stack.outputs();
    const secretName = String(outputs.clickhouseCredentialsSecret?.value ?? "");
    if (!secretName) throw new Error("the stack exports no clickhouseCredentialsSecret");
    const opened = await openClient({
        kind: "port-forward",
        namespace: config.namespace,
        service: config.clickhouseName,
        port: 8123,
        username: "admin",
        password: {
            fromKubernetesSecret: {
                namespace: config.namespace,
                name: secretName,
                key: SECRET_KEYS.adminPassword,
            },
        },
    });
    const client: ClickHouseClient = opened.client;
    const names = streams.map((s) => s.name);
    const health = () => readIngestionHealth(client, config.clickhouseDatabase, names);
    try {
        say("verify: every stream's partitions are assigned...");
        await poll("partition assignment", 300_000, async () => {
            const problems = ingestionProblems(streams, await health(), EVENTS_PER_STREAM, false);
            return { done: problems.length === 0, value: undefined, detail: problems.join("; ") };
        });

        say(`verify: ${EVENTS_PER_STREAM} valid sample events per stream land as rows...`);
        await kubectl(
            ["apply", "-f", "-"],
            JSON.stringify(
                producerUserManifest(
                    config.namespace,
                    config.kafkaClusterName,
                    streams.map((s) => s.topic.name),
                ),
            ),
        );
        await kubectl([
            "-n",
            config.namespace,
            "wait",
            `kafkauser/${PRODUCER_USER}`,
            "--for=condition=Ready",
            "--timeout=300s",
        ]);
        for (const spec of streams) {
            say(`  producing to ${spec.topic.name}`);
            await produce(config, spec.topic.name, sampleMessages(spec, EVENTS_PER_STREAM));
        }
        await poll("rows", 300_000, async () => {
            const problems = ingestionProblems(streams, await health(), EVENTS_PER_STREAM, true);
            return { done: problems.length === 0, value: undefined, detail: problems.join("; ") };
        });
        for (const h of await health())
            say(`  ${h.stream}: ${h.rowsIngested} rows, ${h.rowsRejected} dead letters`);
    } finally {
        await opened.close();
        await kubectl([
            "-n",
            config.namespace,
            "delete",
            "kafkauser",
            PRODUCER_USER,
            "--ignore-not-found",
        ]).catch((e: unknown) => say(`could not delete the producer user: ${String(e)}`));
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

const USAGE =
    "usage: scripts/ephemeral.ts run --prefix P [--config-from dev] [--keep] | destroy --prefix P | sweep --prefix P [--older-than-hours 24]";

/** The command line: the command and its flags, as given (defaults are the commands'). */
export interface CommandLine {
    readonly command: string | undefined;
    readonly prefix: string | undefined;
    readonly configFrom: string | undefined;
    readonly keep: boolean;
    readonly olderThanHours: string | undefined;
}

/** Parses the command line strictly; a bad flag fails with a message naming it and the usage. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
    let parsed;
    try {
        parsed = parseArgs({
            args: [...argv],
            strict: true,
            allowPositionals: true,
            options: {
                prefix: { type: "string" },
                "config-from": { type: "string" },
                keep: { type: "boolean" },
                "older-than-hours": { type: "string" },
            },
        });
    } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    }
    const { values, positionals } = parsed;
    if (positionals.length > 1)
        throw new Error(`unexpected argument '${positionals[1]}'\n${USAGE}`);
    return {
        command: positionals[0],
        prefix: values.prefix,
        configFrom: values["config-from"],
        keep: values.keep ?? false,
        olderThanHours: values["older-than-hours"],
    };
}

function required(value: string | undefined, flag: string): string {
    if (value === undefined) throw new Error(`--${flag} is required`);
    return value;
}

async function destroyStacks(names: readonly string[]): Promise<void> {
    let failed = 0;
    for (const name of names) {
        say(`destroying stack ${name}...`);
        try {
            const stack = await LocalWorkspace.selectStack({ stackName: name, workDir: ROOT });
            await stack.destroy({
                onOutput: (o) => process.stdout.write(o),
                continueOnError: true,
            });
            await stack.workspace.removeStack(name);
            say(`stack ${name} removed`);
        } catch (e) {
            failed++;
            say(`could not destroy ${name}: ${e instanceof Error ? e.message : String(e)}`);
        }
        fs.rmSync(path.join(ROOT, `Pulumi.${name.split("/").pop()}.yaml`), { force: true });
    }
    if (failed > 0) throw new Error(`${failed} of ${names.length} stacks were not destroyed`);
}

async function listStacks(): Promise<{ name: string }[]> {
    const ws = await LocalWorkspace.create({ workDir: ROOT });
    return (await ws.listStacks()).map((s) => ({ name: s.name }));
}

async function run(args: CommandLine): Promise<void> {
    const prefix = args.prefix ?? "ci-";
    const base = args.configFrom ?? "dev";
    const keep = args.keep;
    const name = ephemeralStackName(prefix);
    const baseConfig = (
        YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${base}.yaml`), "utf8")) as {
            config?: Record<string, unknown>;
        }
    ).config;
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(baseConfig ?? {}))
        raw[k.replace(`${PROJECT}:`, "")] = String(v);
    // Its own namespace, throwaway storage, tables dropped on destroy, and the plain (SCRAM,
    // no TLS) listener the producer pods use.
    Object.assign(raw, {
        namespace: name.slice(0, 63),
        kafkaEphemeralStorage: "true",
        clickhouseEphemeralStorage: "true",
        dropTargetOnDelete: "true",
        kafkaPlainListener: "true",
    });
    const config = parseConfig(raw, name, PROJECT);

    say(`creating stack ${name} from Pulumi.${base}.yaml`);
    const stack = await LocalWorkspace.createStack({ stackName: name, workDir: ROOT });
    let failure: unknown;
    try {
        await stack.setAllConfig(
            Object.fromEntries(
                Object.entries(raw).map(([k, v]) => [`${PROJECT}:${k}`, { value: v }]),
            ),
        );
        say("up...");
        const up = await stack.up({ onOutput: (o) => process.stdout.write(o) });
        if (up.summary.result !== "succeeded") throw new Error(`up ${up.summary.result}`);

        say("verify: a refresh finds no drift...");
        const refresh = await stack.refresh({ onOutput: () => undefined });
        const drift = changesIn(refresh.summary.resourceChanges);
        if (drift.length > 0) throw new Error(`refresh found drift after up: ${drift.join(", ")}`);

        say("verify: a second preview shows no changes...");
        const preview = await stack.preview({ onOutput: () => undefined });
        const pending = changesIn(preview.changeSummary);
        if (pending.length > 0)
            throw new Error(`the stack is not stable after up: ${pending.join(", ")}`);

        await verifyIngestion(stack, config);
        say("every check passed");
    } catch (e) {
        failure = e;
        say(`failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
        if (keep) say(`--keep: leaving stack ${name} up`);
        else await destroyStacks([name]);
    }
    if (failure !== undefined) process.exitCode = 1;
}

async function main(): Promise<void> {
    const args = parseCommandLine(process.argv.slice(2));
    const command = args.command;
    if (command === "run") return run(args);
    if (command === "destroy") {
        const prefix = required(args.prefix, "prefix");
        const names = ephemeralStacks(await listStacks(), prefix);
        say(`${names.length} stacks with the prefix '${prefix}'`);
        return destroyStacks(names);
    }
    if (command === "sweep") {
        const prefix = required(args.prefix, "prefix");
        const hours = Number(args.olderThanHours ?? "24");
        if (!(hours > 0)) throw new Error("--older-than-hours must be a positive number");
        const names = stacksToSweep(await listStacks(), prefix, hours);
        say(`${names.length} stacks with the prefix '${prefix}' older than ${hours} h`);
        return destroyStacks(names);
    }
    throw new Error(USAGE);
}

if (require.main === module) {
    main().catch((e: unknown) => {
        say(`failed: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
    });
}
