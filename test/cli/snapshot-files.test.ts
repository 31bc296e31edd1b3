import { mkdir, mkdtemp, open, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { restoreSnapshot } from "../../src/cli/snapshot-files.js";
import { KvError } from "../../src/errors.js";
import { DurableLog } from "../../src/server/storage/durable-log.js";
import { readHeader, snapshotFileName } from "../../src/server/storage/snapshot-format.js";
import { SnapshotStore } from "../../src/server/storage/snapshot-store.js";

const MEMBERSHIP = { voters: ["n1", "n2", "n3"], learners: [], addresses: { n1: "127.0.0.1:7001", n2: "127.0.0.1:7002", n3: "127.0.0.1:7003" } };
const DATA = Buffer.from("the engine's snapshot bytes ".repeat(100));

/** A snapshot file as a node writes it, at index 120 of term 4. */
async function writtenSnapshot(directory: string): Promise<string> {
  const store = await SnapshotStore.open(join(directory, "source"));
  const file = await store.save({ index: 120, term: 4, membership: MEMBERSHIP }, (async function* () {
    yield DATA;
  })());
  return file.path;
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kv-restore-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function freshDirectory(): Promise<string> {
  return mkdtemp(join(root, "case-"));
}

async function codeOf(promise: Promise<unknown>): Promise<string | null> {
  try {
    await promise;
    return null;
  } catch (error) {
    return error instanceof KvError ? error.code : String(error);
  }
}

describe("kv snapshot restore", () => {
  test("places the verified file under its own name and starts the log right after it", async () => {
    const directory = await freshDirectory();
    const restored = await restoreSnapshot(await writtenSnapshot(directory), join(directory, "data"));
    expect(restored).toMatchObject({ index: 120, term: 4, voters: ["n1", "n2", "n3"] });
    expect(await readdir(join(directory, "data", "snapshots"))).toEqual([snapshotFileName(120, 4)]);
    const log = await DurableLog.open(join(directory, "data", "log"), { fsync: "always" });
    try {
      const loaded = await log.load();
      expect(loaded).toMatchObject({ snapshotIndex: 120, snapshotTerm: 4, entries: [], hardState: { term: 4, vote: null, commit: 120 } });
    } finally {
      await log.close();
    }
  });

  test("--peers replaces the membership; the data and its checksum stay", async () => {
    const directory = await freshDirectory();
    const restored = await restoreSnapshot(await writtenSnapshot(directory), join(directory, "data"), "r1=127.0.0.1:7101");
    expect(restored.voters).toEqual(["r1"]);
    const latest = await (await SnapshotStore.open(join(directory, "data", "snapshots"))).latest();
    expect(latest?.metadata).toMatchObject({ index: 120, term: 4, sizeBytes: DATA.length, membership: { voters: ["r1"], addresses: { r1: "127.0.0.1:7101" } } });
  });

  test("a damaged file is CORRUPT and leaves neither snapshot nor log behind", async () => {
    const directory = await freshDirectory();
    const path = await writtenSnapshot(directory);
    const handle = await open(path, "r+");
    try {
      const { dataOffset } = await readHeader(handle, path);
      await handle.write(Buffer.from("X"), 0, 1, dataOffset + 10);
    } finally {
      await handle.close();
    }
    expect(await codeOf(restoreSnapshot(path, join(directory, "data")))).toBe("CORRUPT");
    expect(await readdir(join(directory, "data"))).toEqual([]);
  });

  test("a data directory that is not empty is refused and left untouched", async () => {
    const directory = await freshDirectory();
    const path = await writtenSnapshot(directory);
    await mkdir(join(directory, "data"));
    await writeFile(join(directory, "data", "something"), "live data");
    expect(await codeOf(restoreSnapshot(path, join(directory, "data")))).toBe("INVALID");
    expect(await readdir(join(directory, "data"))).toEqual(["something"]);
  });

  test("a missing file is NOT_FOUND", async () => {
    const directory = await freshDirectory();
    expect(await codeOf(restoreSnapshot(join(directory, "absent.snap"), join(directory, "data")))).toBe("NOT_FOUND");
  });
});
