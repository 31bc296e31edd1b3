import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { cpuColumns, cpuPerRequest, loadGeneratorTicks, parseCpuRecord, parseEtcdBenchmark, parseKvBench } from "../../bench/etcd/results.js";
import { readRecorded, summary } from "../../bench/etcd/summarize.js";

/** What etcd's benchmark prints with --precise (pkg/report, "%g"), its progress bar on the same stdout. */
const ETCD_OUTPUT = [
  " 1000 / 3000 [====>-------] 33.33% 1s\r 3000 / 3000 [============] 100.00% 3s",
  "",
  "Summary:",
  "  Total:\t3.1234 secs.",
  "  Slowest:\t0.0041 secs.",
  "  Fastest:\t0.000612 secs.",
  "  Average:\t0.00102 secs.",
  "  Stddev:\t0.0002 secs.",
  "  Requests/sec:\t960.5",
  "",
  "Response time histogram:",
  "  0.000612 [1]\t|",
  "  0.00096 [2500]\t|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎",
  "  0.0041 [497]\t|∎∎∎∎∎∎∎",
  "",
  "Latency distribution:",
  "  10% in 0.00081 secs.",
  "  99% in 0.0018 secs.",
  "  99.9% in 1.5e-03 secs.",
  "",
  "Error distribution:",
  "  [2]\tetcdserver: request timed out",
  "  [1]\tcontext deadline exceeded",
  "",
].join("\n");

function kvBenchJson(requestsPerSecond: number, averageSeconds: number, p99Seconds: number): string {
  return JSON.stringify({
    operation: "put",
    summary: { requests: 2999, errors: 1, totalSeconds: 7, slowestSeconds: 0.01, fastestSeconds: 0.001, averageSeconds, stddevSeconds: 0.001, requestsPerSecond },
    percentiles: [
      { percentile: 90, seconds: p99Seconds / 2 },
      { percentile: 99, seconds: p99Seconds },
      { percentile: 99.9, seconds: p99Seconds * 2 },
    ],
    cpu: { requests: 3000, processes: [], totalCpuMicrosecondsPerRequest: 0 },
  });
}

