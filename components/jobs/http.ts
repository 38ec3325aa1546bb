/**
 * The one request a Job sends to ClickHouse's HTTP interface, as the command line of its
 * container. The Job runs exactly `JOB_SCRIPT` with `requestArgs(...)` appended, and the
 * integration tests run the same two things against the local HTTP interface.
 *
 * - Credentials: the user and password come from files the Job mounts from the ClickHouse
 *   credentials Secret (memory-backed) and reach curl as `X-ClickHouse-User`/`X-ClickHouse-Key`
 *   headers through a pipe from the shell's builtins: never in the URL, an argument or the
 *   environment.
 * - SQL travels in the request body (POST) and values as `param_<name>` (URL, or form fields when
 *   one of them is a secret read from a mounted Secret file), never spliced into the SQL.
 * - `wait_end_of_query=1`: the server answers once the query has finished, so an error is an HTTP
 *   error status with `X-ClickHouse-Exception-Code`, never a 200 cut short. curl then exits 22
 *   (`--fail-with-body` prints ClickHouse's message); a timeout exits 28.
 * - Whatever happens, one line on stderr gives the HTTP status, the exception code and the
 *   `X-ClickHouse-Summary` header (read_rows, written_rows, ...).
 */
import type { DataFormat, ImportSpec, QuerySpec } from "../../schemas/query-model";
import { quoteIdent } from "../../schemas/sql";

/**
 * The container's program: the user and password read (shell builtins, no other process) from the
 * files in `$KCS_CREDENTIALS` (the Job mounts the credentials Secret there) into headers on curl's
 * stdin, the request's arguments after it. `$0` is a label; the arguments follow as `"$@"`, never
 * re-parsed by a shell. A Secret file has no final newline, so `read` reports end of file: its
 * status is not checked, the value is.
 */
export const JOB_SCRIPT = [
    'IFS= read -r user < "$KCS_CREDENTIALS/user"',
    'IFS= read -r password < "$KCS_CREDENTIALS/password"',
    'if [ -z "$user" ]; then echo "kcs-job: no user in $KCS_CREDENTIALS/user" >&2; exit 2; fi',
    'printf "X-ClickHouse-User: %s\\nX-ClickHouse-Key: %s\\n" "$user" "$password" | curl -H @- "$@"',
].join("\n");
/** `$0` of the script, named in the shell's own messages. */
export const JOB_SCRIPT_NAME = "kcs-job";
/** The environment variable naming the folder that holds the files `user` and `password`. */
export const CREDENTIALS_ENV = "KCS_CREDENTIALS";
export const CREDENTIAL_FILES = { user: "user", password: "password" } as const;

/** Where the Job mounts what a request reads or writes. */
export interface JobPaths {
    /** The credentials Secret's user and password (files `user`, `password`). */
    readonly credentialsDir: string;
    /** The declared volume (exports write, imports read `<dataDir>/<path>`). */
    readonly dataDir: string;
    /** The object-storage Secret (`access-key-id`, `secret-access-key`). */
    readonly s3SecretDir: string;
    /** The CA certificate that signs ClickHouse's (TLS only). */
    readonly caFile: string;
}

export const JOB_PATHS: JobPaths = {
    credentialsDir: "/var/run/kcs-job/credentials",
    dataDir: "/var/lib/kcs-job/data",
    s3SecretDir: "/var/run/kcs-job/s3",
    caFile: "/var/run/kcs-job/ca/ca.crt",
};

/** Keys of an object-storage Secret. */
export const S3_SECRET_KEYS = {
    accessKeyId: "access-key-id",
    secretAccessKey: "secret-access-key",
} as const;

/** The ClickHouse a request goes to. */
export interface RequestTarget {
    /** `http://host:8123` or `https://host:8443`. */
    readonly url: string;
    /** The default database of the request (unqualified names resolve there). */
    readonly database: string;
    /** Verify the server with the CA at JobPaths.caFile (TLS). */
    readonly verifyWithCa?: boolean;
}

/** One request: a statement, its values, and what it reads or writes beside the response. */
export interface RequestStep {
    readonly sql: string;
    /** `param_<name>` values (public). */
    readonly params?: Readonly<Record<string, string | number | boolean>>;
    /** `param_<name>` values read from files (secrets): sent as form fields, never in the URL. */
    readonly secretParams?: Readonly<Record<string, string>>;
    readonly timeoutSeconds: number;
    /**
     * Sent as the read-only user (profile \`readonly = 1\`), which may change no setting: the
     * profile's own max_execution_time bounds the query, and nothing else is set.
     */
    readonly readonlyUser?: boolean;
    /** The result goes to this file instead of the log, in this format. */
    readonly output?: {
        readonly file: string;
        readonly format: DataFormat;
        readonly gzip: boolean;
    };
    /**
     * The body is this file (`sql` is then an `INSERT ... FORMAT x` sent in the URL). curl holds it
     * in memory while sending.
     */
    readonly input?: { readonly file: string; readonly gzip: boolean };
}

/** Seconds curl waits beyond the server's own limit before it gives up (exit 28). */
export const CLIENT_GRACE_SECONDS = 10;

/** What curl prints to stderr after every request. */
const WRITE_OUT =
    "%{stderr}kcs-job: HTTP %{response_code}, exception code: %header{x-clickhouse-exception-code}, summary: %header{x-clickhouse-summary}\\n";

