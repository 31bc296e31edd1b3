/** Sequential models for the linearizability checker: a register and a mutex. */
import { KvError } from "../../src/errors.js";
import { completionIndex, completionTime, valueKey, type HistoryValue, type Operation } from "../history.js";
import { inInvokeOrder, type Anomaly } from "./result.js";
import type { InfoBounds, SequentialModel, StepResult } from "./linearizable.js";

/** A register operation with its values reduced to canonical keys once, not at every search step. */
type RegisterCommand =
  | { readonly kind: "read"; readonly readKey: string | null }
  | { readonly kind: "write"; readonly newKey: string }
  | { readonly kind: "cas"; readonly expectedKey: string; readonly newKey: string };

const NULL_KEY = valueKey(null);

function casPair(operation: Operation): readonly [HistoryValue, HistoryValue] {
  const value = operation.invoke.value;
  if (!Array.isArray(value) || value.length !== 2) {
    throw new KvError("INVALID", `cas at ${operation.invoke.index} needs the value [expected, new]`);
  }
  return [value[0] as HistoryValue, value[1] as HistoryValue];
}

function toRegisterCommand(operation: Operation): RegisterCommand {
  switch (operation.f) {
    case "read":
      // An info read returned nothing, so it constrains nothing.
      return { kind: "read", readKey: operation.type === "info" ? null : valueKey(operation.value ?? null) };
    case "write":
      return { kind: "write", newKey: valueKey(operation.invoke.value ?? null) };
    case "cas": {
      const [expected, next] = casPair(operation);
      return { kind: "cas", expectedKey: valueKey(expected), newKey: valueKey(next) };
    }
    default:
      throw new KvError("INVALID", `register history has an unknown operation "${operation.f}" at ${operation.invoke.index}`);
  }
}

/**
 * A register holding one value, initially null (the key is absent). The state is the value's
 * canonical key. `cas` ok = swapped; a cas whose comparison failed is recorded as `fail`.
 */
export function registerModel(): SequentialModel<string> {
  const commands = new WeakMap<Operation, RegisterCommand>();
  const commandOf = (operation: Operation): RegisterCommand => {
    let command = commands.get(operation);
    if (command === undefined) {
      command = toRegisterCommand(operation);
      commands.set(operation, command);
    }
    return command;
  };
  return {
    name: "register",
    init: () => NULL_KEY,
    key: (state) => state,
    step: (state, operation): StepResult<string> => {
      const command = commandOf(operation);
      if (command.kind === "read") return { ok: command.readKey === null || command.readKey === state, state };
      if (command.kind === "write") return { ok: true, state: command.newKey };
      return command.expectedKey === state ? { ok: true, state: command.newKey } : { ok: false, state };
    },
    findImpossibleResults: findImpossibleRegisterResults,
    boundInfo: boundRegisterInfo,
  };
}

/**
 * Narrows the register's info operations. An info read constrains nothing: needless. For an info
 * write or cas of a value v, the observers of v are the ok reads that returned it and the cas
 * (ok, or info at any time) that expected it:
 * - no observer: needless. In a valid order that includes it, the operations placed after it up
 *   to the next write do not observe v (reads or cas there would be observers), so they succeed
 *   without it too;
 * - otherwise, by the same argument, it is of use only before the last observer completes;
 * - and when it is the only operation that can have written v (not the initial null), some ok
 *   observer proves it happened, before the first such observer completed.
 * With a unique value per write, as workloads should use, this settles most info operations.
 */
function boundRegisterInfo(operations: readonly Operation[]): InfoBounds {
  const observers = observationsByValue(operations);
  const writers = new Map<string, number>();
  for (const operation of operations) {
    const written = operation.type === "fail" ? null : writtenKey(operation);
    if (written !== null) writers.set(written, (writers.get(written) ?? 0) + 1);
  }
  const bounds = { needless: new Set<Operation>(), mustTakeEffectBefore: new Map<Operation, number>(), usefulOnlyBefore: new Map<Operation, number>() };
  for (const operation of operations) {
    if (operation.type !== "info") continue;
    const written = writtenKey(operation);
    const observed = written === null ? undefined : observers.get(written);
    if (written === null || observed === undefined) bounds.needless.add(operation);
    else if (writers.get(written) === 1 && written !== NULL_KEY && observed.firstOk < Infinity) bounds.mustTakeEffectBefore.set(operation, observed.firstOk);
    else if (observed.last < Infinity) bounds.usefulOnlyBefore.set(operation, observed.last);
  }
  return bounds;
}

interface Observations {
  /** Completion of the first ok observer (Infinity when only info cas observe). */
  firstOk: number;
  /** Completion of the last observer (Infinity when an info cas observes). */
  last: number;
}

