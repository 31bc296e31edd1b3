import { readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { Level } from "level";
import { afterEach, describe, expect, test } from "vitest";
import { KvError } from "../../../src/errors.js";
import type { HardState, LogEntry, Membership } from "../../../src/raft/types.js";
import { DurableLog, type DurableLogOptions } from "../../../src/server/storage/durable-log.js";
import { entryKey, HARD_STATE_KEY, NO_HARD_STATE } from "../../../src/server/storage/log-records.js";
import { sealRecord } from "../../../src/server/storage/record-codec.js";
import { InvariantViolation } from "../../../src/util/assert.js";
import { createTemporaryDirectory, removeTemporaryDirectories } from "./temporary-directories.js";

const ALWAYS: DurableLogOptions = { fsync: "always" };
const MEMBERSHIP: Membership = {
  voters: ["n1", "n2", "n3"],
  learners: ["n4"],
  addresses: { n1: "127.0.0.1:7001", n2: "127.0.0.1:7002", n3: "127.0.0.1:7003", n4: "127.0.0.1:7004" },
};

function command(index: number, term: number, bytes = 16): LogEntry {
  const data = new Uint8Array(bytes).map((_, offset) => (index * 31 + offset) % 256);
  return { index, term, kind: "command", data };
}

function commands(fromIndex: number, toIndex: number, term: number): LogEntry[] {
  const entries: LogEntry[] = [];
  for (let index = fromIndex; index <= toIndex; index++) entries.push(command(index, term));
  return entries;
}

function hardState(term: number, commit: number, vote: string | null = "n1"): HardState {
  return { term, vote, commit };
}

/** Closes `log`, reopens the directory and loads it: what a restarted node would see. */
async function reopenAndLoad(log: DurableLog, directory: string, options = ALWAYS) {
  await log.close();
  const reopened = await DurableLog.open(directory, options);
  const loaded = await reopened.load();
  return { reopened, loaded };
}

async function expectCorrupt(promise: Promise<unknown>, messagePart: string): Promise<void> {
  const error: unknown = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(KvError);
  expect((error as KvError).code).toBe("CORRUPT");
  expect((error as KvError).message).toContain(messagePart);
}

afterEach(removeTemporaryDirectories);

describe("DurableLog round trip", () => {
  test("every entry kind and the hard state survive a reopen", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    const entries: LogEntry[] = [
      { index: 1, term: 1, kind: "noop" },
      command(2, 1, 300),
      { index: 3, term: 2, kind: "membership", membership: MEMBERSHIP },
      { index: 4, term: 2, kind: "command", data: new Uint8Array(0) },
    ];
    await log.append(entries, hardState(2, 3, null));
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded).toEqual({ hardState: hardState(2, 3, null), snapshotIndex: 0, snapshotTerm: 0, entries });
    await reopened.close();
  });

  test("an empty directory loads as an empty log", async () => {
    const log = await DurableLog.open(await createTemporaryDirectory(), ALWAYS);
    expect(await log.load()).toEqual({ hardState: null, snapshotIndex: 0, snapshotTerm: 0, entries: [] });
    await log.close();
  });

  test("a hard state alone is persisted and replaced", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append([], hardState(1, 0, "n2"));
    await log.append([], hardState(3, 0, null));
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded.hardState).toEqual(hardState(3, 0, null));
    expect(loaded.entries).toEqual([]);
    await reopened.close();
  });

  test("an entry at an existing index replaces it and deletes everything after it", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 5, 1));
    await log.append(commands(3, 3, 2));
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded.entries).toEqual([...commands(1, 2, 1), command(3, 2)]);
    // The reopened log knows its bounds: the next append continues at 4.
    await reopened.append(commands(4, 4, 2));
    expect((await reopened.load()).entries.map((entry) => entry.index)).toEqual([1, 2, 3, 4]);
    await reopened.close();
  });

  test("compact deletes entries up to the index and records the snapshot point", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 10, 1), hardState(1, 10));
    await log.compact(6, 1);
    await log.compact(4, 1); // already compacted past it: nothing to do
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded).toEqual({ hardState: hardState(1, 10), snapshotIndex: 6, snapshotTerm: 1, entries: commands(7, 10, 1) });
    await reopened.compact(10, 1);
    await reopened.append(commands(11, 11, 2));
    expect(await reopened.load()).toMatchObject({ snapshotIndex: 10, entries: [command(11, 2)] });
    await reopened.close();
  });

  test("resetToSnapshot drops every entry and records the point and hard state", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 5, 1), hardState(1, 2));
    await log.resetToSnapshot(100, 3, hardState(3, 100, "n2"));
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded).toEqual({ hardState: hardState(3, 100, "n2"), snapshotIndex: 100, snapshotTerm: 3, entries: [] });
    await reopened.append(commands(101, 102, 3));
    expect((await reopened.load()).entries).toEqual(commands(101, 102, 3));
    await reopened.close();
  });

  test("resetToSnapshot keeping the suffix drops only the entries the snapshot covers", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 8, 2), hardState(2, 3));
    await log.resetToSnapshot(5, 2, hardState(2, 5), true);
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded).toEqual({ hardState: hardState(2, 5), snapshotIndex: 5, snapshotTerm: 2, entries: commands(6, 8, 2) });
    await reopened.append(commands(9, 9, 2));
    expect((await reopened.load()).entries).toEqual(commands(6, 9, 2));
    await reopened.close();
  });

  test("appends that leave a gap or rewrite the snapshot are invariant violations", async () => {
    const log = await DurableLog.open(await createTemporaryDirectory(), ALWAYS);
    await log.append(commands(1, 3, 1));
    expect(() => log.append(commands(5, 5, 1))).toThrow(InvariantViolation);
    expect(() => log.append([command(4, 1), command(6, 1)])).toThrow(InvariantViolation);
    await log.compact(2, 1);
    expect(() => log.append(commands(2, 2, 1))).toThrow(InvariantViolation);
    expect(() => log.compact(9, 1)).toThrow(InvariantViolation);
    await log.close();
  });

  test("a closed log refuses appends with UNAVAILABLE", async () => {
    const log = await DurableLog.open(await createTemporaryDirectory(), ALWAYS);
    await log.close();
    await expect(log.append(commands(1, 1, 1))).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await log.close(); // idempotent
  });
});