/** curl's arguments for one request (appended to JOB_SCRIPT). */
export function requestArgs(
    step: RequestStep,
    target: RequestTarget,
    paths: JobPaths = JOB_PATHS,
): string[] {
    const publicParams = Object.entries(step.params ?? {}).map(
        ([k, v]) => [`param_${k}`, String(v)] as const,
    );
    const secrets = Object.entries(step.secretParams ?? {});
    // The statement first, at a fixed place: a changed query then shows in a preview's diff as
    // that one argument, old and new text in full.
    const statement = step.input
        ? ["--url-query", `query=${step.sql}`]
        : secrets.length > 0
          ? ["--form-string", `query=${step.sql}`]
          : ["--data-raw", step.sql];
    const args = [
        ...statement,
        "--silent",
        "--show-error",
        "--fail-with-body",
        "--connect-timeout",
        "10",
        "--max-time",
        String(step.timeoutSeconds + CLIENT_GRACE_SECONDS),
        "--write-out",
        WRITE_OUT,
        "--url-query",
        `database=${target.database}`,
        "--url-query",
        "wait_end_of_query=1",
    ];
    if (!step.readonlyUser) args.push("--url-query", `max_execution_time=${step.timeoutSeconds}`);
    if (target.verifyWithCa) args.push("--cacert", paths.caFile);
    if (step.output) {
        args.push("--url-query", `default_format=${step.output.format}`);
        args.push("--output", step.output.file, "--create-dirs");
        if (step.output.gzip)
            args.push("--url-query", "enable_http_compression=1", "-H", "Accept-Encoding: gzip");
    }
    if (step.input) {
        // The statement in the URL, the file as the body. curl reads the file whole before sending
        // it (`--upload-file` would append the file's name to the URL's path): the Job's memory
        // must hold it; big files go through s3 or a URL.
        for (const [k, v] of publicParams) args.push("--url-query", `${k}=${v}`);
        args.push("--data-binary", `@${step.input.file}`);
        args.push("-H", "Content-Type: application/octet-stream");
        if (step.input.gzip) args.push("-H", "Content-Encoding: gzip");
    } else if (secrets.length > 0) {
        // Form fields: the secrets are read from their files by curl and sent in the body.
        for (const [k, v] of publicParams) args.push("--form-string", `${k}=${v}`);
        for (const [k, file] of secrets) args.push("--form", `param_${k}=<${file}`);
    } else {
        // The statement is the body, as text (not a form: --data-raw sends it byte for byte).
        for (const [k, v] of publicParams) args.push("--url-query", `${k}=${v}`);
        args.push("-H", "Content-Type: text/plain; charset=UTF-8");
    }
    args.push(`${target.url.replace(/\/+$/, "")}/`);
    return args;
}

/** The request a declared query sends. */
export function queryStep(
    q: QuerySpec,
    database: string,
    paths: JobPaths = JOB_PATHS,
): RequestStep {
    const base = {
        params: q.parameters,
        timeoutSeconds: q.timeoutSeconds,
        ...(q.user === "readonly" ? { readonlyUser: true } : {}),
    };
    const s3Secrets = {
        kcs_key_id: `${paths.s3SecretDir}/${S3_SECRET_KEYS.accessKeyId}`,
        kcs_secret_key: `${paths.s3SecretDir}/${S3_SECRET_KEYS.secretAccessKey}`,
    };
    if (q.import) return importStep(q.import, database, base, paths, s3Secrets);
    const sql = (q.sql ?? "").trim().replace(/;\s*$/, "");
    const exp = q.export;
    if (!exp) return { ...base, sql };
    if ("volume" in exp.to) {
        return {
            ...base,
            sql,
            output: {
                file: `${paths.dataDir}/${exp.to.volume.path}`,
                format: exp.format,
                gzip: exp.compression === "gzip",
            },
        };
    }
    return {
        ...base,
        sql: `INSERT INTO FUNCTION s3({kcs_url:String}, {kcs_key_id:String}, {kcs_secret_key:String}, '${exp.format}', 'auto', '${exp.compression}') SETTINGS s3_truncate_on_insert = 1 ${sql}`,
        params: { ...q.parameters, kcs_url: exp.to.s3.url },
        secretParams: s3Secrets,
    };
}

function importStep(
    imp: ImportSpec,
    database: string,
    base: Pick<RequestStep, "params" | "timeoutSeconds" | "readonlyUser">,
    paths: JobPaths,
    s3Secrets: Record<string, string>,
): RequestStep {
    const table = `${quoteIdent(database)}.${quoteIdent(imp.table)}`;
    const from = imp.from;
    if ("volume" in from) {
        return {
            ...base,
            sql: `INSERT INTO ${table} FORMAT ${imp.format}`,
            input: {
                file: `${paths.dataDir}/${from.volume.path}`,
                gzip: imp.compression === "gzip",
            },
        };
    }
    if ("url" in from) {
        return {
            ...base,
            sql: `INSERT INTO ${table} SELECT * FROM url({kcs_url:String}, '${imp.format}')`,
            params: { kcs_url: from.url },
        };
    }
    return {
        ...base,
        sql: `INSERT INTO ${table} SELECT * FROM s3({kcs_url:String}, {kcs_key_id:String}, {kcs_secret_key:String}, '${imp.format}', 'auto', '${imp.compression}')`,
        params: { kcs_url: from.s3.url },
        secretParams: s3Secrets,
    };
}
