import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, test } from "vitest";
import { MemoryStorage } from "../../src/raft/memory-storage.js";
import type { LogEntry, Membership } from "../../src/raft/types.js";
import { SNAPSHOT_RETRY_FIRST_DELAY_MS, SnapshotKeeper, type SnapshotSource } from "../../src/server/snapshot-keeper.js";
import { DurableLog } from "../../src/server/storage/durable-log.js";
import { SnapshotStore } from "../../src/server/storage/snapshot-store.js";
import { createTemporaryDirectory, removeTemporaryDirectories } from "./storage/temporary-directories.js";

const MEMBERSHIP: Membership = { voters: ["n1"], learners: [], addresses: { n1: "127.0.0.1:1" } };
const ENTRIES: LogEntry[] = [1, 2, 3].map((index) => ({ index, term: 1, kind: "noop" }));
const logs: DurableLog[] = [];

afterEach(async () => {
  for (const log of logs.splice(0)) await log.close();
  await removeTemporaryDirectories();
});

async function keeperIn(directory: string): Promise<{ keeper: SnapshotKeeper; snapshotDirectory: string; written: number[] }> {
  const snapshotDirectory = join(directory, "snapshots");
  const store = await SnapshotStore.open(snapshotDirectory);
  const log = await DurableLog.open(join(directory, "log"), { fsync: "always" });
  logs.push(log);
  await log.append(ENTRIES);
  const storage = new MemoryStorage({ membership: MEMBERSHIP, entries: ENTRIES });
  const written: number[] = [];
  const keeper = new SnapshotKeeper(store, storage, log, pino({ level: "silent" }), null, Date.now(), (bytes) => written.push(bytes));
  return { keeper, snapshotDirectory, written };
}

/** A source whose data fails like a full disk after its first chunk; counts the attempts. */
function failingSource(attempts: { count: number }): SnapshotSource {
  async function* data(): AsyncGenerator<Uint8Array> {
    attempts.count++;
    yield new Uint8Array(100);
    throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  }
  return { index: 3, term: 1, membership: MEMBERSHIP, data: data() };
}

async function* bytes(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("SnapshotKeeper on a failing disk", () => {
  test("a failed snapshot says where the disk is full and leaves no temporary file, even one an earlier failure left", async () => {
    const { keeper, snapshotDirectory } = await keeperIn(await createTemporaryDirectory());
    await writeFile(join(snapshotDirectory, "snapshot-0000000000000002-0000000000000001.snap.tmp-abcdef"), "half a snapshot");
    await expect(keeper.take(failingSource({ count: 0 }), Date.now())).rejects.toMatchObject({
      code: "NO_SPACE",
      message: expect.stringContaining(`no space left on device in ${snapshotDirectory}: could not write a snapshot`),
    });
    expect(await readdir(snapshotDirectory)).toEqual([]);
  });

  test("background snapshots back off after a failure (not one try per tick) and a success resets the backoff", async () => {
    const { keeper, snapshotDirectory, written } = await keeperIn(await createTemporaryDirectory());
    const attempts = { count: 0 };
    const started = Date.now();
    keeper.takeInBackground(failingSource(attempts), started);
    await waitFor(() => !keeper.inProgress && !keeper.isRetryDue(Date.now()));
    // Every tick of the next second finds the retry not due: no new attempt, no new file.
    for (let tick = 0; tick < 20; tick++) {
      if (keeper.isRetryDue(Date.now())) break;
      keeper.takeInBackground(failingSource(attempts), Date.now());
    }
    expect(attempts.count).toBe(1);
    expect(keeper.isRetryDue(started + SNAPSHOT_RETRY_FIRST_DELAY_MS - 1)).toBe(false);

    // The second failure pauses twice as long.
    const retryAt = Date.now() + SNAPSHOT_RETRY_FIRST_DELAY_MS;
    keeper.takeInBackground(failingSource(attempts), retryAt);
    await waitFor(() => attempts.count === 2 && !keeper.inProgress);
    expect(keeper.isRetryDue(Date.now() + SNAPSHOT_RETRY_FIRST_DELAY_MS + 100)).toBe(false);
    expect(keeper.isRetryDue(Date.now() + 2 * SNAPSHOT_RETRY_FIRST_DELAY_MS + 100)).toBe(true);

    await keeper.take({ index: 3, term: 1, membership: MEMBERSHIP, data: bytes(new Uint8Array(64)) }, Date.now());
    expect(keeper.isRetryDue(Date.now())).toBe(true);
    expect(keeper.lastSnapshotIndex).toBe(3);
    expect(written).toEqual([64]);
    expect((await readdir(snapshotDirectory)).filter((name) => name.includes(".tmp-"))).toEqual([]);
  });
});

describe("SnapshotKeeper installing a snapshot from the leader", () => {
  test("entries after the snapshot that the log holds in the snapshot's term stay durable, so a restart keeps what this node acknowledged", async () => {
    const directory = await createTemporaryDirectory();
    const { keeper } = await keeperIn(directory);
    const metadata = { index: 2, term: 1, membership: MEMBERSHIP, sizeBytes: 4 };
    await keeper.receiveChunk({ metadata, offset: 0, data: new Uint8Array([1, 2, 3, 4]), last: true });
    await keeper.install(metadata, { term: 1, vote: null, commit: 2 });
    const log = logs.splice(0)[0];
    if (log === undefined) throw new Error("no log");
    await log.close();
    const reopened = await DurableLog.open(join(directory, "log"), { fsync: "always" });
    logs.push(reopened);
    expect(await reopened.load()).toMatchObject({ snapshotIndex: 2, snapshotTerm: 1, entries: [ENTRIES[2]] });
  });

  test("a snapshot the log does not match replaces every entry", async () => {
    const directory = await createTemporaryDirectory();
    const { keeper } = await keeperIn(directory);
    const metadata = { index: 2, term: 2, membership: MEMBERSHIP, sizeBytes: 4 };
    await keeper.receiveChunk({ metadata, offset: 0, data: new Uint8Array([1, 2, 3, 4]), last: true });
    await keeper.install(metadata, { term: 2, vote: null, commit: 2 });
    const log = logs[0];
    if (log === undefined) throw new Error("no log");
    expect(await log.load()).toMatchObject({ snapshotIndex: 2, snapshotTerm: 2, entries: [] });
  });
});
