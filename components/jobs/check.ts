/**
 * The declared queries' SQL checked by the engine before anything is deployed (the stack program
 * runs this at every preview and up): in the process's embedded engine (chdb, a temporary
 * directory of the program's own), the stack's database is created with every stream's objects as
 * the planner makes them from nothing, each query's parameters are set to their declared values,
 * and then
 * - a SELECT (a query, an export's SQL) is analysed (`EXPLAIN PLAN`): unknown tables, columns,
 *   functions, and parameter values that do not parse as their type are refused;
 * - any other statement is parsed (`EXPLAIN AST`), which catches syntax only: analysing an INSERT,
 *   ALTER or OPTIMIZE would mean running it;
 * - an import's statement is the stack's own; its table may be one the streams do not make, so
 *   whether it exists is left to the server (the Job then fails with ClickHouse's message).
 * Nothing runs against a server. Without the engine (chdb not installed, KCS_NO_LOCAL_ENGINE=1, or
 * an engine of real data open in this process) the check reports that it did not run.
 */
import type { StreamSpec } from "../../schemas/model";
import type { LoadedQuery } from "../../schemas/query-model";
import type { SchemaProblem } from "../../schemas/document";
import { currentEngine, engineMessage, runOnEngine } from "../../schemas/engine";
import { quoteIdent, quoteString } from "../../schemas/sql";
import { planStream } from "../ingestion/planner";

/** A broker address that refuses: the Kafka tables made here never consume. */
const NO_BROKER = "127.0.0.1:9";

export type QueryCheck =
    | { readonly ran: true; readonly problems: readonly SchemaProblem[] }
    | { readonly ran: false; readonly reason: string };

export function checkQueriesWithEngine(
    queries: readonly LoadedQuery[],
    streams: readonly StreamSpec[],
    database: string,
): QueryCheck {
    if (queries.length === 0) return { ran: true, problems: [] };
    const open = currentEngine();
    if (open && !open.implicit)
        return { ran: false, reason: `this process's engine holds data (${open.path})` };
    const run = (sql: string) => runOnEngine(sql);
    if (run("SELECT 1") === undefined)
        return { ran: false, reason: "the embedded engine (chdb) is not available" };
    const db = quoteIdent(database);
    run(`DROP DATABASE IF EXISTS ${db} SYNC`);
    try {
        run(`CREATE DATABASE ${db}`);
        for (const spec of streams) {
            const plan = planStream(spec, undefined, { database, kafkaBrokers: NO_BROKER });
            for (const st of plan.statements) {
                try {
                    run(st.sql);
                } catch {
                    // The ingestion DDL's own rehearsal reports its failures.
                }
            }
        }
        run(`USE ${db}`);
        const problems = queries.flatMap((q) => queryProblems(q, run));
        return { ran: true, problems };
    } finally {
        run("USE default");
        run(`DROP DATABASE IF EXISTS ${db} SYNC`);
    }
}

function queryProblems(
    { file, spec: q }: LoadedQuery,
    run: (sql: string) => string | undefined,
): SchemaProblem[] {
    const problems: SchemaProblem[] = [];
    for (const [name, value] of Object.entries(q.parameters)) {
        try {
            run(`SET param_${name} = ${quoteString(String(value))}`);
        } catch (e) {
            problems.push({ file, path: `parameters.${name}`, message: refusal(e) });
        }
    }
    // An import's statement is the stack's own (see above).
    if (problems.length > 0 || q.import) return problems;
    const sql = (q.sql ?? "").trim().replace(/;\s*$/, "");
    const select = /^(\(|SELECT\b|WITH\b)/i.test(sql);
    try {
        run(`EXPLAIN ${select ? "PLAN" : "AST"} ${sql}`);
    } catch (e) {
        // A declared value that does not parse as its placeholder's type: name the parameter.
        const param = /for query parameter '(\w+)'/.exec(String(e));
        problems.push({
            file,
            path: param ? `parameters.${param[1]}` : "sql",
            message: refusal(e),
        });
    }
    return problems;
}

function refusal(e: unknown): string {
    const text = engineMessage(e instanceof Error ? e.message : String(e));
    return `the engine refuses it: ${text} (checked against the streams' tables in a local engine, before any change)`;
}
