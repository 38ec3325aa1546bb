/**
 * What both sides of a connection share: its error, and where a kubeconfig comes from. A module
 * of its own so that `kube.ts` (loaded lazily by `connection.ts`) needs nothing from
 * `connection.ts`, and the two do not import each other.
 */

/** Where a kubeconfig comes from. @default `$KUBECONFIG`, else `~/.kube/config`, else in-cluster */
export type KubeconfigSource =
    | { readonly fromConfig: string }
    | { readonly fromEnv: string }
    | { readonly fromFile: string }
    | { readonly inCluster: true };

export class ConnectionError extends Error {
    /**
     * True when the stack's own settings are at fault (a missing stack secret or environment
     * variable): waiting will not help, unlike a server or Secret that does not exist yet.
     */
    readonly configProblem: boolean;
    constructor(message: string, options?: { cause?: unknown; configProblem?: boolean }) {
        super(message, options);
        this.name = "ConnectionError";
        this.configProblem = options?.configProblem ?? false;
    }
}
