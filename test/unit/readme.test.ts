/**
 * The README's TypeScript examples compile against the code as it is: a user pastes them into a
 * program next to the repository's folders, so their `./` imports are resolved from its root.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";
import { ROOT } from "./mocks";

/** The ```ts blocks of the README, with the line each starts on. */
function typescriptBlocks(): { line: number; code: string }[] {
    const lines = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").split("\n");
    const blocks: { line: number; code: string }[] = [];
    for (let i = 0; i < lines.length; i++) {
        if (lines[i]!.trim() !== "```ts") continue;
        const start = i + 1;
        while (++i < lines.length && lines[i]!.trim() !== "```");
        blocks.push({ line: start + 1, code: lines.slice(start, i).join("\n") });
    }
    return blocks;
}

/** The project's compiler options (tsconfig.json), without emitting. */
function compilerOptions(): ts.CompilerOptions {
    const file = path.join(ROOT, "tsconfig.json");
    const read = ts.readConfigFile(file, (f) => ts.sys.readFile(f));
    assert.ok(!read.error, `tsconfig.json: ${JSON.stringify(read.error?.messageText)}`);
    const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT);
    // The example lives outside the project folder, which rootDir would refuse.
    return { ...parsed.options, rootDir: undefined, outDir: undefined, noEmit: true };
}

describe("README examples", () => {
    const blocks = typescriptBlocks();

    it("has TypeScript examples to check", () => {
        assert.ok(blocks.length > 0, "no ```ts block in README.md");
    });

    for (const block of blocks) {
        it(`the TypeScript example at README.md line ${block.line} type-checks`, () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-readme-"));
            try {
                const file = path.join(dir, "example.ts");
                // `./x` in the example is the repository's `x`.
                const code = block.code.replace(
                    /from "\.\/([^"]+)"/g,
                    (_, rel: string) => `from ${JSON.stringify(path.join(ROOT, rel))}`,
                );
                fs.writeFileSync(file, code);
                const program = ts.createProgram([file], compilerOptions());
                const problems = ts
                    .getPreEmitDiagnostics(program)
                    .filter((d) => d.file?.fileName === file || d.file === undefined)
                    .map((d) => {
                        const at =
                            d.file && d.start !== undefined
                                ? d.file.getLineAndCharacterOfPosition(d.start).line + block.line
                                : block.line;
                        return `README.md:${at}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
                    });
                assert.deepEqual(problems, []);
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    }
});
