/**
 * Register workload: get / set / cas on many keys with a small value space, so cas often matches.
 * Values are bigints, as the runner's clients read Ints back (ints: "bigint").
 */
import type { HistoryValue } from "../history.js";
import type { SeededRandom } from "../random.js";
import { DECISIONS, type PlannedOperation, type Workload } from "./workload.js";

export interface RegisterWorkloadOptions {
  readonly keys: number;
  /** Values are the integers 0n .. values-1. */
  readonly values: number;
}

export const REGISTER_KEY_PREFIX = "register:";

function read(key: string): PlannedOperation {
  return {
    f: "read", key, isRead: true,
    run: async (client) => ({ type: "ok", value: (await client.get(key)) as HistoryValue }),
  };
}

function write(key: string, value: bigint): PlannedOperation {
  return {
    f: "write", key, value, isRead: false,
    run: async (client) => {
      await client.set(key, value);
      return { type: "ok" };
    },
  };
}

function compareAndSet(key: string, expected: bigint | null, next: bigint): PlannedOperation {
  return {
    f: "cas", key, value: [expected, next], isRead: false,
    run: async (client) => ((await client.cas(key, expected, next)) ? { type: "ok" } : { type: "fail", error: DECISIONS.casMismatch }),
  };
}

export function registerWorkload(options: RegisterWorkloadOptions): Workload {
  const keyOf = (index: number): string => `${REGISTER_KEY_PREFIX}${index}`;
  return {
    name: "register",
    nextOperation(random: SeededRandom): PlannedOperation {
      const key = keyOf(random.integer(0, options.keys - 1));
      const choice = random.next();
      if (choice < 0.5) return read(key);
      const value = (): bigint => BigInt(random.integer(0, options.values - 1));
      if (choice < 0.75) return write(key, value());
      return compareAndSet(key, random.next() < 0.1 ? null : value(), value());
    },
    finalOperations: () => Array.from({ length: options.keys }, (_, index) => read(keyOf(index))),
  };
}
