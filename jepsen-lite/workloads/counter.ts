/** Counter workload: incr on a few keys, reads in between, and a final read of each key. */
import type { SeededRandom } from "../random.js";
import type { PlannedOperation, Workload } from "./workload.js";

export interface CounterWorkloadOptions {
  readonly keys: number;
}

export const COUNTER_KEY_PREFIX = "counter:";

function read(key: string): PlannedOperation {
  return {
    f: "read", key, isRead: true,
    run: async (client) => {
      const value = await client.get(key);
      if (value !== null && typeof value !== "number" && typeof value !== "bigint") return { type: "fail", error: "WRONG_TYPE" };
      return { type: "ok", value: value === null ? 0n : BigInt(value) };
    },
  };
}

function increment(key: string, delta: bigint): PlannedOperation {
  return {
    f: "incr", key, value: delta, isRead: false,
    run: async (client) => {
      await client.incr(key, delta);
      return { type: "ok" };
    },
  };
}

export function counterWorkload(options: CounterWorkloadOptions): Workload {
  const keyOf = (index: number): string => `${COUNTER_KEY_PREFIX}${index}`;
  return {
    name: "counter",
    nextOperation(random: SeededRandom): PlannedOperation {
      const key = keyOf(random.integer(0, options.keys - 1));
      return random.next() < 0.3 ? read(key) : increment(key, BigInt(random.integer(1, 5)));
    },
    finalOperations: () => Array.from({ length: options.keys }, (_, index) => read(keyOf(index))),
  };
}
