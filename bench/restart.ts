/**
 * Restart benchmark: a program that prints figures, not a test.
 *   npm run build && npm run bench:restart -- --keys 1000000 --value-bytes 100 --tail 50000 [--json]
 *
 * Starts a fresh single kv-node, loads N keys (mset batches, pipelined), has the node write a
 * snapshot, then writes a tail of T single-key writes that only the log holds. It SIGKILLs the
 * node, starts it again on the same data directory and measures how long recovery (latest
 * snapshot + log tail) takes, then reads a sample of keys back. The tail overwrites keys of the
 * snapshot, so a sampled tail key with its tail value shows the log was replayed on top of the
 * snapshot, in order.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { reservePorts } from "../src/util/ports.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import { ClientConnection } from "../src/client/connection.js";
import { requests, type OperationRequest } from "../src/client/requests.js";
import type { NodeStatus } from "../src/server/replicated-node.js";
import { isSnapshotFileName } from "../src/server/storage/snapshot-format.js";

const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NODE_ENTRY = join(PROJECT_ROOT, "dist/bin/kv-node.js");
const HOST = "127.0.0.1";
/** Snapshots only when asked: no entry count or interval this run can reach. */
const NEVER_SNAPSHOT_ENTRIES = Number.MAX_SAFE_INTEGER;
const NEVER_SNAPSHOT_INTERVAL_SECONDS = 7 * 24 * 3600;
/** Short, so the measured recovery time is at most this much later than the real one. */
const POLL_INTERVAL_MS = 5;
const ADMIN_REQUEST_TIMEOUT_MS = 2000;
const START_DEADLINE_MS = 60_000;
const RECOVERY_DEADLINE_MS = 10 * 60_000;
const STOP_DEADLINE_MS = 30_000;
/** The server's own bound on one request; a snapshot of millions of keys needs the most. */
const SNAPSHOT_REQUEST_TIMEOUT_MS = 120_000;
/** The client's own bound on any request, a little past the server's, so no answer is awaited forever. */
const CLIENT_REQUEST_TIMEOUT_MS = SNAPSHOT_REQUEST_TIMEOUT_MS + 10_000;
const KEYS_PER_MGET = 100;
/** USER_HZ: /proc reports CPU time in these ticks, fixed at 100 for user space on Linux. */
const PROC_TICKS_PER_SECOND = 100;

interface BenchOptions {
  readonly keys: number;
  readonly valueBytes: number;
  readonly tail: number;
  readonly batchKeys: number;
  readonly inFlight: number;
  readonly sample: number;
  /** False (--no-snapshot): recovery replays the whole log, the figure snapshots are measured against. */
  readonly snapshot: boolean;
  readonly json: boolean;
}

interface NodePorts {
  readonly port: number;
  readonly address: string;
  readonly adminAddress: string;
  readonly dataDirectory: string;
  readonly logFile: string;
}

interface Results {
  readonly loadMs: number;
  readonly snapshotSaveMs: number | null;
  readonly tailMs: number;
  readonly snapshotIndex: number;
  readonly lastIndexBeforeKill: number;
  readonly logTailEntries: number;
  readonly snapshotFileBytes: number | null;
  readonly logDirectoryBytes: number;
  readonly adminUpMs: number;
  /** Longest wait between two answers of the admin endpoint once it was up: the node's event loop was busy that long. */
  readonly longestAdminSilenceMs: number;
  readonly healthyMs: number;
  readonly appliedMs: number;
  /** CPU time of the restarted node from spawn to applied: unlike wall time, a busy machine does not inflate it. */
  readonly recoveryCpuMs: number | null;
  readonly keysAfterRestart: number;
  readonly sampledKeys: number;
  readonly sampledTailKeys: number;
}

function parseOptions(): BenchOptions {
  const count = (text: string): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError("must be a non-negative integer");
    return value;
  };
  const program = new Command()
    .name("bench:restart")
    .option("--keys <count>", "keys loaded before the snapshot", count, 1_000_000)
    .option("--value-bytes <bytes>", "size of each value (ASCII string)", count, 100)
    .option("--tail <count>", "single-key writes after the snapshot (at most --keys)", count, 50_000)
    .option("--batch-keys <count>", "keys per mset while loading", count, 100)
    .option("--in-flight <count>", "requests pipelined on the connection", count, 512)
    .option("--sample <count>", "keys read back from the snapshot range and from the tail range each", count, 1000)
    .option("--no-snapshot", "take no snapshot: recovery replays the whole log")
    .option("--json", "print the figures as one JSON object", false)
    .parse();
  const options = program.opts<BenchOptions>();
  if (options.keys === 0 || options.batchKeys === 0 || options.inFlight === 0) program.error("--keys, --batch-keys and --in-flight must be positive");
  if (options.tail > options.keys) program.error("--tail overwrites loaded keys, so it must not exceed --keys");
  return options;
}