/**
 * Reference model: the log as an array after the snapshot point. Operations are generated as
 * fractions of the current bounds so that every one of them is valid whatever came before.
 */
type ModelOperation =
  | { readonly type: "append"; readonly at: number; readonly count: number; readonly withHardState: boolean }
  | { readonly type: "compact"; readonly at: number }
  | { readonly type: "reset"; readonly ahead: number };

const modelOperation: fc.Arbitrary<ModelOperation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ type: fc.constant("append" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), count: fc.integer({ min: 1, max: 6 }), withHardState: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("compact" as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("reset" as const), ahead: fc.integer({ min: 0, max: 5 }) }) },
);

class LogModel {
  snapshotIndex = 0;
  snapshotTerm = 0;
  term = 1;
  /** Every batch writes the hard state record: the zero hard state until a call gives one. */
  hardState: HardState = NO_HARD_STATE;
  entries: LogEntry[] = [];

  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  /** Applies the operation to the model and returns the same call for the real log. */
  apply(operation: ModelOperation): (log: DurableLog) => Promise<void> {
    this.term++;
    if (operation.type === "append") return this.append(operation.at, operation.count, operation.withHardState);
    if (operation.type === "compact") return this.compact(operation.at);
    const { term } = this;
    const index = this.lastIndex + operation.ahead;
    const state = hardState(term, index);
    Object.assign(this, { snapshotIndex: index, snapshotTerm: term, hardState: state, entries: [] });
    return (log) => log.resetToSnapshot(index, term, state);
  }

