/**
 * Counter checker. Every ok read must lie between
 * - the lower bound: increments acknowledged before the read began, plus every decrement that
 *   may have happened before it ended, and
 * - the upper bound: increments attempted (ok or info) before the read ended, plus the
 *   decrements acknowledged before it began.
 * Below the lower bound an acknowledged increment was lost ("below-lower-bound"); above the
 * upper bound one was applied twice or invented ("above-upper-bound"); for decrements the other
 * way round. A final read, after every increment has ended, is thereby held
 * to exactly the acknowledged sum when no increment is `info`, and to [acknowledged,
 * acknowledged + info] otherwise. `fail` increments did not happen and count nowhere.
 */
import { KvError } from "../../src/errors.js";
import { completionIndex, operationsByKey, type HistoryValue, type Operation } from "../history.js";
import { AnomalyList, type CheckResult } from "./result.js";

export interface CounterStats {
  readonly reads: number;
  readonly finalReads: number;
  readonly acknowledgedIncrements: number;
  readonly infoIncrements: number;
  readonly acknowledgedSum: bigint;
  /** Sum of the `info` increments' deltas: what may or may not have been applied. */
  readonly infoSum: bigint;
  /** Per key, the value of its last final read. */
  readonly finalValues: Readonly<Record<string, bigint>>;
}

function toInteger(value: HistoryValue | undefined, operation: Operation): bigint {
  if (value === null || value === undefined) return 0n; // an absent counter reads as 0
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  throw new KvError("INVALID", `counter ${operation.f} at ${operation.invoke.index} has a non-integer value`);
}

/** Running sums of deltas, split by sign so each bound takes the worst case of each. */
class DeltaSums {
  positive = 0n;
  negative = 0n;

  add(delta: bigint): void {
    if (delta > 0n) this.positive += delta;
    else this.negative += delta;
  }
}

interface ReadBounds {
  lower: bigint;
  upper: bigint;
}

type Mark =
  | { readonly position: number; readonly kind: "incr-invoke" | "incr-ok"; readonly delta: bigint }
  | { readonly position: number; readonly kind: "read-invoke" | "read-ok"; readonly bounds: ReadBounds };

function marksOf(operations: readonly Operation[], bounds: Map<Operation, ReadBounds>): Mark[] {
  const marks: Mark[] = [];
  for (const operation of operations) {
    if (operation.type === "fail") continue;
    if (operation.f === "incr") {
      const delta = toInteger(operation.invoke.value, operation);
      marks.push({ position: operation.invoke.index, kind: "incr-invoke", delta });
      if (operation.type === "ok") marks.push({ position: completionIndex(operation), kind: "incr-ok", delta });
    } else if (operation.f === "read" && operation.type === "ok") {
      const readBounds = { lower: 0n, upper: 0n };
      bounds.set(operation, readBounds);
      marks.push({ position: operation.invoke.index, kind: "read-invoke", bounds: readBounds });
      marks.push({ position: completionIndex(operation), kind: "read-ok", bounds: readBounds });
    }
  }
  return marks.sort((left, right) => left.position - right.position);
}

/** The bounds of every ok read, from one sweep over the history in order. */
function readBounds(operations: readonly Operation[]): Map<Operation, ReadBounds> {
  const bounds = new Map<Operation, ReadBounds>();
  const acknowledged = new DeltaSums();
  const attempted = new DeltaSums();
  for (const mark of marksOf(operations, bounds)) {
    if (mark.kind === "incr-invoke") attempted.add(mark.delta);
    else if (mark.kind === "incr-ok") acknowledged.add(mark.delta);
    else if (mark.kind === "read-invoke") {
      mark.bounds.lower = acknowledged.positive;
      mark.bounds.upper = acknowledged.negative;
    } else if (mark.kind === "read-ok") {
      mark.bounds.lower += attempted.negative;
      mark.bounds.upper += attempted.positive;
    }
  }
  return bounds;
}

/** Index after which no increment is running: reads invoked later are final reads. */
function lastIncrementPosition(operations: readonly Operation[]): number {
  let last = -1;
  for (const operation of operations) {
    if (operation.f !== "incr") continue;
    last = Math.max(last, operation.completion?.index ?? operation.invoke.index);
  }
  return last;
}

/** Checks every counter key of the history independently. */
export function checkCounter(operations: readonly Operation[]): CheckResult<CounterStats> {
  const anomalies = new AnomalyList();
  const finalValues: Record<string, bigint> = {};
  let reads = 0;
  let finalReads = 0;
  for (const [key, keyOperations] of operationsByKey(operations)) {
    const bounds = readBounds(keyOperations);
    const finalAfter = lastIncrementPosition(keyOperations);
    reads += bounds.size;
    for (const [read, { lower, upper }] of bounds) {
      const value = toInteger(read.value, read);
      const isFinal = read.invoke.index > finalAfter;
      if (isFinal) {
        finalReads += 1;
        finalValues[key] = value;
      }
      if (value >= lower && value <= upper) continue;
      const kind = value < lower ? "below-lower-bound" : "above-upper-bound";
      const meaning = value < lower ? "an acknowledged increment lost, or a decrement applied twice" : "an increment applied twice or invented, or an acknowledged decrement lost";
      const message = `${isFinal ? "final " : ""}read of ${JSON.stringify(key)} by process ${read.process} at ${read.invoke.index} saw ${value}, outside [${lower}, ${upper}]: ${meaning}`;
      anomalies.add({ kind, key, message, operations: [read] });
    }
  }
  const result = anomalies.result({ reads, finalReads, finalValues, ...incrementTotals(operations) });
  // With no successful read there is nothing to judge.
  return reads === 0 ? { ...result, valid: "unknown" } : result;
}

function incrementTotals(operations: readonly Operation[]): Omit<CounterStats, "reads" | "finalReads" | "finalValues"> {
  let acknowledgedIncrements = 0;
  let infoIncrements = 0;
  let acknowledgedSum = 0n;
  let infoSum = 0n;
  for (const operation of operations) {
    if (operation.f !== "incr" || operation.type === "fail") continue;
    const delta = toInteger(operation.invoke.value, operation);
    if (operation.type === "ok") {
      acknowledgedIncrements += 1;
      acknowledgedSum += delta;
    } else {
      infoIncrements += 1;
      infoSum += delta;
    }
  }
  return { acknowledgedIncrements, infoIncrements, acknowledgedSum, infoSum };
}
