/**
 * Histories of a real (simulated) linearizable register store: clients run concurrently, each
 * operation takes effect at one instant between its invoke and its completion, so every history
 * produced is linearizable by construction. Outcomes include `fail` (did not happen: a cas whose
 * comparison failed, or a refused write) and `info` (took effect or not; the client continues as
 * a new process).
 */
import type { HistoryValue, OperationEvent } from "../../jepsen-lite/history.js";

export interface RegisterSimulationOptions {
  readonly seed: number;
  readonly operations: number;
  readonly keys: number;
  readonly processes: number;
  /** Longest gap, in nanoseconds, between invoke, effect and completion. */
  readonly maxWindowNanoseconds: number;
  /** Values written are 0 .. valueRange - 1: few values make the search work hard. */
  readonly valueRange: number;
  readonly infoProbability: number;
  readonly refusedWriteProbability: number;
}

/** mulberry32: a small seeded generator, so a failing seed replays exactly. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

type Fate = "ok" | "refused" | "info-applied" | "info-lost";

interface InFlight {
  readonly invoke: OperationEvent;
  readonly fate: Fate;
  result: { readonly type: "ok" | "fail"; readonly value?: HistoryValue } | null;
}

interface Client {
  process: number;
  nextTimeNanoseconds: number;
  operation: InFlight | null;
}

class RegisterStore {
  private readonly values = new Map<string, HistoryValue>();

  apply(invoke: OperationEvent): { type: "ok" | "fail"; value?: HistoryValue } {
    const key = invoke.key ?? "";
    const current = this.values.get(key) ?? null;
    if (invoke.f === "read") return { type: "ok", value: current };
    if (invoke.f === "write") {
      this.values.set(key, invoke.value ?? null);
      return { type: "ok" };
    }
    const [expected, next] = invoke.value as readonly [HistoryValue, HistoryValue];
    if (expected !== current) return { type: "fail" };
    this.values.set(key, next);
    return { type: "ok" };
  }
}

export function simulateRegister(options: RegisterSimulationOptions): OperationEvent[] {
  const next = random(options.seed);
  const events: OperationEvent[] = [];
  const store = new RegisterStore();
  const clients: Client[] = Array.from({ length: options.processes }, (_, process) => ({ process, nextTimeNanoseconds: 0, operation: null }));
  let nextProcess = options.processes;
  let invoked = 0;
  const pick = (count: number): number => Math.floor(next() * count);
  const gap = (): number => 1 + pick(options.maxWindowNanoseconds);
  const record = (event: Omit<OperationEvent, "index">): OperationEvent => {
    const full = { ...event, index: events.length };
    events.push(full);
    return full;
  };
  const fate = (): Fate => {
    const roll = next();
    if (roll < options.infoProbability) return next() < 0.5 ? "info-applied" : "info-lost";
    return roll < options.infoProbability + options.refusedWriteProbability ? "refused" : "ok";
  };
  for (;;) {
    const client = earliest(clients, invoked < options.operations);
    if (client === null) return events;
    const time = client.nextTimeNanoseconds;
    client.nextTimeNanoseconds = time + gap();
    const inFlight = client.operation;
    if (inFlight === null) {
      const key = `k${pick(options.keys)}`;
      const roll = next();
      const f = roll < 0.4 ? "read" : roll < 0.7 ? "write" : "cas";
      const value: HistoryValue | undefined = f === "read" ? undefined : f === "write" ? pick(options.valueRange) : [pick(options.valueRange), pick(options.valueRange)];
      const invoke = record({ process: client.process, type: "invoke", f, key, time, ...(value === undefined ? {} : { value }) });
      client.operation = { invoke, fate: fate(), result: null };
      invoked += 1;
    } else if (inFlight.result === null) {
      const applies = inFlight.fate === "ok" || inFlight.fate === "info-applied";
      inFlight.result = applies ? store.apply(inFlight.invoke) : { type: "fail" };
    } else {
      complete(client, inFlight, time, record);
      if (inFlight.fate.startsWith("info")) client.process = nextProcess++;
      client.operation = null;
    }
  }
}

function complete(client: Client, inFlight: InFlight, time: number, record: (event: Omit<OperationEvent, "index">) => OperationEvent): void {
  const { f, key } = inFlight.invoke;
  const base = { process: client.process, f, time, ...(key === undefined ? {} : { key }) };
  if (inFlight.fate.startsWith("info")) record({ ...base, type: "info", error: "TIMEOUT" });
  else if (inFlight.result === null || inFlight.result.type === "fail") record({ ...base, type: "fail" });
  else record({ ...base, type: "ok", ...(inFlight.result.value === undefined ? {} : { value: inFlight.result.value }) });
}

/** The client whose next step comes first; idle clients only while operations remain to invoke. */
function earliest(clients: readonly Client[], mayInvoke: boolean): Client | null {
  let best: Client | null = null;
  for (const client of clients) {
    if (client.operation === null && !mayInvoke) continue;
    if (best === null || client.nextTimeNanoseconds < best.nextTimeNanoseconds) best = client;
  }
  return best;
}
