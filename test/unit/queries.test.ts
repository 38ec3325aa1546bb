/**
 * Declared query files (schemas/queries/): the loader refuses bad and hostile files with the file,
 * the key and the fix, before anything is registered; the shipped and example files load; the
 * editor's JSON Schema is the zod schema's.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { queryJsonSchema } from "../../scripts/generate";
import { QuerySchemaError, loadQueries, parseQuery, scanSql } from "../../schemas/queries";
import { ROOT } from "./mocks";

const OK = `
name: report
schedule: { cron: "0 6 * * *", timeZone: Europe/Berlin }
sql: SELECT count() FROM events WHERE day = {day:Date}
parameters: { day: "2026-01-01" }
`;

/** The problems of one document, as `key: message` lines. */
function problems(yaml: string): string[] {
    try {
        parseQuery(yaml, "q.yaml");
    } catch (e) {
        assert.ok(e instanceof QuerySchemaError, String(e));
        for (const p of e.problems) assert.equal(p.file, "q.yaml");
        return e.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
}

function assertProblem(yaml: string, key: string, message: RegExp): void {
    const found = problems(yaml);
    assert.ok(
        found.some((p) => p.startsWith(`${key}: `) && message.test(p)),
        `expected ${key}: ${message} in ${JSON.stringify(found, null, 1)}`,
    );
}

describe("query files: what loads", () => {
    it("a scheduled query with parameters, with the defaults applied", () => {
        const q = parseQuery(OK, "q.yaml").spec;
        assert.deepEqual(q.schedule, { cron: "0 6 * * *", timeZone: "Europe/Berlin" });
        assert.equal(q.user, "readonly");
        assert.equal(q.timeoutSeconds, 60);
        assert.equal(q.retries, 2);
        assert.deepEqual(q.resources, { cpu: "50m", memory: "64Mi" });
    });

    it("the shipped queries and the examples", () => {
        assert.deepEqual(
            loadQueries(path.join(ROOT, "schemas/queries")).map((q) => q.spec.name),
            ["daily-retention-report"],
        );
        assert.deepEqual(
            loadQueries(path.join(ROOT, "schemas/query-examples")).map((q) => q.spec.name),
            ["export-orders-s3", "export-web-events", "import-web-events"],
        );
    });

    it("a folder that does not exist holds no queries; a file in its place is refused", () => {
        assert.deepEqual(loadQueries(path.join(os.tmpdir(), "kcs-no-such-folder-5d1")), []);
        assert.throws(() => loadQueries(path.join(ROOT, "package.json")), /not a directory/);
    });

    it("placeholders and separators inside quotes and comments do not count", () => {
        const s = scanSql(
            "SELECT '{a:String}', `{b:String}` -- {c:String};\n/* {d:String} ; */ FROM t WHERE x = {e:UInt8}; -- done",
        );
        assert.deepEqual(s.placeholders, ["e"]);
        assert.equal(s.statements, 1);
        assert.equal(scanSql("SELECT 1; SELECT 2").statements, 2);
        assert.equal(scanSql("SELECT 1 FORMAT CSV").format, true);
        assert.equal(scanSql("SELECT 'FORMAT CSV'").format, false);
    });

    it("the JSON Schema for editors is generated from the zod schema", () => {
        const file = fs.readFileSync(path.join(ROOT, "schemas/query.schema.json"), "utf8");
        assert.equal(file, queryJsonSchema(), "run npm run generate");
    });
});

describe("query files: refused with the file, the key and the fix", () => {
    it("an unknown key names the schema file to check the spelling against", () =>
        assertProblem(OK + "shedule: once\n", "", /shedule.*schemas\/query\.schema\.json/));

    it("neither sql nor import; both sql and import; export and import together", () => {
        assertProblem("name: a\nschedule: once\n", "sql", /missing: give the statement/);
        assertProblem(
            "name: a\nschedule: once\nuser: admin\nsql: SELECT 1\nimport: { table: t, format: CSV, from: { url: 'http://h/x' } }\n",
            "sql",
            /remove `sql`, or remove `import`/,
        );
    });

    it("placeholders without a value, values without a placeholder, the stack's own prefix", () => {
        assertProblem(
            "name: a\nschedule: once\nsql: SELECT {x:UInt8}\n",
            "sql",
            /\{x:\.\.\.\} has no value.*param_x, never spliced/,
        );
        assertProblem(
            "name: a\nschedule: once\nsql: SELECT 1\nparameters: { unused: 1 }\n",
            "parameters.unused",
            /not used by sql/,
        );
        assertProblem(
            "name: a\nschedule: once\nsql: SELECT {kcs_url:String}\nparameters: { kcs_url: x }\n",
            "parameters.kcs_url",
            /the stack's own/,
        );
    });

    it("two statements, an unclosed quote or comment, a FORMAT clause on an export", () => {
        assertProblem(
            "name: a\nschedule: once\nsql: 'SELECT 1; DROP TABLE t'\n",
            "sql",
            /more than one statement/,
        );
        assertProblem('name: a\nschedule: once\nsql: "SELECT \'x"\n', "sql", /unclosed quote/);
        assertProblem("name: a\nschedule: once\nsql: SELECT 1 /* x\n", "sql", /unclosed comment/);
        assertProblem(
            "name: a\nschedule: once\nsql: SELECT 1 FORMAT CSV\nexport: { format: Parquet, to: { volume: { claim: c, path: x } } }\n",
            "sql",
            /FORMAT clause/,
        );
    });

    it("schedules: a malformed cron expression, an unknown time zone", () => {
        assertProblem(
            "name: a\nschedule: { cron: '0 6 * *' }\nsql: SELECT 1\n",
            "schedule.cron",
            /five-field cron/,
        );
        assertProblem(
            "name: a\nschedule: { cron: '0 6 * * *', timeZone: Mars/Olympus }\nsql: SELECT 1\n",
            "schedule.timeZone",
            /not an IANA time zone/,
        );
    });

    it("what the read-only user cannot do: write, run past its profile's limit, compress", () => {
        assertProblem(
            "name: a\nschedule: once\nimport: { table: t, format: CSV, from: { url: 'http://h/x' } }\n",
            "user",
            /an import writes: set `user: admin`/,
        );
        assertProblem(
            "name: a\nschedule: once\nsql: SELECT 1\nexport: { format: CSV, to: { s3: { url: 'https://b.s3.x/k', secret: s } } }\n",
            "user",
            /object storage writes/,
        );
        assertProblem(
            "name: a\nschedule: once\ntimeoutSeconds: 61\nsql: SELECT 1\n",
            "timeoutSeconds",
            /stops every query at 60 s/,
        );
        assertProblem(
            "name: a\nschedule: once\nsql: SELECT 1\nexport: { format: CSV, compression: gzip, to: { volume: { claim: c, path: x } } }\n",
            "export.compression",
            /enable_http_compression/,
        );
    });

    it("hostile names, paths and URLs", () => {
        for (const name of ["Report", "a_b", "-a", "a".repeat(31), "a b", "a;rm"])
            assertProblem(`name: "${name}"\nschedule: once\nsql: SELECT 1\n`, "name", /query name/);
        for (const p of [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "a/./b",
            "a b",
            "a;b",
            "$(x)",
        ])
            assertProblem(
                `name: a\nschedule: once\nsql: SELECT 1\nexport: { format: CSV, to: { volume: { claim: c, path: '${p}' } } }\n`,
                "export.to.volume.path",
                /relative path/,
            );
        for (const url of ["ftp://h/x", "https://h/x' OR 1", "https://h/a b", "file:///etc/passwd"])
            assertProblem(
                `name: a\nschedule: once\nuser: admin\nimport: { table: t, format: CSV, from: { url: "${url}" } }\n`,
                "import.from.url",
                /http\(s\) URL/,
            );
        assertProblem(
            "name: a\nschedule: once\nuser: admin\nimport: { table: 'x; DROP', format: CSV, from: { url: 'http://h/x' } }\n",
            "import.table",
            /snake_case/,
        );
        assertProblem(
            "name: a\nschedule: once\nsql: SELECT 1\nparameters: { 'a-b': 1 }\n",
            "parameters.a-b",
            /invalid key: parameter names are snake_case/,
        );
    });

    it("control characters: refused in SQL (bidi overrides) and elsewhere; tabs and line breaks in SQL are fine", () => {
        assertProblem(
            'name: a\nschedule: once\nsql: "SELECT 1 \\u202e-- x"\n',
            "sql",
            /control character U\+202E/,
        );
        assertProblem(
            'name: a\ndescription: "a\\u0007b"\nschedule: once\nsql: SELECT 1\n',
            "description",
            /control character U\+0007/,
        );
        assert.deepEqual(problems('name: a\nschedule: once\nsql: "SELECT\\t1\\r\\nFROM t"\n'), []);
    });

    it("documents that are not YAML, alias bombs, deep nesting, huge files", () => {
        assertProblem("name: [a\n", "", /not valid YAML/);
        const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
        for (let i = 0; i < 8; i++)
            bomb.push(
                `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
                    .fill(`*${String.fromCharCode(97 + i)}`)
                    .join(", ")}]`,
            );
        assertProblem(bomb.join("\n") + "\n", "", /aliases expand too far/);
        assertProblem(
            `name: a\nschedule: once\nsql: SELECT 1\nparameters: ${"[".repeat(40)}${"]".repeat(40)}\n`,
            "",
            /nest/,
        );
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-queries-"));
        try {
            fs.writeFileSync(path.join(dir, "big.yaml"), `sql: "${"x".repeat(1_100_000)}"\n`);
            fs.writeFileSync(path.join(dir, "one.yaml"), OK);
            fs.writeFileSync(path.join(dir, "two.yml"), OK);
            const e = (() => {
                try {
                    loadQueries(dir);
                } catch (err) {
                    return err as QuerySchemaError;
                }
                throw new Error("loadQueries accepted a folder with a huge file and a duplicate");
            })();
            const lines = e.problems.map((p) => `${path.basename(p.file)} ${p.path}: ${p.message}`);
            assert.ok(
                lines.some((l) => /^big\.yaml : .*(too large|bytes)/i.test(l)),
                lines.join("\n"),
            );
            assert.ok(
                lines.some((l) =>
                    /^two\.yml name: query 'report' is also declared in .*one\.yaml/.test(l),
                ),
                lines.join("\n"),
            );
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("the README's query examples", () => {
    it("every YAML block of 'Scheduled queries' that declares a query loads", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        const start = readme.indexOf("## Scheduled queries, imports and exports");
        const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
        const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
        const queries = blocks.filter((b) => /^name: /m.test(b));
        assert.ok(queries.length >= 2, `found ${queries.length} query blocks`);
        for (const b of queries) parseQuery(b, "README.md");
    });
});
