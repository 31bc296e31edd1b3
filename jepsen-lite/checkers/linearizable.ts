/**
 * Linearizability checker, per key.
 *
 * The search is Wing & Gong's: find an order of the operations, consistent with real time, in
 * which a sequential model accepts every result. Two refinements keep it tractable:
 * - Lowe's just-in-time linearization: operations sit in a doubly linked list of call and return
 *   entries in history order; only an operation whose call comes before the first remaining
 *   return may be linearized next, and meeting a return whose operation is not yet linearized
 *   means the last choice was wrong, so the search backtracks.
 * - Memoization (as in Knossos and Porcupine): a (set of linearized operations, model state) pair
 *   that was reached before leads to the same outcome, so it is not explored twice.
 * Keys are checked independently (Horn & Kroening's P-compositionality: a history is
 * linearizable iff the sub-history of every key is).
 *
 * `fail` operations did not happen and are removed. `info` operations may take effect at any
 * moment after their invoke, or never: their return entry is placed after every other one, so
 * reaching it means every acknowledged operation is linearized and the rest never happened.
 */
import { KvError } from "../../src/errors.js";
import { completionIndex, operationsByKey, type Operation } from "../history.js";
import { AnomalyList, combineValidity, inInvokeOrder, type Anomaly, type CheckResult, type Validity } from "./result.js";

export interface StepResult<State> {
  /** False when the operation's recorded result is impossible in `state`. */
  readonly ok: boolean;
  readonly state: State;
}

export interface SequentialModel<State> {
  readonly name: string;
  init(): State;
  /** Applies one operation; for `info` operations any result is acceptable. */
  step(state: State, operation: Operation): StepResult<State>;
  /** Identity of a state for memoization: equal keys = interchangeable states. */
  key(state: State): string;
  /**
   * Optional quick pass over one key's operations (failed ones included) for results that no
   * order can explain, e.g. a read of a value that only a failed write wrote. Anything it returns
   * makes the key invalid without a search, and names the anomaly precisely.
   */
  findImpossibleResults?(key: string, operations: readonly Operation[]): Anomaly[];
}

export interface LinearizableOptions {
  /** Search time per key before giving up with "unknown". */
  readonly timeBudgetPerKeyMs?: number;
  /** Bound on memoized (linearized set, state) pairs per key; reaching it gives "unknown". */
  readonly maxMemoEntriesPerKey?: number;
}

export const DEFAULT_TIME_BUDGET_PER_KEY_MS = 5_000;
export const DEFAULT_MAX_MEMO_ENTRIES_PER_KEY = 1_000_000;

export interface LinearizableStats {
  readonly model: string;
  readonly keys: number;
  readonly operations: number;
  readonly invalidKeys: readonly string[];
  /** Keys whose search ran out of time or memory. */
  readonly unknownKeys: readonly string[];
  readonly searchSteps: number;
  readonly elapsedMs: number;
}

/** Checks every key's sub-history against `model`. */
export function checkLinearizable<State>(
  operations: readonly Operation[],
  model: SequentialModel<State>,
  options: LinearizableOptions = {},
): CheckResult<LinearizableStats> {
  const startMs = performance.now();
  const anomalies = new AnomalyList();
  const verdicts: Validity[] = [];
  const invalidKeys: string[] = [];
  const unknownKeys: string[] = [];
  let searchSteps = 0;
  const groups = operationsByKey(operations);
  for (const [key, keyOperations] of groups) {
    const outcome = checkKey(key, keyOperations, model, options);
    searchSteps += outcome.steps;
    verdicts.push(outcome.valid);
    if (outcome.valid === false) invalidKeys.push(key);
    if (outcome.valid === "unknown") unknownKeys.push(key);
    outcome.anomalies.forEach((anomaly) => anomalies.add(anomaly));
  }
  const elapsedMs = Math.round(performance.now() - startMs);
  const stats = { model: model.name, keys: groups.size, operations: operations.length, invalidKeys, unknownKeys, searchSteps, elapsedMs };
  return { ...anomalies.result(stats), valid: combineValidity(verdicts) };
}

interface KeyOutcome {
  readonly valid: Validity;
  readonly anomalies: readonly Anomaly[];
  readonly steps: number;
}

function checkKey<State>(key: string, operations: readonly Operation[], model: SequentialModel<State>, options: LinearizableOptions): KeyOutcome {
  const impossible = model.findImpossibleResults?.(key, operations) ?? [];
  if (impossible.length > 0) return { valid: false, anomalies: impossible, steps: 0 };
  const candidates = inInvokeOrder(operations.filter((operation) => operation.type !== "fail"));
  const search = new LinearizationSearch(candidates, model, {
    deadlineMs: performance.now() + (options.timeBudgetPerKeyMs ?? DEFAULT_TIME_BUDGET_PER_KEY_MS),
    maxMemoEntries: options.maxMemoEntriesPerKey ?? DEFAULT_MAX_MEMO_ENTRIES_PER_KEY,
  });
  const valid = search.run();
  const anomalies = valid === false ? [search.describeFailure(key, model.name)] : [];
  return { valid, anomalies, steps: search.steps };
}

/** A call or return entry of the dancing-links list. */
interface Entry {
  readonly operationNumber: number;
  readonly isCall: boolean;
  /** Position in history order: the invoke index for a call, the completion index for a return. */
  readonly position: number;
  /** For a call: its return entry. */
  match: Entry | null;
  previous: Entry | null;
  next: Entry | null;
}

interface SearchLimits {
  readonly deadlineMs: number;
  readonly maxMemoEntries: number;
}

/** How many distinct states to show at the point where the search failed. */
const MAX_REPORTED_STATES = 8;
/** Read the clock once per this many steps: performance.now() costs more than a step. */
const STEPS_PER_DEADLINE_CHECK = 1024;

