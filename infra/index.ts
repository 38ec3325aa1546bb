import * as path from "node:path";
import { loadStreams } from "../schemas/loader";
import { loadConfig } from "./config";
import { createPipeline } from "./pipeline";

// Everything is validated before the first resource is registered.
const { config, secrets } = loadConfig();
const streams = loadStreams(path.resolve(__dirname, "..", config.streamsDir));
const outputs = createPipeline(config, secrets, streams);

export const namespace = outputs.namespace;
export const kafkaBootstrapServers = outputs.kafkaBootstrapServers;
export const kafkaCredentialsSecret = outputs.kafkaCredentialsSecret;
export const clickhouseEndpoint = outputs.clickhouseEndpoint;
export const clickhouseCredentialsSecret = outputs.clickhouseCredentialsSecret;
export const streamNames = outputs.streams;
