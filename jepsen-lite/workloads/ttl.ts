/**
 * TTL workload: keys written with short TTLs and read around their expiry, plus a clock key
 * written without TTL. Every read returns the entry's metadata, so the check needs no wall
 * clock: an observed `updatedAt` is a log time the cluster has certainly passed, and a read that
 * begins after that was observed runs at a log time at least as late. Such a read must not see a
 * value whose `expiresAt` lies before it (SPEC §4: expired keys are invisible at once).
 */
import { completionIndex, pairOperations, type HistoryValue, type Operation, type OperationEvent } from "../history.js";
import { AnomalyList, inInvokeOrder, type CheckResult } from "../checkers/result.js";
import type { SeededRandom } from "../random.js";
import type { PlannedOperation, Workload } from "./workload.js";

export interface TtlWorkloadOptions {
  readonly keys: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
}

export const TTL_KEY_PREFIX = "ttl:";
const CLOCK_KEY = `${TTL_KEY_PREFIX}clock`;
/** Operation names of this workload; other checkers never see them. */
export const TTL_OPERATIONS: readonly string[] = ["ttl-write", "ttl-read"];

function read(key: string): PlannedOperation {
  return {
    f: "ttl-read", key, isRead: true,
    run: async (client) => {
      const entry = await client.getWithMeta(key);
      if (entry === null) return { type: "ok", value: null };
      return { type: "ok", value: { value: entry.value as HistoryValue, updatedAt: entry.updatedAt, expiresAt: entry.expiresAt } };
    },
  };
}

function write(key: string, value: number, ttlMs: number | null): PlannedOperation {
  return {
    f: "ttl-write", key, value: { value, ttlMs }, isRead: false,
    run: async (client) => {
      await client.set(key, value, ttlMs === null ? {} : { ttl: ttlMs / 1000 });
      return { type: "ok" };
    },
  };
}

export function ttlWorkload(options: TtlWorkloadOptions): Workload {
  let nextValue = 0;
  return {
    name: "ttl",
    nextOperation(random: SeededRandom): PlannedOperation {
      const choice = random.next();
      if (choice < 0.15) return write(CLOCK_KEY, nextValue++, null);
      if (choice < 0.2) return read(CLOCK_KEY);
      const key = `${TTL_KEY_PREFIX}${random.integer(0, options.keys - 1)}`;
      return choice < 0.4 ? write(key, nextValue++, random.integer(options.minTtlMs, options.maxTtlMs)) : read(key);
    },
    finalOperations: () => [],
  };
}

export interface TtlStats {
  readonly reads: number;
  readonly readsOfLiveValues: number;
  /** Reads judged: they saw a TTL value and some log time was known when they began. */
  readonly judgedReads: number;
}

interface Observed {
  readonly updatedAt: number;
  readonly expiresAt: number | null;
}

function observedEntry(operation: Operation): Observed | null {
  const value = operation.value;
  if (operation.type !== "ok" || value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const fields = value as { readonly [field: string]: HistoryValue };
  const updatedAt = fields["updatedAt"];
  const expiresAt = fields["expiresAt"];
  if (typeof updatedAt !== "number") return null;
  return { updatedAt, expiresAt: typeof expiresAt === "number" ? expiresAt : null };
}

/**
 * Flags a read that saw a value at least `marginMs` of log time after its expiry, by the latest
 * log time observed (by any read) before the read began.
 */
export function checkTtl(history: readonly OperationEvent[], marginMs: number): CheckResult<TtlStats> {
  const reads = pairOperations(history.filter((event) => event.f === "ttl-read")).filter((operation) => operation.type === "ok");
  const completions = [...reads].sort((left, right) => completionIndex(left) - completionIndex(right));
  const anomalies = new AnomalyList();
  let known: { logTime: number; source: Operation } | null = null;
  let nextCompletion = 0;
  let judgedReads = 0;
  let readsOfLiveValues = 0;
  for (const operation of inInvokeOrder(reads)) {
    for (let done = completions[nextCompletion]; done !== undefined && completionIndex(done) < operation.invoke.index; done = completions[++nextCompletion]) {
      const entry = observedEntry(done);
      if (entry !== null && (known === null || entry.updatedAt > known.logTime)) known = { logTime: entry.updatedAt, source: done };
    }
    const entry = observedEntry(operation);
    if (entry === null || entry.expiresAt === null) continue;
    readsOfLiveValues += 1;
    if (known === null) continue;
    judgedReads += 1;
    if (known.logTime >= entry.expiresAt + marginMs) {
      const message = `key ${JSON.stringify(operation.key ?? "")}: read by process ${operation.process} saw a value that expired at log time ${entry.expiresAt}, after log time ${known.logTime} was observed`;
      anomalies.add({ kind: "read-after-expiry", key: operation.key ?? "", message, operations: inInvokeOrder([known.source, operation]) });
    }
  }
  return anomalies.result({ reads: reads.length, readsOfLiveValues, judgedReads });
}
