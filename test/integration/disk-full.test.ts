import { execFileSync } from "node:child_process";
import { mkdtemp, open, readdir, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { requests } from "../../src/client/requests.js";
import { KvClient, KvNoSpaceError } from "../../src/index.js";
import { KvError } from "../../src/errors.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster, type Cluster } from "./harness.js";
import { TestClient } from "./test-client.js";
import { expectAllPresent } from "./workload.js";

/**
 * Disk full on a real tmpfs (the tests run as root, as CI does): while free space is below
 * `--min-free-disk-bytes` the nodes serve reads, refuse writes with NO_SPACE and stay up; they
 * take writes again by themselves once space returns. A disk filled behind the node's back
 * stops it with a clear message instead of letting LevelDB go on after ENOSPC.
 */

const TMPFS_BYTES = 64 * 1024 * 1024;
const RESERVE_BYTES = 16 * 1024 * 1024;
const DEADLINE_MS = 30_000;
/** How long the cluster is watched while full: several guard refreshes and snapshot ticks. */
const FULL_WATCH_MS = 3000;
const WRITES = 50;
const FILL_CHUNK_BYTES = 1024 * 1024;
/** Writes tried on a full disk: small records fill the pages LevelDB's files already hold before one fails. */
const MAX_WRITES_ON_FULL_DISK = 5000;

let mountPoint: string | null = null;
let cluster: Cluster | null = null;

// Runs before the harness's own afterEach (hooks unwind in reverse): the nodes must be gone
// before the tmpfs under them can be unmounted, and it is unmounted even when the test failed.
afterEach(async (context) => {
  if (context.task.result?.state === "fail") cluster?.printLogTails();
  await cluster?.stop();
  cluster = null;
  if (mountPoint !== null) {
    unmount(mountPoint);
    await rm(mountPoint, { recursive: true, force: true });
    mountPoint = null;
  }
});

async function mountTmpfs(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "kv-disk-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_BYTES}`, "tmpfs", directory]);
  mountPoint = directory;
  return directory;
}

function unmount(directory: string): void {
  try {
    execFileSync("umount", [directory]);
  } catch {
    // Busy for a moment after a kill: detach it now; the kernel frees it once unused.
    execFileSync("umount", ["-l", directory]);
  }
}

async function freeBytes(directory: string): Promise<number> {
  const { bavail, bsize } = await statfs(directory);
  return bavail * bsize;
}

/** Writes zeros to `path` until `targetFreeBytes` are left, or until the disk is full (ENOSPC). */
async function fill(directory: string, path: string, targetFreeBytes: number): Promise<void> {
  const file = await open(path, "a");
  const chunk = Buffer.alloc(FILL_CHUNK_BYTES);
  try {
    for (let free = await freeBytes(directory); free > targetFreeBytes; free = await freeBytes(directory)) {
      const bytes = Math.min(chunk.length, free - targetFreeBytes);
      try {
        await file.write(chunk, 0, bytes);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOSPC") return;
        throw error;
      }
    }
  } finally {
    await file.close();
  }
}

async function writeKeys(client: TestClient, prefix: string, count: number): Promise<Map<string, string>> {
  const written = new Map<string, string>();
  for (let index = 0; index < count; index++) {
    const key = `${prefix}-${index}`;
    expect(await client.call(requests.set({ key, value: key }), { deadlineMs: DEADLINE_MS })).toBe(true);
    written.set(key, key);
  }
  return written;
}

async function writeError(client: TestClient, key: string): Promise<KvError | null> {
  try {
    await client.call(requests.set({ key, value: key }), { deadlineMs: DEADLINE_MS });
    return null;
  } catch (error) {
    if (error instanceof KvError) return error;
    throw error;
  }
}

async function temporarySnapshotFiles(cluster: Cluster): Promise<string[]> {
  const names = await Promise.all(cluster.nodes.map((node) => readdir(join(node.dataDirectory, "snapshots")).catch(() => [])));
  return names.flat().filter((name) => name.includes(".tmp-"));
}

describe("disk full", () => {
  test("3 nodes on one nearly full tmpfs: reads served, writes NO_SPACE (not retried), the same processes, no temp files; writes resume once space returns", async () => {
    const root = await mountTmpfs();
    cluster = await startCluster({ size: 3, dataRoot: root, nodeOptions: ["--min-free-disk-bytes", String(RESERVE_BYTES), "--snapshot-entries", "20"] });
    await cluster.waitForLeader(DEADLINE_MS, cluster.startedAt);
    const client = new TestClient(cluster.addresses);
    const written = await writeKeys(client, "before", WRITES);

    const filler = join(root, "filler");
    await fill(root, filler, RESERVE_BYTES / 2);
    const filledAt = Date.now();
    const refused = await pollUntil(DEADLINE_MS, async () => {
      const error = await writeError(client, `probe-${Date.now()}`);
      return error?.code === "NO_SPACE" ? error : null;
    }, 100);
    expect(refused?.message).toMatch(/bytes free in .*, below the reserve of 16777216 \(--min-free-disk-bytes\)/);
    console.info(`figure: disk-full writes refused with NO_SPACE ${Date.now() - filledAt} ms after the disk filled (${await freeBytes(root)} bytes free)`);

    // The library client maps it to its class and does not retry it: the answer is immediate.
    const kvClient = await KvClient.connect(`kv://${cluster.addresses.join(",")}`, { timeoutMs: DEADLINE_MS });
    const started = Date.now();
    await expect(kvClient.set("during", "full")).rejects.toBeInstanceOf(KvNoSpaceError);
    expect(Date.now() - started).toBeLessThan(DEADLINE_MS / 10);
    await kvClient.close();

    const temporaryBefore = await temporarySnapshotFiles(cluster);
    const watchUntil = Date.now() + FULL_WATCH_MS;
    while (Date.now() < watchUntil) {
      expect((await writeError(client, `during-${Date.now()}`))?.code).toBe("NO_SPACE");
      await expectAllPresent(client, written);
      for (const node of cluster.nodes) await expectAllPresent(client, written, node.address);
      cluster.assertNoCrash();
    }
    expect(cluster.liveIds()).toEqual(cluster.nodes.map((node) => node.id));
    expect(await temporarySnapshotFiles(cluster)).toEqual(temporaryBefore);
    for (const node of cluster.nodes) expect((await cluster.metrics(node.id)).get("kv_disk_space_low")).toBe(1);

    await rm(filler);
    const freedAt = Date.now();
    const resumed = await pollUntil(DEADLINE_MS, async () => ((await writeError(client, `after-${Date.now()}`)) === null ? true : null), 100);
    expect(resumed).toBe(true);
    console.info(`figure: disk-full writes resumed ${Date.now() - freedAt} ms after the space returned`);
    const after = await writeKeys(client, "after", WRITES);
    await expectAllPresent(client, new Map([...written, ...after]));
    cluster.assertNoCrash();
    client.close();
  });

  test("a disk filled behind the node's back (no reserve): the write fails, the node stops with 'no space left on device in <dir>' (exit 2), a start on the full disk says so and exits, and with space back nothing acknowledged is lost", async () => {
    const root = await mountTmpfs();
    cluster = await startCluster({ size: 1, dataRoot: root, nodeOptions: ["--min-free-disk-bytes", "0"] });
    await cluster.waitForLeader(DEADLINE_MS, cluster.startedAt);
    const [node] = cluster.nodes;
    if (node === undefined) throw new Error("a 1-node cluster has a node");
    const client = new TestClient(cluster.addresses);
    const written = await writeKeys(client, "before", WRITES);

    const filler = join(root, "filler");
    await fill(root, filler, 0);
    // Until LevelDB meets ENOSPC, writes land in pages its files already have; then the node
    // must stop rather than write on after the failure.
    let failed: KvError | null = null;
    for (let attempt = 0; attempt < MAX_WRITES_ON_FULL_DISK && failed === null; attempt++) {
      const key = `full-${attempt}`;
      failed = await writeError(client, key);
      if (failed === null) written.set(key, key);
    }
    expect(failed).not.toBeNull();
    console.info(`figure: disk-full ${written.size - WRITES} writes fitted after the tmpfs was full, then: ${String(failed?.code)}`);
    expect(await cluster.expectExit(node.id, DEADLINE_MS)).toBe(2);
    expect(cluster.logTail(node.id, 5)).toContain(`no space left on device in ${join(node.dataDirectory, "log")}`);

    // Started again on the still full disk: one clear refusal and an exit, not a loop of its own.
    cluster.start(node.id);
    expect(await cluster.expectExit(node.id, DEADLINE_MS)).not.toBe(0);
    expect(cluster.logTail(node.id, 5)).toContain(`no space left on device in ${node.dataDirectory}`);

    await rm(filler);
    cluster.start(node.id);
    await cluster.waitForLeader(DEADLINE_MS);
    await expectAllPresent(client, written);
    expect(await writeError(client, "after")).toBeNull();
    client.close();
  });
});
