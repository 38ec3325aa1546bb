/** ClickHouse exceptions as the HTTP interface reports them (runtime/chserver-http.ts). */

/** A ClickHouse exception: code, type name and message, as the HTTP interface reports them. */
export class ChError extends Error {
    constructor(
        readonly code: number,
        readonly type: string,
        message: string,
    ) {
        super(message);
    }
}

const CH_MESSAGE = /^Code: (\d+)\. DB::Exception: ([\s\S]*?)\s*$/;
const CH_TYPE_AT_END = /\(([A-Z][A-Z0-9_]{2,})\)\s*$/;

/** The ClickHouse code, type and message of whatever chdb threw (code 1000 when it has none). */
export function toChError(e: unknown): ChError {
    if (e instanceof ChError) return e;
    const raw = e instanceof Error ? e.message : String(e);
    const m = CH_MESSAGE.exec(raw);
    if (m) {
        // chdb sometimes nests the server's own text: "Code: 108. DB::Exception: Code: 108. ..."
        let body = m[2]!;
        const inner = CH_MESSAGE.exec(body);
        if (inner && inner[1] === m[1]) body = inner[2]!;
        body = body.replace(/ \(version [^)]*\)\.?(?=\s*\([A-Z0-9_]+\)\s*$)/, "");
        const t = CH_TYPE_AT_END.exec(body);
        if (!t) return new ChError(Number(m[1]), "UNKNOWN_EXCEPTION", body);
        const type = t[1]!;
        let message = body.slice(0, t.index).replace(/\s+$/, "");
        // "... (TYPE) (version V). (TYPE)": the inner marker repeats the outer one
        if (message.endsWith(`(${type})`))
            message = message.slice(0, -type.length - 2).replace(/\s+$/, "");
        return new ChError(Number(m[1]), type, message.replace(/\.$/, ""));
    }
    return new ChError(1000, "POCO_EXCEPTION", raw);
}

/** ClickHouse's HTTP status for an exception (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp). */
export function httpStatusOf(type: string): number {
    switch (type) {
        case "REQUIRED_PASSWORD":
            return 401;
        case "UNKNOWN_USER":
        case "WRONG_PASSWORD":
        case "AUTHENTICATION_FAILED":
        case "SET_NON_GRANTED_ROLE":
        case "ACCESS_DENIED":
            return 403;
        case "BAD_ARGUMENTS":
        case "CANNOT_COMPILE_REGEXP":
        case "CANNOT_PARSE_TEXT":
        case "CANNOT_PARSE_ESCAPE_SEQUENCE":
        case "CANNOT_PARSE_QUOTED_STRING":
        case "CANNOT_PARSE_DATE":
        case "CANNOT_PARSE_DATETIME":
        case "CANNOT_PARSE_NUMBER":
        case "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING":
        case "CANNOT_PARSE_IPV4":
        case "CANNOT_PARSE_IPV6":
        case "CANNOT_PARSE_INPUT_ASSERTION_FAILED":
        case "CANNOT_PARSE_UUID":
        case "DUPLICATE_COLUMN":
        case "ILLEGAL_COLUMN":
        case "UNKNOWN_ELEMENT_IN_AST":
        case "UNKNOWN_TYPE_OF_AST_NODE":
        case "THERE_IS_NO_COLUMN":
        case "TOO_DEEP_AST":
        case "TOO_BIG_AST":
        case "UNEXPECTED_AST_STRUCTURE":
        case "SYNTAX_ERROR":
        case "INCORRECT_DATA":
        case "TYPE_MISMATCH":
        case "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE":
            return 400;
        case "UNKNOWN_TABLE":
        case "UNKNOWN_FUNCTION":
        case "UNKNOWN_IDENTIFIER":
        case "UNKNOWN_TYPE":
        case "UNKNOWN_STORAGE":
        case "UNKNOWN_DATABASE":
        case "UNKNOWN_SETTING":
        case "UNKNOWN_DIRECTION_OF_SORTING":
        case "UNKNOWN_AGGREGATE_FUNCTION":
        case "UNKNOWN_FORMAT":
        case "UNKNOWN_DATABASE_ENGINE":
        case "UNKNOWN_TYPE_OF_QUERY":
        case "UNKNOWN_ROLE":
            return 404;
        case "QUERY_IS_TOO_LARGE":
            return 413;
        case "NOT_IMPLEMENTED":
            return 501;
        case "SOCKET_TIMEOUT":
        case "CANNOT_OPEN_FILE":
        case "CANNOT_SCHEDULE_TASK":
            return 503;
        case "HTTP_LENGTH_REQUIRED":
            return 411;
        case "TIMEOUT_EXCEEDED":
            return 408;
        case "UNSUPPORTED_MEDIA_TYPE":
            return 415;
        default:
            return 500;
    }
}

export const notImplemented = (what: string) =>
    new ChError(
        48,
        "NOT_IMPLEMENTED",
        `${what} is not supported by this test server (runtime/chserver-main.ts)`,
    );
