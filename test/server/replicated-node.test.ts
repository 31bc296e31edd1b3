import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/engine/limits.js";
import type { Membership, Message } from "../../src/raft/types.js";
import { DiskSpaceGuard } from "../../src/server/disk-space-guard.js";
import { Metrics } from "../../src/server/metrics.js";
import { PeerDirectory } from "../../src/server/peer-directory.js";
import { ReplicatedNode, type ReplicatedNodeOptions } from "../../src/server/replicated-node.js";

const directories: string[] = [];
const nodes: ReplicatedNode[] = [];
const diskGuards: DiskSpaceGuard[] = [];
const MIN_FREE_DISK_BYTES = 1_000_000;
/** What the nodes' disk-space guards measure; a test lowers it to fill the disk. */
let freeDiskBytes = Number.MAX_SAFE_INTEGER;

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.close(0)));
  for (const guard of diskGuards.splice(0)) guard.close();
  freeDiskBytes = Number.MAX_SAFE_INTEGER;
  await Promise.all(directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })));
});

async function openNode(membership: Membership, sent: Message[] = []): Promise<ReplicatedNode> {
  const dataDirectory = await mkdtemp(join(tmpdir(), "kv-node-"));
  directories.push(dataDirectory);
  const logger = pino({ level: "silent" });
  const metrics = new Metrics();
  const measureFreeBytes = (): Promise<number> => Promise.resolve(freeDiskBytes);
  const diskSpace = await DiskSpaceGuard.start({ directory: dataDirectory, minFreeBytes: MIN_FREE_DISK_BYTES, refreshIntervalMs: 10, logger, metrics, measureFreeBytes });
  diskGuards.push(diskSpace);
  const options: ReplicatedNodeOptions = {
    id: "n1",
    initialMembership: membership,
    dataDirectory,
    fsync: "always",
    shardCount: 16,
    limits: DEFAULT_LIMITS,
    snapshotEntries: 1_000_000,
    snapshotIntervalMs: 3_600_000,
    tickMs: 10,
    electionTimeoutTicks: 10,
    maxPendingRequests: 100,
    expiryIntervalMs: 20,
    clockOffsetMs: 0,
    logger,
    metrics,
    directory: new PeerDirectory(),
    cluster: null,
    diskSpace,
    sender: { send: (messages) => sent.push(...messages), setAddresses: () => undefined },
    onFatal: (error) => {
      throw error;
    },
  };
  const node = await ReplicatedNode.open(options);
  nodes.push(node);
  return node;
}

async function waitFor(condition: () => boolean, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("ReplicatedNode in one process", () => {
  it("a lone voter leads at once, applies writes, serves both read consistencies and purges expired keys", async () => {
    const node = await openNode({ voters: ["n1"], learners: [], addresses: { n1: "127.0.0.1:1" } });
    await waitFor(() => node.isHealthy(), 5000);
    expect(await node.write({ type: "set", namespace: "", key: "k", value: 7n, ttlMs: 50 }, 5000)).toEqual({ ok: true, value: true });
    expect(await node.read({ type: "get", namespace: "", key: "k" }, "linearizable", 5000)).toEqual({ ok: true, value: 7n });
    expect(await node.read({ type: "get", namespace: "", key: "k" }, "serializable", 5000)).toEqual({ ok: true, value: 7n });
    // Active expiry: the leader proposes a purge once the TTL has passed, so the key leaves memory.
    await waitFor(() => node.status().keys === 0, 5000);
  });

  it("refuses writes and reads with a rejected promise, never a throw, when there is no leader", async () => {
    const sent: Message[] = [];
    const node = await openNode({ voters: ["n1", "n2", "n3"], learners: [], addresses: { n1: "a:1", n2: "a:2", n3: "a:3" } }, sent);
    const write = node.write({ type: "set", namespace: "", key: "k", value: 1n }, 1000);
    await expect(write).rejects.toMatchObject({ code: "NOT_LEADER" });
    const read = await node.read({ type: "get", namespace: "", key: "k" }, "linearizable", 200);
    expect(read.ok).toBe(false);
    // Without peers it keeps campaigning: its pre-vote requests are handed to the transport.
    await waitFor(() => sent.some((message) => message.type === "requestVote"), 5000);
  });

  it("below the free disk reserve a leader refuses writes with NO_SPACE, keeps serving reads, and takes writes again once space returns", async () => {
    const node = await openNode({ voters: ["n1"], learners: [], addresses: { n1: "127.0.0.1:1" } });
    await waitFor(() => node.isHealthy(), 5000);
    expect(await node.write({ type: "set", namespace: "", key: "k", value: 1n }, 5000)).toEqual({ ok: true, value: true });
    freeDiskBytes = MIN_FREE_DISK_BYTES - 1;
    await waitFor(() => /^kv_disk_space_low 1$/m.test(node.metrics.render()), 5000);
    await expect(node.write({ type: "set", namespace: "", key: "k", value: 2n }, 5000)).rejects.toMatchObject({ code: "NO_SPACE" });
    expect(await node.read({ type: "get", namespace: "", key: "k" }, "linearizable", 5000)).toEqual({ ok: true, value: 1n });
    expect(await node.read({ type: "get", namespace: "", key: "k" }, "serializable", 5000)).toEqual({ ok: true, value: 1n });
    freeDiskBytes = MIN_FREE_DISK_BYTES;
    await waitFor(() => /^kv_disk_space_low 0$/m.test(node.metrics.render()), 5000);
    expect(await node.write({ type: "set", namespace: "", key: "k", value: 3n }, 5000)).toEqual({ ok: true, value: true });
  });
});