function keyOf(number: number): string {
  return `key:${number}`;
}

/** The value of a key after `generation` writes (0 = the load, 1 = the tail): checkable on read-back. */
function valueOf(number: number, generation: number, valueBytes: number): string {
  const prefix = `${generation}:${number}:`;
  return prefix + "x".repeat(Math.max(0, valueBytes - prefix.length));
}

function spawnNode(node: NodePorts): ChildProcess {
  const logFd = openSync(node.logFile, "a");
  const child = spawn(
    process.execPath,
    [
      NODE_ENTRY,
      "--bind", node.address,
      "--data-dir", node.dataDirectory,
      "--admin", node.adminAddress,
      "--snapshot-entries", String(NEVER_SNAPSHOT_ENTRIES),
      "--snapshot-interval", String(NEVER_SNAPSHOT_INTERVAL_SECONDS),
      "--log-level", "warn",
    ],
    { cwd: PROJECT_ROOT, stdio: ["ignore", logFd, logFd] },
  );
  closeSync(logFd);
  return child;
}

/** Resolves on exit; a process that already exited resolves at once. */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function stopNode(child: ChildProcess, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_DEADLINE_MS);
  await exited(child);
  clearTimeout(timer);
}

/** GET on the admin endpoint: the status code and JSON body, or null while nothing answers. */
async function admin(node: NodePorts, path: "/health" | "/status"): Promise<{ readonly code: number; readonly body: unknown } | null> {
  try {
    const response = await fetch(`http://${node.adminAddress}${path}`, { signal: AbortSignal.timeout(ADMIN_REQUEST_TIMEOUT_MS) });
    return { code: response.status, body: await response.json() };
  } catch {
    return null;
  }
}

async function status(node: NodePorts): Promise<NodeStatus> {
  const answer = await admin(node, "/status");
  if (answer === null || answer.code !== 200) throw new Error(`no /status from ${node.adminAddress}`);
  return answer.body as NodeStatus;
}

