/**
 * One jepsen-lite run: start a cluster behind proxies, run the workloads' clients while the
 * nemesis injects faults, heal, wait for recovery, read everything back, check the history and
 * the nodes, and write results.json, history.jsonl and report.html.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KvClient } from "../src/client/client.js";
import { KvError } from "../src/errors.js";
import { checkAll, type CheckSummary, type WorkloadName } from "./checkers/index.js";
import type { CheckResult } from "./checkers/result.js";
import { pollUntil } from "../src/util/processes.js";
import { ClusterControl, type FsyncMode } from "./control.js";
import { HistoryRecorder, toJsonText, writeHistory, type OperationEvent } from "./history.js";
import { planNemesis, runNemesis, type FaultGroup, type NemesisEvent, type PlannedFault } from "./nemesis.js";
import { SeededRandom } from "./random.js";
import { faultStatistics, renderReport, type FaultStatistics } from "./report.js";
import { checkOneLeaderPerTerm, compareStates, type NodeState, type WhiteboxAnomaly } from "./whitebox.js";
import { counterWorkload } from "./workloads/counter.js";
import { lockWorkload } from "./workloads/lock.js";
import { registerWorkload } from "./workloads/register.js";
import { setWorkload } from "./workloads/set.js";
import { checkTtl, TTL_OPERATIONS, ttlWorkload, type TtlStats } from "./workloads/ttl.js";
import { recordOperation, runWorker, type Workload } from "./workloads/workload.js";

export const WORKLOAD_NAMES = ["register", "counter", "set", "lock", "ttl"] as const;
export type RunWorkloadName = (typeof WORKLOAD_NAMES)[number];

export interface RunOptions {
  readonly nodes: number;
  readonly timeSeconds: number;
  readonly workloads: readonly RunWorkloadName[];
  readonly nemesis: readonly FaultGroup[];
  readonly seed: number;
  readonly outDirectory: string;
  readonly consistency: "linearizable" | "serializable";
  readonly fsync: FsyncMode;
  readonly clientsPerWorkload: number;
  /** Deadline of each client call, retries included. */
  readonly operationTimeoutMs: number;
  readonly log?: (line: string) => void;
}

const LOCK_TTL_MS = 2000;
const TTL_CHECK_MARGIN_MS = 100;
const MAX_HISTORY_EVENTS = 2_000_000;
const STARTUP_DEADLINE_MS = 30_000;
const RECOVERY_DEADLINE_MS = 60_000;
const QUIESCENCE_DEADLINE_MS = 20_000;
const FINAL_READ_ATTEMPTS = 5;
const PAUSE_BETWEEN_OPERATIONS_MS = 20;
const CHECKER_TIME_BUDGET_PER_KEY_MS = 10_000;
/** Role changes are logged at info level, and the white-box check reads them. */
const NODE_OPTIONS = ["--log-level", "info"];
const INTERRUPT_SIGNALS = ["SIGINT", "SIGTERM"] as const;

export interface RunResult {
  readonly valid: boolean | "unknown";
  readonly seed: number;
  readonly options: Omit<RunOptions, "log">;
  readonly plan: readonly PlannedFault[];
  readonly nemesis: readonly NemesisEvent[];
  readonly checks: CheckSummary;
  readonly ttl: CheckResult<TtlStats> | null;
  readonly whitebox: { readonly states: readonly NodeState[]; readonly terms: number; readonly anomalies: readonly WhiteboxAnomaly[] };
  readonly recovered: boolean;
  readonly crashes: readonly string[];
  readonly errors: readonly string[];
  readonly faults: readonly FaultStatistics[];
  /** Events in history.jsonl, TTL operations included (checks.operations counts those checkAll judged). */
  readonly historyEvents: number;
  readonly durationMs: number;
}

function makeWorkload(name: RunWorkloadName): Workload {
  switch (name) {
    case "register":
      return registerWorkload({ keys: 12, values: 5 });
    case "counter":
      return counterWorkload({ keys: 3 });
    case "set":
      return setWorkload({ keys: 4 });
    case "lock":
      return lockWorkload({ locks: 2, ttlMs: LOCK_TTL_MS });
    case "ttl":
      return ttlWorkload({ keys: 4, minTtlMs: 300, maxTtlMs: 1500 });
  }
}

function connect(control: ClusterControl, options: RunOptions): Promise<KvClient> {
  return KvClient.connect(`kv://${control.clientAddresses.join(",")}`, {
    timeoutMs: options.operationTimeoutMs,
    consistency: options.consistency,
    connectionsPerNode: 1,
    ints: "bigint",
  });
}

