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
  /**
   * Optional: narrower windows for one key's `info` operations, which otherwise stay candidates
   * until the end of the history and multiply the space the search may have to cover.
   */
  boundInfo?(operations: readonly Operation[]): InfoBounds;
}

/** Positions are history (event) indexes; an info operation appears in at most one field. */
export interface InfoBounds {
  /** Info operations no linearization needs: leaving them out can only keep an order valid. */
  readonly needless: ReadonlySet<Operation>;
  /**
   * Info operations every valid linearization contains before a position (e.g. the only write
   * of a value a read returned, before that read completed): searched as if completed there.
   */
  readonly mustTakeEffectBefore: ReadonlyMap<Operation, number>;
  /**
   * Info operations that may have happened but are of use only before a position (e.g. a write
   * whose value nobody observes after it): from there on they are left out.
   */
  readonly usefulOnlyBefore: ReadonlyMap<Operation, number>;
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
  const bounds = model.boundInfo?.(operations) ?? NO_INFO_BOUNDS;
  const candidates = inInvokeOrder(operations.filter((operation) => operation.type !== "fail" && !bounds.needless.has(operation)));
  const search = new LinearizationSearch(candidates, candidates.map((operation) => placeReturn(operation, bounds)), model, {
    deadlineMs: performance.now() + (options.timeBudgetPerKeyMs ?? DEFAULT_TIME_BUDGET_PER_KEY_MS),
    maxMemoEntries: options.maxMemoEntriesPerKey ?? DEFAULT_MAX_MEMO_ENTRIES_PER_KEY,
  });
  const valid = search.run();
  const anomalies = valid === false ? [search.describeFailure(key, model.name)] : [];
  return { valid, anomalies, steps: search.steps };
}

const NO_INFO_BOUNDS: InfoBounds = { needless: new Set(), mustTakeEffectBefore: new Map(), usefulOnlyBefore: new Map() };

/** Where an operation's return entry sits, and whether it may be left out when reached. */
interface ReturnPlacement {
  readonly position: number;
  readonly optional: boolean;
}

/**
 * An ok operation returns at its completion. An info one returns at +Infinity, optionally,
 * unless the model bounds it; a bound sits half a position before the history event it names,
 * so the operation is settled before that event's own return entry.
 */
function placeReturn(operation: Operation, bounds: InfoBounds): ReturnPlacement {
  if (operation.type !== "info") return { position: completionIndex(operation), optional: false };
  const mandatoryBefore = bounds.mustTakeEffectBefore.get(operation);
  if (mandatoryBefore !== undefined) return { position: mandatoryBefore - 0.5, optional: false };
  return { position: (bounds.usefulOnlyBefore.get(operation) ?? Infinity) - 0.5, optional: true };
}

/** A call or return entry of the dancing-links list. */
interface Entry {
  readonly operationNumber: number;
  readonly isCall: boolean;
  /** Position in history order: the invoke index for a call, the (bounded) completion for a return. */
  readonly position: number;
  /** For a return: reaching it unlinearized may mean the operation never happened. */
  readonly optional: boolean;
  /** The other entry of the same operation. */
  match: Entry | null;
  previous: Entry | null;
  next: Entry | null;
}

/** One choice on the search stack: an operation linearized, or left out, in `state`. */
interface Choice<State> {
  readonly call: Entry;
  readonly state: State;
  readonly leftOut: boolean;
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
  private readonly stack: Choice<State>[] = [];
  private state: State;
  /** The return entry furthest in the history at which the search had to backtrack. */
  private failedReturn: Entry | null = null;
  private readonly statesAtFailure = new Set<string>();

  constructor(
    private readonly operations: readonly Operation[],
    private readonly returns: readonly ReturnPlacement[],
    private readonly model: SequentialModel<State>,
    private readonly limits: SearchLimits,
  ) {
    this.head = buildEntryList(operations, returns);
    this.linearized = new Uint32Array(Math.ceil(operations.length / 32));
    this.state = model.init();
  }

  run(): Validity {
    let current = this.head.next;
    while (current !== null) {
      if (++this.steps % STEPS_PER_DEADLINE_CHECK === 0 && performance.now() > this.limits.deadlineMs) return "unknown";
      // Only info operations return at +Infinity, after every other return: the rest never happened.
      if (current.position === Infinity) return true;
      const next = current.isCall ? this.visitCall(current) : this.visitReturn(current);
      if (next === "unknown") return "unknown";
      if (next === "exhausted") return false;
      current = next;
    }
    return true;
  }

  /** Linearizes the operation now if its result allows and this is new ground; the entry to visit next. */
  private visitCall(call: Entry): Entry | null | "unknown" {
    const step = this.model.step(this.state, this.operation(call));
    if (!step.ok) return call.next;
    const outcome = this.choose(call, step.state, false);
    if (outcome === "memo-full") return "unknown";
    return outcome === "taken" ? this.head.next : call.next;
  }

