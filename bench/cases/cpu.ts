/**
 * CPU time of processes: shows whether a case was CPU-bound and where the CPU went (ClickHouse,
 * the broker, the bench itself, or something else on the machine).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import type { ClickHouseServer } from "../../runtime/chserver";
import type { KafkaBroker } from "../../runtime/kafka";
import { round } from "./clock";

let clockTicks: number | undefined;

/** User + system CPU seconds a process has used so far (Linux /proc); undefined elsewhere. */
export function cpuSeconds(pid: number | undefined): number | undefined {
    if (pid === undefined) return undefined;
    try {
        clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        // Fields after the command name, which is in parentheses and may contain spaces.
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return (Number(f[11]) + Number(f[12])) / clockTicks;
    } catch {
        return undefined;
    }
}

/** CPU seconds of this process (the bench itself: producers, clients, polling). */
export function ownCpuSeconds(): number {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

/** Busy CPU seconds of the whole machine so far, all cores (Linux /proc/stat). */
export function machineBusySeconds(): number | undefined {
    try {
        const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!;
        // cpu user nice system idle iowait irq softirq steal ...
        const f = line.trim().split(/\s+/).slice(1).map(Number);
        const busy = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0);
        clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
        return busy / clockTicks;
    } catch {
        return undefined;
    }
}

export interface CpuUse {
    readonly clickhouse: number | null;
    readonly broker: number | null;
    readonly bench: number;
    /**
     * CPU the rest of the machine used meanwhile (other processes, the kernel): when it is large,
     * something competed with the case and its figures are pessimistic.
     */
    readonly other: number | null;
}

/** A note when other processes used more than a fifth of a core during a measurement. */
export function interferenceNotes(use: CpuUse, wallMs: number): string[] {
    if (use.other === null || wallMs <= 0) return [];
    const share = use.other / (wallMs / 1000);
    return share > 0.2
        ? [
              `other processes used ${use.other} CPU-s during the measurement (${Math.round(share * 100)}% of a core on average): figures are pessimistic`,
          ]
        : [];
}

/** ClickHouse CPU microseconds per row, when the server's CPU time is known. */
export function clickhouseCpuUsPerRow(use: CpuUse, rows: number): number | null {
    return use.clickhouse !== null ? round((use.clickhouse / rows) * 1e6, 1) : null;
}

/** CPU used by ClickHouse, the broker, this process and everything else between two calls. */
export function cpuMeter(server: ClickHouseServer | undefined, kafka: KafkaBroker): () => CpuUse {
    const ch0 = cpuSeconds(server?.pid);
    const kafka0 = cpuSeconds(kafka.pid);
    const own0 = ownCpuSeconds();
    const all0 = machineBusySeconds();
    return () => {
        const ch1 = cpuSeconds(server?.pid);
        const kafka1 = cpuSeconds(kafka.pid);
        const all1 = machineBusySeconds();
        const clickhouse = ch0 !== undefined && ch1 !== undefined ? ch1 - ch0 : undefined;
        const broker = kafka0 !== undefined && kafka1 !== undefined ? kafka1 - kafka0 : undefined;
        const bench = ownCpuSeconds() - own0;
        const other =
            all0 !== undefined && all1 !== undefined
                ? Math.max(0, all1 - all0 - (clickhouse ?? 0) - (broker ?? 0) - bench)
                : undefined;
        return {
            clickhouse: clickhouse !== undefined ? round(clickhouse, 2) : null,
            broker: broker !== undefined ? round(broker, 2) : null,
            bench: round(bench, 2),
            other: other !== undefined ? round(other, 2) : null,
        };
    };
}