  private append(at: number, count: number, withHardState: boolean): (log: DurableLog) => Promise<void> {
    const firstIndex = this.snapshotIndex + 1 + Math.floor(at * this.entries.length);
    const entries = commands(firstIndex, firstIndex + count - 1, this.term);
    this.entries = [...this.entries.slice(0, firstIndex - this.snapshotIndex - 1), ...entries];
    const state = withHardState ? hardState(this.term, firstIndex - 1) : undefined;
    if (state !== undefined) this.hardState = state;
    return (log) => log.append(entries, state);
  }

  private compact(at: number): (log: DurableLog) => Promise<void> {
    const index = this.snapshotIndex + Math.floor(at * this.entries.length);
    const term = this.entries[index - this.snapshotIndex - 1]?.term ?? this.snapshotTerm;
    if (index > this.snapshotIndex) {
      this.entries = this.entries.slice(index - this.snapshotIndex);
      Object.assign(this, { snapshotIndex: index, snapshotTerm: term });
    }
    return (log) => log.compact(index, term);
  }
}

test("property: any sequence of appends, compactions and resets loads back like the model", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(modelOperation, { minLength: 1, maxLength: 12 }), fc.boolean(), async (operations, concurrent) => {
      const directory = await createTemporaryDirectory();
      const log = await DurableLog.open(directory, { fsync: "interval", maxBatchEntries: 4 });
      const model = new LogModel();
      const calls = operations.map((operation) => model.apply(operation));
      // Concurrent calls exercise group commit: they must land exactly as if made one by one.
      if (concurrent) await Promise.all(calls.map((call) => call(log)));
      else for (const call of calls) await call(log);
      const { reopened, loaded } = await reopenAndLoad(log, directory);
      await reopened.close();
      expect(loaded).toEqual({
        hardState: model.hardState,
        snapshotIndex: model.snapshotIndex,
        snapshotTerm: model.snapshotTerm,
        entries: model.entries,
      });
    }),
    { numRuns: 25 },
  );
});

describe("group commit", () => {
  test("200 concurrent appends share far fewer batches and syncs, and all load back in order", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    const calls = 200;
    await Promise.all(commands(1, calls, 1).map((entry) => log.append([entry], hardState(1, entry.index - 1))));
    const stats = log.stats();
    expect(stats.calls).toBe(calls);
    expect(stats.entries).toBe(calls);
    expect(stats.batches).toBeLessThan(calls / 4);
    expect(stats.syncs).toBe(stats.batches);
    expect(stats.averageCallsPerBatch).toBeCloseTo(calls / stats.batches);
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded.entries).toEqual(commands(1, calls, 1));
    expect(loaded.hardState).toEqual(hardState(1, calls - 1));
    await reopened.close();
  });

  test("a batch holds at most maxBatchEntries, yet one larger call is never split", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, { fsync: "always", maxBatchEntries: 10 });
    const single = commands(1, 100, 1).map((entry) => log.append([entry]));
    const large = log.append(commands(101, 125, 1));
    await Promise.all([...single, large]);
    const stats = log.stats();
    // 100 single entries need at least 10 batches; the 25-entry call needs its own.
    expect(stats.batches).toBeGreaterThanOrEqual(11);
    expect(stats.batches).toBeLessThan(stats.calls);
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded.entries).toEqual(commands(1, 125, 1));
    await reopened.close();
  });

  test("past maxPendingEntries calls are refused with BUSY and change nothing", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, { fsync: "always", maxPendingEntries: 5 });
    const outcomes = await Promise.allSettled(commands(1, 10, 1).map((entry) => log.append([entry])));
    const refused = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(outcomes.slice(0, 5).every((outcome) => outcome.status === "fulfilled")).toBe(true);
    expect(refused).toHaveLength(5);
    for (const outcome of refused) expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: "BUSY" });
    // A refused call planned nothing: the log continues at 6.
    await log.append(commands(6, 6, 1));
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded.entries).toEqual(commands(1, 6, 1));
    await reopened.close();
  });

  test("fsync interval: writes resolve unsynced, the background sync and close make them durable", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, { fsync: "interval", fsyncIntervalMs: 5 });
    await Promise.all(commands(1, 20, 1).map((entry) => log.append([entry])));
    expect(log.stats().batches).toBeGreaterThan(0);
    const deadline = Date.now() + 10_000;
    while (log.stats().syncs === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(log.stats().syncs).toBeGreaterThan(0);
    await log.append(commands(21, 21, 1));
    const { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(log.stats().syncs).toBeGreaterThanOrEqual(2); // close synced the last write
    expect(loaded.entries).toEqual(commands(1, 21, 1));
    await reopened.close();
  });
});

