import * as path from "node:path";

/** Everything the sandbox keeps lives here (git-ignored), so `./run sandbox down` can remove it whole. */
export const SANDBOX_DIR = path.resolve(__dirname, "..", ".sandbox");
export const STATE_FILE = path.join(SANDBOX_DIR, "state.json");
export const SUPERVISOR_LOG = path.join(SANDBOX_DIR, "supervisor.log");
/** What the run started (runtime/process-registry.ts), written as each thing starts. */
export const REGISTRY_FILE = path.join(SANDBOX_DIR, "registry.jsonl");
/** The broker's and ClickHouse's data: stale once the run that filled them is dead. */
export const KAFKA_DIR = path.join(SANDBOX_DIR, "kafka");
export const CLICKHOUSE_DIR = path.join(SANDBOX_DIR, "clickhouse");
/** The registry's label for the supervisor process. */
export const SUPERVISOR_LABEL = "sandbox supervisor";

/** Where the sandbox's components listen, written by the supervisor once they are up. */
export interface SandboxState {
    readonly supervisorPid: number;
    readonly kubeconfig: string;
    readonly kafkaBootstrap: string;
    readonly clickhouseUrl: string;
    readonly kafkaLog: string;
    readonly clickhouseLog: string;
}
