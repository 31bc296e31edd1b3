/** Runs the checkers of the chosen workloads over one history: the summary for results.json. */
import { KvError } from "../../src/errors.js";
import { operationsByKey, pairOperations, type Operation, type OperationEvent } from "../history.js";
import { checkCounter } from "./counter.js";
import { checkLinearizable, type LinearizableOptions } from "./linearizable.js";
import { checkLock } from "./lock.js";
import { registerModel } from "./models.js";
import { combineValidity, type CheckResult, type Validity } from "./result.js";
import { checkSet } from "./set.js";

export const WORKLOADS = ["register", "counter", "set", "lock"] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

/** The operations only one workload performs; "read" is shared and tells nothing. */
const DISTINCTIVE_OPERATIONS: Readonly<Record<WorkloadName, readonly string[]>> = {
  register: ["write", "cas"],
  counter: ["incr"],
  set: ["add"],
  lock: ["acquire", "release", "fencedWrite"],
};

export interface CheckAllOptions extends LinearizableOptions {
  readonly workloads: readonly WorkloadName[];
  /** The lock workload's TTL; required when it is checked. */
  readonly lockTtlMs?: number;
}

export interface OperationCounts {
  readonly total: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
}

export interface CheckSummary {
  readonly valid: Validity;
  readonly operations: OperationCounts;
  readonly unassignedKeys: readonly string[];
  readonly workloads: Partial<Record<WorkloadName, CheckResult<unknown>>>;
}

function countOperations(operations: readonly Operation[]): OperationCounts {
  const count = (type: Operation["type"]): number => operations.filter((operation) => operation.type === type).length;
  return { total: operations.length, ok: count("ok"), fail: count("fail"), info: count("info") };
}

/**
 * The operations a workload's checker sees. A history of one workload goes whole to it; in a
 * history of several, each workload owns the keys on which its distinctive operations appear.
 */
function operationsOf(workload: WorkloadName, operations: readonly Operation[], options: CheckAllOptions): readonly Operation[] {
  if (options.workloads.length === 1) return operations;
  const owned: Operation[] = [];
  for (const keyOperations of operationsByKey(operations).values()) {
    if (owns(workload, keyOperations)) owned.push(...keyOperations);
  }
  return owned;
}

function owns(workload: WorkloadName, keyOperations: readonly Operation[]): boolean {
  return keyOperations.some((operation) => DISTINCTIVE_OPERATIONS[workload].includes(operation.f));
}

/** Keys that none of several workloads owns (e.g. only read): checked by nobody, so reported. */
function unassignedKeys(operations: readonly Operation[], options: CheckAllOptions): string[] {
  if (options.workloads.length === 1) return [];
  const groups = [...operationsByKey(operations)];
  return groups.filter(([, keyOperations]) => !options.workloads.some((workload) => owns(workload, keyOperations))).map(([key]) => key);
}

function checkWorkload(workload: WorkloadName, operations: readonly Operation[], options: CheckAllOptions): CheckResult<unknown> {
  switch (workload) {
    case "register":
      return checkLinearizable(operations, registerModel(), options);
    case "counter":
      return checkCounter(operations);
    case "set":
      return checkSet(operations);
    case "lock":
      if (options.lockTtlMs === undefined) throw new KvError("INVALID", "checking the lock workload needs lockTtlMs");
      return checkLock(operations, { ...options, ttlMs: options.lockTtlMs });
  }
}

export function checkAll(history: readonly OperationEvent[], options: CheckAllOptions): CheckSummary {
  const operations = pairOperations(history);
  const workloads: Partial<Record<WorkloadName, CheckResult<unknown>>> = {};
  for (const workload of options.workloads) {
    workloads[workload] = checkWorkload(workload, operationsOf(workload, operations, options), options);
  }
  const valid = combineValidity(Object.values(workloads).map((result) => result.valid));
  return { valid, operations: countOperations(operations), unassignedKeys: unassignedKeys(operations, options), workloads };
}
