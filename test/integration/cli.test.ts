import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import type { CpuReport } from "../../src/cli/bench/cpu-usage.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster, type Cluster } from "./harness.js";

const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const KV = join(PROJECT_ROOT, "dist/bin/kv.js");
const KV_BENCH = join(PROJECT_ROOT, "dist/bin/kv-bench.js");
const KV_NODE = join(PROJECT_ROOT, "dist/bin/kv-node.js");
const LEADER_WAIT_MS = 15_000;
/** One CLI process: start-up, connect, one call. */
const COMMAND_DEADLINE_MS = 20_000;
const RESTORED_NODE_DEADLINE_MS = 15_000;

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(entry: string, args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [entry, ...args], { timeout: COMMAND_DEADLINE_MS }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout: stdout.trimEnd(), stderr });
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

let cluster: Cluster;
let endpoints: string;

/** `kv --endpoints <cluster> ...args`; fails the test with stderr unless it exits 0. */
async function kv(...args: string[]): Promise<string> {
  const outcome = await run(KV, ["--endpoints", endpoints, ...args]);
  expect(outcome.code, `kv ${args.join(" ")}: ${outcome.stderr}`).toBe(0);
  return outcome.stdout;
}

/** The harness stops every cluster after each test, so each test starts its own. */
async function startClusterForTest(): Promise<void> {
  cluster = await startCluster({ size: 3 });
  await cluster.waitForLeader(LEADER_WAIT_MS);
  endpoints = `kv://${cluster.addresses.join(",")}`;
}

describe("kv against a 3-node cluster", () => {
  test("data commands: every type flag, incr, keys, ttl, locks", async () => {
    await startClusterForTest();
    await setAndGetEveryType();
    await countersKeysAndTtl();
    await locksWithFencingTokens();
  });

  test("cluster status, snapshot save and restore, kv-bench", async () => {
    await startClusterForTest();
    await clusterStatusListsEveryMember();
    await snapshotSaveAndRestore();
    await benchPutReport();
  });
});

/** set and get with every type flag keep the type. */
async function setAndGetEveryType(): Promise<void> {
  const cases: [string[], object][] = [
    [["s", "hello world"], { type: "string", value: "hello world" }],
    [["i", "--int", "-9223372036854775808"], { type: "int", value: "-9223372036854775808" }],
    [["f", "--float", "3"], { type: "float", value: 3 }],
    [["d", "--decimal", "0.1000000000000000000000000001"], { type: "decimal", value: "0.1000000000000000000000000001" }],
    [["b", "--bool", "true"], { type: "bool", value: true }],
    [["n", "--null"], { type: "null" }],
    [["h", "--bytes-hex", "00ff"], { type: "bytes", value: "00ff" }],
    [["j", "--json", '{"big":9223372036854775807,"l":[1.5,"x"]}'], { type: "map", value: { big: { type: "int", value: "9223372036854775807" }, l: { type: "list", value: [{ type: "float", value: 1.5 }, { type: "string", value: "x" }] } } }],
  ];
  for (const [args, typed] of cases) {
    expect(await kv("set", ...args)).toBe("true");
    expect(JSON.parse(await kv("--typed", "get", args[0] as string))).toEqual(typed);
  }
  expect(await kv("get", "i")).toBe("-9223372036854775808");
  expect(await kv("get", "f")).toBe("3.0");
  expect(await kv("get", "missing")).toBe("(nil)");
  expect(await kv("set", "s", "again", "--nx")).toBe("false");
}

/** incr, keys, ttl; a wrong type is an error with its code and exit 1. */
async function countersKeysAndTtl(): Promise<void> {
  expect(await kv("incr", "counter")).toBe("1");
  expect(await kv("incr", "counter", "41")).toBe("42");
  expect(await kv("decr", "counter", "2")).toBe("40");
  await kv("mset", "app.a=1", "app.b=2", "other=3");
  expect((await kv("keys", "app.*")).split("\n")).toEqual(["app.a", "app.b"]);
  expect(JSON.parse(await kv("--json", "keys", "app.*"))).toEqual(["app.a", "app.b"]);
  await kv("set", "session", "x", "--ttl", "300");
  const ttl = Number(await kv("ttl", "session"));
  expect(ttl).toBeGreaterThan(200);
  expect(ttl).toBeLessThanOrEqual(300);
  expect(await kv("ttl", "nothing-here")).toBe("-1");
  const wrongType = await run(KV, ["--endpoints", endpoints, "incr", "app.a"]);
  expect(wrongType.code).toBe(1);
  expect(wrongType.stderr).toMatch(/^error WRONG_TYPE: /);
}

/** lock and unlock with increasing fencing tokens. */
async function locksWithFencingTokens(): Promise<void> {
  const first = await kv("lock", "job", "worker-1", "30");
  expect(first).toMatch(/^acquired \d+$/);
  expect(await kv("lock", "job", "worker-2", "30")).toBe("not acquired");
  expect(await kv("unlock", "job", "worker-2")).toBe("false");
  expect(await kv("unlock", "job", "worker-1")).toBe("true");
  const second = JSON.parse(await kv("--json", "lock", "job", "worker-2", "30")) as { acquired: boolean; token: number };
  expect(second.acquired).toBe(true);
  expect(BigInt(second.token)).toBeGreaterThan(BigInt(first.split(" ")[1] as string));
}

