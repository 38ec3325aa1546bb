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
import type { StreamSpec } from "../../schemas/model";
import { STREAM_OBJECT_ROLES } from "../../schemas/naming";
import { skipQuoted } from "../../schemas/sql";
import { canonicalize, readStreamState } from "./introspect";
import { parseMarker } from "./ownership";
import { claimEngine } from "../../schemas/engine";
import { openClient, type OpenedClient } from "./connection";
import {
    ActualStreamState,
    PlanOptions,
    StreamPlan,
    canonicalRequests,
    describePlan,
    planStream,
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
let scratchSeq = 0;

/** A client on the process's embedded engine (see `claimEngine`), opened on first use. */
function rehearsalEngine(): Promise<OpenedClient | undefined> {
    engine ??= (async () => {
        try {
            return await openClient({ kind: "embedded", path: claimEngine().path });
        } catch {
            return undefined; // chdb is not installed
        }
    })();
    return engine;
}

/**
 * Rehearses `plan` (planned from `live`, and `previous` for a rename) in a scratch database of the
 * process's embedded engine. `server` is the real server's client, used read-only for the parser
 * fallback. Rehearsals run one at a time.
 */
export function rehearse(
    spec: StreamSpec,
    options: PlanOptions,
    plan: StreamPlan,
    live: { readonly actual?: ActualStreamState; readonly previous?: ActualStreamState },
    server: ClickHouseClient,
): Promise<RehearsalResult> {
    const run = queue.then(async (): Promise<RehearsalResult> => {
        if (plan.statements.length === 0) return { ok: true, engine: "embedded" };
        const opened = await rehearsalEngine();
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
    // A database of its own: the engine may hold real data (an embedded connection, a test).
    const scratch = `kcs_rehearsal_${process.pid}_${++scratchSeq}`;
    const copy = (sql: string) =>
        noBroker(
            renameDatabase(sql, options.database, scratch).replace(
                `CREATE DATABASE IF NOT EXISTS \`${options.database}\``,
                `CREATE DATABASE IF NOT EXISTS \`${scratch}\``,
            ),
        );
    const fail = (message: string): RehearsalResult => ({ ok: false, engine: "embedded", message });
    try {
        await client.command({ query: `CREATE DATABASE \`${scratch}\`` });
        if (live.actual || live.previous) {
            for (const state of [live.actual, live.previous]) {
                for (const q of recreateQueries(state)) {
                    try {
                        await client.command({ query: copy(q) });
                    } catch {
                        return "live objects not copyable";
                    }
                }
            }
        }
        for (const [i, st] of plan.statements.entries()) {
            try {
                await client.command({
                    query: copy(st.sql),
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
        const { kafkaNamedCollection: _collection, ...rest } = options;
        void _collection;
        const rehearsed = { ...rest, database: scratch, kafkaBrokers: NO_BROKER };
        const [actual, previous, canonicalForms] = await Promise.all([
            readStreamState(client, scratch, spec.name),
            spec.renamedFrom ? readStreamState(client, scratch, spec.renamedFrom) : undefined,
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
        await client
            .command({ query: `DROP DATABASE IF EXISTS \`${scratch}\` SYNC` })
            .catch(() => {});
    }
}

/**
 * `sql` with references to database `from` (`from`.x, from.x) pointing at `to`; string literals
 * (comments, descriptions) are left alone.
 */
export function renameDatabase(sql: string, from: string, to: string): string {
    let out = "";
    let i = 0;
    while (i < sql.length) {
        const c = sql[i]!;
        if (c === "'") {
            const j = skipQuoted(sql, i);
            out += sql.slice(i, j);
            i = j;
            continue;
        }
        const prev = i === 0 ? "" : sql[i - 1]!;
        const boundary = !/[A-Za-z0-9_`.]/.test(prev);
        if (boundary && sql.startsWith(`\`${from}\`.`, i)) {
            out += `\`${to}\`.`;
            i += from.length + 3;
            continue;
        }
        if (boundary && sql.startsWith(`${from}.`, i)) {
            out += `${to}.`;
            i += from.length + 1;
            continue;
        }
        if (c === "`") {
            const j = skipQuoted(sql, i);
            out += sql.slice(i, j);
            i = j;
            continue;
        }
        out += c;
        i++;
    }
    return out;
}

/** CREATE statements that rebuild a state's objects, tables before the views that read them. */
function recreateQueries(state: ActualStreamState | undefined): string[] {
    if (!state) return [];
    const order = [...STREAM_OBJECT_ROLES].sort(
        (a, b) => Number(a === "mv" || a === "dlqMv") - Number(b === "mv" || b === "dlqMv"),
    );
    // The stream's rollup objects (by their markers), tables before the views that fill them.
    const rollups = Object.values(state.related ?? {})
        .filter((t) => parseMarker(t.comment)?.stream === state.stream && t.createQuery)
        .filter((t) => parseMarker(t.comment)?.role.startsWith("rollup"));
    const isView = (t: { engine: string }) => t.engine === "MaterializedView";
    const tables = order.flatMap((role) => (state.tables[role] ? [state.tables[role]] : []));
    return [
        ...tables.filter((t) => !isView(t)),
        ...rollups.filter((t) => !isView(t)),
        ...tables.filter(isView),
        ...rollups.filter(isView),
    ].flatMap((t) => (t.createQuery ? [t.createQuery] : []));
}

/**
 * Kafka tables as the rehearsal engine can create them: brokers that refuse, and no named
 * collection (the server's config defines it, with the SASL secrets; the copy needs neither).
 */
function noBroker(sql: string): string {
    return sql
        .replace(BROKER_SETTING, `kafka_broker_list = '${NO_BROKER}'`)
        .replace(/ENGINE = Kafka\(`?[A-Za-z_][A-Za-z0-9_]*`?\)/g, "ENGINE = Kafka");
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