export async function run(options: RunOptions): Promise<RunResult> {
  const log = options.log ?? (() => undefined);
  const startedAt = Date.now();
  await mkdir(options.outDirectory, { recursive: true });
  const control = await ClusterControl.create({ size: options.nodes, directory: join(options.outDirectory, "cluster"), fsync: options.fsync, nodeOptions: NODE_OPTIONS });
  // Whatever ends the harness, no node may outlive it.
  const killOnExit = (): void => control.killAllNow();
  const killOnSignal = (signal: NodeJS.Signals): void => {
    control.killAllNow();
    process.kill(process.pid, signal);
  };
  process.once("exit", killOnExit);
  for (const signal of INTERRUPT_SIGNALS) process.once(signal, killOnSignal);
  try {
    return await runOnCluster(control, options, log, startedAt);
  } finally {
    process.removeListener("exit", killOnExit);
    for (const signal of INTERRUPT_SIGNALS) process.removeListener(signal, killOnSignal);
    await control.stop();
  }
}

async function runOnCluster(control: ClusterControl, options: RunOptions, log: (line: string) => void, startedAt: number): Promise<RunResult> {
  const errors: string[] = [];
  control.startAll();
  if ((await control.waitForRecovery(STARTUP_DEADLINE_MS)) === null) throw new KvError("UNAVAILABLE", "the cluster elected no leader at start-up");
  log(`cluster of ${options.nodes} up; running ${options.workloads.join(",")} for ${options.timeSeconds} s, seed ${options.seed}`);

  const runStart = process.hrtime.bigint();
  const now = (): number => Number(process.hrtime.bigint() - runStart);
  const recorder = new HistoryRecorder({ maxEvents: MAX_HISTORY_EVENTS, clockNanoseconds: () => process.hrtime.bigint() });
  const plan = planNemesis({ seed: options.seed, nodeIds: control.ids, groups: options.nemesis, durationMs: options.timeSeconds * 1000 });
  const endNs = options.timeSeconds * 1e9;
  const shouldStop = (): boolean => now() >= endNs;
  const workloads = options.workloads.map(makeWorkload);
  const clients = await Promise.all(workloads.flatMap(() => Array.from({ length: options.clientsPerWorkload }, () => connect(control, options))));
  try {
    const workers = workloads.flatMap((workload, workloadIndex) =>
      Array.from({ length: options.clientsPerWorkload }, (_, clientIndex) => {
        const client = clients[workloadIndex * options.clientsPerWorkload + clientIndex] as KvClient;
        const random = new SeededRandom(options.seed * 1000 + workloadIndex * 100 + clientIndex);
        return runWorker({ recorder, client, workload, random, shouldStop, pauseMs: PAUSE_BETWEEN_OPERATIONS_MS });
      }),
    );
    const faultAnomalies: WhiteboxAnomaly[] = [];
    const nemesis = runNemesis({
      control, plan, now, shouldStop,
      onError: (message) => errors.push(`nemesis: ${message}`),
      reportAnomaly: (anomaly) => faultAnomalies.push(anomaly),
    });
    const [nemesisEvents] = await Promise.all([nemesis, Promise.all(workers)]);
    log(`workload done: ${recorder.events().length} events, ${nemesisEvents.length} faults`);
    return await finish({ control, options, recorder, workloads, plan, nemesisEvents, faultAnomalies, errors, log, startedAt, client: clients[0] ?? null });
  } finally {
    for (const client of clients) await client.close();
  }
}

interface FinishContext {
  readonly control: ClusterControl;
  readonly options: RunOptions;
  readonly recorder: HistoryRecorder;
  readonly workloads: readonly Workload[];
  readonly plan: readonly PlannedFault[];
  readonly nemesisEvents: readonly NemesisEvent[];
  /** What the faults saw the nodes do wrong while they ran (forged messages accepted, …). */
  readonly faultAnomalies: readonly WhiteboxAnomaly[];
  readonly errors: string[];
  readonly log: (line: string) => void;
  readonly startedAt: number;
  readonly client: KvClient | null;
}

/** Heals whatever is left, waits for every node to be back and caught up. */
async function heal(control: ClusterControl): Promise<boolean> {
  control.healLinks();
  for (const id of control.ids) {
    control.resume(id);
    if (control.clockOffsetOf(id) !== 0) await control.restart(id, 0);
    else if (!control.isRunning(id)) control.start(id);
  }
  return (await control.waitForRecovery(RECOVERY_DEADLINE_MS)) !== null;
}

