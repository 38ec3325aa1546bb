export { ClickHouse, ClickHouseArgs, clickhouseSpec } from "./clickhouse";
export * from "./manifests";
export * from "./render";
export * from "./tls";
export * from "./network-policy";
