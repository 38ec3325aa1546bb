export { ClickHouse, ClickHouseArgs } from "./clickhouse";
export * from "./render";
