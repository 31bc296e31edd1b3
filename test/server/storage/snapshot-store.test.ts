import fc from "fast-check";
import { readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { KvError } from "../../../src/errors.js";
import type { Membership, SnapshotMetadata } from "../../../src/raft/types.js";
import { SnapshotStore, type SnapshotFile } from "../../../src/server/storage/snapshot-store.js";
import { createTemporaryDirectory, removeTemporaryDirectories } from "./temporary-directories.js";

const MEMBERSHIP: Membership = {
  voters: ["n1", "n2", "n3"],
  learners: [],
  addresses: { n1: "127.0.0.1:7001", n2: "127.0.0.1:7002", n3: "127.0.0.1:7003" },
};

afterEach(removeTemporaryDirectories);

function pattern(length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, offset) => (offset * 251 + seed * 17) % 256);
}

async function* chunksOf(data: Uint8Array, chunkBytes: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += chunkBytes) yield data.subarray(offset, offset + chunkBytes);
}

async function readAll(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return new Uint8Array(Buffer.concat(parts));
}

async function saveSnapshot(store: SnapshotStore, index: number, data: Uint8Array, term = 1): Promise<SnapshotFile> {
  return store.save({ index, term, membership: MEMBERSHIP }, chunksOf(data, 1000));
}

async function expectCorrupt(promise: Promise<unknown>, ...messageParts: string[]): Promise<void> {
  const error: unknown = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(KvError);
  expect((error as KvError).code).toBe("CORRUPT");
  for (const part of messageParts) expect((error as KvError).message).toContain(part);
}

async function flipByte(path: string, offset: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[offset]! ^= 0x20;
  await writeFile(path, bytes);
}

describe("save and latest", () => {
  test("a saved snapshot is found, verified and read back whole and by chunks", async () => {
    const store = await SnapshotStore.open(await createTemporaryDirectory());
    const data = pattern(100_000, 1);
    const saved = await saveSnapshot(store, 42, data, 3);
    const expected: SnapshotMetadata = { index: 42, term: 3, membership: MEMBERSHIP, sizeBytes: data.length };
    expect(saved.metadata).toEqual(expected);
    const latest = await store.latest();
    expect(latest?.metadata).toEqual(expected);
    expect(latest?.path).toBe(saved.path);
    expect(await readAll(latest!.data())).toEqual(data);
    expect(latest!.readChunkSync(0, 10)).toEqual(data.subarray(0, 10));
    expect(latest!.readChunkSync(99_990, 64 * 1024)).toEqual(data.subarray(99_990));
    expect(latest!.readChunkSync(data.length, 10)).toHaveLength(0);
  });

  test("an empty directory has no snapshot; an empty snapshot is valid", async () => {
    const store = await SnapshotStore.open(await createTemporaryDirectory());
    expect(await store.latest()).toBeNull();
    await saveSnapshot(store, 1, new Uint8Array(0));
    const latest = await store.latest();
    expect(latest?.metadata.sizeBytes).toBe(0);
    expect(await readAll(latest!.data())).toEqual(new Uint8Array(0));
  });

  test("the newest by index wins, and only `keep` snapshots are retained", async () => {
    const directory = await createTemporaryDirectory();
    const store = await SnapshotStore.open(directory, { keep: 2 });
    for (const index of [5, 300, 17, 4096]) await saveSnapshot(store, index, pattern(10, index));
    const names = (await readdir(directory)).sort();
    expect(names).toHaveLength(2);
    expect((await store.latest())?.metadata.index).toBe(4096);
    const reopened = await SnapshotStore.open(directory, { keep: 2 });
    expect((await reopened.latest())?.metadata.index).toBe(4096);
    expect(names[0]).toContain((300).toString(16));
  });

  test("temporary leftovers are ignored and removed", async () => {
    const directory = await createTemporaryDirectory();
    const store = await SnapshotStore.open(directory);
    await saveSnapshot(store, 10, pattern(50, 2));
    const leftover = join(directory, "snapshot-00000000000000ff-0000000000000001.snap.tmp-abcdef");
    await writeFile(leftover, "half a snapshot");
    const latest = await store.latest();
    expect(latest?.metadata.index).toBe(10);
    expect(await readdir(directory)).toEqual([latest!.path.split("/").at(-1)]);
  });

  test("a failing data stream leaves no file behind", async () => {
    const directory = await createTemporaryDirectory();
    const store = await SnapshotStore.open(directory);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield pattern(10, 3);
      throw new Error("state machine went away");
    }
    await expect(store.save({ index: 7, term: 1, membership: MEMBERSHIP }, failing())).rejects.toThrow("went away");
    expect(await readdir(directory)).toEqual([]);
  });

  test("property: any data in any chunking round-trips", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 8 }), fc.nat(1000), async (chunks, index) => {
        const store = await SnapshotStore.open(await createTemporaryDirectory());
        const data = new Uint8Array(Buffer.concat(chunks));
        async function* source(): AsyncGenerator<Uint8Array> {
          yield* chunks;
        }
        await store.save({ index, term: 2, membership: MEMBERSHIP }, source());
        const latest = await store.latest();
        expect(latest?.metadata).toEqual({ index, term: 2, membership: MEMBERSHIP, sizeBytes: data.length });
        expect(await readAll(latest!.data())).toEqual(data);
      }),
      { numRuns: 30 },
    );
  });
});

