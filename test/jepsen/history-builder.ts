/** Writes histories for tests tersely: `h.invoke(1, "write", "x", 1).ok(1)`. */
import type { CompletionType, HistoryValue, OperationEvent } from "../../jepsen-lite/history.js";

/** Nanoseconds between consecutive events unless `at` sets the clock. */
const DEFAULT_EVENT_SPACING_NANOSECONDS = 1_000_000;

export class HistoryBuilder {
  private readonly recorded: OperationEvent[] = [];
  private readonly pending = new Map<number, OperationEvent>();
  private timeNanoseconds = 0;

  /** Sets the time of the next event, in milliseconds since the start. */
  at(timeMs: number): this {
    this.timeNanoseconds = timeMs * 1e6;
    return this;
  }

  invoke(process: number, f: string, key: string, value?: HistoryValue): this {
    const event = this.append({ process, type: "invoke", f, key, ...(value === undefined ? {} : { value }) });
    this.pending.set(process, event);
    return this;
  }

  ok(process: number, value?: HistoryValue): this {
    return this.complete(process, "ok", value);
  }

  fail(process: number, error?: string): this {
    return this.complete(process, "fail", undefined, error);
  }

  info(process: number): this {
    return this.complete(process, "info", undefined, "TIMEOUT");
  }

  /** A whole operation with no other event in between. */
  operation(process: number, f: string, key: string, value: HistoryValue | undefined, outcome: CompletionType, result?: HistoryValue): this {
    this.invoke(process, f, key, value);
    return outcome === "ok" ? this.ok(process, result) : outcome === "fail" ? this.fail(process) : this.info(process);
  }

  events(): OperationEvent[] {
    return [...this.recorded];
  }

  private complete(process: number, type: CompletionType, value?: HistoryValue, error?: string): this {
    const invoke = this.pending.get(process);
    if (invoke === undefined) throw new Error(`test history: process ${process} has nothing pending`);
    this.pending.delete(process);
    const key = invoke.key === undefined ? {} : { key: invoke.key };
    this.append({ process, type, f: invoke.f, ...key, ...(value === undefined ? {} : { value }), ...(error === undefined ? {} : { error }) });
    return this;
  }

  private append(event: Omit<OperationEvent, "index" | "time">): OperationEvent {
    const full = { ...event, index: this.recorded.length, time: this.timeNanoseconds };
    this.timeNanoseconds += DEFAULT_EVENT_SPACING_NANOSECONDS;
    this.recorded.push(full);
    return full;
  }
}
