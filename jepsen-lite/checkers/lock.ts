/**
 * Lock checker, per lock name (the operations' key):
 * - mutual exclusion in real time. A hold is the interval in which its process certainly held
 *   the lock: from the acquire's ok completion to the process's next release invoke, and never
 *   past the TTL expiry (the grant came no earlier than the acquire's invoke, so the lock may
 *   expire from `invoke + ttl` on). A hold whose release is unknown or missing thus ends at the
 *   TTL. Two holds of different processes that overlap are a violation.
 * - fencing tokens strictly increase in acquisition order: an acquire that began after another
 *   was acknowledged gets a greater token (equal only for the same process re-acquiring).
 * - no stale fenced write: a fenced write accepted with a token older than one already granted
 *   (acquire acknowledged) or already used by an accepted fenced write before it began.
 * - the acquires and releases are linearizable against the mutex model.
 */
import { KvError } from "../../src/errors.js";
import { completionIndex, operationsByKey, type HistoryValue, type Operation } from "../history.js";
import { checkLinearizable, type LinearizableOptions, type LinearizableStats } from "./linearizable.js";
import { mutexModel } from "./models.js";
import { AnomalyList, combineValidity, inInvokeOrder, type CheckResult } from "./result.js";

export interface LockCheckOptions extends LinearizableOptions {
  /** The TTL the workload acquires with. */
  readonly ttlMs: number;
}

export interface LockStats {
  readonly locks: number;
  readonly holds: number;
  readonly acknowledgedAcquires: number;
  readonly acceptedFencedWrites: number;
  readonly rejectedFencedWrites: number;
  readonly linearizability: LinearizableStats;
}

interface Hold {
  readonly acquire: Operation;
  readonly release: Operation | null;
  readonly startTime: number;
  readonly endTime: number;
}

function tokenOf(value: HistoryValue | undefined, operation: Operation): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  throw new KvError("INVALID", `${operation.f} at ${operation.invoke.index} has no integer fencing token`);
}

type FencedWriteValue = { readonly [field: string]: HistoryValue };

function fencedWriteValue(operation: Operation): FencedWriteValue {
  const value = operation.invoke.value;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new KvError("INVALID", `fencedWrite at ${operation.invoke.index} needs the value { token, data, lock? }`);
  }
  return value as FencedWriteValue;
}

function fencedToken(operation: Operation): bigint {
  return tokenOf(fencedWriteValue(operation)["token"], operation);
}

/** The lock an operation concerns: its key, or for a fenced write to another key, its `lock` field. */
function lockNameOf(operation: Operation): string {
  const lock = operation.f === "fencedWrite" ? fencedWriteValue(operation)["lock"] : undefined;
  return typeof lock === "string" ? lock : (operation.key ?? "");
}

/** Certain holds of one lock, from each ok acquire to its process's next release or the TTL. */
function holdsOf(operations: readonly Operation[], ttlNanoseconds: number): Hold[] {
  const holds: Hold[] = [];
  const open = new Map<number, Operation>();
  for (const operation of inInvokeOrder(operations)) {
    const acquire = open.get(operation.process);
    if (operation.f === "release" && acquire !== undefined) {
      holds.push(hold(acquire, operation, ttlNanoseconds));
      open.delete(operation.process);
    }
    if (operation.f === "acquire" && operation.type === "ok") {
      if (acquire !== undefined) holds.push(hold(acquire, null, ttlNanoseconds));
      open.set(operation.process, operation);
    }
  }
  for (const acquire of open.values()) holds.push(hold(acquire, null, ttlNanoseconds));
  // An acquire that took longer than the TTL may have expired before it was acknowledged.
  return holds.filter((certain) => certain.endTime > certain.startTime).sort((left, right) => left.startTime - right.startTime);
}

function hold(acquire: Operation, release: Operation | null, ttlNanoseconds: number): Hold {
  const startTime = acquire.completion?.time ?? acquire.invoke.time;
  const expiryTime = acquire.invoke.time + ttlNanoseconds;
  const endTime = release === null ? expiryTime : Math.min(release.invoke.time, expiryTime);
  return { acquire, release, startTime, endTime };
}