describe("corruption is detected and named", () => {
  async function corruptDatabase(directory: string, edit: (db: Level<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
    const db = new Level<Uint8Array, Uint8Array>(directory, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    await edit(db);
    await db.close();
  }

  async function logWithTenEntries(): Promise<string> {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 10, 1), hardState(1, 5));
    await log.close();
    return directory;
  }

  test.each([0, 5, 12])("a flipped byte at value offset %i of entry 3 -> CORRUPT naming index 3", async (offset) => {
    const directory = await logWithTenEntries();
    await corruptDatabase(directory, async (db) => {
      const value = (await db.get(entryKey(3)))!;
      const damaged = Uint8Array.from(value);
      damaged[offset]! ^= 0x40;
      await db.put(entryKey(3), damaged);
    });
    const log = await DurableLog.open(directory, ALWAYS);
    await expectCorrupt(log.load(), "log entry 3");
    await log.close();
  });

  test("a missing entry -> CORRUPT naming the gap", async () => {
    const directory = await logWithTenEntries();
    await corruptDatabase(directory, (db) => db.del(entryKey(4)));
    const log = await DurableLog.open(directory, ALWAYS);
    await expectCorrupt(log.load(), "log entry 4: missing");
    await log.close();
  });

  test("a record stored under another index -> CORRUPT", async () => {
    const directory = await logWithTenEntries();
    await corruptDatabase(directory, async (db) => db.put(entryKey(7), (await db.get(entryKey(6)))!));
    const log = await DurableLog.open(directory, ALWAYS);
    await expectCorrupt(log.load(), "log entry 7: record holds index 6");
    await log.close();
  });

  test("a damaged hard state -> CORRUPT naming it", async () => {
    const directory = await logWithTenEntries();
    await corruptDatabase(directory, async (db) => {
      const damaged = Uint8Array.from((await db.get(HARD_STATE_KEY))!);
      damaged[damaged.length - 1]! ^= 0x01;
      await db.put(HARD_STATE_KEY, damaged);
    });
    await expectCorrupt(DurableLog.open(directory, ALWAYS), "log hard state");
  });
});

test("figures: average synced batch latency for 1, 100 and 1000 entries of 256 bytes", async () => {
  const log = await DurableLog.open(await createTemporaryDirectory(), { fsync: "always", maxBatchEntries: 1000 });
  let nextIndex = 1;
  const figures: string[] = [];
  const plan = [[1, 50], [100, 20], [1000, 10]] as const;
  for (const [size, rounds] of plan) {
    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      const entries: LogEntry[] = [];
      for (let offset = 0; offset < size; offset++) entries.push(command(nextIndex++, 1, 256));
      await log.append(entries);
    }
    figures.push(`${size} entries: ${((performance.now() - started) / rounds).toFixed(2)} ms`);
  }
  console.log(`synced batch latency (average): ${figures.join(", ")}`);
  const loaded = await log.load();
  expect(loaded.entries).toHaveLength(nextIndex - 1);
  expect(log.stats().syncs).toBe(plan.reduce((sum, [, rounds]) => sum + rounds, 0));
  await log.close();
});

