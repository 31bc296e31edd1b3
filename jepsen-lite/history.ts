/**
 * The history model of jepsen-lite: every client operation is recorded as an `invoke` event
 * followed by one completion (`ok`, `fail` or `info`), as in Jepsen.
 *
 * Ordering: a history is the sequence of events in the order one recorder observed them, so the
 * `index` order IS real-time order ("A completed before B began" = A's completion index is lower
 * than B's invoke index). `time` carries the same order as a number and is used where a duration
 * matters (lock TTLs): it is nanoseconds since the start of the run, read from the monotonic
 * `process.hrtime.bigint()` and converted to a number (exact up to 2^53 ns, about 104 days).
 *
 * Processes: a process runs one operation at a time. A client whose operation ends `info`
 * (outcome unknown) may still have that operation take effect at any later moment, so it
 * continues under a NEW process id; the old id never appears again.
 */
import { readFile, writeFile } from "node:fs/promises";
import { KvError } from "../src/errors.js";

export type EventType = "invoke" | "ok" | "fail" | "info";
export type CompletionType = Exclude<EventType, "invoke">;

/** Values that appear in histories: register values, deltas, tokens, set elements, reads. */
export type HistoryValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly HistoryValue[]
  | { readonly [field: string]: HistoryValue };

/**
 * One event. `f` per workload: register "read" | "write" | "cas" (value [expected, new]);
 * counter "incr" (value = delta) | "read"; set "add" (value = element) | "read" (value = the
 * elements); lock "acquire" (ok value = fencing token) | "release" | "fencedWrite" (value =
 * { token, data }; ok = accepted, fail with error FENCED = rejected).
 */
export interface OperationEvent {
  readonly index: number;
  readonly process: number;
  readonly type: EventType;
  readonly f: string;
  readonly key?: string;
  readonly value?: HistoryValue;
  /** Nanoseconds since the start of the run (monotonic). */
  readonly time: number;
  /** Error code of a `fail` or `info` completion, e.g. "FENCED" or "TIMEOUT". */
  readonly error?: string;
}

/** An invoke paired with its completion: the unit every checker works on. */
export interface Operation {
  readonly process: number;
  readonly f: string;
  readonly key?: string;
  /** `info` also when the invoke never completed (the run ended first). */
  readonly type: CompletionType;
  /** The completion's value for `ok` when it has one (reads, tokens), else the invoke's. */
  readonly value: HistoryValue | undefined;
  readonly invoke: OperationEvent;
  readonly completion: OperationEvent | null;
}

/** Index of an operation's completion; an `info` operation may take effect until the end of time. */
export function completionIndex(operation: Operation): number {
  return operation.type === "info" || operation.completion === null ? Infinity : operation.completion.index;
}

/** Time of an operation's completion; `info` never completes. */
export function completionTime(operation: Operation): number {
  return operation.type === "info" || operation.completion === null ? Infinity : operation.completion.time;
}

function malformed(message: string): KvError {
  return new KvError("INVALID", `malformed history: ${message}`);
}

function pairedValue(invoke: OperationEvent, completion: OperationEvent | null): HistoryValue | undefined {
  if (completion !== null && completion.type === "ok" && completion.value !== undefined) return completion.value;
  return invoke.value;
}

function pair(invoke: OperationEvent, completion: OperationEvent | null): Operation {
  const type: CompletionType = completion === null || completion.type === "invoke" ? "info" : completion.type;
  const base = { process: invoke.process, f: invoke.f, type, value: pairedValue(invoke, completion), invoke, completion };
  return invoke.key === undefined ? base : { ...base, key: invoke.key };
}

/**
 * Pairs every invoke with the next completion of the same process, in invoke order. An invoke
 * without a completion becomes `info`. A completion without an invoke, or a second invoke while
 * one is pending, is a malformed history.
 */
export function pairOperations(events: readonly OperationEvent[]): Operation[] {
  const pending = new Map<number, OperationEvent>();
  const completions = new Map<OperationEvent, OperationEvent>();
  for (const event of events) {
    const open = pending.get(event.process);
    if (event.type === "invoke") {
      if (open !== undefined) throw malformed(`process ${event.process} invoked at ${event.index} while ${open.index} is pending`);
      pending.set(event.process, event);
      continue;
    }
    if (open === undefined) throw malformed(`completion ${event.index} of process ${event.process} has no invoke`);
    if (open.f !== event.f) throw malformed(`completion ${event.index} is "${event.f}" but its invoke is "${open.f}"`);
    completions.set(open, event);
    pending.delete(event.process);
  }
  return events.filter((event) => event.type === "invoke").map((invoke) => pair(invoke, completions.get(invoke) ?? null));
}

/**
 * Groups operations by key (P-compositionality: independent keys are checked independently);
 * `keyOf` chooses another grouping, e.g. by lock name.
 */
