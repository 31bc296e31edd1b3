/**
 * What bench/compare-etcd.sh records, read back: the figures of one run from either load
 * generator's output (etcd's `benchmark` text report, `kv-bench --json`), and the CPU time of
 * each process over the run from the clock ticks the script took from /proc.
 */

/** The figures the comparison puts side by side, the same for both stores. */
export interface RunFigures {
  readonly requestsPerSecond: number;
  readonly averageSeconds: number;
  readonly p99Seconds: number;
  readonly succeeded: number;
  readonly errors: number;
}

/** What a process does in the run. */
export type ProcessRole = "leader" | "follower" | "load-generator";

export interface ProcessCpu {
  readonly role: ProcessRole;
  readonly name: string;
  readonly cpuMicrosecondsPerRequest: number;
}

const MICROSECONDS_PER_SECOND = 1_000_000;
const ROLES: readonly ProcessRole[] = ["leader", "follower", "load-generator"];

/**
 * etcd's tool prints (pkg/report): `Summary:` with `Total:`, `Average:`, `Requests/sec:` (each
 * `<seconds> secs.`), a histogram of `<seconds> [<count>]` lines whose counts are the
 * successful requests, `Latency distribution:` lines `99% in <seconds> secs.`, and, when any
 * request failed, `Error distribution:` lines `[<count>]<tab><message>`. Its progress bar may
 * share stdout; lines that match nothing are skipped.
 */
export function parseEtcdBenchmark(text: string): RunFigures {
  const lines = text.split(/\r|\n/).map((line) => line.trim());
  const requestsPerSecond = labelled(lines, "Requests/sec:");
  const averageSeconds = labelled(lines, "Average:");
  const p99Seconds = percentile(lines, "99");
  return { requestsPerSecond, averageSeconds, p99Seconds, succeeded: sectionCounts(lines, "Response time histogram:"), errors: sectionCounts(lines, "Error distribution:") };
}

/** The number after `label` on the line that starts with it (`Average:\t0.0012 secs.`). */
function labelled(lines: readonly string[], label: string): number {
  const line = lines.find((candidate) => candidate.startsWith(label));
  if (line === undefined) throw new Error(`etcd benchmark output has no "${label}" line (did the run fail?)`);
  return numberIn(line.slice(label.length), label);
}

function percentile(lines: readonly string[], percent: string): number {
  const prefix = `${percent}% in `;
  const line = lines.find((candidate) => candidate.startsWith(prefix));
  if (line === undefined) throw new Error(`etcd benchmark output has no "${prefix}" line`);
  return numberIn(line.slice(prefix.length), prefix);
}

/** The first number of `text` (`0.0012 secs.`, `1.5e-05 secs.`, `1234.5678`). */
function numberIn(text: string, label: string): number {
  const match = /[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?/i.exec(text);
  if (match === null) throw new Error(`etcd benchmark output: no number after "${label}"`);
  return Number(match[0]);
}

/** The sum of the `[count]` of every line of a section, up to the next blank line; 0 if it is absent. */
function sectionCounts(lines: readonly string[], heading: string): number {
  const start = lines.indexOf(heading);
  if (start < 0) return 0;
  let total = 0;
  for (const line of lines.slice(start + 1)) {
    const match = /\[(\d+)\]/.exec(line);
    if (line === "" || match === null) break;
    total += Number(match[1]);
  }
  return total;
}

interface KvBenchJson {
  readonly summary: { readonly requests: number; readonly requestsPerSecond: number; readonly averageSeconds: number; readonly errors: number };
  readonly percentiles: readonly { readonly percentile: number; readonly seconds: number }[];
}

/** `kv-bench --json`: the same figures from its summary and percentiles. */
export function parseKvBench(jsonText: string): RunFigures {
  const result = JSON.parse(jsonText) as KvBenchJson;
  const p99 = result.percentiles.find((entry) => entry.percentile === 99);
  if (p99 === undefined) throw new Error("kv-bench output has no 99th percentile");
  const { summary } = result;
  return { requestsPerSecond: summary.requestsPerSecond, averageSeconds: summary.averageSeconds, p99Seconds: p99.seconds, succeeded: summary.requests, errors: summary.errors };
}

/** One line of the script's CPU record: a process and the clock ticks it used over the run. */
export interface CpuRecordLine {
  readonly role: ProcessRole;
  readonly name: string;
  readonly ticks: number;
}

/**
 * The script's CPU record of one run, a line per process: `<role> <name> <ticks before>
 * <ticks after>` (utime + stime from /proc/<pid>/stat, in clock ticks; for the load generator
 * its parent's cutime + cstime, taken once it was waited for).
 */
export function parseCpuRecord(recordText: string): CpuRecordLine[] {
  return recordText
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [role, name, before, after, ...rest] = line.trim().split(/\s+/);
      if (!isRole(role) || name === undefined || rest.length > 0) throw new Error(`CPU record line "${line}" is not "<role> <name> <ticks before> <ticks after>"`);
      const ticks = ticksOf(after, line) - ticksOf(before, line);
      if (ticks < 0) throw new Error(`CPU record line "${line}": the ticks went backwards (the process restarted?)`);
      return { role, name, ticks };
    });
}

/** What the load generator costs before its first request and after its last: the same command run with a tiny --total. */
export interface StartupCost {
  readonly ticks: number;
  readonly requests: number;
}

export const NO_STARTUP_COST: StartupCost = { ticks: 0, requests: 0 };

/** The load generator's ticks in a record (the start-up run's, say). */
export function loadGeneratorTicks(lines: readonly CpuRecordLine[]): number {
  return lines.filter((line) => line.role === "load-generator").reduce((total, line) => total + line.ticks, 0);
}

/**
 * Each process's CPU time over the run divided by the requests of the run. The load generator
 * is a new process each run, so its start-up (loading code, connecting) would be charged to the
 * requests: its start-up cost is taken off, with the requests the start-up run made.
 */
export function cpuPerRequest(lines: readonly CpuRecordLine[], clockTicksPerSecond: number, requests: number, startup: StartupCost = NO_STARTUP_COST): ProcessCpu[] {
  if (!(clockTicksPerSecond > 0)) throw new Error(`clock ticks per second must be positive, got ${clockTicksPerSecond}`);
  return lines.map(({ role, name, ticks }) => {
    const [netTicks, netRequests] = role === "load-generator" ? [ticks - startup.ticks, requests - startup.requests] : [ticks, requests];
    const seconds = netTicks / clockTicksPerSecond;
    return { role, name, cpuMicrosecondsPerRequest: netRequests > 0 ? (seconds * MICROSECONDS_PER_SECOND) / netRequests : 0 };
  });
}

function isRole(text: string | undefined): text is ProcessRole {
  return (ROLES as readonly (string | undefined)[]).includes(text);
}

function ticksOf(text: string | undefined, line: string): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new Error(`CPU record line "${line}": "${text ?? ""}" is not a tick count`);
  return Number(text);
}

/** The columns of the CPU table: the leader, each follower, the load generator, and all of them. */
export function cpuColumns(processes: readonly ProcessCpu[]): { leader: number; followers: number[]; loadGenerator: number; total: number } {
  const of = (role: ProcessRole): number[] => processes.filter((process) => process.role === role).map((process) => process.cpuMicrosecondsPerRequest);
  const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
  const leader = sum(of("leader"));
  const followers = of("follower");
  const loadGenerator = sum(of("load-generator"));
  return { leader, followers, loadGenerator, total: leader + sum(followers) + loadGenerator };
}
