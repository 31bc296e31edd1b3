import { randomBytes } from "node:crypto";
import { Command, InvalidArgumentError, Option } from "commander";
import { positiveInteger, ratio } from "../arguments.js";
import { buildReport, formatReport, type LatencyReport } from "../latency-report.js";
import { toJsonText } from "../output.js";
import { runProgram, usageError, type CliIo } from "../run.js";
import { buildCpuReport, formatCpuReport, sampleCpu, type CpuReport } from "./cpu-usage.js";
import { progressBar, runRequests, type RunResult } from "./runner.js";
import { connectKv, type BenchTarget, type Consistency } from "./targets.js";

export type BenchOperation = "put" | "get" | "mixed";

export interface BenchOptions {
  readonly endpoints?: string;
  /** Admin endpoints (`host:port`) of the nodes whose CPU time the report shows. */
  readonly admin?: readonly string[];
  readonly clients: number;
  readonly conns: number;
  readonly total: number;
  readonly keySize: number;
  readonly valSize: number;
  readonly keySpace: number;
  /** Request i uses key i mod --key-space instead of a random one (etcd's --sequential-keys). */
  readonly sequentialKeys?: boolean;
  /** get and mixed: false when the key space was written beforehand, so the run is only the timed part. */
  readonly preload: boolean;
  readonly consistency: Consistency;
  readonly readRatio: number;
  readonly timeout: number;
  readonly json?: boolean;
}

/** Bounds of the run: latencies take 8 bytes per request, requesters one promise each. */
export const MAX_TOTAL_REQUESTS = 10_000_000;
export const MAX_CLIENTS = 100_000;
export const MAX_CONNS = 1000;
export const MAX_VALUE_BYTES = 8 * 1024 * 1024;
const DEFAULT_ENDPOINTS = "kv://127.0.0.1:6380";
const PROGRESS_INTERVAL_MS = 200;

export interface BenchResult {
  readonly operation: BenchOperation;
  readonly options: BenchOptions;
  readonly report: LatencyReport;
  /** CPU time per request of kv-bench and of every node named by --admin, over the timed run. */
  readonly cpu: CpuReport;
  readonly errorSamples: readonly string[];
}

/** `kv-bench put|get|mixed [options]`, shaped like etcd's `benchmark` tool. */
export function createBenchProgram(io: CliIo): Command {
  const program = new Command().name("kv-bench").description("load generator for data-bridge-kv, shaped like etcd's benchmark tool");
  const operations: readonly [BenchOperation, string][] = [
    ["put", "write --total values, each to a random key of the key space"],
    ["get", "read random keys of the key space (preloaded first, not timed)"],
    ["mixed", "--read-ratio reads, the rest writes, over a preloaded key space"],
  ];
  for (const [operation, description] of operations) {
    addBenchOptions(program.command(operation).description(description)).action(async function (this: Command, options: BenchOptions) {
      const result = await runBenchmark(operation, checked(this, options), io);
      io.stdout(`${options.json === true ? toJsonText(benchJson(result)) : formatResult(result)}\n`);
    });
  }
  return program;
}

export function runBench(argv: readonly string[], io: CliIo): Promise<number> {
  return runProgram(createBenchProgram(io), argv, io);
}

function addBenchOptions(command: Command): Command {
  const bounded = (limit: number) => (text: string) => {
    const value = positiveInteger(text);
    if (value > limit) throw new InvalidArgumentError(`must be at most ${limit}`);
    return value;
  };
  return command
    .option("--endpoints <list>", "the cluster's connection string", DEFAULT_ENDPOINTS)
    .option("--admin <list>", "admin endpoints (host:port, comma-separated) of the nodes whose CPU time per request to report", addressList)
    .option("--clients <n>", "concurrent requesters", bounded(MAX_CLIENTS), 1)
    .option("--conns <n>", "connections the requesters share (KvClients with one connection per node each)", bounded(MAX_CONNS), 1)
    .option("--total <n>", "requests in all", bounded(MAX_TOTAL_REQUESTS), 10_000)
    .option("--key-size <bytes>", "key length", bounded(256), 8)
    .option("--val-size <bytes>", "value length (random bytes)", bounded(MAX_VALUE_BYTES), 8)
    .option("--key-space <n>", "distinct keys", bounded(MAX_TOTAL_REQUESTS), 1000)
    .option("--sequential-keys", "request i uses key i mod --key-space, not a random key")
    .option("--no-preload", "get, mixed: the key space is already written; skip writing it first")
    .addOption(new Option("--consistency <level>", "reads").choices(["linearizable", "serializable"]).default("linearizable"))
    .option("--read-ratio <fraction>", "mixed: share of reads", ratio, 0.9)
    .option("--timeout <ms>", "deadline of one request", positiveInteger, 10_000)
    .option("--json", "print the results as JSON (no progress bar)");
}

