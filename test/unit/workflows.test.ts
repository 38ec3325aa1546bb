/**
 * The GitHub workflows, linted with the real tools: actionlint (with shellcheck on every `run:`)
 * and zizmor (pedantic persona, offline). Every finding is a failure unless
 * .github/workflow-lint-accepted.yml lists it with a reason; a listed entry that no longer
 * matches fails too. The tools come from tools/lint/*.sh (cached by version); `./run test`
 * installs them and exports their paths.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as YAML from "yaml";
import { lintBinary, lintTool } from "./lint-tools";
import { ROOT } from "./mocks";

const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const ACCEPTED_FILE = path.join(ROOT, ".github", "workflow-lint-accepted.yml");

interface Finding {
    readonly tool: "actionlint" | "zizmor";
    readonly rule: string;
    readonly file: string;
    readonly line: number;
    readonly message: string;
}

interface Accepted {
    readonly tool: string;
    readonly rule: string;
    readonly file: string;
    readonly reason: string;
}

let actionlintBins: { actionlint: string; shellcheck: string } | undefined;
function actionlintTools(): { actionlint: string; shellcheck: string } {
    if (process.env.KCS_ACTIONLINT && process.env.KCS_SHELLCHECK)
        return { actionlint: process.env.KCS_ACTIONLINT, shellcheck: process.env.KCS_SHELLCHECK };
    if (!actionlintBins) {
        const [actionlint, shellcheck] = lintTool("actionlint.sh", 2);
        actionlintBins = { actionlint: actionlint!, shellcheck: shellcheck! };
    }
    return actionlintBins;
}

function zizmorTool(): string {
    return lintBinary("KCS_ZIZMOR", "zizmor.sh");
}

/** actionlint's findings for the workflow files of `repo` (paths relative to `repo`). */
function actionlint(repo: string): Finding[] {
    const { actionlint: bin, shellcheck } = actionlintTools();
    const dir = path.join(repo, ".github", "workflows");
    const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
    const res = spawnSync(
        bin,
        [
            `-shellcheck=${shellcheck}`,
            "-pyflakes=",
            "-format",
            "{{json .}}",
            ...files.map((f) => path.join(".github", "workflows", f)),
        ],
        { cwd: repo, encoding: "utf8" },
    );
    // Exit 1 means "found problems"; anything else is the tool failing.
    if (res.status !== 0 && res.status !== 1)
        throw new Error(`actionlint failed (exit ${res.status}): ${res.stderr}`);
    const out = JSON.parse(res.stdout || "[]") as {
        kind: string;
        filepath: string;
        line: number;
        message: string;
    }[];
    return out.map((e) => ({
        tool: "actionlint",
        rule: e.kind,
        file: path.basename(e.filepath),
        line: e.line,
        message: e.message,
    }));
}

/** zizmor's findings (pedantic persona, offline audits only) for a workflows folder. */
function zizmor(workflowsDir: string): Finding[] {
    const res = spawnSync(
        zizmorTool(),
        ["--offline", "--no-progress", "--persona", "pedantic", "--format", "json", workflowsDir],
        { encoding: "utf8" },
    );
    // zizmor exits non-zero when it reports findings; no JSON on stdout means it failed.
    if (!res.stdout.trim().startsWith("["))
        throw new Error(`zizmor failed (exit ${res.status}): ${res.stderr}`);
    const out = JSON.parse(res.stdout) as {
        ident: string;
        desc: string;
        locations: {
            symbolic: { kind: string; key: { Local?: { verbatim_path: string } } };
            concrete: { location: { start_point: { row: number } } };
        }[];
    }[];
    return out.map((f) => {
        const primary = f.locations.find((l) => l.symbolic.kind === "Primary") ?? f.locations[0]!;
        return {
            tool: "zizmor",
            rule: f.ident,
            file: path.basename(primary.symbolic.key.Local?.verbatim_path ?? "?"),
            line: primary.concrete.location.start_point.row + 1,
            message: f.desc,
        };
    });
}

function accepted(): Accepted[] {
    const doc = YAML.parse(fs.readFileSync(ACCEPTED_FILE, "utf8")) as { accepted?: Accepted[] };
    return doc.accepted ?? [];
}

const matches = (a: Accepted, f: Finding) =>
    a.tool === f.tool && a.rule === f.rule && a.file === f.file;
const show = (f: Finding) => `${f.tool} ${f.rule} ${f.file}:${f.line}: ${f.message}`;

