import { expect } from "vitest";
import { requests } from "../../src/client/requests.js";
import { valuesEqual } from "../../src/engine/equality.js";
import type { Value } from "../../src/engine/value.js";
import { KvError } from "../../src/errors.js";
import type { TestClient } from "./test-client.js";

/** Keys per mget when reading back; well under the server's per-query bound. */
const READ_BATCH_KEYS = 1000;
/** Write-load progress checks poll this often. */
const PROGRESS_POLL_MS = 10;

export interface WriteLoadOptions {
  readonly writers: number;
  readonly keyPrefix: string;
  /** Deadline of each write, retries included; past it the write's outcome is unknown. */
  readonly writeDeadlineMs: number;
  /** Each writer stops after this many writes (default: runs until stopped). */
  readonly writesPerWriter?: number;
}

/**
 * Concurrent writers, each setting its own sequence of keys (`<prefix><writer>-<n>`), so every
 * acknowledged write has exactly one value that must be found later. Writes with an unknown
 * outcome (TIMEOUT) are counted apart: they may or may not be there.
 */
export class WriteLoad {
  /** key -> value, for every write the cluster acknowledged. */
  readonly acknowledged = new Map<string, string>();
  unknownOutcomes = 0;
  /** Errors other than an unknown outcome: none is expected. */
  readonly unexpectedErrors: KvError[] = [];
  private stopping = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: TestClient,
    private readonly options: WriteLoadOptions,
  ) {
    this.done = Promise.all(Array.from({ length: options.writers }, (_, writer) => this.runWriter(writer))).then(() => undefined);
  }

  private async runWriter(writer: number): Promise<void> {
    const limit = this.options.writesPerWriter ?? Number.POSITIVE_INFINITY;
    for (let sequence = 0; sequence < limit && !this.stopping; sequence++) {
      const key = `${this.options.keyPrefix}${writer}-${sequence}`;
      const value = `value of ${key}`;
      try {
        const written = await this.client.call(requests.set({ key, value }), { deadlineMs: this.options.writeDeadlineMs });
        if (written) this.acknowledged.set(key, value);
      } catch (error) {
        if (!(error instanceof KvError)) throw error;
        if (error.code === "TIMEOUT") this.unknownOutcomes++;
        else this.unexpectedErrors.push(error);
      }
    }
  }

  /**
   * Resolves once at least `count` writes were acknowledged; throws past the deadline, or as
   * soon as `check` throws (e.g. a node crashed).
   */
  async waitForAcknowledged(count: number, deadlineMs: number, check: () => void = () => undefined): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (this.acknowledged.size < count) {
      check();
      if (Date.now() > deadline) throw new Error(`only ${this.acknowledged.size} of ${count} writes acknowledged within ${deadlineMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, PROGRESS_POLL_MS));
    }
  }

  /** No writer starts another write; in-flight writes finish (or fail) first. */
  requestStop(): void {
    this.stopping = true;
  }

  async finished(): Promise<void> {
    await this.done;
  }

  async stop(): Promise<void> {
    this.requestStop();
    await this.done;
  }
}

/**
 * Reads every given key back (linearizable mget through the leader unless `node` names one
 * replica for serializable reads) and asserts each has exactly its expected value.
 */
export async function expectAllPresent(client: TestClient, expected: ReadonlyMap<string, Value>, node?: string): Promise<void> {
  const keys = [...expected.keys()];
  const missing: string[] = [];
  const wrong: string[] = [];
  for (let start = 0; start < keys.length; start += READ_BATCH_KEYS) {
    const batch = keys.slice(start, start + READ_BATCH_KEYS);
    const found = await readMany(client, batch, node);
    for (const key of batch) {
      if (!found.has(key)) missing.push(key);
      else if (!valuesEqual(found.get(key) ?? null, expected.get(key) ?? null)) wrong.push(key);
    }
  }
  expect({ missing: missing.slice(0, 20), missingCount: missing.length, wrongCount: wrong.length }).toEqual({ missing: [], missingCount: 0, wrongCount: 0 });
}

export async function readMany(client: TestClient, keys: readonly string[], node?: string): Promise<ReadonlyMap<string, Value>> {
  const request = node === undefined ? requests.mget({ keys }) : requests.mget({ keys, consistency: "serializable" });
  return client.call(request, node === undefined ? {} : { node });
}