  /**
   * A return reached before its operation was linearized: every earlier point was tried. An
   * optional operation may be left out (it never happened); otherwise the last choice was wrong.
   */
  private visitReturn(returnEntry: Entry): Entry | null | "unknown" | "exhausted" {
    if (returnEntry.optional && returnEntry.match !== null) {
      const outcome = this.choose(returnEntry.match, this.state, true);
      if (outcome === "memo-full") return "unknown";
      // An empty list now means every operation is settled: the search succeeded.
      if (outcome === "taken") return this.head.next;
    } else {
      this.noteFailure(returnEntry);
    }
    return this.backtrack() ?? "exhausted";
  }

  /** Takes `call` out of the list (linearized into `next`, or left out) unless already explored. */
  private choose(call: Entry, next: State, leftOut: boolean): "taken" | "rejected" | "memo-full" {
    this.toggle(call.operationNumber);
    const memoKey = `${linearizedKey(this.linearized)}\u0000${this.model.key(next)}`;
    if (this.memo.has(memoKey) || this.memo.size >= this.limits.maxMemoEntries) {
      this.toggle(call.operationNumber);
      return this.memo.has(memoKey) ? "rejected" : "memo-full";
    }
    this.memo.add(memoKey);
    this.stack.push({ call, state: this.state, leftOut });
    this.state = next;
    lift(call);
    return "taken";
  }

  /** Undoes choices up to the last linearization, whose next alternative is the entry after it. */
  private backtrack(): Entry | null {
    for (let choice = this.stack.pop(); choice !== undefined; choice = this.stack.pop()) {
      this.state = choice.state;
      this.toggle(choice.call.operationNumber);
      unlift(choice.call);
      // Leaving an operation out is the last alternative at its return entry.
      if (!choice.leftOut) return choice.call.next;
    }
    return null;
  }

  /** Remembers the furthest return the search could not get past, and the states it had there. */
  private noteFailure(returnEntry: Entry): void {
    if (this.failedReturn === null || returnEntry.position > this.failedReturn.position) {
      this.failedReturn = returnEntry;
      this.statesAtFailure.clear();
    }
    if (returnEntry === this.failedReturn && this.statesAtFailure.size < MAX_REPORTED_STATES) {
      this.statesAtFailure.add(this.model.key(this.state));
    }
  }

  /** The operation no order could complete in time, with every operation concurrent with it. */
  describeFailure(key: string, modelName: string): Anomaly {
    const failedReturn = this.failedReturn;
    if (failedReturn === null) throw new KvError("INTERNAL", "linearization failed without a failure point");
    const culprit = this.operation(failedReturn);
    // Concurrent within the windows searched: a bounded info operation ends at its bound.
    const concurrent = this.operations.filter(
      (operation, operationNumber) =>
        operation.invoke.index < failedReturn.position && (this.returns[operationNumber]?.position ?? Infinity) > culprit.invoke.index,
    );
    const states = [...this.statesAtFailure].join(", ");
    const end = culprit.type === "info" ? `needed before event ${Math.ceil(failedReturn.position)}` : `completion ${failedReturn.position}`;
    const message =
      `${modelName} key ${JSON.stringify(key)}: no linearization explains ${culprit.f} by process ${culprit.process} ` +
      `(invoke ${culprit.invoke.index}, ${end}); states possible before it: ${states}`;
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
function buildEntryList(operations: readonly Operation[], returns: readonly ReturnPlacement[]): Entry {
  const entries: Entry[] = [];
  operations.forEach((operation, operationNumber) => {
    const { position, optional } = returns[operationNumber] ?? placeReturn(operation, NO_INFO_BOUNDS);
    const returnEntry: Entry = { operationNumber, isCall: false, position, optional, match: null, previous: null, next: null };
    const call: Entry = { operationNumber, isCall: true, position: operation.invoke.index, optional: false, match: returnEntry, previous: null, next: null };
    returnEntry.match = call;
    entries.push(call, returnEntry);
  });
  // Returns of info operations all sit at +Infinity; any order among them will do.
  entries.sort((left, right) => left.position - right.position || left.operationNumber - right.operationNumber);
  const head: Entry = { operationNumber: -1, isCall: false, position: -1, optional: false, match: null, previous: null, next: null };
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

/**
 * An exact key for the linearized set, compact because the set is mostly runs: everything well
 * before the search frontier is linearized, everything after it is not, and only the window of
 * concurrent operations (and pending info ones) is mixed. Runs of all-ones or all-zero words are
 * written as a count, mixed words as their value; a fixed-width bitset would make every memo
 * entry as long as the history and the memo as large as the history times its entries.
 */
function linearizedKey(words: Uint32Array): string {
  let key = "";
  let runWord = -1;
  let runLength = 0;
  for (const word of words) {
    const uniform = word === 0 || word === 0xffffffff;
    if (uniform && word === runWord) {
      runLength += 1;
      continue;
    }
    if (runLength > 0) key += `${runWord === 0 ? "z" : "o"}${runLength}`;
    runWord = uniform ? word : -1;
    runLength = uniform ? 1 : 0;
    if (!uniform) key += `m${word.toString(36)}`;
  }
  if (runLength > 0) key += `${runWord === 0 ? "z" : "o"}${runLength}`;
  return key;
}
