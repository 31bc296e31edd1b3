/**
 * Lock workload: each process acquires a lock, writes the lock's protected resource with a
 * fenced write carrying its token, then releases. History keys are lock names, so the lock
 * checker sees acquires, releases and fenced writes of one lock together.
 */
import type { SeededRandom } from "../random.js";
import { DECISIONS, type OperationOutcome, type PlannedOperation, type Workload } from "./workload.js";

export interface LockWorkloadOptions {
  readonly locks: number;
  readonly ttlMs: number;
}

export const LOCK_KEY_PREFIX = "lock:";
const RESOURCE_KEY_PREFIX = "lock-resource:";

/** What a process holds right now, as far as it knows. */
interface Holding {
  readonly name: string;
  readonly token: bigint;
  wrote: boolean;
}

function ownerOf(process: number): string {
  return `owner-${process}`;
}

export function lockWorkload(options: LockWorkloadOptions): Workload {
  const holdings = new Map<number, Holding>();
  const ttlSeconds = options.ttlMs / 1000;

  const acquire = (name: string, process: number): PlannedOperation => ({
    f: "acquire", key: name, isRead: false,
    run: async (client): Promise<OperationOutcome> => {
      const result = await client.lock(name, ownerOf(process), ttlSeconds);
      if (!result.acquired || result.token === null) return { type: "fail", error: DECISIONS.lockHeld };
      holdings.set(process, { name, token: result.token, wrote: false });
      return { type: "ok", value: result.token };
    },
  });

  const fencedWrite = (holding: Holding, process: number): PlannedOperation => ({
    f: "fencedWrite", key: holding.name, value: { token: holding.token, data: `written by ${process}` }, isRead: false,
    run: async (client): Promise<OperationOutcome> => {
      holding.wrote = true;
      const resource = RESOURCE_KEY_PREFIX + holding.name.slice(LOCK_KEY_PREFIX.length);
      await client.set(resource, `written by ${process}`, { fence: { lock: holding.name, token: holding.token } });
      return { type: "ok" };
    },
  });

  const release = (holding: Holding, process: number): PlannedOperation => ({
    f: "release", key: holding.name, isRead: false,
    run: async (client): Promise<OperationOutcome> => {
      holdings.delete(process);
      return (await client.unlock(holding.name, ownerOf(process))) ? { type: "ok" } : { type: "fail", error: DECISIONS.lockNotHeld };
    },
  });

  return {
    name: "lock",
    nextOperation(random: SeededRandom, process: number): PlannedOperation {
      const holding = holdings.get(process);
      if (holding === undefined) return acquire(`${LOCK_KEY_PREFIX}${random.integer(0, options.locks - 1)}`, process);
      return holding.wrote ? release(holding, process) : fencedWrite(holding, process);
    },
    // The lock checker judges the history as it is; nothing is left to read.
    finalOperations: () => [],
  };
}
