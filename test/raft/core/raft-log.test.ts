import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { limitSizeBytes } from "../../../src/raft/log-entry.js";
import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { RaftLog } from "../../../src/raft/raft-log.js";
import type { LogEntry } from "../../../src/raft/types.js";
import { membershipOf } from "./cluster.js";

const membership = membershipOf(["n1", "n2", "n3"]);

type Operation =
  | { readonly kind: "append"; readonly at: number; readonly count: number; readonly sizes: readonly number[] }
  /** The driver takes what is left to persist; its write is in flight until "land". */
  | { readonly kind: "handOut" }
  /** The oldest write in flight is durable. */
  | { readonly kind: "land" }
  | { readonly kind: "commit"; readonly at: number }
  | { readonly kind: "compact"; readonly at: number }
  | { readonly kind: "read"; readonly low: number; readonly span: number; readonly maxBytes: number };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant("append" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 6 }), sizes: fc.array(fc.nat({ max: 40 }), { minLength: 6, maxLength: 6 }) }),
  fc.record({ kind: fc.constant("handOut" as const) }),
  fc.record({ kind: fc.constant("land" as const) }),
  fc.record({ kind: fc.constant("commit" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("compact" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("read" as const), low: fc.nat(), span: fc.nat({ max: 12 }), maxBytes: fc.integer({ min: 1, max: 300 }) }),
);

/** The reference: the whole log as one array, plus the compaction point. */
interface Model {
  log: LogEntry[];
  term: number;
  compacted: number;
  /** Writes in flight, oldest first. */
  writes: LogEntry[][];
}

function pick(range: number, at: number): number {
  return range <= 0 ? 0 : at % range;
}

/** Runs one operation on the real log and the model; reads are compared. */
function run(op: Operation, log: RaftLog, storage: MemoryStorage, model: Model): void {
  const last = model.log.length;
  switch (op.kind) {
    case "append": {
      const first = log.committed + 1 + pick(last - log.committed + 1, op.at);
      model.term++;
      const entries = Array.from({ length: op.count }, (_, offset): LogEntry => ({
        kind: "command", data: new Uint8Array(op.sizes[offset] ?? 0), index: first + offset, term: model.term,
      }));
      log.append(entries);
      model.log = [...model.log.slice(0, first - 1), ...entries];
      return;
    }
    case "handOut": {
      const entries = [...log.entriesToPersist()];
      log.markInProgress();
      expect(log.entriesToPersist()).toEqual([]);
      if (entries.length > 0) model.writes.push(entries);
      return;
    }
    case "land": {
      const entries = model.writes.shift();
      const newest = entries?.[entries.length - 1];
      if (entries === undefined || newest === undefined) return;
      storage.append(entries);
      log.stableTo(newest.index, newest.term);
      return;
    }
    case "commit":
      log.commitTo(pick(last + 1, op.at));
      return;
    case "compact": {
      // The driver compacts only what is persisted and committed (applied).
      const limit = Math.min(log.committed, log.persistedLastIndex());
      const index = model.compacted + pick(limit - model.compacted + 1, op.at);
      if (index <= model.compacted) return;
      const term = model.log[index - 1]?.term ?? 0;
      storage.createSnapshot({ index, term, membership, sizeBytes: 0 }, new Uint8Array(0));
      model.compacted = index;
      return;
    }
    case "read": {
      const low = 1 + pick(last + 1, op.low);
      const high = Math.min(last + 1, low + op.span);
      const expected = low <= model.compacted ? undefined : limitSizeBytes(model.log.slice(low - 1, high - 1), op.maxBytes);
      expect(log.entries(low, high, op.maxBytes)).toEqual(expected);
      expect(log.term(low)).toBe(low < model.compacted ? undefined : (model.log[low - 1]?.term ?? (low === 0 ? 0 : undefined)));
    }
  }
}

describe("RaftLog against an array model", () => {
  it("appends, truncations, writes in flight, commits and compaction keep reads equal to the model", () => {
    fc.assert(
      fc.property(fc.array(operation, { minLength: 20, maxLength: 80 }), (operations) => {
        const storage = new MemoryStorage({ membership });
        const log = new RaftLog(storage);
        const model: Model = { log: [], term: 0, compacted: 0, writes: [] };
        for (const op of operations) run(op, log, storage, model);
        expect(log.lastIndex()).toBe(model.log.length);
        expect(log.firstIndex()).toBe(model.compacted + 1);
        // Once every write has landed and the rest is written too, all of the model is durable.
        run({ kind: "handOut" }, log, storage, model);
        while (model.writes.length > 0) run({ kind: "land" }, log, storage, model);
        expect(log.persistedLastIndex()).toBe(model.log.length);
        expect(storage.lastIndex()).toBe(model.log.length);
        for (let index = model.compacted + 1; index <= model.log.length; index++) expect(storage.term(index)).toBe(model.log[index - 1]?.term);
      }),
      { numRuns: 300 },
    );
  });
});