async function finalReads(context: FinishContext): Promise<void> {
  const client = context.client;
  if (client === null) return;
  let process = context.recorder.newProcess();
  for (const operation of context.workloads.flatMap((workload) => workload.finalOperations())) {
    for (let attempt = 0; attempt < FINAL_READ_ATTEMPTS; attempt++) {
      const recorded = await recordOperation(context.recorder, client, process, operation);
      process = recorded.nextProcess;
      if (recorded.completion.type === "ok") break;
    }
  }
}

async function whitebox(control: ClusterControl, faultAnomalies: readonly WhiteboxAnomaly[]): Promise<RunResult["whitebox"]> {
  const settled = await pollUntil(QUIESCENCE_DEADLINE_MS, async () => {
    const statuses = await control.statuses();
    const applied = new Set([...statuses.values()].map((status) => status.applied));
    return statuses.size === control.ids.length && applied.size === 1 ? statuses : null;
  });
  const statuses = settled ?? (await control.statuses());
  const compared = compareStates(statuses);
  const anomalies: WhiteboxAnomaly[] = [...faultAnomalies, ...compared.anomalies];
  if (settled === null) anomalies.push({ kind: "state-diverged", message: `nodes did not reach one applied index within ${QUIESCENCE_DEADLINE_MS} ms` });
  const logs = new Map(await Promise.all(control.ids.map(async (id) => [id, await control.readLog(id)] as const)));
  const leaders = checkOneLeaderPerTerm(logs);
  return { states: compared.states, terms: leaders.terms, anomalies: [...anomalies, ...leaders.anomalies] };
}

function checkedWorkloads(options: RunOptions): WorkloadName[] {
  return options.workloads.filter((name): name is WorkloadName => name !== "ttl");
}

async function finish(context: FinishContext): Promise<RunResult> {
  const { control, options, recorder } = context;
  const recovered = await heal(control);
  if (!recovered) context.errors.push("the cluster did not recover (one leader, every node caught up) after healing");
  await finalReads(context);
  const white = await whitebox(control, context.faultAnomalies);
  const history = recorder.events();
  const checked = checkedWorkloads(options);
  const checks = checkAll(history.filter((event) => !TTL_OPERATIONS.includes(event.f)), { workloads: checked, lockTtlMs: LOCK_TTL_MS, timeBudgetPerKeyMs: CHECKER_TIME_BUDGET_PER_KEY_MS });
  const ttl = options.workloads.includes("ttl") ? checkTtl(history, TTL_CHECK_MARGIN_MS) : null;
  const crashes = [...control.crashes];
  const valid = overallValidity(checks, ttl, white.anomalies, recovered, crashes);
  const { log: _log, ...recordedOptions } = options;
  const result: RunResult = {
    valid, seed: options.seed, options: recordedOptions, plan: context.plan, nemesis: context.nemesisEvents, checks, ttl,
    whitebox: white, recovered, crashes, errors: context.errors, faults: faultStatistics(history, context.nemesisEvents), historyEvents: history.length, durationMs: Date.now() - context.startedAt,
  };
  await writeOutputs(options.outDirectory, result, history);
  context.log(`valid: ${String(valid)}; ${checks.operations.total} operations (${checks.operations.ok} ok, ${checks.operations.fail} fail, ${checks.operations.info} info)`);
  return result;
}

function overallValidity(checks: CheckSummary, ttl: CheckResult<TtlStats> | null, whitebox: readonly WhiteboxAnomaly[], recovered: boolean, crashes: readonly string[]): boolean | "unknown" {
  if (checks.valid === false || ttl?.valid === false || whitebox.length > 0 || !recovered || crashes.length > 0) return false;
  return checks.valid;
}

async function writeOutputs(directory: string, result: RunResult, history: readonly OperationEvent[]): Promise<void> {
  await writeHistory(join(directory, "history.jsonl"), history);
  await writeFile(join(directory, "results.json"), formatJson(result), "utf8");
  await writeFile(join(directory, "report.html"), renderReport(result, history), "utf8");
}

/** results.json: readable, bigints exact (as `{"$bigint": "…"}`), like history.jsonl. */
function formatJson(value: unknown): string {
  return JSON.stringify(JSON.parse(toJsonText(value)), null, 2) + "\n";
}