describe("the watermark: a log that ends before its last batch's last index refuses to open", () => {
  async function logWithTenEntries(directory: string): Promise<void> {
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 10, 1), hardState(1, 5));
    await log.close();
  }

  async function editDatabase(directory: string, edit: (db: Level<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
    const db = new Level<Uint8Array, Uint8Array>(directory, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    await edit(db);
    await db.close();
  }

  test("dropped tail entries (as a damaged table file would lose them) -> CORRUPT naming the indexes", async () => {
    const directory = await createTemporaryDirectory();
    await logWithTenEntries(directory);
    await editDatabase(directory, (db) => db.batch([{ type: "del", key: entryKey(9) }, { type: "del", key: entryKey(10) }]));
    await expectCorrupt(DurableLog.open(directory, ALWAYS), `log ${directory}: index 10 was written (the watermark) but the log ends at 8: entries 9..10 are missing`);
  });

  test("every kind of batch keeps the watermark: appends that truncate, compaction, snapshot reset", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 10, 1));
    await log.append(commands(4, 5, 2), hardState(2, 3));
    await log.compact(3, 1);
    let { reopened, loaded } = await reopenAndLoad(log, directory);
    expect(loaded).toMatchObject({ snapshotIndex: 3, hardState: hardState(2, 3), entries: commands(4, 5, 2) });
    await reopened.resetToSnapshot(50, 3, hardState(3, 50));
    ({ reopened, loaded } = await reopenAndLoad(reopened, directory));
    expect(loaded).toMatchObject({ snapshotIndex: 50, hardState: hardState(3, 50), entries: [] });
    await reopened.close();
  });

  test("a hard state record from before the watermark (three fields) opens, and the next batch adds it", async () => {
    const directory = await createTemporaryDirectory();
    await logWithTenEntries(directory);
    await editDatabase(directory, (db) => db.batch([{ type: "put", key: HARD_STATE_KEY, value: sealRecord([1, "n1", 5]) }, { type: "del", key: entryKey(10) }]));
    const log = await DurableLog.open(directory, ALWAYS);
    expect((await log.load()).hardState).toEqual(hardState(1, 5));
    await log.append(commands(10, 10, 1));
    await log.close();
    await editDatabase(directory, (db) => db.del(entryKey(10)));
    await expectCorrupt(DurableLog.open(directory, ALWAYS), "index 10 was written");
  });

  test("LevelDB's own log file is checked before LevelDB opens it: flipped bytes refuse the open, naming the file", async () => {
    const directory = await createTemporaryDirectory();
    await logWithTenEntries(directory);
    const logFile = (await readdir(directory)).find((name) => name.endsWith(".log"));
    expect(logFile).toBeDefined();
    const path = join(directory, logFile as string);
    const bytes = await readFile(path);
    for (let offset = bytes.length - 20; offset < bytes.length - 12; offset++) bytes[offset] = (bytes[offset] as number) ^ 0xff;
    await writeFile(path, bytes);
    await expectCorrupt(DurableLog.open(directory, ALWAYS), `LevelDB log ${path} is damaged at byte`);
  });

  test("a torn last batch (a crash mid-write, never acknowledged) opens without it", async () => {
    const directory = await createTemporaryDirectory();
    const log = await DurableLog.open(directory, ALWAYS);
    await log.append(commands(1, 10, 1), hardState(1, 5));
    await log.append(commands(11, 12, 1), hardState(1, 10));
    await log.close();
    const logFile = (await readdir(directory)).find((name) => name.endsWith(".log")) as string;
    await truncate(join(directory, logFile), (await stat(join(directory, logFile))).size - 10);
    const reopened = await DurableLog.open(directory, ALWAYS);
    expect(reopened.startupCheck.files[0]?.tornTailBytes).toBeGreaterThan(0);
    expect(await reopened.load()).toMatchObject({ hardState: hardState(1, 5), entries: commands(1, 10, 1) });
    await reopened.close();
  });
});
