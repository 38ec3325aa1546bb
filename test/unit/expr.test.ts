/**
 * The expression grammar (schemas/expr.ts): what it accepts and how it renders, what it rejects and
 * why, its limits, and round-trip properties. test/integration/expr.test.ts asks the real engine.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
    ExprField,
    FUNCTIONS,
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_LENGTH,
    columnsOf,
    parseExpression,
    renderExpression,
} from "../../schemas/expr";
import { SqlInputError } from "../../schemas/sql";
import {
    COLUMN_NAMES,
    COLUMN_TYPES,
    exprTree,
    hostileText,
    mutatedText,
    respacedText,
    ttlTree,
} from "./expr-arbitraries";

const parse = (text: string, field: ExprField = "orderBy") =>
    parseExpression(text, { field, columns: COLUMN_NAMES, columnTypes: COLUMN_TYPES });
const render = (text: string, field: ExprField = "orderBy") => renderExpression(parse(text, field));

describe("accepted expressions render canonically", () => {
    const cases: Array<[ExprField, string, string]> = [
        ["orderBy", "id", "`id`"],
        ["orderBy", "  `id`  ", "`id`"],
        ["orderBy", "`end` || `select`", "`end` || `select`"],
        ["partitionBy", "toYYYYMM(ts)", "toYYYYMM(`ts`)"],
        ["partitionBy", "tuple(toYYYYMM(ts), kind)", "tuple(toYYYYMM(`ts`), `kind`)"],
        ["ttl", "ts + INTERVAL 30 DAY", "`ts` + INTERVAL 30 DAY"],
        ["ttl", "ts + interval 30 day delete", "`ts` + INTERVAL 30 DAY"],
        ["ttl", "toDateTime(ts) - INTERVAL 1 hour", "toDateTime(`ts`) - INTERVAL 1 HOUR"],
        ["ttl", "INTERVAL 1 DAY + toDate(ts)", "INTERVAL 1 DAY + toDate(`ts`)"],
        ["ttl", "ts + toIntervalDay(7)", "`ts` + toIntervalDay(7)"],
        ["ttl", "ts", "`ts`"],
        ["default", "'unknown'", "'unknown'"],
        ["default", "''", "''"],
        ["default", "0", "0"],
        ["default", "map()", "map()"],
        ["default", "now()", "now()"],
        ["default", "NOW()", "now()"],
        ["default", "generateUUIDv4()", "generateUUIDv4()"],
        ["default", "-1.5e-3", "-1.5e-3"],
        ["default", "- 1", "-1"],
        ["default", "-(1)", "-(1)"],
        ["default", "-(-1)", "-(-1)"],
        ["default", "1 - -1", "1 - -1"],
        ["default", "'it''s'", "'it\\'s'"],
        ["default", "'back\\\\slash \\' \\x41'", "'back\\\\slash \\' A'"],
        ["default", "'--not a comment /* ; , '", "'--not a comment /* ; , '"],
        ["default", "'ünï 😀'", "'ünï 😀'"],
        ["default", "[1, 2, 3]", "[1, 2, 3]"],
        ["default", "[]", "[]"],
        ["default", "CAST(NULL AS Nullable(String))", "CAST(NULL AS Nullable(String))"],
        ["default", "cast(1 as DateTime64(3,'UTC'))", "CAST(1 AS DateTime64(3, 'UTC'))"],
        ["default", "true", "true"],
        ["default", "FALSE", "false"],
        ["orderBy", "-id * 2 + 1", "-`id` * 2 + 1"],
        ["orderBy", "(id + 1) * 2", "(`id` + 1) * 2"],
        ["orderBy", "id - (amount - 1)", "`id` - (`amount` - 1)"],
        ["orderBy", "((id))", "`id`"],
        ["orderBy", "id == 1", "`id` = 1"],
        ["orderBy", "id <> 1", "`id` != 1"],
        ["orderBy", "NOT id = 1 AND kind IS NOT NULL OR id BETWEEN 1 AND 2", "NOT `id` = 1 AND `kind` IS NOT NULL OR `id` BETWEEN 1 AND 2"],
        ["orderBy", "id NOT BETWEEN 1 AND 2 + 3", "`id` NOT BETWEEN 1 AND 2 + 3"],
        ["orderBy", "(id = 1) = 0", "(`id` = 1) = 0"],
        ["orderBy", "id = 1 IS NULL", "`id` = 1 IS NULL"],
        ["orderBy", "kind NOT LIKE '%x\\\\%'", "`kind` NOT LIKE '%x\\\\%'"],
        ["orderBy", "kind ilike 'a%'", "`kind` ILIKE 'a%'"],
        ["orderBy", "id IN (1, -2, 'x', NULL, true)", "`id` IN (1, -2, 'x', NULL, true)"],
        ["orderBy", "id not in (1)", "`id` NOT IN (1)"],
        ["orderBy", "CASE WHEN id > 1 THEN 'a' ELSE 'b' END", "CASE WHEN `id` > 1 THEN 'a' ELSE 'b' END"],
        ["orderBy", "case kind when 'a' then 1 end", "CASE `kind` WHEN 'a' THEN 1 END"],
        ["orderBy", "if(id > 0, 'p', 'n')", "if(`id` > 0, 'p', 'n')"],
        ["orderBy", "multiIf(id = 1, 'a', id = 2, 'b', 'c')", "multiIf(`id` = 1, 'a', `id` = 2, 'b', 'c')"],
        ["orderBy", "Coalesce(`select`, 0)", "coalesce(`select`, 0)"],
        ["orderBy", "cityHash64(kind, id) % 16", "cityHash64(`kind`, `id`) % 16"],
        ["orderBy", "intDiv(id, 1000)", "intDiv(`id`, 1000)"],
        ["orderBy", "toStartOfHour(ts)", "toStartOfHour(`ts`)"],
        ["orderBy", "lower(kind) || '-' || toString(id)", "lower(`kind`) || '-' || toString(`id`)"],
        ["orderBy", "id\n+\t1", "`id` + 1"],
    ]; // prettier-ignore
    for (const [field, input, expected] of cases) {
        it(`${field}: ${JSON.stringify(input)} -> ${expected}`, () => {
            const sql = render(input, field);
            assert.equal(sql, expected);
            assert.deepEqual(parse(sql, field), parse(input, field), "the rendering parses back");
        });
    }
});

describe("hostile and invalid expressions are rejected with the token and the fix", () => {
    const cases: Array<[ExprField, string, RegExp]> = [
        // a second column or clause smuggled at create or through ALTER ... MODIFY COLUMN
        ["default", "'x', extra String", /',' at character 3: a default is exactly one expression; a top-level ',' is not allowed/],
        ["default", "1, `extra` String DEFAULT 2", /top-level ','/],
        ["default", "0 MODIFY COLUMN id String", /'MODIFY' at character 2: SQL clauses and commands are not allowed/],
        ["default", "0, MODIFY COLUMN id String", /top-level ','/],
        ["default", "0, CLEAR COLUMN id", /top-level ','/],
        ["default", "0 CLEAR COLUMN id", /'CLEAR' .*SQL clauses/],
        ["default", "0 CONSTRAINT c CHECK 1", /'CONSTRAINT' .*SQL clauses/],
        ["default", "0 CODEC(ZSTD)", /'CODEC' .*SQL clauses/],
        ["default", "0 COMMENT 'x'", /'COMMENT' .*SQL clauses/],
        ["default", "0 TTL ts", /'TTL' .*SQL clauses/],
        ["default", "0) ENGINE = Memory --", /comment '--'|'\)' at character 1/],
        ["default", "0) ENGINE = Memory", /'\)' at character 1: unexpected after the expression/],
        ["orderBy", "id, ts", /an orderBy item is exactly one expression.*list ORDER BY items separately/],
        ["orderBy", "id DESC", /'DESC' .*ORDER BY has no ASC\/DESC/],
        ["orderBy", "id ASC", /ORDER BY has no ASC\/DESC/],
        ["partitionBy", "(toYYYYMM(ts), kind)", /tuples are allowed only as IN lists \(write tuple\(a, b\)/],
        ["ttl", "ts + INTERVAL 1 DAY TO DISK 'cold'", /'TO' .*a ttl is '<expression> \[DELETE\]' only/],
        ["ttl", "ts + INTERVAL 1 DAY, ts + INTERVAL 2 DAY DELETE", /top-level ','/],
        ["ttl", "ts + INTERVAL 1 DAY DELETE WHERE id = 1", /'WHERE' .*moves, WHERE, GROUP BY/],
        ["ttl", "ts + INTERVAL 1 DAY GROUP BY id", /'GROUP' .*GROUP BY/],
        ["ttl", "id + INTERVAL 1 DAY", /is not a Date or DateTime expression/],
        ["ttl", "`select` + INTERVAL 1 DAY", /not a Date or DateTime expression/],
        ["ttl", "ts + 1", /not a Date or DateTime expression/],
        ["ttl", "ts DELETE DELETE", /'DELETE' at character 10: SQL clauses/],
        ["orderBy", "ts + INTERVAL 1 DAY DELETE", /'DELETE' .*SQL clauses/],
        // table, dictionary and server access
        ["orderBy", "dictGet('d', 'a', id)", /function 'dictGet' at character 0 is not allowed: table and dictionary access/],
        ["orderBy", "dictGetString('d', 'a', id)", /table and dictionary access/],
        ["orderBy", "joinGet('j', 'v', id)", /function 'joinGet' .*table and dictionary access/],
        ["orderBy", "id IN some_table", /'some_table' at character 6: IN takes a parenthesized list of literals/],
        ["orderBy", "id IN db.t", /character '\.' at character 8/],
        ["orderBy", "id IN (SELECT 1)", /'SELECT' .*an IN list holds only literals/],
        ["orderBy", "id IN (ts)", /an IN list holds only literals/],
        ["orderBy", "id IN (1 + 1)", /'\+' .*expected '\)' to close the IN list/],
        ["orderBy", "(SELECT 1)", /keyword 'SELECT' at character 1: subqueries are not allowed/],
        ["orderBy", "id UNION ALL SELECT 1", /'UNION' .*SQL clauses/],
        ["orderBy", "file('/etc/passwd')", /function 'file' .*allow-list/],
        ["orderBy", "url('http://x')", /function 'url' .*allow-list/],
        ["orderBy", "sleep(3)", /function 'sleep' .*allow-list/],
        ["orderBy", "arrayJoin([1, 2])", /function 'arrayJoin' .*allow-list/],
        ["orderBy", "currentDatabase()", /allow-list/],
        ["orderBy", "getSetting('max_threads')", /allow-list/],
        ["orderBy", "count(id)", /allow-list/],
        ["orderBy", "quantile(0.5)(id)", /allow-list/],
        ["orderBy", "toStartOfInterval(ts, INTERVAL 1 DAY)(1)", /parametric calls/],
        ["orderBy", "arrayMap(x -> x, [1])", /allow-list|lambdas/],
        ["orderBy", "x -> x", /'->' at character 2: lambdas are not allowed/],
        ["orderBy", "id::String", /'::' .*CAST\(x AS Type\)/],
        ["orderBy", "CAST(id, 'String')", /write CAST\(x AS Type\)/],
        ["orderBy", "CAST(id AS Strnig)", /type in CAST at character 11: .*Strnig/],
        ["orderBy", "CAST(id AS String) SETTINGS x = 1", /'SETTINGS' .*SQL clauses/],
        ["orderBy", "{p:String}", /character '\{'/],
        ["orderBy", "tupleElement(t, 1).x", /character '\.' .*no field or tuple access/],
        ["orderBy", "id[1]", /'\[' at character 2: unexpected after the expression/],
        // names
        ["orderBy", "nope", /unknown column 'nope' at character 0; the stream's columns are id, ts, kind, amount, end, select/],
        ["orderBy", "ID", /unknown column 'ID' .*case-sensitive: did you mean 'id'\?/],
        ["orderBy", "`nope`", /unknown column 'nope'/],
        ["orderBy", "end", /'end' at character 0: keyword in the place of a value; write the column as `end`/],
        ["orderBy", "`id`) ENGINE = Memory", /'\)' at character 4: unexpected/],
        ["orderBy", "`i\\`d`", /quoted name "i\\\\" at character 0 is not a column name/],
        ["orderBy", "`id", /unterminated quoted name/],
        ["orderBy", '"id"', /double quotes are not allowed/],
        ["default", "id", /a default may not refer to columns/],
        ["default", "toDate(ts)", /'ts' at character 7: a default may not refer to columns/],
        ["orderBy", "TODATE(ts)", /ClickHouse spells this function 'toDate' \(its name is case-sensitive\)/],
        ["orderBy", "IF(id, 1, 2) + MULTIIF(id, 1, 2)", /spells this function 'multiIf'/],
        // comments, separators, quotes
        ["orderBy", "id -- comment", /comment '--' at character 3: comments are not allowed/],
        ["orderBy", "id /* c */", /comment '\/\*'/],
        ["orderBy", "id # c", /comment '#'/],
        ["orderBy", "id; DROP TABLE t", /';' is not allowed \(at character 2\)/],
        ["orderBy", "'abc", /unterminated string starting at character 0/],
        ["orderBy", "'a\\'", /unterminated string/],
        ["orderBy", "'a' 'b'", /'b' at character 4: unexpected after the expression/],
        ["orderBy", "'\\n'", /escape '\\n' .*use \\\\ for a backslash/],
        ["orderBy", "'\\x00'", /only printable ASCII may be written as \\xHH/],
        ["orderBy", "'\\x'", /escape '\\x'/],
        ["orderBy", "'a\nb'", /holds U\+000A: control, bidi and unpaired surrogate characters are not allowed/],
        ["orderBy", "'a\u0000b'", /holds U\+0000/],
        ["orderBy", "'\u202eevil'", /holds U\+202E/],
        ["orderBy", "'\ud800'", /holds U\+D800/],
        // look-alikes and invisible characters outside strings
        ["orderBy", "ｉｄ", /character U\+FF49 at character 0 is not allowed outside a string literal/],
        ["orderBy", "id，ts", /character U\+FF0C/],
        ["orderBy", "id\u00a0", /character U\+00A0/],
        ["orderBy", "i\u200bd", /character U\+200B/],
        ["orderBy", "id\u2028", /character U\+2028/],
        ["orderBy", "\ufeffid", /character U\+FEFF/],
        ["orderBy", "id\u0000", /character U\+0000 at character 2/],
        ["orderBy", "іd", /character U\+0456/],
        // numbers
        ["orderBy", "007", /'007' at character 0 is not a number ClickHouse reads plainly/],
        ["orderBy", "0x1F", /'0x1F' .*not a number/],
        ["orderBy", "1.", /'1\.' .*not a number/],
        ["orderBy", "1x", /'1x' .*not a number/],
        ["orderBy", "1e", /not a number/],
        ["orderBy", "[1.5e309]", /'1\.5e309' at character 1 is out of the range of Float64/],
        ["orderBy", "-1e400", /out of the range of Float64/],
        ["orderBy", "1" + "0".repeat(40), /not a number .*at most 40 characters/],
        // shapes
        ["orderBy", "", /expression is empty/],
        ["orderBy", "   ", /expression is empty/],
        ["orderBy", "id +", /expression ends too early/],
        ["orderBy", "(id", /end of expression: expected '\)' to close the parenthesis/],
        ["orderBy", "id)", /'\)' at character 2: unexpected/],
        ["orderBy", "id < ts < 1", /'<' at character 8: comparisons do not chain/],
        ["orderBy", "id = ts LIKE 'x'", /comparisons do not chain/],
        ["orderBy", "id BETWEEN 1 AND 2 = ts", /comparisons do not chain/],
        ["orderBy", "id IS 1", /expected NULL after IS/],
        ["orderBy", "CASE END", /CASE needs at least one WHEN/],
        ["orderBy", "CASE WHEN id THEN 1", /expected END to close CASE/],
        ["orderBy", "INTERVAL 1 FORTNIGHT", /INTERVAL unit must be one of SECOND, MINUTE/],
        ["orderBy", "INTERVAL 1.5 DAY", /INTERVAL takes a whole number/],
        ["orderBy", "[1, 2", /expected '\]' to close the array/],
        ["orderBy", "substring(kind)", /function 'substring' at character 0 takes at least 2 arguments/],
        ["orderBy", "POSITION()", /function 'POSITION' .*at least 2 arguments/],
        ["orderBy", "position(kind IN ('a'), 'b')", /first argument cannot contain IN/],
        ["orderBy", "position(kind IN ('a') AND id, 'b')", /first argument cannot contain IN/],
    ]; // prettier-ignore
    for (const [field, input, message] of cases) {
        it(`${field}: ${JSON.stringify(input)}`, () => {
            assert.throws(
                () => parse(input, field),
                (e: unknown) => {
                    assert.ok(e instanceof SqlInputError, `SqlInputError, got ${String(e)}`);
                    assert.match(e.message, message);
                    return true;
                },
            );
        });
    }
});