/** Keys are the key-space index in decimal, zero-padded to --key-size: it must hold them. */
function checked(command: Command, options: BenchOptions): BenchOptions {
  const digits = String(options.keySpace - 1).length;
  if (digits > options.keySize) usageError(command, `--key-size ${options.keySize} cannot hold ${options.keySpace} distinct keys (needs ${digits})`);
  if (options.conns > options.clients) usageError(command, `--conns ${options.conns} exceeds --clients ${options.clients}: a connection would stay idle`);
  return options;
}

export async function runBenchmark(operation: BenchOperation, options: BenchOptions, io: CliIo): Promise<BenchResult> {
  const target = await connectTarget(options);
  try {
    const value = new Uint8Array(randomBytes(options.valSize));
    const keyOf = (index: number): string => String(index).padStart(options.keySize, "0");
    const keyFor = (sequence: number): string => keyOf(options.sequentialKeys === true ? sequence % options.keySpace : Math.floor(Math.random() * options.keySpace));
    if (operation !== "put" && options.preload) await preload(target, options, keyOf, value);
    const request = requestOf(operation, target, options, keyFor, value);
    // Sampled around the timed run only: the preload and the connection set-up are not its cost.
    const cpuBefore = await sampleCpu(options.admin ?? []);
    const result = await withProgress(options, io, (onProgress) => runRequests({ total: options.total, clients: options.clients, request, onProgress }));
    const cpu = buildCpuReport(cpuBefore, await sampleCpu(options.admin ?? []), result.latenciesSeconds.length + result.errors);
    return { operation, options, report: buildReport(result.latenciesSeconds, result.errors, result.totalSeconds), cpu, errorSamples: result.errorSamples };
  } finally {
    await target.close();
  }
}

function connectTarget(options: BenchOptions): Promise<BenchTarget> {
  return connectKv({ endpoints: options.endpoints ?? DEFAULT_ENDPOINTS, conns: options.conns, clients: options.clients, consistency: options.consistency, timeoutMs: options.timeout });
}

function requestOf(operation: BenchOperation, target: BenchTarget, options: BenchOptions, keyFor: (sequence: number) => string, value: Uint8Array): (requester: number, sequence: number) => Promise<void> {
  if (operation === "put") return (requester, sequence) => target.put(requester, keyFor(sequence), value);
  if (operation === "get") return (requester, sequence) => target.get(requester, keyFor(sequence));
  return (requester, sequence) => (Math.random() < options.readRatio ? target.get(requester, keyFor(sequence)) : target.put(requester, keyFor(sequence), value));
}

/** `host:port,host:port`: the admin endpoints to read CPU time from. */
function addressList(text: string): string[] {
  const addresses = text.split(",").map((address) => address.trim());
  if (addresses.some((address) => !/^[^:\s]+:\d+$/.test(address))) throw new InvalidArgumentError("expected host:port, comma-separated");
  return addresses;
}

/** Writes every key of the key space once, untimed, so reads find values. */
async function preload(target: BenchTarget, options: BenchOptions, keyOf: (index: number) => string, value: Uint8Array): Promise<void> {
  const result = await runRequests({ total: options.keySpace, clients: options.clients, request: (requester, sequence) => target.put(requester, keyOf(sequence), value) });
  if (result.errors > 0) throw new Error(`preloading ${options.keySpace} keys failed ${result.errors} times: ${result.errorSamples.join("; ")}`);
}

/** A progress bar on stderr, redrawn every PROGRESS_INTERVAL_MS, only on a terminal and without --json. */
async function withProgress(options: BenchOptions, io: CliIo, run: (onProgress: (completed: number) => void) => Promise<RunResult>): Promise<RunResult> {
  if (!io.stderrIsTty || options.json === true) return run(() => undefined);
  let completed = 0;
  const timer = setInterval(() => io.stderr(`\r${progressBar(completed, options.total)}`), PROGRESS_INTERVAL_MS);
  try {
    return await run((count) => {
      completed = count;
    });
  } finally {
    clearInterval(timer);
    io.stderr(`\r${progressBar(completed, options.total)}\n`);
  }
}

function formatResult(result: BenchResult): string {
  const { options } = result;
  const header =
    `kv-bench ${result.operation}: ${options.clients} clients, ${options.conns} conns, ${options.total} requests, ` +
    `key ${options.keySize} B, value ${options.valSize} B, key space ${options.keySpace}${options.sequentialKeys === true ? " (sequential)" : ""}${result.operation === "put" ? "" : `, ${options.consistency}`}` +
    `${result.operation === "mixed" ? `, read ratio ${options.readRatio}` : ""}`;
  const errors = result.errorSamples.length === 0 ? [] : ["", "Errors (samples):", ...result.errorSamples.map((message) => `  ${message}`)];
  return [header, "", formatReport(result.report), "", formatCpuReport(result.cpu), ...errors].join("\n");
}

function benchJson(result: BenchResult): object {
  const { json: _json, ...options } = result.options;
  return { operation: result.operation, ...options, endpoints: options.endpoints ?? DEFAULT_ENDPOINTS, ...result.report, cpu: result.cpu, errorSamples: result.errorSamples };
}