/** Polls until `check` returns a value; fails past the deadline or when the node exits. */
async function waitUntil<T>(what: string, child: ChildProcess, deadlineMs: number, check: () => Promise<T | null>): Promise<T> {
  const deadline = performance.now() + deadlineMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the node exited while waiting for ${what}`);
    const result = await check();
    if (result !== null) return result;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
}

/** CPU time (user + system, every thread) a process has used so far; null where there is no /proc. */
async function processCpuMs(pid: number): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The name (field 2) may hold spaces, so count from its closing parenthesis: field 3 is index 0.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[14 - 3]) + Number(fields[15 - 3]);
  return Number.isFinite(ticks) ? (ticks * 1000) / PROC_TICKS_PER_SECOND : null;
}

async function perform<Result>(connection: ClientConnection, request: OperationRequest<Result>): Promise<Result> {
  return request.decodeResult(await connection.request(request.code, request.payload, { timeoutMs: CLIENT_REQUEST_TIMEOUT_MS }));
}

/** Runs `task(0..count-1)` with at most `inFlight` tasks pending at once. */
async function pipelined(count: number, inFlight: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}

async function load(connection: ClientConnection, options: BenchOptions): Promise<void> {
  const batches = Math.ceil(options.keys / options.batchKeys);
  await pipelined(batches, options.inFlight, async (batch) => {
    const first = batch * options.batchKeys;
    const last = Math.min(options.keys, first + options.batchKeys);
    const entries: [string, string][] = [];
    for (let number = first; number < last; number++) entries.push([keyOf(number), valueOf(number, 0, options.valueBytes)]);
    if (!(await perform(connection, requests.mset({ entries })))) throw new Error(`mset of batch ${batch} was not written`);
  });
}

async function writeTail(connection: ClientConnection, options: BenchOptions): Promise<void> {
  await pipelined(options.tail, options.inFlight, async (number) => {
    if (!(await perform(connection, requests.set({ key: keyOf(number), value: valueOf(number, 1, options.valueBytes) })))) {
      throw new Error(`tail write of ${keyOf(number)} was not written`);
    }
  });
}

async function timed(body: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await body();
  return performance.now() - started;
}

async function directoryBytes(path: string): Promise<number> {
  const entries = await readdir(path, { withFileTypes: true, recursive: true });
  const sizes = await Promise.all(entries.filter((entry) => entry.isFile()).map(async (entry) => (await stat(join(entry.parentPath, entry.name))).size));
  return sizes.reduce((sum, size) => sum + size, 0);
}

async function newestSnapshotBytes(dataDirectory: string): Promise<number | null> {
  const directory = join(dataDirectory, "snapshots");
  const newest = (await readdir(directory)).filter(isSnapshotFileName).sort().at(-1);
  return newest === undefined ? null : (await stat(join(directory, newest))).size;
}

/** Evenly spread numbers in [0, limit): `count` of them, or all when there are fewer. */
function spread(limit: number, count: number): number[] {
  const taken = Math.min(limit, count);
  return Array.from({ length: taken }, (_, position) => Math.floor((position * limit) / taken));
}

function preview(value: unknown): string {
  return typeof value === "string" ? value.slice(0, 40) : value === undefined ? "nothing" : `a ${typeof value}`;
}

/** Reads the sample back; every key must hold the value of its last write. */
async function verifySample(connection: ClientConnection, options: BenchOptions): Promise<{ readonly keys: number; readonly tailKeys: number }> {
  const tailNumbers = spread(options.tail, options.sample);
  const numbers = [...new Set([...spread(options.keys, options.sample), ...tailNumbers, options.keys - 1])];
  for (let start = 0; start < numbers.length; start += KEYS_PER_MGET) {
    const batch = numbers.slice(start, start + KEYS_PER_MGET);
    const found = await perform(connection, requests.mget({ keys: batch.map(keyOf) }));
    for (const number of batch) {
      const expected = valueOf(number, number < options.tail ? 1 : 0, options.valueBytes);
      const actual = found.get(keyOf(number));
      if (actual !== expected) throw new Error(`${keyOf(number)} read back ${preview(actual)}, expected ${expected.slice(0, 40)}`);
    }
  }
  return { keys: numbers.length, tailKeys: tailNumbers.length };
}

interface Prepared {
  readonly loadMs: number;
  readonly snapshotSaveMs: number | null;
  readonly tailMs: number;
  readonly before: NodeStatus;
}

/** Phase 1 on a fresh node: load, snapshot, tail; returns the status just before the kill. */
async function prepare(node: NodePorts, child: ChildProcess, options: BenchOptions): Promise<Prepared> {
  await waitUntil("the fresh node to be healthy", child, START_DEADLINE_MS, async () => ((await admin(node, "/health"))?.code === 200 ? true : null));
  const connection = await ClientConnection.connect(HOST, node.port);
  try {
    const loadMs = await timed(() => load(connection, options));
    const snapshotSaveMs = options.snapshot
      ? await timed(async () => {
          await perform(connection, requests.snapshotSave({ timeoutMs: SNAPSHOT_REQUEST_TIMEOUT_MS }));
        })
      : null;
    const tailMs = await timed(() => writeTail(connection, options));
    const before = await status(node);
    if (options.snapshot && before.snapshotIndex === 0) throw new Error("the node reports no snapshot after snapshotSave");
    return { loadMs, snapshotSaveMs, tailMs, before };
  } finally {
    connection.close();
  }
}

interface Recovery {
  readonly adminUpMs: number;
  readonly longestAdminSilenceMs: number;
  readonly healthyMs: number;
  readonly appliedMs: number;
  readonly cpuMs: number | null;
  readonly after: NodeStatus;
}

/** Phase 2: times each step of recovery of `child`, spawned on the same data directory at `startedAt`. */
async function recover(node: NodePorts, child: ChildProcess, startedAt: number, target: number): Promise<Recovery> {
  const since = (): number => performance.now() - startedAt;
  let lastAnswerMs: number | null = null;
  let longestAdminSilenceMs = 0;
  const poll = async (path: "/health" | "/status"): ReturnType<typeof admin> => {
    const answer = await admin(node, path);
    if (answer === null) return null;
    const now = since();
    longestAdminSilenceMs = Math.max(longestAdminSilenceMs, now - (lastAnswerMs ?? now));
    lastAnswerMs = now;
    return answer;
  };
  const adminUpMs = await waitUntil("the admin endpoint", child, RECOVERY_DEADLINE_MS, async () => ((await poll("/health")) === null ? null : since()));
  const healthyMs = await waitUntil("/health 200", child, RECOVERY_DEADLINE_MS, async () => ((await poll("/health"))?.code === 200 ? since() : null));
  const applied = await waitUntil(`applied ${target}`, child, RECOVERY_DEADLINE_MS, async () => {
    // A poll may go unanswered while the node replays its log on the event loop: not yet, not an error.
    const answer = await poll("/status");
    if (answer?.code !== 200) return null;
    const current = answer.body as NodeStatus;
    return current.applied >= target ? { at: since(), cpuMs: child.pid === undefined ? null : await processCpuMs(child.pid), status: current } : null;
  });
  return { adminUpMs, longestAdminSilenceMs, healthyMs, appliedMs: applied.at, cpuMs: applied.cpuMs, after: applied.status };
}

async function run(options: BenchOptions, root: string, live: Set<ChildProcess>): Promise<Results> {
  const [port, adminPort] = (await reservePorts(2, HOST)) as [number, number];
  const node: NodePorts = { port, address: `${HOST}:${port}`, adminAddress: `${HOST}:${adminPort}`, dataDirectory: join(root, "data"), logFile: join(root, "node.log") };
  const first = spawnNode(node);
  live.add(first);
  const prepared = await prepare(node, first, options);
  await stopNode(first, "SIGKILL");
  live.delete(first);
  const target = prepared.before.lastIndex;
  const [snapshotFileBytes, logDirectoryBytes] = [await newestSnapshotBytes(node.dataDirectory), await directoryBytes(join(node.dataDirectory, "log"))];
  const restartedAt = performance.now();
  const child = spawnNode(node);
  live.add(child);
  const recovery = await recover(node, child, restartedAt, target);
  const connection = await ClientConnection.connect(HOST, port);
  const sample = await verifySample(connection, options).finally(() => connection.close());
  if (recovery.after.keys !== options.keys) throw new Error(`${recovery.after.keys} keys after the restart, expected ${options.keys}`);
  await stopNode(child, "SIGTERM");
  live.delete(child);
  return {
    loadMs: prepared.loadMs,
    snapshotSaveMs: prepared.snapshotSaveMs,
    tailMs: prepared.tailMs,
    snapshotIndex: prepared.before.snapshotIndex,
    lastIndexBeforeKill: target,
    logTailEntries: target - prepared.before.snapshotIndex,
    snapshotFileBytes,
    logDirectoryBytes,
    adminUpMs: recovery.adminUpMs,
    longestAdminSilenceMs: recovery.longestAdminSilenceMs,
    healthyMs: recovery.healthyMs,
    appliedMs: recovery.appliedMs,
    recoveryCpuMs: recovery.cpuMs,
    keysAfterRestart: recovery.after.keys,
    sampledKeys: sample.keys,
    sampledTailKeys: sample.tailKeys,
  };
}

function printTable(options: BenchOptions, results: Results): void {
  const number = (value: number): string => Math.round(value).toLocaleString("en-US");
  const mebibytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  const rate = (count: number, milliseconds: number): string => `${number((count / milliseconds) * 1000)}/s`;
  const rows: [string, string][] = [
    ["load", `${number(options.keys)} keys in ${number(results.loadMs)} ms (${rate(options.keys, results.loadMs)}, mset of ${options.batchKeys})`],
    ["snapshot save", results.snapshotSaveMs === null ? "none (--no-snapshot)" : `${number(results.snapshotSaveMs)} ms, index ${number(results.snapshotIndex)}`],
    ["tail", `${number(options.tail)} sets in ${number(results.tailMs)} ms (${rate(options.tail, results.tailMs)})`],
    ["snapshot file", results.snapshotFileBytes === null ? "none" : `${mebibytes(results.snapshotFileBytes)} (${(results.snapshotFileBytes / options.keys).toFixed(1)} bytes/key)`],
    ["log tail", `${number(results.logTailEntries)} entries (last index ${number(results.lastIndexBeforeKill)}), log directory ${mebibytes(results.logDirectoryBytes)}`],
    ["restart: admin up", `${number(results.adminUpMs)} ms after spawn (snapshot restored, log loaded)`],
    ["restart: admin silent", `${number(results.longestAdminSilenceMs)} ms at most between two answers after that (event loop busy)`],
    ["restart: /health 200", `${number(results.healthyMs)} ms after spawn`],
    ["restart: applied", `${number(results.appliedMs)} ms after spawn (applied >= ${number(results.lastIndexBeforeKill)})`],
    ["restart: node CPU", results.recoveryCpuMs === null ? "unknown (no /proc)" : `${number(results.recoveryCpuMs)} ms user + system, spawn to applied`],
    ["verified", `${number(results.sampledKeys)} sampled keys (${number(results.sampledTailKeys)} from the tail), ${number(results.keysAfterRestart)} keys in all`],
  ];
  console.log(`restart benchmark: ${number(options.keys)} keys of ${options.valueBytes} bytes, tail ${number(options.tail)}, Node ${process.version}`);
  for (const [name, value] of rows) console.log(`${name.padEnd(22)} ${value}`);
}

async function main(): Promise<void> {
  const options = parseOptions();
  const root = await mkdtemp(join(tmpdir(), "kv-bench-restart-"));
  const live = new Set<ChildProcess>();
  try {
    const results = await run(options, root, live);
    if (options.json) console.log(JSON.stringify({ ...options, node: process.version, ...results }));
    else printTable(options, results);
  } catch (error) {
    process.stderr.write(`bench:restart failed: ${(error as Error).message}\nnode log: ${join(root, "node.log")}\n`);
    process.exitCode = 1;
  } finally {
    for (const child of live) await stopNode(child, "SIGKILL");
  }
  // The data directory of a failed run is kept for its log; a successful one is removed.
  if (process.exitCode !== 1) await rm(root, { recursive: true, force: true });
}

await main();