function checkMutualExclusion(key: string, holds: readonly Hold[], anomalies: AnomalyList): void {
  let active: Hold[] = [];
  for (const current of holds) {
    active = active.filter((earlier) => earlier.endTime > current.startTime);
    for (const earlier of active) {
      if (earlier.acquire.process === current.acquire.process) continue;
      const involved = [earlier.acquire, earlier.release, current.acquire, current.release].filter((operation) => operation !== null);
      const message = `lock ${JSON.stringify(key)}: processes ${earlier.acquire.process} and ${current.acquire.process} held it at once`;
      anomalies.add({ kind: "two-holders", key, message, operations: inInvokeOrder(involved) });
    }
    active.push(current);
  }
}

/** The greatest token known (granted or used) at each point of a sweep in history order. */
class TokenHighWater {
  token: bigint | null = null;
  source: Operation | null = null;

  /** On a tie the later operation becomes the source: a write that used a token says more than its grant. */
  raise(token: bigint, source: Operation): void {
    if (this.token === null || token >= this.token) {
      this.token = token;
      this.source = source;
    }
  }
}

type TokenMark = { readonly position: number; readonly operation: Operation; readonly completes: boolean };

function tokenMarks(operations: readonly Operation[]): TokenMark[] {
  const marks: TokenMark[] = [];
  for (const operation of operations) {
    const relevant = operation.type === "ok" && (operation.f === "acquire" || operation.f === "fencedWrite");
    if (!relevant) continue;
    marks.push({ position: operation.invoke.index, operation, completes: false });
    marks.push({ position: completionIndex(operation), operation, completes: true });
  }
  return marks.sort((left, right) => left.position - right.position);
}

/** Token order and stale fenced writes, in one sweep over one lock's acknowledged operations. */
function checkTokens(key: string, operations: readonly Operation[], anomalies: AnomalyList): void {
  const known = new TokenHighWater();
  const knownAtInvoke = new Map<Operation, { token: bigint | null; source: Operation | null }>();
  for (const { operation, completes } of tokenMarks(operations)) {
    const token = operation.f === "acquire" ? tokenOf(operation.value, operation) : fencedToken(operation);
    if (!completes) {
      knownAtInvoke.set(operation, { token: known.token, source: known.source });
      continue;
    }
    const before = knownAtInvoke.get(operation);
    if (before !== undefined && before.token !== null && before.source !== null && isViolation(operation, token, before.token, before.source)) {
      const kind = operation.f === "acquire" ? "token-not-increasing" : "stale-fenced-write";
      const message = `lock ${JSON.stringify(key)}: ${operation.f} by process ${operation.process} with token ${token} after token ${before.token} was ${before.source.f === "acquire" ? "granted" : "used"}`;
      anomalies.add({ kind, key, message, operations: inInvokeOrder([before.source, operation]) });
    }
    known.raise(token, operation);
  }
}

function isViolation(operation: Operation, token: bigint, knownToken: bigint, source: Operation): boolean {
  if (operation.f === "fencedWrite") return token < knownToken;
  // A re-acquire by the holder keeps its token.
  return token < knownToken || (token === knownToken && source.process !== operation.process);
}

/**
 * Fenced writes name their lock by their key, or by a `lock` field in their value when they write
 * another key (`{ token, data, lock }`); the operations reported keep their own key.
 */
export function checkLock(operations: readonly Operation[], options: LockCheckOptions): CheckResult<LockStats> {
  const anomalies = new AnomalyList();
  const ttlNanoseconds = options.ttlMs * 1e6;
  const locks = operationsByKey(operations, lockNameOf);
  let holds = 0;
  for (const [key, lockOperations] of locks) {
    const lockHolds = holdsOf(lockOperations, ttlNanoseconds);
    holds += lockHolds.length;
    checkMutualExclusion(key, lockHolds, anomalies);
    checkTokens(key, lockOperations, anomalies);
  }
  const mutexOperations = operations.filter((operation) => operation.f === "acquire" || operation.f === "release");
  const linearizability = checkLinearizable(mutexOperations, mutexModel({ ttlMs: options.ttlMs }), options);
  anomalies.addAll(linearizability);
  const count = (f: string, type: Operation["type"]): number => operations.filter((operation) => operation.f === f && operation.type === type).length;
  const stats: LockStats = {
    locks: locks.size,
    holds,
    acknowledgedAcquires: count("acquire", "ok"),
    acceptedFencedWrites: count("fencedWrite", "ok"),
    rejectedFencedWrites: operations.filter((operation) => operation.f === "fencedWrite" && operation.completion?.error === "FENCED").length,
    linearizability: linearizability.stats,
  };
  const result = anomalies.result(stats);
  return { ...result, valid: combineValidity([result.valid, linearizability.valid]) };
}
