import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/engine/limits.js";
import type { Outcome } from "../../src/engine/outcome.js";
import type { Membership, Message } from "../../src/raft/types.js";
import { PlanOrderChecker } from "../raft/plan-order.js";
import { DiskSpaceGuard } from "../../src/server/disk-space-guard.js";
import { Metrics } from "../../src/server/metrics.js";
import type { PeerAnnouncement } from "../../src/server/peer-auth.js";
import { PeerDirectory } from "../../src/server/peer-directory.js";
import { DEFAULT_PERSISTENCE_LIMITS, ReplicatedNode, type ReplicatedNodeOptions } from "../../src/server/replicated-node.js";

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

interface NodeSetup {
  readonly id?: string;
  readonly sender?: ReplicatedNodeOptions["sender"];
  readonly onReadyStep?: ReplicatedNodeOptions["onReadyStep"];
  readonly persistence?: ReplicatedNodeOptions["persistence"];
}

async function openNode(membership: Membership, sent: Message[] = [], setup: NodeSetup = {}): Promise<ReplicatedNode> {
  const dataDirectory = await mkdtemp(join(tmpdir(), "kv-node-"));
  directories.push(dataDirectory);
  const logger = pino({ level: "silent" });
  const metrics = new Metrics();
  const measureFreeBytes = (): Promise<number> => Promise.resolve(freeDiskBytes);
  const diskSpace = await DiskSpaceGuard.start({ directory: dataDirectory, minFreeBytes: MIN_FREE_DISK_BYTES, refreshIntervalMs: 10, logger, metrics, measureFreeBytes });
  diskGuards.push(diskSpace);
  const options: ReplicatedNodeOptions = {
    id: setup.id ?? "n1",
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
    sender: setup.sender ?? { send: (messages) => sent.push(...messages), setAddresses: () => undefined },
    persistence: setup.persistence ?? DEFAULT_PERSISTENCE_LIMITS,
    ...(setup.onReadyStep === undefined ? {} : { onReadyStep: setup.onReadyStep }),
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

  it("executes every Ready in the order of its plan, with several log writes in flight, on a leader and its followers", async () => {
    for (const [id, checker] of await writeThroughThreeNodes(DEFAULT_PERSISTENCE_LIMITS)) {
      expect(checker.stepsChecked, id).toBeGreaterThan(0);
      expect(checker.peakWritesInFlight, id).toBeGreaterThan(1);
    }
  });

  it("never has more log writes in flight than maxWritesInFlight", async () => {
    for (const [id, checker] of await writeThroughThreeNodes({ ...DEFAULT_PERSISTENCE_LIMITS, maxWritesInFlight: 2 })) {
      expect(checker.peakWritesInFlight, id).toBeGreaterThan(1);
      expect(checker.peakWritesInFlight, id).toBeLessThanOrEqual(2);
    }
  });
});

/**
 * Three in-process nodes linked through the event loop, each reporting its plan steps to its
 * own PlanOrderChecker (which throws at the first step out of order); 90 writes through the
 * leader, one per turn of the event loop, so that each gets a Ready of its own while earlier
 * writes are on their way to disk. Returns the checkers once every node applied them all.
 */
async function writeThroughThreeNodes(persistence: ReplicatedNodeOptions["persistence"]): Promise<Map<string, PlanOrderChecker>> {
  const ids = ["n1", "n2", "n3"];
  const membership: Membership = { voters: ids, learners: [], addresses: Object.fromEntries(ids.map((id) => [id, `in-process:${id}`])) };
  const byId = new Map<string, ReplicatedNode>();
  const checkers = new Map(ids.map((id) => [id, new PlanOrderChecker()]));
  const sender = (from: string): ReplicatedNodeOptions["sender"] => ({
    send: (messages) => {
      for (const message of messages) setImmediate(() => byId.get(message.to)?.receive(announcementOf(from), [message]));
    },
    setAddresses: () => undefined,
  });
  for (const id of ids) {
    const checker = checkers.get(id);
    if (checker === undefined) throw new Error(`no checker for ${id}`);
    byId.set(id, await openNode(membership, [], { id, sender: sender(id), persistence, onReadyStep: (step, plan) => checker.step(step, plan) }));
  }
  await waitFor(() => [...byId.values()].some((node) => node.status().role === "leader"), 10_000);
  const leader = [...byId.values()].find((node) => node.status().role === "leader");
  if (leader === undefined) throw new Error("no leader");
  const writes: Promise<Outcome<unknown>>[] = [];
  for (let index = 0; index < 90; index++) {
    writes.push(leader.write({ type: "set", namespace: "", key: `k${index % 30}`, value: BigInt(index) }, 10_000));
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect((await Promise.all(writes)).every((outcome) => outcome.ok)).toBe(true);
  const applied = leader.status().applied;
  await waitFor(() => [...byId.values()].every((node) => node.status().applied >= applied), 10_000);
  return checkers;
}

function announcementOf(memberId: string): PeerAnnouncement {
  return { name: memberId, memberId, incarnation: "1", cluster: null, founders: null, address: `in-process:${memberId}`, bootId: "boot" };
}
