/**
 * Prints the summary tables of bench/compare-etcd.sh (docs/BENCHMARKS.md shows their format)
 * from what the script recorded in `<dir>`: `runs.tsv`, a line per run
 * `<round> <store> <run> <requests> <load before> <output file> <cpu file>` (tab-separated),
 * `startup.tsv`, a line per load-generator command run with a tiny --total
 * `<store> <run> <requests> <cpu file>`, the load generator's output and the CPU record of each.
 *
 *   node dist/bench/etcd/summarize.js <dir> <clock ticks per second>
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { cpuColumns, cpuPerRequest, loadGeneratorTicks, NO_STARTUP_COST, parseCpuRecord, parseEtcdBenchmark, parseKvBench, type CpuRecordLine, type ProcessCpu, type RunFigures, type StartupCost } from "./results.js";

export type Store = "etcd" | "kv";

export interface RecordedRun {
  readonly round: number;
  readonly store: Store;
  readonly run: string;
  readonly requests: number;
  readonly loadBefore: string;
  readonly figures: RunFigures;
  readonly cpu: readonly CpuRecordLine[];
}

export interface Recorded {
  readonly runs: readonly RecordedRun[];
  /** By `<store> <run>`: the load generator's cost outside its requests. */
  readonly startup: ReadonlyMap<string, StartupCost>;
  readonly clockTicksPerSecond: number;
}

/** The script's names for its runs, as the tables print them. */
const RUN_LABELS: Readonly<Record<string, string>> = {
  "put-1-client": "put, 1 client / 1 conn",
  "put-1000-clients": "put, 1000 clients / 100 conns",
  "get-linearizable": "linearizable get, 1000 / 100",
  "get-serializable": "serializable get, 1000 / 100",
};

export function readRecorded(directory: string, clockTicksPerSecond: number): Recorded {
  const runs = tsvLines(join(directory, "runs.tsv")).map((fields) => recordedRun(directory, fields));
  const startupFile = join(directory, "startup.tsv");
  const startup = new Map(existsSync(startupFile) ? tsvLines(startupFile).map((fields) => startupCost(directory, fields)) : []);
  return { runs, startup, clockTicksPerSecond };
}

function tsvLines(path: string): string[][] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => line.split("\t"));
}

function isStore(text: string | undefined): text is Store {
  return text === "etcd" || text === "kv";
}

function recordedRun(directory: string, fields: readonly string[]): RecordedRun {
  const [round, store, run, requests, loadBefore, output, cpu] = fields;
  if (round === undefined || !isStore(store) || run === undefined || requests === undefined || loadBefore === undefined || output === undefined || cpu === undefined) {
    throw new Error(`runs.tsv line "${fields.join("\t")}" is not <round> <etcd|kv> <run> <requests> <load> <output> <cpu>`);
  }
  const outputText = readFileSync(join(directory, output), "utf8");
  const figures = store === "etcd" ? parseEtcdBenchmark(outputText) : parseKvBench(outputText);
  return { round: Number(round), store, run, requests: Number(requests), loadBefore, figures, cpu: parseCpuRecord(readFileSync(join(directory, cpu), "utf8")) };
}

function startupCost(directory: string, fields: readonly string[]): [string, StartupCost] {
  const [store, run, requests, cpu] = fields;
  if (!isStore(store) || run === undefined || requests === undefined || cpu === undefined) throw new Error(`startup.tsv line "${fields.join("\t")}" is not <etcd|kv> <run> <requests> <cpu>`);
  return [`${store} ${run}`, { ticks: loadGeneratorTicks(parseCpuRecord(readFileSync(join(directory, cpu), "utf8"))), requests: Number(requests) }];
}

function cpuOf(recorded: Recorded, run: RecordedRun): ProcessCpu[] {
  return cpuPerRequest(run.cpu, recorded.clockTicksPerSecond, run.requests, recorded.startup.get(`${run.store} ${run.run}`) ?? NO_STARTUP_COST);
}

/** Each run of each round with both stores' figures, in the order the script ran them. */
export function pairs(runs: readonly RecordedRun[]): { round: number; run: string; etcd: RecordedRun; kv: RecordedRun }[] {
  const result: { round: number; run: string; etcd: RecordedRun; kv: RecordedRun }[] = [];
  for (const kv of runs.filter((entry) => entry.store === "kv")) {
    const etcd = runs.find((entry) => entry.store === "etcd" && entry.round === kv.round && entry.run === kv.run);
    if (etcd === undefined) throw new Error(`run ${kv.run} of round ${kv.round} has no etcd figures`);
    result.push({ round: kv.round, run: kv.run, etcd, kv });
  }
  return result;
}

