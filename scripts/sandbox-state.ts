import * as path from "node:path";

/** Everything the sandbox keeps lives here (git-ignored), so `./run sandbox down` can remove it whole. */
export const SANDBOX_DIR = path.resolve(__dirname, "..", ".sandbox");
export const STATE_FILE = path.join(SANDBOX_DIR, "state.json");
export const SUPERVISOR_LOG = path.join(SANDBOX_DIR, "supervisor.log");

/** Where the sandbox's components listen, written by the supervisor once they are up. */
export interface SandboxState {
    readonly supervisorPid: number;
    readonly kubeconfig: string;
    readonly kafkaBootstrap: string;
    readonly clickhouseUrl: string;
    readonly kafkaLog: string;
    readonly clickhouseLog: string;
}
