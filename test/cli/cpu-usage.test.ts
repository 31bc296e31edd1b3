import { describe, expect, test } from "vitest";
import { buildCpuReport, formatCpuReport, nodeOf, parseProcessCpu, type CpuSample } from "../../src/cli/bench/cpu-usage.js";
import { Metrics, registerProcessMetrics } from "../../src/server/metrics.js";

const sample = (process: string, userSeconds: number, systemSeconds: number): CpuSample => ({ process, cpu: { userSeconds, systemSeconds } });

describe("kv-bench CPU time per request", () => {
  test("reads the counters a node's registry renders, in seconds from microseconds", () => {
    const metrics = new Metrics();
    metrics.counter("kv_writes_total", "writes").increment(7);
    registerProcessMetrics(metrics, () => ({ user: 2_500_000, system: 750_000 }));
    const text = metrics.render();
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.25\n");
    expect(parseProcessCpu(text)).toEqual({ userSeconds: 2.5, systemSeconds: 0.75 });
  });

  test("skips comments, labelled series and longer names; refuses a node without the counters or with a bad value", () => {
    const text = [
      "# HELP process_cpu_user_seconds_total user CPU time",
      'process_cpu_user_seconds_total{mode="x"} 99',
      "process_cpu_user_seconds_total_extra 98",
      "process_cpu_user_seconds_total 1.5",
      "process_cpu_system_seconds_total 0.25 1700000000000",
    ].join("\n");
    expect(parseProcessCpu(text)).toEqual({ userSeconds: 1.5, systemSeconds: 0.25 });
    expect(() => parseProcessCpu("kv_writes_total 7\n")).toThrow(/no process_cpu_user_seconds_total/);
    expect(() => parseProcessCpu("process_cpu_user_seconds_total NaN\nprocess_cpu_system_seconds_total 1\n")).toThrow(/not a CPU time/);
  });

  test("divides each process's CPU time over the run by the requests, and totals them", () => {
    const node = { id: "n1", role: "leader" };
    const before = [sample("kv-bench", 1, 0.5), { ...sample("127.0.0.1:8101", 10, 2), node }];
    const after = [{ ...sample("127.0.0.1:8101", 10.6, 2.2), node }, sample("kv-bench", 1.3, 0.6)];
    const report = buildCpuReport(before, after, 4000);
    expect(report.requests).toBe(4000);
    expect(report.processes.map((process) => process.process)).toEqual(["kv-bench", "127.0.0.1:8101"]);
    expect(report.processes[0]?.cpuMicrosecondsPerRequest).toBeCloseTo(100, 9); // 0.4 s / 4000
    expect(report.processes[1]).toMatchObject({ node, cpuMicrosecondsPerRequest: expect.closeTo(200, 9) }); // 0.8 s / 4000
    expect(report.processes[1]?.userSeconds).toBeCloseTo(0.6, 9);
    expect(report.totalCpuMicrosecondsPerRequest).toBeCloseTo(300, 9);
  });

  test("no requests is zero per request; a process missing after the run or restarted during it is refused", () => {
    expect(buildCpuReport([sample("kv-bench", 1, 1)], [sample("kv-bench", 2, 2)], 0).totalCpuMicrosecondsPerRequest).toBe(0);
    expect(() => buildCpuReport([sample("a:1", 1, 1)], [sample("b:1", 2, 2)], 10)).toThrow(/no CPU sample of a:1/);
    expect(() => buildCpuReport([sample("a:1", 5, 1)], [sample("a:1", 0.1, 1)], 10)).toThrow(/went backwards/);
  });

  test("labels nodes by the id and role of their /status", () => {
    expect(nodeOf(JSON.stringify({ id: "n2", role: "follower", term: 3 }))).toEqual({ id: "n2", role: "follower" });
    expect(nodeOf(JSON.stringify({ phase: "discovering" }))).toEqual({ id: "unknown", role: "unknown" });
    const report = buildCpuReport([{ ...sample("127.0.0.1:8102", 0, 0), node: { id: "n2", role: "follower" } }], [sample("127.0.0.1:8102", 0.05, 0.01)], 1000);
    expect(formatCpuReport(report)).toBe(
      ["CPU time per request:", "  127.0.0.1:8102 (n2, follower):\t60.0 µs/request\t(0.050 s user + 0.010 s system)", "  total:\t60.0 µs/request (1000 requests)"].join("\n"),
    );
  });
});
