/** The result every checker returns, and the bounded list of anomalies it reports. */
import type { Operation } from "../history.js";

/** `"unknown"`: the checker ran out of budget (or had nothing to judge) without finding a violation. */
export type Validity = true | false | "unknown";

export interface Anomaly {
  /** What went wrong, e.g. "nonlinearizable", "below-lower-bound", "stale-fenced-write". */
  readonly kind: string;
  readonly key?: string;
  readonly message: string;
  /** The operations involved, in invoke order. */
  readonly operations: readonly Operation[];
}

export interface CheckResult<Stats> {
  readonly valid: Validity;
  /** At most `MAX_REPORTED_ANOMALIES`; `anomalyCount` counts them all. */
  readonly anomalies: readonly Anomaly[];
  readonly anomalyCount: number;
  readonly stats: Stats;
}

/** Enough to diagnose a run; a broken system can produce millions, which a report cannot hold. */
export const MAX_REPORTED_ANOMALIES = 64;

/** Collects anomalies, keeping the first `MAX_REPORTED_ANOMALIES` and counting the rest. */
export class AnomalyList {
  private readonly kept: Anomaly[] = [];
  private total = 0;

  add(anomaly: Anomaly): void {
    this.total += 1;
    if (this.kept.length < MAX_REPORTED_ANOMALIES) this.kept.push(anomaly);
  }

  /** Takes over another checker's anomalies, including the count of those it did not keep. */
  addAll(result: CheckResult<unknown>): void {
    result.anomalies.forEach((anomaly) => this.add(anomaly));
    this.total += result.anomalyCount - result.anomalies.length;
  }

  get count(): number {
    return this.total;
  }

  /** The result of a checker that judges only by anomalies: none found means valid. */
  result<Stats>(stats: Stats): CheckResult<Stats> {
    return { valid: this.total === 0, anomalies: this.kept, anomalyCount: this.total, stats };
  }
}

/** Any violation makes the whole invalid; otherwise any unknown part makes it unknown. */
export function combineValidity(parts: Iterable<Validity>): Validity {
  let combined: Validity = true;
  for (const part of parts) {
    if (part === false) return false;
    if (part === "unknown") combined = "unknown";
  }
  return combined;
}

/** Operations sorted by invoke order, the order anomalies list them in. */
export function inInvokeOrder(operations: Iterable<Operation>): Operation[] {
  return [...operations].sort((left, right) => left.invoke.index - right.invoke.index);
}
