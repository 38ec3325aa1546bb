/**
 * The Kubernetes side of declared queries (components/jobs/): what the stacks render for the
 * shipped and example queries and for a rollup backfill, and that the container runs exactly the
 * request `requestArgs` generates (the one the integration tests send to a real HTTP interface).
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";
import {
    CURL_IMAGE,
    JOB_PATHS,
    JOB_SCRIPT,
    JOB_SCRIPT_NAME,
    activeDeadlineSeconds,
    backfillJobKey,
    backfillJobs,
    checkQueriesWithEngine,
    queryObject,
    queryStep,
    requestArgs,
} from "../../components/jobs";
import { queryEgress } from "../../components/pipeline/pipeline";
import { rollupBackfillSql } from "../../components/ingestion/plan/rollup";
import { loadStreams, parseStream } from "../../schemas/loader";
import { loadQueries, parseQuery } from "../../schemas/queries";
import { toYaml, toManifests } from "./rendered-manifests";
import { ROOT, mockPassword, ofType, runStack } from "./mocks";

type Obj = Record<string, any>;

const SPEC = {
    clickhouseName: "clickhouse",
    namespace: "ns",
    url: "http://clickhouse.ns.svc:8123",
    database: "ingest",
    credentialsSecret: "clickhouse-credentials",
};

const examples = new Map(
    loadQueries(path.join(ROOT, "schemas/query-examples")).map((q) => [q.spec.name, q.spec]),
);

describe("declared queries as CronJobs and Jobs", () => {
    it("dev: the retention report's CronJob, with every field the issue asks for", async () => {
        const { resources } = await runStack("dev");
        const [cron, ...more] = ofType(resources, "kubernetes:batch/v1:CronJob");
        assert.equal(more.length, 0);
        const c = cron!.inputs as Obj;
        assert.equal(c.metadata.name, "clickhouse-daily-retention-report");
        assert.equal(c.metadata.namespace, "kcs-dev");
        assert.equal(c.spec.schedule, "15 6 * * *");
        assert.equal(c.spec.timeZone, "Etc/UTC");
        assert.equal(c.spec.concurrencyPolicy, "Forbid");
        assert.equal(c.spec.startingDeadlineSeconds, 300);
        assert.equal(c.spec.successfulJobsHistoryLimit, 3);
        assert.equal(c.spec.failedJobsHistoryLimit, 3);
        const job = c.spec.jobTemplate.spec;
        assert.equal(job.backoffLimit, 2);
        assert.equal(job.activeDeadlineSeconds, activeDeadlineSeconds(60, 2));
        assert.equal(job.activeDeadlineSeconds, (60 + 10 + 60) * 3);
        const pod = job.template.spec;
        assert.equal(pod.restartPolicy, "Never");
        assert.equal(pod.automountServiceAccountToken, false);
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.ok(pod.securityContext.runAsUser > 10000);
        const [container] = pod.containers;
        assert.equal(pod.initContainers.length, 0);
        assert.equal(container.image, CURL_IMAGE);
        assert.match(container.image, /^curlimages\/curl:\d+\.\d+\.\d+$/);
        assert.deepEqual(container.securityContext, {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            readOnlyRootFilesystem: true,
        });
        assert.deepEqual(container.resources.requests.cpu, container.resources.limits.cpu);
        assert.deepEqual(container.resources.requests.memory, container.resources.limits.memory);
        assert.deepEqual(container.command, ["/bin/sh", "-c", JOB_SCRIPT, JOB_SCRIPT_NAME]);
        // The args are the generated request: the one the integration tests send.
        const [report] = loadQueries(path.join(ROOT, "schemas/queries"));
        assert.deepEqual(
            container.args,
            requestArgs(queryStep(report!.spec, "ingest"), {
                url: "http://clickhouse.kcs-dev.svc:8123",
                database: "ingest",
            }),
        );
        assert.ok(container.args.includes("param_skip=%_backfill"));
        assert.ok(!container.args.some((a: string) => a.startsWith("max_execution_time")));
        // Credentials: the reader's, as files from the Secret; no value in the object.
        assert.deepEqual(container.env, [
            { name: "KCS_CREDENTIALS", value: JOB_PATHS.credentialsDir },
        ]);
        const credentials = pod.volumes.find((v: Obj) => v.name === "credentials");
        assert.deepEqual(credentials.secret.items, [
            { key: "readonly-user", path: "user" },
            { key: "readonly-password", path: "password" },
        ]);
        assert.equal(credentials.secret.secretName, "clickhouse-credentials");
        // The Secret holds them; the CronJob only names it.
        const yaml = toYaml(toManifests([cron!]));
        assert.match(yaml, /clickhouse-credentials/);
        for (const name of ["clickhouse-admin-password", "clickhouse-readonly-password"])
            assert.ok(!yaml.includes(mockPassword(name)), `${name} in clear`);
    });

    it("prod (TLS by cert-manager): HTTPS to the Service name, verified with the TLS Secret's CA", async () => {
        const { resources } = await runStack("prod");
        const [cron] = ofType(resources, "kubernetes:batch/v1:CronJob");
        const pod = cron!.inputs.spec.jobTemplate.spec.template.spec;
        const args = pod.containers[0].args as string[];
        assert.equal(args.at(-1), "https://clickhouse.kcs-prod.svc:8443/");
        assert.equal(args[args.indexOf("--cacert") + 1], JOB_PATHS.caFile);
        const ca = pod.volumes.find((v: Obj) => v.name === "ca");
        assert.deepEqual(ca.secret.items, [{ key: "ca.crt", path: "ca.crt" }]);
        assert.equal(ca.secret.secretName, "clickhouse-tls");
    });

    it("the query pods' NetworkPolicy, and ClickHouse's ingress admits them", async () => {
        const { resources } = await runStack("dev");
        const policies = ofType(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy").map(
            (p) => p.inputs as Obj,
        );
        const jobs = policies.find((p) => p.metadata.name === "clickhouse-queries")!;
        assert.deepEqual(jobs.spec.policyTypes, ["Ingress", "Egress"]);
        assert.deepEqual(jobs.spec.ingress, []);
        assert.deepEqual(jobs.spec.egress[1], {
            to: [
                {
                    podSelector: {
                        matchLabels: {
                            "app.kubernetes.io/name": "clickhouse",
                            "app.kubernetes.io/instance": "clickhouse",
                        },
                    },
                },
            ],
            ports: [{ protocol: "TCP", port: 8123 }],
        });
        const ingress = policies.find((p) => p.metadata.name === "clickhouse-ingress")!;
        const from = ingress.spec.ingress.flatMap((r: Obj) => r.from);
        assert.ok(
            from.some(
                (p: Obj) =>
                    p.podSelector?.matchLabels["app.kubernetes.io/name"] === "clickhouse-query",
            ),
            JSON.stringify(from),
        );
    });

    it("a one-off Job is not awaited and carries the declared volume; an import mounts it read-only", () => {
        const exp = queryObject(SPEC, examples.get("export-web-events")!);
        const imp = queryObject(SPEC, examples.get("import-web-events")!);
        assert.equal(exp.kind, "Job");
        assert.equal(imp.kind, "Job");
        for (const o of [exp, imp]) {
            const args = o.args as Obj;
            assert.equal(args.metadata.annotations["pulumi.com/skipAwait"], "true");
            assert.equal(args.spec.backoffLimit, 0);
            const pod = args.spec.template.spec;
            assert.deepEqual(
                pod.volumes.find((v: Obj) => v.name === "data"),
                { name: "data", persistentVolumeClaim: { claimName: "exports" } },
            );
        }
        const mount = (o: typeof exp) =>
            (o.args as Obj).spec.template.spec.containers[0].volumeMounts.find(
                (m: Obj) => m.name === "data",
            );
        assert.equal(mount(exp).readOnly, false);
        assert.equal(mount(imp).readOnly, true);
        const args = (exp.args as Obj).spec.template.spec.containers[0].args as string[];
        assert.equal(
            args[args.indexOf("--output") + 1],
            `${JOB_PATHS.dataDir}/web_events/last-day.native`,
        );
        assert.ok(args.includes("default_format=Native"));
    });

    it("an export to object storage reads the keys from the Secret's files; ClickHouse may reach the bucket", () => {
        const q = examples.get("export-orders-s3")!;
        const o = queryObject(SPEC, q);
        assert.equal(o.kind, "CronJob");
        const pod = (o.args as Obj).spec.jobTemplate.spec.template.spec;
        const s3 = pod.volumes.find((v: Obj) => v.name === "s3");
        assert.deepEqual(s3.secret, { secretName: "object-store", defaultMode: 0o440 });
        const args = pod.containers[0].args as string[];
        assert.ok(
            args.includes(`param_kcs_secret_key=<${JOB_PATHS.s3SecretDir}/secret-access-key`),
        );
        assert.ok(args.includes(`param_kcs_key_id=<${JOB_PATHS.s3SecretDir}/access-key-id`));
        const query = args[args.indexOf("--form-string") + 1]!;
        assert.match(
            query,
            /^query=INSERT INTO FUNCTION s3\(\{kcs_url:String\}, \{kcs_key_id:String\}, \{kcs_secret_key:String\}, 'Parquet', 'auto', 'zstd'\)/,
        );
        assert.deepEqual(queryEgress([{ file: "x", spec: q }]), [
            {
                to: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
                ports: [443],
            },
        ]);
        assert.deepEqual(
            queryEgress([
                parseQuery(
                    "name: a\nschedule: once\nuser: admin\nimport: { table: t, format: CSV, from: { url: 'http://10.1.2.3:9000/x.csv' } }\n",
                    "a.yaml",
                ),
            ]),
            [{ to: [{ ipBlock: { cidr: "10.1.2.3/32" } }], ports: [9000] }],
        );
    });

    it("a rollup with backfill: a Job of two steps in order (aggregate the snapshot, then drop it), no retry", () => {
        const stream = parseStream(
            `
name: clicks
topic: { name: clicks }
format: JSONEachRow
columns:
  - { name: at, type: DateTime }
  - { name: page, type: String }
orderBy: [at]
rollups:
  - { name: per_hour, time: at, interval: 1 hour, by: [page], measures: [{ name: n, fn: count }], backfill: true }
  - { name: per_day, time: at, interval: 1 day, by: [page], measures: [{ name: n, fn: count }] }
`,
            "clicks.yaml",
        ).spec;
        const jobs = backfillJobs(SPEC, [stream]);
        assert.deepEqual(Object.keys(jobs), ["clicks-per-hour-backfill"]);
        const job = jobs["clicks-per-hour-backfill"] as Obj;
        assert.equal(job.metadata.name, "clickhouse-clicks-per-hour-backfill");
        assert.equal(job.spec.backoffLimit, 0);
        const pod = job.spec.template.spec;
        const sql = rollupBackfillSql("ingest", stream, "per_hour");
        const body = (c: Obj) => c.args[c.args.indexOf("--data-raw") + 1];
        assert.equal(body(pod.initContainers[0]), sql.insert);
        assert.equal(body(pod.containers[0]), sql.cleanup);
        assert.deepEqual(
            pod.volumes[0].secret.items.map((i: Obj) => i.key),
            ["admin-user", "admin-password"],
        );
    });

    it("names stay within Kubernetes' limits", () => {
        const key = backfillJobKey("s".repeat(63), "r".repeat(63), 52);
        assert.ok(key.length <= 52, key);
        assert.match(key, /^[a-z0-9-]+-[0-9a-f]{8}$/);
        assert.notEqual(key, backfillJobKey("s".repeat(63), "r".repeat(62), 52));
        // The longest query name gives a CronJob name within 52 (its Jobs get an 11-char suffix).
        const q = parseQuery(
            `name: ${"a".repeat(30)}\nschedule: { cron: "* * * * *" }\nsql: SELECT 1\n`,
            "q.yaml",
        );
        const o = queryObject({ ...SPEC, clickhouseName: "clickhouse-analytics" }, q.spec);
        assert.ok(((o.args as Obj).metadata.name as string).length <= 52);
    });
});

describe("the queries' SQL checked by the engine against the streams' tables (at every preview)", () => {
    const streams = loadStreams(path.join(ROOT, "schemas/streams")).map((s) => s.spec);
    const check = (...yaml: string[]) =>
        checkQueriesWithEngine(
            yaml.map((y, i) => parseQuery(y, `q${i}.yaml`)),
            streams,
            "ingest",
        );

    it("the shipped queries and the examples pass; so does a query over a rollup", () => {
        const all = [
            ...loadQueries(path.join(ROOT, "schemas/queries")),
            ...loadQueries(path.join(ROOT, "schemas/query-examples")),
        ];
        assert.deepEqual(checkQueriesWithEngine(all, streams, "ingest"), {
            ran: true,
            problems: [],
        });
        assert.deepEqual(
            check(
                "name: a\nschedule: once\nsql: SELECT bucket, sum(events), uniqMerge(users) FROM web_events_per_minute GROUP BY bucket\n",
            ),
            { ran: true, problems: [] },
        );
    });

    it("refuses an unknown column, a parameter value of the wrong type, an ALTER that does not parse", () => {
        const r = check(
            "name: a\nschedule: once\nsql: SELECT no_such_column FROM orders\n",
            "name: b\nschedule: once\nsql: SELECT count() FROM orders WHERE updated_at > {since:DateTime}\nparameters: { since: yesterday }\n",
            "name: c\nschedule: once\nuser: admin\nsql: ALTER TABLE orders DELET WHERE total < 0\n",
            "name: d\nschedule: once\nuser: admin\nsql: ALTER TABLE orders DELETE WHERE total < 0\n",
            "name: e\nschedule: once\nsql: SELECT * FROM ingest.no_such_table\n",
        );
        assert.ok(r.ran);
        const lines = r.problems.map((p) => `${p.file} ${p.path}: ${p.message}`);
        assert.equal(lines.length, 4, lines.join("\n"));
        assert.match(lines[0]!, /^q0\.yaml sql: the engine refuses it: .*no_such_column/);
        assert.match(lines[1]!, /^q1\.yaml parameters\.since: .*yesterday.*DateTime/);
        assert.match(lines[2]!, /^q2\.yaml sql: .*Syntax error.*DELET/);
        assert.match(lines[3]!, /^q4\.yaml sql: .*no_such_table/);
    });
});