describe("corruption is reported, never served or skipped", () => {
  async function storeWithTwoSnapshots(): Promise<{ store: SnapshotStore; newest: SnapshotFile }> {
    const store = await SnapshotStore.open(await createTemporaryDirectory());
    await saveSnapshot(store, 10, pattern(5000, 1));
    const newest = await saveSnapshot(store, 20, pattern(5000, 2));
    return { store, newest };
  }

  test("a truncated newest snapshot -> CORRUPT naming the file and the offset", async () => {
    const { store, newest } = await storeWithTwoSnapshots();
    const { size } = await stat(newest.path);
    await truncate(newest.path, size - 100);
    await expectCorrupt(store.latest(), newest.path, `at offset ${size - 100}`);
  });

  test("a file cut inside the header -> CORRUPT", async () => {
    const { store, newest } = await storeWithTwoSnapshots();
    await truncate(newest.path, 11);
    await expectCorrupt(store.latest(), newest.path, "at offset 11");
  });

  test.each([
    ["the magic", 0],
    ["the metadata", 20],
    ["the data", 3000],
    ["the trailer", -1],
  ])("a flipped byte in %s -> CORRUPT naming the file", async (_, offset) => {
    const { store, newest } = await storeWithTwoSnapshots();
    const { size } = await stat(newest.path);
    await flipByte(newest.path, offset >= 0 ? offset : size + offset);
    await expectCorrupt(store.latest(), newest.path, "offset");
  });

  test("data() verifies while streaming and throws CORRUPT at the end", async () => {
    const { newest } = await storeWithTwoSnapshots();
    const { size } = await stat(newest.path);
    await flipByte(newest.path, size - 10);
    await expectCorrupt(readAll(newest.data()), newest.path, "data checksum mismatch");
  });
});

describe("receiving from the leader", () => {
  const data = pattern(10_000, 9);
  const metadata: SnapshotMetadata = { index: 77, term: 4, membership: MEMBERSHIP, sizeBytes: data.length };

  test("chunk by chunk then finish -> readable and verified", async () => {
    const directory = await createTemporaryDirectory();
    const store = await SnapshotStore.open(directory);
    const receiver = store.beginReceive(metadata);
    for (let offset = 0; offset < data.length; offset += 3000) {
      await receiver.write(offset, data.subarray(offset, offset + 3000));
    }
    const received = await receiver.finish();
    expect(received.metadata).toEqual(metadata);
    const latest = await store.latest();
    expect(latest?.metadata).toEqual(metadata);
    expect(await readAll(latest!.data())).toEqual(data);
    expect(await readdir(directory)).toHaveLength(1);
  });

  test("a chunk out of order, past the end, or an early finish is refused", async () => {
    const store = await SnapshotStore.open(await createTemporaryDirectory());
    const receiver = store.beginReceive(metadata);
    await receiver.write(0, data.subarray(0, 100));
    await expect(receiver.write(500, data.subarray(500, 600))).rejects.toMatchObject({ code: "INVALID" });
    await expect(receiver.write(100, new Uint8Array(data.length))).rejects.toMatchObject({ code: "TOO_LARGE" });
    await expect(receiver.finish()).rejects.toMatchObject({ code: "INVALID" });
    // The receiver is still usable from where it was.
    await receiver.write(100, data.subarray(100));
    expect(await readAll((await receiver.finish()).data())).toEqual(data);
  });

  test("abort removes the partial file, and a receive in progress survives latest()", async () => {
    const directory = await createTemporaryDirectory();
    const store = await SnapshotStore.open(directory);
    const receiver = store.beginReceive(metadata);
    await receiver.write(0, data.subarray(0, 100));
    expect(await store.latest()).toBeNull();
    expect(await readdir(directory)).toHaveLength(1);
    await receiver.abort();
    expect(await readdir(directory)).toEqual([]);
  });
});
