/**
 * What the rollup integration tests share: an orders stream (order id, time, country, customer,
 * amount) with rollups over it, deterministic order messages, and table counts.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { validateStream } from "../../schemas/loader";
import type { RollupSpec, StreamSpec } from "../../schemas/model";
import { pollUntil } from "../../runtime/process";
import { queryRows } from "./clickhouse";

/**
 * A recreated Kafka table's consumer waits until the dropped one's group membership times out:
 * 6 s here instead of librdkafka's 45 s.
 */
export const FAST_REJOIN_CONFIG =
    "<clickhouse><kafka><session_timeout_ms>6000</session_timeout_ms><heartbeat_interval_ms>1000</heartbeat_interval_ms></kafka></clickhouse>\n";

const COUNTRIES = ["DE", "FR", "US", "JP", "BR"];

/** The orders stream `name` on `topic`, with `rollups`. */
export function ordersStream(
    name: string,
    topic: { name: string; partitions: number },
    rollups: RollupSpec[] | undefined,
    extra: Record<string, unknown> = {},
): StreamSpec {
    return validateStream(
        {
            name,
            topic,
            columns: [
                { name: "order_id", type: "UInt64", source: "id" },
                { name: "order_time", type: "DateTime('UTC')", source: "ts" },
                { name: "country", type: "LowCardinality(String)" },
                { name: "customer_id", type: "UInt64" },
                { name: "amount", type: "UInt32" },
            ],
            orderBy: ["country", "order_time"],
            partitionBy: "toYYYYMM(order_time)",
            consumer: { flushIntervalMs: 500 },
            ...(rollups ? { rollups } : {}),
            ...extra,
        },
        `${name}.yaml`,
    ).spec;
}

/** Order `i`, `i` seconds after `startSec` (UTC seconds). */
export function order(i: number, startSec: number): string {
    const ts = new Date((startSec + i) * 1000).toISOString().slice(0, 19).replace("T", " ");
    return JSON.stringify({
        id: i,
        ts,
        country: COUNTRIES[(i * 7) % COUNTRIES.length],
        customer_id: (i * 31) % 977,
        amount: (i * 13) % 5_000,
    });
}

/** Orders `from` .. `from + n - 1`, one second apart from `startSec`. */
export const orders = (from: number, n: number, startSec: number): string[] =>
    Array.from({ length: n }, (_, k) => order(from + k, startSec));

/** Rows of a query, a table's count, and a wait for a count, in database `db`. */
export function tableKit(client: () => ClickHouseClient, db: string) {
    const rows = (sql: string) => queryRows<Record<string, unknown>>(client(), sql);
    const count = async (table: string) =>
        Number((await rows(`SELECT count() AS n FROM ${db}.${table}`))[0]!["n"]);
    const waitRows = (table: string, n: number) =>
        pollUntil(
            `${n} rows in ${table}`,
            () => count(table),
            (c) => c >= n,
            180_000,
        );
    return { rows, count, waitRows };
}
