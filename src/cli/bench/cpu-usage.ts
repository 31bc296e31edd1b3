import { KvError } from "../../errors.js";

/** CPU time a process has used: user and system, every thread. */
export interface CpuSeconds {
  readonly userSeconds: number;
  readonly systemSeconds: number;
}

/** One process the benchmark watched, and what its CPU time was when sampled. */
export interface CpuSample {
  /** `kv-bench`, or a node's admin address. */
  readonly process: string;
  /** A node's id and role as its /status said before the run; absent for kv-bench. */
  readonly node?: { readonly id: string; readonly role: string };
  readonly cpu: CpuSeconds;
}

export interface ProcessCpu {
  readonly process: string;
  readonly node?: { readonly id: string; readonly role: string };
  readonly userSeconds: number;
  readonly systemSeconds: number;
  readonly cpuMicrosecondsPerRequest: number;
}

export interface CpuReport {
  /** Requests answered in the timed run, successes and errors: what the CPU time is divided by. */
  readonly requests: number;
  readonly processes: readonly ProcessCpu[];
  readonly totalCpuMicrosecondsPerRequest: number;
}

const USER_METRIC = "process_cpu_user_seconds_total";
const SYSTEM_METRIC = "process_cpu_system_seconds_total";
const MICROSECONDS_PER_SECOND = 1_000_000;
/** Longer than any answer of an idle admin endpoint; a node this slow to answer is not measured. */
export const ADMIN_TIMEOUT_MS = 5_000;

/** The user and system CPU counters of a node's Prometheus text (`/metrics`). */
export function parseProcessCpu(metricsText: string): CpuSeconds {
  return { userSeconds: metricValue(metricsText, USER_METRIC), systemSeconds: metricValue(metricsText, SYSTEM_METRIC) };
}

/** The value of an unlabelled sample `name value` (comments and other metrics skipped). */
function metricValue(metricsText: string, name: string): number {
  for (const line of metricsText.split("\n")) {
    const [sampleName, text, ...rest] = line.trim().split(/\s+/);
    // A third field would be a timestamp, which this registry never writes; accept it anyway.
    if (sampleName !== name || text === undefined || rest.length > 1) continue;
    const value = Number(text);
    if (Number.isFinite(value) && value >= 0) return value;
    throw new KvError("INVALID", `${name} is ${text}, not a CPU time`);
  }
  throw new KvError("INVALID", `no ${name} in the node's metrics (a node built before it exposed its CPU time?)`);
}

/**
 * CPU per request of each process between two samplings, and of all of them together. The
 * samples pair up by process; a counter that went backwards means the process restarted in
 * between, and its figure would be meaningless.
 */
export function buildCpuReport(before: readonly CpuSample[], after: readonly CpuSample[], requests: number): CpuReport {
  const perRequest = (seconds: number): number => (requests > 0 ? (seconds * MICROSECONDS_PER_SECOND) / requests : 0);
  const processes = before.map((start): ProcessCpu => {
    const end = after.find((sample) => sample.process === start.process);
    if (end === undefined) throw new KvError("INVALID", `no CPU sample of ${start.process} after the run`);
    const userSeconds = end.cpu.userSeconds - start.cpu.userSeconds;
    const systemSeconds = end.cpu.systemSeconds - start.cpu.systemSeconds;
    if (userSeconds < 0 || systemSeconds < 0) throw new KvError("INVALID", `the CPU time of ${start.process} went backwards: it restarted during the run`);
    return { process: start.process, ...(start.node === undefined ? {} : { node: start.node }), userSeconds, systemSeconds, cpuMicrosecondsPerRequest: perRequest(userSeconds + systemSeconds) };
  });
  const totalSeconds = processes.reduce((sum, process) => sum + process.userSeconds + process.systemSeconds, 0);
  return { requests, processes, totalCpuMicrosecondsPerRequest: perRequest(totalSeconds) };
}

/** The report's lines, in the style of the latency report above them. */
export function formatCpuReport(report: CpuReport): string {
  const rows = report.processes.map((process) => {
    const label = process.node === undefined ? process.process : `${process.process} (${process.node.id}, ${process.node.role})`;
    const spent = `${process.userSeconds.toFixed(3)} s user + ${process.systemSeconds.toFixed(3)} s system`;
    return `  ${label}:\t${process.cpuMicrosecondsPerRequest.toFixed(1)} µs/request\t(${spent})`;
  });
  return ["CPU time per request:", ...rows, `  total:\t${report.totalCpuMicrosecondsPerRequest.toFixed(1)} µs/request (${report.requests} requests)`].join("\n");
}

/** kv-bench's own CPU time so far. */
export function ownCpuSample(): CpuSample {
  const usage = process.cpuUsage();
  return { process: "kv-bench", cpu: { userSeconds: usage.user / MICROSECONDS_PER_SECOND, systemSeconds: usage.system / MICROSECONDS_PER_SECOND } };
}

/** kv-bench's CPU and that of every node behind `adminAddresses`, sampled together. */
export async function sampleCpu(adminAddresses: readonly string[]): Promise<CpuSample[]> {
  const nodes = await Promise.all(adminAddresses.map((address) => nodeCpuSample(address)));
  return [ownCpuSample(), ...nodes];
}

/** A node's CPU counters and, to label them, its id and role, from its admin endpoint. */
async function nodeCpuSample(address: string): Promise<CpuSample> {
  const [metricsText, statusText] = await Promise.all([adminGet(address, "/metrics"), adminGet(address, "/status")]);
  return { process: address, node: nodeOf(statusText), cpu: parseProcessCpu(metricsText) };
}

/** The id and role of a node's /status JSON; "unknown" where it does not say. */
export function nodeOf(statusText: string): { id: string; role: string } {
  const status: unknown = JSON.parse(statusText);
  const field = (name: string): string => {
    const value = typeof status === "object" && status !== null ? (status as Record<string, unknown>)[name] : undefined;
    return typeof value === "string" ? value : "unknown";
  };
  return { id: field("id"), role: field("role") };
}

async function adminGet(address: string, path: string): Promise<string> {
  const url = `http://${address}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) });
  } catch (error) {
    throw new KvError("CONNECTION", `${url}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body = await response.text();
  if (!response.ok) throw new KvError("UNAVAILABLE", `${url}: HTTP ${response.status}: ${body.slice(0, 200)}`);
  return body;
}
