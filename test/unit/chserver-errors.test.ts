/**
 * The local ClickHouse HTTP server answers errors as ClickHouse does: the code, type and message
 * taken from what the real engine (chdb) throws, and the HTTP status ClickHouse gives that type.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChError, httpStatusOf, notImplemented, toChError } from "../../runtime/chserver-errors";

/** What the embedded engine throws for `sql`. */
function engineError(sql: string): unknown {
    const chdb = require("chdb") as { query(sql: string, format: string): string };
    try {
        chdb.query(sql, "CSV");
    } catch (e) {
        return e;
    }
    assert.fail(`the engine ran ${sql} without an error`);
}

describe("ClickHouse errors of the local HTTP server", () => {
    const cases: [sql: string, code: number, type: string, status: number, words: RegExp][] = [
        [
            "SELECT * FROM nope",
            60,
            "UNKNOWN_TABLE",
            404,
            /Unknown table expression identifier 'nope'/,
        ],
        ["SELEC 1", 62, "SYNTAX_ERROR", 400, /^Syntax error: failed at position \d+/],
        ["SELECT nosuchfn(1)", 46, "UNKNOWN_FUNCTION", 404, /`nosuchfn` does not exist/],
        ["SELECT toUInt8('x')", 6, "CANNOT_PARSE_TEXT", 400, /Cannot parse string 'x' as UInt8/],
    ];
    for (const [sql, code, type, status, words] of cases) {
        it(`${sql}: ${code} ${type}, HTTP ${status}`, () => {
            const e = toChError(engineError(sql));
            assert.equal(e.code, code);
            assert.equal(e.type, type);
            assert.match(e.message, words);
            // The type is reported apart, not repeated at the end of the message.
            assert.doesNotMatch(e.message, new RegExp(`\\(${type}\\)\\s*$`));
            assert.equal(httpStatusOf(e.type), status);
        });
    }

    it("the engine's nested repeat of its own code is read once", () => {
        const e = toChError(
            new Error(
                "Code: 108. DB::Exception: Code: 108. DB::Exception: No data to insert. (NO_DATA_TO_INSERT) (version 26.7.1). (NO_DATA_TO_INSERT)",
            ),
        );
        assert.deepEqual(
            [e.code, e.type, e.message],
            [108, "NO_DATA_TO_INSERT", "No data to insert"],
        );
    });

    it("a message without a type marker keeps the code, type UNKNOWN_EXCEPTION", () => {
        const e = toChError(new Error("Code: 241. DB::Exception: Memory limit exceeded"));
        assert.deepEqual([e.code, e.type], [241, "UNKNOWN_EXCEPTION"]);
    });

    it("anything else is code 1000, as ClickHouse reports a foreign exception", () => {
        const e = toChError("socket hang up");
        assert.deepEqual([e.code, e.type, e.message], [1000, "POCO_EXCEPTION", "socket hang up"]);
        const same = new ChError(516, "AUTHENTICATION_FAILED", "bad password");
        assert.equal(toChError(same), same);
    });

    it("statuses of the types a client acts on; anything unknown is 500", () => {
        const expected: Record<string, number> = {
            REQUIRED_PASSWORD: 401,
            AUTHENTICATION_FAILED: 403,
            ACCESS_DENIED: 403,
            UNKNOWN_DATABASE: 404,
            QUERY_IS_TOO_LARGE: 413,
            TIMEOUT_EXCEEDED: 408,
            HTTP_LENGTH_REQUIRED: 411,
            UNSUPPORTED_MEDIA_TYPE: 415,
            NOT_IMPLEMENTED: 501,
            SOCKET_TIMEOUT: 503,
            MEMORY_LIMIT_EXCEEDED: 500,
        };
        for (const [type, status] of Object.entries(expected))
            assert.equal(httpStatusOf(type), status, type);
    });

    it("what the server does not implement is NOT_IMPLEMENTED, naming the feature", () => {
        const e = notImplemented("the native protocol");
        assert.deepEqual([e.code, e.type, httpStatusOf(e.type)], [48, "NOT_IMPLEMENTED", 501]);
        assert.match(e.message, /^the native protocol is not supported/);
    });
});
