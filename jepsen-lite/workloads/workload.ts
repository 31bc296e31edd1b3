/**
 * What a workload is, and the client loop that runs one: every operation is recorded as an
 * invoke and one completion. A completion is `fail` only when the operation certainly did not
 * take effect; when the outcome is unknown it is `info` and the client continues as a new process.
 */
import type { KvClient } from "../../src/client/client.js";
import { KvError } from "../../src/errors.js";
import type { HistoryRecorder, HistoryValue, OperationEvent } from "../history.js";
import type { SeededRandom } from "../random.js";

/** What an operation returned: `fail` for a definite "did not happen" answer (cas mismatch, lock held). */
export interface OperationOutcome {
  readonly type: "ok" | "fail";
  readonly value?: HistoryValue;
  readonly error?: string;
}

/** Errors recorded for a `fail` that is the cluster's decision, not a fault. */
export const DECISIONS = { casMismatch: "MISMATCH", lockHeld: "HELD", lockNotHeld: "NOT_HELD", fenced: "FENCED" } as const;
export const DECISION_CODES: ReadonlySet<string> = new Set(Object.values(DECISIONS));

export interface PlannedOperation {
  readonly f: string;
  readonly key: string;
  readonly value?: HistoryValue;
  /** Reads never change state, so any error of theirs is a `fail`. */
  readonly isRead: boolean;
  run(client: KvClient): Promise<OperationOutcome>;
}

export interface Workload {
  readonly name: string;
  /** The next operation of the process `process`, chosen with the worker's random source. */
  nextOperation(random: SeededRandom, process: number): PlannedOperation;
  /** Reads of everything the checkers judge by, after the cluster has healed. */
  finalOperations(): PlannedOperation[];
}

/**
 * Answers that mean a write did not happen. UNAVAILABLE is the client's word for "nothing
 * applied" (a write in doubt ends TIMEOUT instead), so it is checked as such: a failed write
 * that shows up later is an anomaly the checkers report.
 */
const DEFINITE_FAILURES: ReadonlySet<string> = new Set([
  "UNAVAILABLE", "NOT_LEADER", "FENCED", "WRONG_TYPE", "KEY_INVALID", "VALUE_INVALID", "OVERFLOW", "NOT_FOUND", "TOO_LARGE", "BUSY", "INVALID",
]);

export function errorCodeOf(error: unknown): string {
  return error instanceof KvError ? error.code : "EXCEPTION";
}

export function isDefiniteFailure(operation: PlannedOperation, error: unknown): boolean {
  return operation.isRead || DEFINITE_FAILURES.has(errorCodeOf(error));
}

export interface RecordedOperation {
  readonly completion: OperationEvent;
  /** The process to continue as: a new one after `info`. */
  readonly nextProcess: number;
}

/** Executes one operation and records its invoke and completion. */
export async function recordOperation(recorder: HistoryRecorder, client: KvClient, process: number, operation: PlannedOperation): Promise<RecordedOperation> {
  const invoke = recorder.invoke(process, operation.f, operation.key, operation.value);
  try {
    const outcome = await operation.run(client);
    return { completion: recorder.complete(invoke, outcome.type, outcome.value, outcome.error), nextProcess: process };
  } catch (error) {
    if (isDefiniteFailure(operation, error)) return { completion: recorder.complete(invoke, "fail", undefined, errorCodeOf(error)), nextProcess: process };
    return { completion: recorder.complete(invoke, "info", undefined, errorCodeOf(error)), nextProcess: recorder.newProcess() };
  }
}

export interface WorkerOptions {
  readonly recorder: HistoryRecorder;
  readonly client: KvClient;
  readonly workload: Workload;
  readonly random: SeededRandom;
  /** Stop starting operations once this returns true. */
  readonly shouldStop: () => boolean;
  /** Pause between operations of one process, so the history stays checkable. */
  readonly pauseMs: number;
}

/** One client: operations back to back until told to stop. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  let process = options.recorder.newProcess();
  while (!options.shouldStop()) {
    const recorded = await recordOperation(options.recorder, options.client, process, options.workload.nextOperation(options.random, process));
    process = recorded.nextProcess;
    if (options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, options.random.integer(0, options.pauseMs)));
  }
}
