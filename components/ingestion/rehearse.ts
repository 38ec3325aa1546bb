/**
 * Rehearsal: before any statement of a plan reaches the real server, the plan runs on a copy of the
 * live objects in the embedded ClickHouse engine (chdb), and the result must plan to nothing. A plan
 * that fails there (a default of the wrong type, a type the engine refuses, a setting it does not
 * know) or does not converge (a spelling the engine reports differently, so every later plan
 * would differ) is stopped at preview with the statement and the engine's message.
 *
 * The copy has the live objects' definitions, not their rows, so data-dependent failures (a value
 * that does not convert) are not caught here. Kafka tables are rehearsed with a broker address
 * that refuses connections, so the rehearsal never consumes. Where chdb is not installed, or the
 * process already runs chdb as the real server (connection kind `embedded`), the server's own
 * parser checks each statement instead (`formatQuery`), which catches syntax but not semantics.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { StreamSpec } from "../../schemas/model";
import { canonicalize, readStreamState } from "./introspect";
import { openClient, type OpenedClient } from "./connection";
import {
    ActualStreamState,
    PlanOptions,
    StreamPlan,
    canonicalRequests,
    describePlan,
    planStream,
    STREAM_OBJECT_ROLES,
} from "./planner";

/** Brokers written into rehearsed Kafka tables: the discard port on loopback, which refuses. */
const NO_BROKER = "127.0.0.1:9";
const BROKER_SETTING = /kafka_broker_list\s*=\s*'(?:\\.|[^'\\])*'/g;

export type RehearsalResult =
    | { readonly ok: true; readonly engine: "embedded" | "server-parser" }
    | {
          readonly ok: false;
          readonly engine: "embedded" | "server-parser";
          /** What went wrong, with the statement and the engine's message. */
          readonly message: string;
      };

let engine: Promise<OpenedClient | undefined> | undefined;
let queue: Promise<unknown> = Promise.resolve();

/** One embedded engine per process, in a temporary folder, opened on first use. */
function rehearsalEngine(): Promise<OpenedClient | undefined> {
    engine ??= (async () => {
        try {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-rehearsal-"));
            return await openClient({ kind: "embedded", path: dir });
        } catch {
            return undefined; // chdb missing, or this process already runs it elsewhere
        }
    })();
    return engine;
}

/**
 * Rehearses `plan` (planned from `live`, and `previous` for a rename). `server` is the real
 * server's client, used read-only for the parser fallback. Rehearsals run one at a time: they
 * share the process's engine, and the copy uses the live database's name.
 */
export function rehearse(
    spec: StreamSpec,
    options: PlanOptions,
    plan: StreamPlan,
    live: { readonly actual?: ActualStreamState; readonly previous?: ActualStreamState },
    server: ClickHouseClient,
    embeddedServer: boolean,
): Promise<RehearsalResult> {
    const run = queue.then(async (): Promise<RehearsalResult> => {
        if (plan.statements.length === 0) return { ok: true, engine: "embedded" };
        const opened = embeddedServer ? undefined : await rehearsalEngine();
        if (!opened) return parseOnly(plan, server);
        const result = await rehearseEmbedded(opened.client, spec, options, plan, live);
        // The live definitions do not load in this engine (a newer server's syntax): check the
        // statements with the server's parser instead.
        return result === "live objects not copyable" ? parseOnly(plan, server) : result;
    });
    queue = run.catch(() => undefined);
    return run;
}

async function rehearseEmbedded(
    client: ClickHouseClient,
    spec: StreamSpec,
    options: PlanOptions,
    plan: StreamPlan,
    live: { readonly actual?: ActualStreamState; readonly previous?: ActualStreamState },
): Promise<RehearsalResult | "live objects not copyable"> {
    const db = options.database;
    const fail = (message: string): RehearsalResult => ({ ok: false, engine: "embedded", message });
    await client.command({ query: `DROP DATABASE IF EXISTS \`${db}\` SYNC` });
    try {
        if (live.actual || live.previous) {
            await client.command({ query: `CREATE DATABASE \`${db}\`` });
            for (const state of [live.actual, live.previous]) {
                for (const q of recreateQueries(state)) {
                    try {
                        await client.command({ query: noBroker(q) });
                    } catch {
                        return "live objects not copyable";
                    }
                }
            }
        }
        for (const [i, st] of plan.statements.entries()) {
            try {
                await client.command({
                    query: noBroker(st.sql),
                    ...(st.settings
                        ? { clickhouse_settings: st.settings as Record<string, string> }
                        : {}),
                });
            } catch (e) {
                return fail(
                    `statement ${i + 1} of ${plan.statements.length} fails in rehearsal (${st.summary}): ${errorText(e)}\n  ${st.sql}`,
                );
            }
        }
        const rehearsed = { ...options, kafkaBrokers: NO_BROKER };
        const [actual, previous, canonicalForms] = await Promise.all([
            readStreamState(client, db, spec.name),
            spec.renamedFrom ? readStreamState(client, db, spec.renamedFrom) : undefined,
            canonicalize(client, canonicalRequests(spec, rehearsed)),
        ]);
        const again = planStream(spec, actual, { ...rehearsed, canonicalForms }, previous);
        if (again.statements.length > 0 || again.refusals.length > 0) {
            return fail(
                `the plan does not converge in rehearsal: after applying it, the engine still differs from the stream file:\n${describePlan(
                    again,
                )
                    .map((l) => `  ${l}`)
                    .join("\n")}`,
            );
        }
        return { ok: true, engine: "embedded" };
    } finally {
        await client.command({ query: `DROP DATABASE IF EXISTS \`${db}\` SYNC` }).catch(() => {});
    }
}

/** CREATE statements that rebuild a state's objects, tables before the views that read them. */
function recreateQueries(state: ActualStreamState | undefined): string[] {
    if (!state) return [];
    const order = [...STREAM_OBJECT_ROLES].sort(
        (a, b) => Number(a === "mv" || a === "dlqMv") - Number(b === "mv" || b === "dlqMv"),
    );
    return order.flatMap((role) => {
        const q = state.tables[role]?.createQuery;
        return q ? [q] : [];
    });
}

function noBroker(sql: string): string {
    return sql.replace(BROKER_SETTING, `kafka_broker_list = '${NO_BROKER}'`);
}

/** Fallback: the server's parser on every statement (read-only: `formatQuery` runs nothing). */
async function parseOnly(plan: StreamPlan, server: ClickHouseClient): Promise<RehearsalResult> {
    const forms = await canonicalize(
        server,
        plan.statements.map((s) => s.sql),
    );
    const bad = plan.statements.findIndex((s) => forms.get(s.sql) === null);
    if (bad === -1) return { ok: true, engine: "server-parser" };
    const st = plan.statements[bad]!;
    return {
        ok: false,
        engine: "server-parser",
        message: `statement ${bad + 1} of ${plan.statements.length} does not parse on the server (${st.summary}):\n  ${st.sql}`,
    };
}

function errorText(e: unknown): string {
    return (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
}