class LinearizationSearch<State> {
  steps = 0;
  private readonly head: Entry;
  private readonly linearized: Uint32Array;
  private readonly memo = new Set<string>();
  /** The return entry furthest in the history at which the search had to backtrack. */
  private failedReturn: Entry | null = null;
  private readonly statesAtFailure = new Set<string>();

  constructor(
    private readonly operations: readonly Operation[],
    private readonly model: SequentialModel<State>,
    private readonly limits: SearchLimits,
  ) {
    this.head = buildEntryList(operations);
    this.linearized = new Uint32Array(Math.ceil(operations.length / 32));
  }

  run(): Validity {
    const stack: { call: Entry; state: State }[] = [];
    let state = this.model.init();
    let current = this.head.next;
    while (current !== null) {
      if (++this.steps % STEPS_PER_DEADLINE_CHECK === 0 && performance.now() > this.limits.deadlineMs) return "unknown";
      if (current.isCall) {
        const next = this.tryLinearize(current, state);
        if (next === "memo-full") return "unknown";
        if (next === null) {
          current = current.next;
          continue;
        }
        stack.push({ call: current, state });
        state = next;
        lift(current);
        current = this.head.next;
        continue;
      }
      if (this.operation(current).type === "info") return true;
      this.noteFailure(current, state);
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      this.toggle(top.call.operationNumber);
      unlift(top.call);
      current = top.call.next;
    }
    return true;
  }

  /** The state after linearizing `call` now, or null when impossible or already explored. */
  private tryLinearize(call: Entry, state: State): State | null | "memo-full" {
    const result = this.model.step(state, this.operation(call));
    if (!result.ok) return null;
    this.toggle(call.operationNumber);
    const memoKey = `${linearizedKey(this.linearized)}\u0000${this.model.key(result.state)}`;
    if (this.memo.has(memoKey)) {
      this.toggle(call.operationNumber);
      return null;
    }
    if (this.memo.size >= this.limits.maxMemoEntries) return "memo-full";
    this.memo.add(memoKey);
    return result.state;
  }

  private noteFailure(returnEntry: Entry, state: State): void {
    if (this.failedReturn === null || returnEntry.position > this.failedReturn.position) {
      this.failedReturn = returnEntry;
      this.statesAtFailure.clear();
    }
    if (returnEntry === this.failedReturn && this.statesAtFailure.size < MAX_REPORTED_STATES) {
      this.statesAtFailure.add(this.model.key(state));
    }
  }

  /** The operation no order could complete in time, with every operation concurrent with it. */
  describeFailure(key: string, modelName: string): Anomaly {
    const failedReturn = this.failedReturn;
    if (failedReturn === null) throw new KvError("INTERNAL", "linearization failed without a failure point");
    const culprit = this.operation(failedReturn);
    const concurrent = this.operations.filter(
      (operation) => operation.invoke.index < failedReturn.position && completionIndex(operation) > culprit.invoke.index,
    );
    const states = [...this.statesAtFailure].join(", ");
    const message =
      `${modelName} key ${JSON.stringify(key)}: no linearization explains ${culprit.f} by process ${culprit.process} ` +
      `(invoke ${culprit.invoke.index}, completion ${failedReturn.position}); states possible before it: ${states}`;
    return { kind: "nonlinearizable", key, message, operations: inInvokeOrder(concurrent) };
  }

  private operation(entry: Entry): Operation {
    const operation = this.operations[entry.operationNumber];
    if (operation === undefined) throw new KvError("INTERNAL", `entry refers to missing operation ${entry.operationNumber}`);
    return operation;
  }

  private toggle(operationNumber: number): void {
    const word = operationNumber >>> 5;
    this.linearized[word] = (this.linearized[word] ?? 0) ^ (1 << (operationNumber & 31));
  }
}

/** The list head (a sentinel) followed by call and return entries in history order. */
function buildEntryList(operations: readonly Operation[]): Entry {
  const entries: Entry[] = [];
  operations.forEach((operation, operationNumber) => {
    const returnEntry: Entry = { operationNumber, isCall: false, position: completionIndex(operation), match: null, previous: null, next: null };
    const call: Entry = { operationNumber, isCall: true, position: operation.invoke.index, match: returnEntry, previous: null, next: null };
    entries.push(call, returnEntry);
  });
  // Returns of info operations all sit at +Infinity; any order among them will do.
  entries.sort((left, right) => left.position - right.position || left.operationNumber - right.operationNumber);
  const head: Entry = { operationNumber: -1, isCall: false, position: -1, match: null, previous: null, next: null };
  let last = head;
  for (const entry of entries) {
    entry.previous = last;
    last.next = entry;
    last = entry;
  }
  return head;
}

/** Removes a call and its return from the list; they keep their own links for `unlift`. */
function lift(call: Entry): void {
  unlink(call);
  if (call.match !== null) unlink(call.match);
}

/** Exactly undoes `lift` (lifts are undone in reverse order, so the links are still valid). */
function unlift(call: Entry): void {
  if (call.match !== null) relink(call.match);
  relink(call);
}

function unlink(entry: Entry): void {
  if (entry.previous !== null) entry.previous.next = entry.next;
  if (entry.next !== null) entry.next.previous = entry.previous;
}

function relink(entry: Entry): void {
  if (entry.previous !== null) entry.previous.next = entry;
  if (entry.next !== null) entry.next.previous = entry;
}

/** Two UTF-16 code units per 32-bit word: a compact exact key for the linearized set. */
function linearizedKey(words: Uint32Array): string {
  let key = "";
  for (const word of words) key += String.fromCharCode(word & 0xffff, word >>> 16);
  return key;
}
