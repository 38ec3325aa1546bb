import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";
import { loadStreams } from "../schemas/loader";
import { QuerySchemaError, loadQueries } from "../schemas/queries";
import { checkQueriesWithEngine } from "../components/jobs/check";
import { loadConfig } from "./config";
import { createPipeline } from "./pipeline";
import { validated } from "./user-errors";

// Everything is validated before the first resource is registered; a bad key or stream file is
// reported as a clean error (message only), a bug with its stack trace.
const { config, secrets } = validated(() => loadConfig());
const streams = validated(() => loadStreams(path.resolve(__dirname, "..", config.streamsDir)));
const queries = validated(() => loadQueries(path.resolve(__dirname, "..", config.queriesDir)));
validated(() => {
    const check = checkQueriesWithEngine(
        queries,
        streams.map((s) => s.spec),
        config.clickhouseDatabase,
    );
    if (!check.ran)
        void pulumi.log.warn(`declared queries were not checked by the engine: ${check.reason}`);
    else if (check.problems.length > 0) throw new QuerySchemaError(check.problems);
});
const outputs = validated(() => createPipeline(config, secrets, streams, queries));

export const namespace = outputs.namespace;
export const kafkaBootstrapServers = outputs.kafkaBootstrapServers;
export const kafkaCredentialsSecret = outputs.kafkaCredentialsSecret;
export const clickhouseEndpoint = outputs.clickhouseEndpoint;
export const clickhouseCredentialsSecret = outputs.clickhouseCredentialsSecret;
export const streamNames = outputs.streams;
export const onDestroy = outputs.onDestroy;
export const ingestionPlans = outputs.ingestionPlans;
export const queryJobs = outputs.queryJobs;