describe("compare-etcd results", () => {
  test("etcd's benchmark report: throughput, average, p99, successes from the histogram, errors", () => {
    expect(parseEtcdBenchmark(ETCD_OUTPUT)).toEqual({ requestsPerSecond: 960.5, averageSeconds: 0.00102, p99Seconds: 0.0018, succeeded: 2998, errors: 3 });
    const withoutErrors = ETCD_OUTPUT.slice(0, ETCD_OUTPUT.indexOf("Error distribution:"));
    expect(parseEtcdBenchmark(withoutErrors).errors).toBe(0);
    // A run where every request failed prints no summary: that is an error, not zeros.
    expect(() => parseEtcdBenchmark("\nError distribution:\n  [10]\tconnection refused\n")).toThrow(/no "Requests\/sec:" line/);
  });

  test("kv-bench's JSON: the same figures", () => {
    expect(parseKvBench(kvBenchJson(412.5, 0.0024, 0.0075))).toEqual({ requestsPerSecond: 412.5, averageSeconds: 0.0024, p99Seconds: 0.0075, succeeded: 2999, errors: 1 });
  });

  test("CPU per request from clock ticks before and after, per process and per column", () => {
    const record = ["leader kv-n1 1000 1300", "follower kv-n2 500 560", "follower kv-n3 400 450", "load-generator kv-bench 0 90", ""].join("\n");
    // 100 ticks a second, 3000 requests: 300 ticks = 3 s = 1000 µs a request.
    const processes = cpuPerRequest(parseCpuRecord(record), 100, 3000);
    expect(processes.map((process) => [process.role, process.name, process.cpuMicrosecondsPerRequest])).toEqual([
      ["leader", "kv-n1", 1000],
      ["follower", "kv-n2", 200],
      ["follower", "kv-n3", expect.closeTo(166.667, 3)],
      ["load-generator", "kv-bench", 300],
    ]);
    const columns = cpuColumns(processes);
    expect(columns.leader).toBe(1000);
    expect(columns.followers).toHaveLength(2);
    expect(columns.loadGenerator).toBe(300);
    expect(columns.total).toBeCloseTo(1666.667, 3);
    expect(cpuPerRequest(parseCpuRecord("leader e1 5 9"), 100, 0)[0]?.cpuMicrosecondsPerRequest).toBe(0);
  });

  test("the load generator's start-up is taken off its ticks and requests, and only its", () => {
    const lines = parseCpuRecord("leader kv-n1 0 100\nload-generator kv-bench 0 140\n");
    expect(loadGeneratorTicks(parseCpuRecord("leader kv-n1 0 7\nload-generator kv-bench 0 40\n"))).toBe(40);
    // (140 - 40) ticks over (1001 - 1) requests at 100 ticks a second: 1 s / 1000 = 1000 µs; the leader keeps 1 s / 1001.
    const processes = cpuPerRequest(lines, 100, 1001, { ticks: 40, requests: 1 });
    expect(processes[1]?.cpuMicrosecondsPerRequest).toBeCloseTo(1000, 9);
    expect(processes[0]?.cpuMicrosecondsPerRequest).toBeCloseTo(1_000_000 / 1001, 9);
  });

  test("a CPU record that cannot be right is refused", () => {
    expect(() => parseCpuRecord("leader kv-n1 1300 1000")).toThrow(/went backwards/);
    expect(() => parseCpuRecord("observer kv-n1 1 2")).toThrow(/is not "<role>/);
    expect(() => parseCpuRecord("leader kv-n1 1 2.5")).toThrow(/not a tick count/);
    expect(() => cpuPerRequest(parseCpuRecord("leader kv-n1 1 2"), 0, 10)).toThrow(/clock ticks/);
  });
});

describe("compare-etcd summary", () => {
  let directory: string | undefined;
  afterEach(() => {
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  });

  test("pairs each run of each round, with the ratios ours / etcd's", () => {
    directory = mkdtempSync(join(tmpdir(), "compare-etcd-"));
    const files: Record<string, string> = {
      "r1-kv-put-1-client.out": kvBenchJson(412.5, 0.0024, 0.0075),
      "r1-kv-put-1-client.cpu": "leader kv-n1 0 30\nfollower kv-n2 0 15\nfollower kv-n3 0 15\nload-generator kv-bench 0 30\n",
      "r1-etcd-put-1-client.out": ETCD_OUTPUT,
      "r1-etcd-put-1-client.cpu": "leader etcd-e2 0 30\nfollower etcd-e1 0 6\nfollower etcd-e3 0 9\nload-generator etcd-benchmark 0 15\n",
      "s-kv.cpu": "leader kv-n1 0 1\nload-generator kv-bench 0 30\n",
      "s-etcd.cpu": "leader etcd-e1 0 1\nload-generator etcd-benchmark 0 6\n",
      "startup.tsv": "kv\tput-1-client\t1\ts-kv.cpu\netcd\tput-1-client\t1\ts-etcd.cpu\n",
      "runs.tsv": ["1\tkv\tput-1-client\t3000\t1.05\tr1-kv-put-1-client.out\tr1-kv-put-1-client.cpu", "1\tetcd\tput-1-client\t3000\t0.98\tr1-etcd-put-1-client.out\tr1-etcd-put-1-client.cpu", ""].join("\n"),
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(directory, name), text);
    const text = summary(readRecorded(directory, 100));
    // 0.0024 / 0.00102 = 2.35; 412.5 / 960.5 = 0.43; 0.0075 / 0.0018 = 4.17.
    expect(text).toContain("| put, 1 client / 1 conn | 1 | 961 | 413 | 0.43× | 1.02 | 2.40 | 2.35× | 1.80 | 7.50 | 4.17× | 3 / 1 | 0.98 / 1.05 |");
    // 100 ticks a second, 3000 requests: 30 ticks = 100 µs. The load generators less their start-up: etcd (15 - 6) ticks
    // and ours (30 - 30) over 2999 requests. etcd: 100 + 20 + 30 + 30.0 = 180; ours: 100 + 50 + 50 + 0 = 200.
    expect(text).toContain("| put, 1 client / 1 conn | 1 | 100.0 | 20.0 + 30.0 | 30.0 | 180.0 | 100.0 | 50.0 + 50.0 | 0.0 | 200.0 | 1.11× |");
    expect(text).toContain("with --total 1:\n- put, 1 client / 1 conn: etcd-benchmark 0.06 s, kv-bench 0.30 s\n");
  });

  test("a run without its etcd counterpart is refused", () => {
    directory = mkdtempSync(join(tmpdir(), "compare-etcd-"));
    writeFileSync(join(directory, "a.out"), kvBenchJson(1, 1, 1));
    writeFileSync(join(directory, "a.cpu"), "leader kv-n1 0 1\n");
    writeFileSync(join(directory, "runs.tsv"), "2\tkv\tput-1-client\t10\t1.0\ta.out\ta.cpu\n");
    expect(() => summary(readRecorded(directory as string, 100))).toThrow(/round 2 has no etcd figures/);
  });
});