describe("limits", () => {
    it(`rejects text longer than ${MAX_EXPRESSION_LENGTH} characters, naming the limit`, () => {
        const long = "id + " + "1 + ".repeat(MAX_EXPRESSION_LENGTH) + "1";
        assert.throws(() => parse(long), /characters long; at most 4096 are allowed/);
        assert.doesNotThrow(() => parse(`[${"1, ".repeat(1000)}1]`), "long but shallow");
    });

    const deep: Array<[string, string]> = [
        ["parentheses", "(".repeat(2000) + "id" + ")".repeat(2000)],
        ["NOT", "NOT ".repeat(1000) + "id"],
        ["unary minus", "- ".repeat(2000) + "id"],
        ["function calls", "abs(".repeat(800) + "id" + ")".repeat(800)],
        ["arrays", "[".repeat(2000) + "]".repeat(2000)],
        ["CASE", "CASE WHEN ".repeat(400) + "1"],
        ["CAST", "CAST(".repeat(800) + "1"],
    ];
    for (const [what, text] of deep) {
        it(`nesting of ${what} beyond ${MAX_EXPRESSION_DEPTH} levels is an error, not a stack overflow`, () => {
            assert.ok(text.length <= MAX_EXPRESSION_LENGTH, "the depth limit is what trips");
            assert.throws(() => parse(text), /nested more than 64 levels deep; simplify it/);
        });
    }

    it("accepts nesting up to the limit", () => {
        const ok =
            "(".repeat(MAX_EXPRESSION_DEPTH - 1) + "id" + ")".repeat(MAX_EXPRESSION_DEPTH - 1);
        assert.equal(render(ok), "`id`");
        const chain = (n: number) => Array.from({ length: n }, () => "id").join(" + ");
        assert.equal(
            render(chain(MAX_EXPRESSION_DEPTH)),
            chain(MAX_EXPRESSION_DEPTH).replace(/id/g, "`id`"),
        );
        // A long chain loops in the parser but nests in the tree (the engine refuses 500 terms).
        assert.throws(
            () => render(chain(MAX_EXPRESSION_DEPTH + 1)),
            /nested more than 64 levels deep \(each operator of a chain/,
        );
        assert.throws(() => render(chain(800)), /nested more than 64 levels/);
    });
});

describe("columnsOf", () => {
    const cases: Array<[string, string[]]> = [
        ["1 + 2", []],
        ["id", ["id"]],
        ["toYYYYMM(ts) + id * id", ["ts", "id"]],
        ["CASE `end` WHEN 'a' THEN kind ELSE `select` END", ["end", "kind", "select"]],
        ["id IN (1, 2) AND amount BETWEEN 1 AND ts", ["id", "amount", "ts"]],
        ["CAST(kind AS String) LIKE lower(kind)", ["kind"]],
        ["['kind', 'id']", []],
    ];
    for (const [input, columns] of cases) {
        it(`${input} -> [${columns.join(", ")}]`, () =>
            assert.deepEqual(columnsOf(parse(input)), columns));
    }
});

describe("the function allow-list", () => {
    it("holds no table, dictionary, join, aggregate or row-multiplying function", () => {
        for (const f of FUNCTIONS) {
            assert.doesNotMatch(
                f,
                /^(dict|joinGet|arrayJoin|file|url|s3|remote|input|sleep|throwIf|getSetting|currentDatabase|hostName|count|sum|avg|quantile|uniq)/i,
            );
        }
        assert.equal(
            new Set(FUNCTIONS.map((f) => f.toLowerCase())).size,
            FUNCTIONS.length,
            "no duplicates",
        );
    });

    it("matches case-insensitive names in any case and renders the canonical spelling", () => {
        assert.equal(render("LoWeR(kind)"), "lower(`kind`)");
        assert.equal(render("IFNULL(`select`, 0)"), "ifNull(`select`, 0)");
        assert.throws(() => render("tostring(id)"), /spells this function 'toString'/);
    });
});

describe("properties", () => {
    const fields: ExprField[] = ["orderBy", "partitionBy", "default"];

    it("render(tree) parses back to the same tree, for every field (idempotent rendering)", () => {
        const perField = fc
            .constantFrom(...fields)
            .chain((field) =>
                exprTree(field === "default" ? [] : COLUMN_NAMES).map((tree) => ({ field, tree })),
            );
        fc.assert(
            fc.property(perField, ({ field, tree }) => {
                const sql = renderExpression(tree);
                assert.deepEqual(parseExpression(sql, { field, columns: COLUMN_NAMES }), tree);
            }),
            { numRuns: 400 },
        );
        fc.assert(
            fc.property(exprTree(COLUMN_NAMES), (tree) => {
                const sql = renderExpression(tree);
                const again = parse(sql);
                assert.deepEqual(again, tree);
                assert.equal(renderExpression(again), sql, "rendering is a fixed point");
            }),
            { numRuns: 1000 },
        );
        fc.assert(
            fc.property(ttlTree(COLUMN_NAMES), (tree) => {
                assert.deepEqual(parse(renderExpression(tree), "ttl"), tree);
            }),
            { numRuns: 300 },
        );
    });

    it("hostile text either fails with SqlInputError or renders to text that parses to the same tree", () => {
        let accepted = 0;
        let rejected = 0;
        fc.assert(
            fc.property(
                fc.oneof(hostileText, mutatedText(COLUMN_NAMES), respacedText(COLUMN_NAMES)),
                fc.constantFrom(...fields, "ttl" as const),
                (text, field) => {
                    let tree;
                    try {
                        tree = parse(text, field);
                    } catch (e) {
                        assert.ok(
                            e instanceof SqlInputError,
                            `only SqlInputError escapes, got ${String(e)}`,
                        );
                        rejected++;
                        return;
                    }
                    accepted++;
                    const sql = renderExpression(tree);
                    assert.deepEqual(parse(sql, field), tree);
                    // What is rendered is free of anything that could end the expression early.
                    assert.doesNotMatch(
                        sql.replace(/'(?:\\.|[^'\\])*'|`[a-z0-9_]+`/g, "''"),
                        /--|\/\*|#|;|"|\b(SELECT|MODIFY|CLEAR|CONSTRAINT|SETTINGS)\b/i,
                    );
                },
            ),
            { numRuns: 3000 },
        );
        console.log(`[expr] hostile text: ${accepted} accepted, ${rejected} rejected`);
        assert.ok(accepted > 500 && rejected > 500, "the generator exercises both outcomes");
    });
});