/** cluster status lists every member, one leader, and a lag for each. */
async function clusterStatusListsEveryMember(): Promise<void> {
  await cluster.waitForQuiescence(LEADER_WAIT_MS);
  const lines = (await kv("cluster", "status")).split("\n");
  expect(lines[0]).toMatch(/^ID\s+ADDRESS\s+ROLE\s+TERM\s+COMMIT\s+APPLIED\s+LAST INDEX\s+LAG\s+REACHABLE$/);
  for (const node of cluster.nodes) expect(lines.some((line) => line.startsWith(`${node.id} `) && line.includes(node.address) && line.endsWith("yes")), node.id).toBe(true);
  expect(lines.filter((line) => /\sleader\s/.test(line))).toHaveLength(1);
  const rows = JSON.parse(await kv("--json", "cluster", "status")) as { id: string; lag: number | null; reachable: boolean }[];
  expect(rows.map((row) => row.id).sort()).toEqual(cluster.nodes.map((node) => node.id).sort());
  expect(rows.every((row) => row.reachable && row.lag !== null && row.lag >= 0)).toBe(true);
}

/** snapshot save, restore into a fresh directory, and a node started on it serves the data. */
async function snapshotSaveAndRestore(): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "kv-cli-snapshot-"));
  try {
    await kv("set", "kept", "--int", "9223372036854775807");
    await kv("set", "restored-counter", "--int", "7");
    const file = join(directory, "backup.snap");
    expect(await kv("snapshot", "save", file)).toMatch(/^saved snapshot-[0-9a-f]{16}-[0-9a-f]{16}\.snap \(index \d+, \d+ bytes\)/);
    const dataDirectory = join(directory, "restored");
    const address = `127.0.0.1:${await freePort()}`;
    expect(await kv("snapshot", "restore", file, "--data-dir", dataDirectory, "--peers", `r1=${address}`)).toMatch(/^restored snapshot at index \d+/);
    const refused = await run(KV, ["snapshot", "restore", file, "--data-dir", dataDirectory]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not empty/);
    await expectRestoredNodeServes(address, dataDirectory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** kv-bench put --json reports sane figures, and the CPU time per request of itself and of every node it was told of. */
async function benchPutReport(): Promise<void> {
  const admin = cluster.nodes.map((node) => node.adminAddress);
  const outcome = await run(KV_BENCH, ["put", "--endpoints", endpoints, "--admin", admin.join(","), "--clients", "20", "--conns", "4", "--total", "500", "--val-size", "64", "--json"]);
  expect(outcome.code, outcome.stderr).toBe(0);
  const report = JSON.parse(outcome.stdout) as {
    summary: { requests: number; errors: number; totalSeconds: number; fastestSeconds: number; slowestSeconds: number; averageSeconds: number; requestsPerSecond: number };
    histogram: { count: number }[];
    percentiles: { percentile: number; seconds: number }[];
    cpu: CpuReport;
  };
  const { summary } = report;
  expect(summary.requests).toBe(500);
  expect(summary.errors).toBe(0);
  expect(summary.fastestSeconds).toBeGreaterThan(0);
  expect(summary.fastestSeconds).toBeLessThanOrEqual(summary.averageSeconds);
  expect(summary.averageSeconds).toBeLessThanOrEqual(summary.slowestSeconds);
  expect(summary.requestsPerSecond).toBeCloseTo(500 / summary.totalSeconds, 6);
  expect(report.histogram.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(500);
  const seconds = report.percentiles.map((entry) => entry.seconds);
  expect(seconds).toEqual([...seconds].sort((a, b) => a - b));
  expect(report.percentiles.map((entry) => entry.percentile)).toEqual([10, 25, 50, 75, 90, 95, 99, 99.9]);
  expectCpuOfEveryProcess(report.cpu, admin);
}

/** kv-bench and each node, labelled by its /status; the leader did work for each of the 500 writes. */
function expectCpuOfEveryProcess(cpu: CpuReport, admin: readonly string[]): void {
  expect(cpu.requests).toBe(500);
  expect(cpu.processes.map((process) => process.process)).toEqual(["kv-bench", ...admin]);
  expect(cpu.processes.filter((process) => process.node?.role === "leader")).toHaveLength(1);
  expect(cpu.processes.slice(1).map((process) => process.node?.id)).toEqual(cluster.nodes.map((node) => node.id));
  for (const process of cpu.processes) expect(process.userSeconds + process.systemSeconds).toBeGreaterThanOrEqual(0);
  expect(cpu.processes.find((process) => process.node?.role === "leader")?.cpuMicrosecondsPerRequest).toBeGreaterThan(0);
  const sum = cpu.processes.reduce((total, process) => total + process.cpuMicrosecondsPerRequest, 0);
  expect(cpu.totalCpuMicrosecondsPerRequest).toBeCloseTo(sum, 6);
}

/** A single node on the restored directory elects itself and answers with the saved value. */
async function expectRestoredNodeServes(address: string, dataDirectory: string): Promise<void> {
  const child = spawn(process.execPath, [KV_NODE, "--bind", address, "--peers", `r1=${address}`, "--data-dir", dataDirectory, "--log-level", "warn"], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const value = await pollUntil(RESTORED_NODE_DEADLINE_MS, async () => {
      const outcome = await run(KV, ["--endpoints", address, "--timeout", "2000", "get", "kept"]);
      return outcome.code === 0 ? outcome.stdout : null;
    });
    expect(value).toBe("9223372036854775807");
    expect(await run(KV, ["--endpoints", address, "incr", "restored-counter"])).toMatchObject({ code: 0, stdout: "8" });
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}