export function operationsByKey(
  operations: readonly Operation[],
  keyOf: (operation: Operation) => string = (operation) => operation.key ?? "",
): Map<string, Operation[]> {
  const groups = new Map<string, Operation[]>();
  for (const operation of operations) {
    const key = keyOf(operation);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [operation]);
    else group.push(operation);
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------
// Canonical values and bigint-safe JSON

const BIGINT_FIELD = "$bigint";

function canonicalForm(value: unknown): unknown {
  if (typeof value === "bigint") return { [BIGINT_FIELD]: value.toString() };
  if (Array.isArray(value)) return value.map(canonicalForm);
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
    return Object.fromEntries(entries.map(([field, inner]) => [field, canonicalForm(inner)]));
  }
  return value;
}

/**
 * JSON text of any value with bigints kept exact (`{"$bigint":"123"}`) and object fields sorted.
 * Also the canonical identity of a value: equal values give equal text, and 1 (a number) and 1n
 * (a bigint) stay different, as they are different types in the store.
 */
export function toJsonText(value: unknown): string {
  return JSON.stringify(canonicalForm(value));
}

/** The inverse of `toJsonText`. */
export function fromJsonText(text: string): unknown {
  return JSON.parse(text, (_field, value: unknown) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const fields = Object.keys(value);
      const digits = (value as Record<string, unknown>)[BIGINT_FIELD];
      if (fields.length === 1 && typeof digits === "string") return BigInt(digits);
    }
    return value;
  });
}

/** Canonical identity of a history value, for equality, hashing and memoization. */
export function valueKey(value: HistoryValue | undefined): string {
  return value === undefined ? "undefined" : toJsonText(value);
}

// ---------------------------------------------------------------------------------------------
// JSONL files (history.jsonl): one event per line

const EVENT_TYPES: readonly string[] = ["invoke", "ok", "fail", "info"];

function isEvent(value: unknown): value is OperationEvent {
  if (value === null || typeof value !== "object") return false;
  const event = value as Record<string, unknown>;
  return (
    Number.isInteger(event["index"]) &&
    Number.isInteger(event["process"]) &&
    typeof event["type"] === "string" &&
    EVENT_TYPES.includes(event["type"]) &&
    typeof event["f"] === "string" &&
    typeof event["time"] === "number" &&
    (event["key"] === undefined || typeof event["key"] === "string") &&
    (event["error"] === undefined || typeof event["error"] === "string")
  );
}

export function toJsonl(events: readonly OperationEvent[]): string {
  return events.map((event) => toJsonText(event) + "\n").join("");
}

export function parseJsonl(text: string): OperationEvent[] {
  const events: OperationEvent[] = [];
  text.split("\n").forEach((line, lineIndex) => {
    if (line.trim() === "") return;
    let parsed: unknown;
    try {
      parsed = fromJsonText(line);
    } catch {
      throw malformed(`line ${lineIndex + 1} is not JSON`);
    }
    if (!isEvent(parsed)) throw malformed(`line ${lineIndex + 1} is not an operation event`);
    events.push(parsed);
  });
  return events;
}

export async function writeHistory(path: string, events: readonly OperationEvent[]): Promise<void> {
  await writeFile(path, toJsonl(events), "utf8");
}

export async function readHistory(path: string): Promise<OperationEvent[]> {
  return parseJsonl(await readFile(path, "utf8"));
}

// ---------------------------------------------------------------------------------------------
// Recording

export interface HistoryRecorderOptions {
  /** Bound on the events kept in memory; one more is TOO_LARGE. */
  readonly maxEvents: number;
  /** Monotonic clock in nanoseconds; defaults to process.hrtime.bigint(). */
  readonly clockNanoseconds?: () => bigint;
}

/** Appends events in observation order with indexes and times; hands out process ids. */
export class HistoryRecorder {
  private readonly recorded: OperationEvent[] = [];
  private readonly clockNanoseconds: () => bigint;
  private readonly startNanoseconds: bigint;
  private nextProcess = 0;

  constructor(private readonly options: HistoryRecorderOptions) {
    this.clockNanoseconds = options.clockNanoseconds ?? (() => process.hrtime.bigint());
    this.startNanoseconds = this.clockNanoseconds();
  }

  /** A fresh process id: one per client at start, and one more after each `info`. */
  newProcess(): number {
    return this.nextProcess++;
  }

  invoke(process: number, f: string, key?: string, value?: HistoryValue): OperationEvent {
    return this.append({ process, type: "invoke", f, ...(key === undefined ? {} : { key }), ...(value === undefined ? {} : { value }) });
  }

  complete(invoke: OperationEvent, type: CompletionType, value?: HistoryValue, error?: string): OperationEvent {
    const base = { process: invoke.process, type, f: invoke.f, ...(invoke.key === undefined ? {} : { key: invoke.key }) };
    return this.append({ ...base, ...(value === undefined ? {} : { value }), ...(error === undefined ? {} : { error }) });
  }

  events(): readonly OperationEvent[] {
    return this.recorded;
  }

  private append(event: Omit<OperationEvent, "index" | "time">): OperationEvent {
    if (this.recorded.length >= this.options.maxEvents) {
      throw new KvError("TOO_LARGE", `history is full (maxEvents ${this.options.maxEvents})`);
    }
    const time = Number(this.clockNanoseconds() - this.startNanoseconds);
    const full: OperationEvent = { ...event, index: this.recorded.length, time };
    this.recorded.push(full);
    return full;
  }
}
