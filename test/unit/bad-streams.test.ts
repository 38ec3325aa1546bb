/**
 * Acceptance 3, loader side: every file of the bad-stream corpus (test/fixtures/bad-streams) is
 * refused by loadStreams with an error naming the file and the key (and, for collisions, the other
 * file). test/integration/bad-streams.test.ts sends the same files to the dynamic provider and
 * checks that the server sees no statement; test/unit/program.test.ts runs some through the
 * stack program.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { askEngine } from "../../schemas/engine";
import { StreamSchemaError, loadStreams } from "../../schemas/loader";
import { CORPUS_DIR, caseDir, readCorpus } from "../fixtures/bad-streams";
import { NO_ENGINE } from "./mocks";

const CASES = readCorpus();
const ENGINE = askEngine("SELECT 1") !== undefined;
const CLASSES = ["shape", "type", "value", "document", "topic", "expression", "collision"];

describe("the bad-stream corpus", () => {
    it(`holds at least 100 cases covering every class (${CASES.length})`, () => {
        assert.ok(CASES.length >= 100, `${CASES.length} cases`);
        for (const cls of CLASSES)
            assert.ok(
                CASES.filter((c) => c.cls === cls).length >= 3,
                `class ${cls} has fewer than 3 cases`,
            );
        assert.deepEqual([...new Set(CASES.map((c) => c.cls))].sort(), [...CLASSES].sort());
    });

    it("positive control: the partners load, and so does a case's stream once its mistake is fixed", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-bad-"));
        fs.writeFileSync(
            path.join(dir, "ok.yaml"),
            fs
                .readFileSync(path.join(CORPUS_DIR, "type-tz-unknown.yaml"), "utf8")
                .replaceAll("Nowhere/City", "Europe/Berlin"),
        );
        for (const p of fs.readdirSync(path.join(CORPUS_DIR, "partners")))
            fs.copyFileSync(path.join(CORPUS_DIR, "partners", p), path.join(dir, p));
        assert.deepEqual(
            loadStreams(dir).map((s) => s.spec.name),
            ["clicks", "page_dlq", "corpus"],
        );
    });

    for (const c of CASES) {
        it(`${c.file}: ${c.key || "(whole file)"}`, () => {
            if (c.needsEngine) assert.ok(ENGINE, NO_ENGINE);
            const dir = caseDir(c);
            let error: unknown;
            try {
                loadStreams(dir);
            } catch (e) {
                error = e;
            }
            assert.ok(error instanceof StreamSchemaError, `not refused: ${String(error)}`);
            const mine = error.problems.filter((p) => path.basename(p.file) === c.file);
            const hit = mine.find(
                (p) => p.path === c.key && (c.match === undefined || c.match.test(p.message)),
            );
            assert.ok(
                hit,
                `no problem at '${c.key}'${c.match ? ` matching ${c.match}` : ""} for ${c.file}:\n${error.message}`,
            );
            // The text a user reads names the file and the key.
            const shown = `${hit.file}${c.key ? `: ${c.key}` : ""}: ${hit.message}`;
            assert.ok(error.message.includes(shown), error.message);
            assert.ok(path.isAbsolute(hit.file) || hit.file.includes(c.file));
            for (const p of c.with) assert.match(hit.message, new RegExp(path.basename(p)));
            fs.rmSync(dir, { recursive: true, force: true });
        });
    }
});