const fixed = (value: number, digits: number): string => value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (ours: number, etcd: number): string => (etcd > 0 ? `${fixed(ours / etcd, 2)}×` : "n/a");
const milliseconds = (seconds: number): string => fixed(seconds * 1000, 2);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((row) => `| ${row.join(" | ")} |`)].join("\n");
}

export function latencyTable(runs: readonly RecordedRun[]): string {
  const header = ["run", "round", "etcd req/s", "ours req/s", "ratio", "etcd avg ms", "ours avg ms", "ratio", "etcd p99 ms", "ours p99 ms", "ratio", "errors etcd / ours", "load before etcd / ours"];
  const rows = pairs(runs).map(({ round, run, etcd, kv }) => {
    const [a, b] = [etcd.figures, kv.figures];
    return [
      RUN_LABELS[run] ?? run,
      String(round),
      fixed(a.requestsPerSecond, 0),
      fixed(b.requestsPerSecond, 0),
      ratio(b.requestsPerSecond, a.requestsPerSecond),
      milliseconds(a.averageSeconds),
      milliseconds(b.averageSeconds),
      ratio(b.averageSeconds, a.averageSeconds),
      milliseconds(a.p99Seconds),
      milliseconds(b.p99Seconds),
      ratio(b.p99Seconds, a.p99Seconds),
      `${a.errors} / ${b.errors}`,
      `${etcd.loadBefore} / ${kv.loadBefore}`,
    ];
  });
  return table(header, rows);
}

export function cpuTable(recorded: Recorded): string {
  const header = ["run", "round", "etcd leader", "etcd followers", "etcd-benchmark", "etcd total", "ours leader", "ours followers", "kv-bench", "ours total", "ratio"];
  const micro = (value: number): string => fixed(value, 1);
  const rows = pairs(recorded.runs).map(({ round, run, etcd, kv }) => {
    const [a, b] = [cpuColumns(cpuOf(recorded, etcd)), cpuColumns(cpuOf(recorded, kv))];
    const followers = (values: readonly number[]): string => values.map(micro).join(" + ");
    return [RUN_LABELS[run] ?? run, String(round), micro(a.leader), followers(a.followers), micro(a.loadGenerator), micro(a.total), micro(b.leader), followers(b.followers), micro(b.loadGenerator), micro(b.total), ratio(b.total, a.total)];
  });
  return table(header, rows);
}

export function summary(recorded: Recorded): string {
  return [
    "Throughput and latency (ratio: ours / etcd's; above 1 is better for req/s, below 1 for latency):",
    "",
    latencyTable(recorded.runs),
    "",
    "CPU time per request, µs (utime + stime from /proc over the run; ratio: ours / etcd's). The load generators'",
    "figures leave out their start-up (loading, connecting), measured by the same command with --total 1:",
    ...startupLines(recorded),
    "",
    cpuTable(recorded),
    "",
  ].join("\n");
}

function startupLines(recorded: Recorded): string[] {
  const seconds = (store: Store, run: string): string => {
    const cost = recorded.startup.get(`${store} ${run}`);
    return cost === undefined ? "not measured" : `${fixed(cost.ticks / recorded.clockTicksPerSecond, 2)} s`;
  };
  const runs = [...new Set(recorded.runs.map((entry) => entry.run))];
  return runs.map((run) => `- ${RUN_LABELS[run] ?? run}: etcd-benchmark ${seconds("etcd", run)}, kv-bench ${seconds("kv", run)}`);
}

function main(argv: readonly string[]): number {
  const [directory, ticks] = argv;
  const clockTicksPerSecond = Number(ticks);
  if (directory === undefined || !(clockTicksPerSecond > 0)) {
    process.stderr.write("usage: summarize.js <dir> <clock ticks per second (getconf CLK_TCK)>\n");
    return 2;
  }
  process.stdout.write(summary(readRecorded(directory, clockTicksPerSecond)));
  return 0;
}

// Imported by the tests, run by the script.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) process.exitCode = main(process.argv.slice(2));
