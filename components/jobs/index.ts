export { ClickHouseJobs, ClickHouseJobsArgs } from "./jobs";
export * from "./http";
export * from "./manifests";
export * from "./backfill";
export * from "./check";