function observationsByValue(operations: readonly Operation[]): Map<string, Observations> {
  const observations = new Map<string, Observations>();
  for (const operation of operations) {
    if (operation.type === "fail" || (operation.type === "info" && operation.f !== "cas")) continue;
    const observed = operation.f === "cas" ? valueKey(casPair(operation)[0]) : operation.f === "read" ? valueKey(operation.value ?? null) : null;
    if (observed === null) continue;
    const completion = completionIndex(operation);
    const entry = observations.get(observed) ?? { firstOk: Infinity, last: -Infinity };
    if (operation.type === "ok") entry.firstOk = Math.min(entry.firstOk, completion);
    entry.last = Math.max(entry.last, completion);
    observations.set(observed, entry);
  }
  return observations;
}

/** The value an ok read returned, or an ok cas found, as the operation that observed it. */
function observedKey(operation: Operation): string | null {
  if (operation.type !== "ok") return null;
  if (operation.f === "read") return valueKey(operation.value ?? null);
  if (operation.f === "cas") return valueKey(casPair(operation)[0]);
  return null;
}

function writtenKey(operation: Operation): string | null {
  if (operation.f === "write") return valueKey(operation.invoke.value ?? null);
  if (operation.f === "cas") return valueKey(casPair(operation)[1]);
  return null;
}

/**
 * Values observed that no write which may have happened ever wrote: a read of a failed write
 * (the write reported that it did not happen) or of a value never written at all.
 */
function findImpossibleRegisterResults(key: string, operations: readonly Operation[]): Anomaly[] {
  const possible = new Set<string>([NULL_KEY]);
  const failedWriters = new Map<string, Operation[]>();
  for (const operation of operations) {
    const written = writtenKey(operation);
    if (written === null) continue;
    if (operation.type !== "fail") possible.add(written);
    else if (failedWriters.has(written)) failedWriters.get(written)?.push(operation);
    else failedWriters.set(written, [operation]);
  }
  const anomalies: Anomaly[] = [];
  for (const operation of operations) {
    const observed = observedKey(operation);
    if (observed === null || possible.has(observed)) continue;
    const writers = failedWriters.get(observed) ?? [];
    const kind = writers.length > 0 ? "read-of-failed-write" : "read-of-unwritten-value";
    const message = `register key ${JSON.stringify(key)}: ${operation.f} by process ${operation.process} at ${operation.invoke.index} observed ${observed}, which ${writers.length > 0 ? "only failed writes wrote" : "nothing wrote"}`;
    anomalies.push({ kind, key, message, operations: inInvokeOrder([operation, ...writers]) });
  }
  return anomalies;
}

/** Mutex state: free, or held by a process since a grant no earlier than `grantedAtTime`. */
export interface MutexState {
  readonly holder: number | null;
  readonly grantedAtTime: number;
}

const FREE: MutexState = { holder: null, grantedAtTime: 0 };

/**
 * A lock: `acquire` succeeds when free or already held by the same process (a re-acquire
 * refreshes the hold), `release` only when held. Releases are not matched to the holder: a
 * client that continues under a new process id after an `info` may still release its own lock.
 * With a TTL, a hold may also have expired: the lock server grants no earlier than the acquire's
 * invoke and expires a hold `ttl` after its grant, so a later acquire that completes at least
 * `ttl` after that invoke may find it free. Without a TTL (the default) holds never expire.
 */
export function mutexModel(options: { readonly ttlMs?: number } = {}): SequentialModel<MutexState> {
  const ttlNanoseconds = (options.ttlMs ?? Infinity) * 1e6;
  // An info acquire may take effect at any later time, so after any expiry.
  const expiredBy = (state: MutexState, operation: Operation): boolean =>
    Number.isFinite(ttlNanoseconds) && state.grantedAtTime + ttlNanoseconds <= completionTime(operation);
  return {
    name: "mutex",
    init: () => FREE,
    // The grant time matters only when holds can expire; leaving it out otherwise lets more states merge.
    key: (state) => (state.holder === null ? "free" : `held by ${state.holder}@${Number.isFinite(ttlNanoseconds) ? state.grantedAtTime : 0}`),
    step: (state, operation): StepResult<MutexState> => {
      if (operation.f === "acquire") {
        const free = state.holder === null || state.holder === operation.process || expiredBy(state, operation);
        return free ? { ok: true, state: { holder: operation.process, grantedAtTime: operation.invoke.time } } : { ok: false, state };
      }
      if (operation.f === "release") return state.holder !== null ? { ok: true, state: FREE } : { ok: false, state };
      throw new KvError("INVALID", `mutex history has an unknown operation "${operation.f}" at ${operation.invoke.index}`);
    },
  };
}