describe("GitHub workflows: actionlint and zizmor", () => {
    const findings = [...actionlint(ROOT), ...zizmor(WORKFLOWS)];

    it("every finding is fixed or accepted with a reason", () => {
        const list = accepted();
        for (const a of list)
            assert.ok(a.reason && a.reason.trim().length > 10, `${a.rule}: give a reason`);
        const fresh = findings.filter((f) => !list.some((a) => matches(a, f)));
        assert.deepEqual(
            fresh.map(show),
            [],
            "new findings: fix them, or accept each with a reason",
        );
    });

    it("no accepted entry is stale", () => {
        const stale = accepted().filter((a) => !findings.some((f) => matches(a, f)));
        assert.deepEqual(stale, [], "entries that match no finding any more: remove them");
    });

    it("the linters find the classic mistakes (the check can fail)", () => {
        const repo = fs.mkdtempSync(path.join(os.tmpdir(), "kcs-workflows-"));
        try {
            const dir = path.join(repo, ".github", "workflows");
            fs.mkdirSync(dir, { recursive: true });
            fs.writeFileSync(
                path.join(dir, "bad.yml"),
                [
                    "name: bad",
                    "on: pull_request",
                    "jobs:",
                    "  x:",
                    "    runs-on: ubuntu-latest",
                    "    steps:",
                    "      - uses: actions/checkout@v4",
                    '      - run: echo "${{ github.event.pull_request.title }}"',
                    "      - run: npm ci",
                    "        env:",
                    "          K: ${{ secrets[format('KUBECONFIG_{0}', github.event.number)] }}",
                    "",
                ].join("\n"),
            );
            const rules = (fs: Finding[]) => new Set(fs.map((f) => `${f.tool}:${f.rule}`));
            const found = rules([...actionlint(repo), ...zizmor(dir)]);
            for (const want of [
                "actionlint:expression", // untrusted input in a script
                "zizmor:template-injection",
                "zizmor:unpinned-uses",
                "zizmor:artipacked", // checkout keeps the token
                "zizmor:overprovisioned-secrets", // secrets[format(...)]
                "zizmor:excessive-permissions",
            ])
                assert.ok(found.has(want), `${want} not reported; got ${[...found].join(", ")}`);
        } finally {
            fs.rmSync(repo, { recursive: true, force: true });
        }
    });
});

describe("GitHub workflows: install and pins", () => {
    const files = fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));
    const text = (f: string) => fs.readFileSync(path.join(WORKFLOWS, f), "utf8");

    it("no workflow runs npm ci: each installs with ./run install (or ./run test) first", () => {
        for (const f of files) {
            const doc = YAML.parse(text(f)) as {
                jobs: Record<string, { steps: { run?: string }[] }>;
            };
            for (const [id, job] of Object.entries(doc.jobs)) {
                const runs = job.steps.map((s) => s.run ?? "");
                for (const r of runs) assert.doesNotMatch(r, /npm ci\b/, `${f} ${id}`);
                const install = runs.findIndex((r) => /^\.\/run (install|test)\b/.test(r.trim()));
                const npm = runs.findIndex((r) => /\b(npm|npx)\b/.test(r));
                if (npm >= 0)
                    assert.ok(
                        install >= 0 && install < npm,
                        `${f} ${id}: npm is used before ./run install`,
                    );
            }
        }
    });

    it("every action is pinned by a full commit SHA with its release in a comment", () => {
        for (const f of files)
            for (const m of text(f).matchAll(/uses:\s*(\S+)(.*)$/gm)) {
                assert.match(m[1]!, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${f}: ${m[0]}`);
                assert.match(m[2]!, /# v\d+\.\d+\.\d+/, `${f}: ${m[0]} names no release`);
            }
    });

    it("one SHA per action across the workflows", () => {
        const pins = new Map<string, Set<string>>();
        for (const f of files)
            for (const m of text(f).matchAll(/uses:\s*([\w.-]+\/[\w.-]+)@(\S+)/g))
                pins.set(m[1]!, (pins.get(m[1]!) ?? new Set()).add(m[2]!));
        for (const [action, shas] of pins) assert.equal(shas.size, 1, `${action}: ${[...shas]}`);
    });

    it("the Pulumi CLI the workflows install is the SDK version pinned in tools/versions.env", () => {
        const env = fs.readFileSync(path.join(ROOT, "tools", "versions.env"), "utf8");
        const want = /^PULUMI_VERSION=(.+)$/m.exec(env)![1];
        const pinned = files.flatMap((f) =>
            [...text(f).matchAll(/pulumi-version:\s*"?([\d.]+)/g)].map((m) => [f, m[1]!]),
        );
        assert.ok(pinned.length >= 2, "preview and ephemeral pin pulumi-version");
        for (const [f, v] of pinned) assert.equal(v, want, f);
    });

    it("secrets are looked up by explicit name, never through secrets[...]", () => {
        for (const f of files) assert.doesNotMatch(text(f), /secrets\[/, f);
    });

    it("shellcheck is the one actionlint uses on every machine", () => {
        const { shellcheck } = actionlintTools();
        assert.match(execFileSync(shellcheck, ["--version"], { encoding: "utf8" }), /version:/);
    });
});
