import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { KvClient } from "../../src/index.js";
import { memberName } from "../../src/server/identity.js";
import { NodeProcess, pollUntil, withDeadline } from "../../src/util/processes.js";
import { startCluster, type Cluster } from "./harness.js";

/**
 * Lost disks and re-provisioned nodes on real processes: a node whose data directory is gone
 * comes back as a new incarnation that never votes or vouches for entries it lost, and never
 * founds a second cluster.
 */

const DEADLINE_MS = 30_000;
const WRITES = 100;

async function wipe(cluster: Cluster, id: string): Promise<void> {
  await rm(cluster.node(id).dataDirectory, { recursive: true, force: true });
}

async function healthOf(cluster: Cluster, id: string): Promise<number> {
  const response = await fetch(`http://${cluster.node(id).adminAddress}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
  return response?.status ?? 0;
}

async function connect(addresses: readonly string[], consistency: "linearizable" | "serializable" = "linearizable"): Promise<KvClient> {
  return KvClient.connect(`kv://${addresses.join(",")}`, { timeoutMs: DEADLINE_MS, consistency });
}

async function writeKeys(client: KvClient, prefix: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) await client.set(`${prefix}:${index}`, index);
}

async function expectKeys(client: KvClient, prefix: string, count: number): Promise<void> {
  const keys = Array.from({ length: count }, (_, index) => `${prefix}:${index}`);
  expect(await client.mget(keys)).toEqual(Object.fromEntries(keys.map((key, index) => [key, index])));
}

/** The new id of a wiped node, once it is a voter again and its old id is gone. */
async function readmittedId(cluster: Cluster, name: string): Promise<string> {
  const id = await pollUntil(DEADLINE_MS, async () => {
    const status = await cluster.status(name).catch(() => null);
    return status !== null && status.id !== name && status.membership.voters.includes(status.id) && !status.membership.voters.includes(name) ? status.id : null;
  });
  if (id === null) throw new Error(`${name} was not re-admitted within ${DEADLINE_MS} ms: ${JSON.stringify([...(await cluster.statuses()).values()])}`);
  return id;
}

describe("a node that lost its disk", () => {
  test("cannot elect a stale member: 100 writes acknowledged by L and B survive B's wipe and L's crash", async () => {
    const cluster = await startCluster({ size: 3 });
    const leader = await cluster.waitForLeader(DEADLINE_MS);
    const [b, a] = cluster.nodes.map((node) => node.id).filter((id) => id !== leader.id) as [string, string];
    await cluster.kill(a, "SIGKILL");
    const client = await connect([leader.address, cluster.node(b).address]);
    try {
      await writeKeys(client, "acked", WRITES);
    } finally {
      await client.close();
    }
    await cluster.kill(b, "SIGKILL");
    await wipe(cluster, b);
    await cluster.kill(leader.id, "SIGKILL");
    cluster.start(b);
    cluster.start(a);

    // A holds none of the 100 writes; B holds nothing. B is a new incarnation and must not vote
    // for A, so nobody leads until L is back. Watch for a while: no leader may appear.
    const wipedId = await pollUntil(DEADLINE_MS, async () => {
      const status = await cluster.status(b).catch(() => null);
      return status !== null && status.id !== b ? status.id : null;
    });
    expect(wipedId).toMatch(new RegExp(`^${b}~[0-9a-f]{8}$`));
    const observedUntil = Date.now() + 4000;
    while (Date.now() < observedUntil) {
      const statuses = await cluster.statuses();
      expect([...statuses.values()].filter((status) => status.role === "leader")).toEqual([]);
      expect(statuses.get(b)?.role).not.toBe("candidate");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await healthOf(cluster, b)).toBe(503);

    cluster.start(leader.id);
    await cluster.waitForLeader(DEADLINE_MS);
    const reader = await connect(cluster.addresses);
    try {
      await expectKeys(reader, "acked", WRITES);
    } finally {
      await reader.close();
    }
    // The leader re-admits the wiped node under its new id; it ends as a caught-up voter.
    const readmitted = await pollUntil(DEADLINE_MS, async () => {
      const status = await cluster.status(b).catch(() => null);
      return status !== null && status.membership.voters.includes(status.id) && !status.membership.voters.includes(b) ? status : null;
    });
    expect(readmitted?.membership.voters.map(memberName).sort()).toEqual(["n1", "n2", "n3"]);
  });

  test("a wiped follower under the same leader is caught up within 10 s and is not ready before", async () => {
    const cluster = await startCluster({ size: 3 });
    const leader = await cluster.waitForLeader(DEADLINE_MS);
    const follower = cluster.nodes.map((node) => node.id).find((id) => id !== leader.id) as string;
    const client = await connect(cluster.addresses);
    try {
      await writeKeys(client, "before", WRITES);
      await cluster.kill(follower, "SIGKILL");
      await wipe(cluster, follower);
      cluster.start(follower);
      const restartedAt = Date.now();
      // Until it is re-admitted and caught up, the node says it is not ready and refuses stale reads.
      const listening = await pollUntil(DEADLINE_MS, async () => ((await healthOf(cluster, follower)) !== 0 ? true : null));
      expect(listening).toBe(true);
      const ready = await pollUntil(10_000, async () => ((await healthOf(cluster, follower)) === 200 ? Date.now() - restartedAt : null));
      expect(ready, "ready within 10 s of its restart").not.toBeNull();
      const local = await connect([cluster.node(follower).address], "serializable");
      try {
        await expectKeys(local, "before", WRITES);
      } finally {
        await local.close();
      }
      await writeKeys(client, "after", 10);
    } finally {
      await client.close();
    }
  });

  test("a second wiped node is re-admitted while the first one's new incarnation leads", async () => {
    // The second node dials the leader by its founding id, which no process answers to any
    // more: the leader must still see it (on its own refused dials) to re-admit it.
    const cluster = await startCluster({ size: 3 });
    const leader = await cluster.waitForLeader(DEADLINE_MS);
    const [first, second] = cluster.nodes.map((node) => node.id).filter((id) => id !== leader.id) as [string, string];
    const client = await connect(cluster.addresses);
    try {
      await writeKeys(client, "kept", 20);
      await cluster.kill(first, "SIGKILL");
      await wipe(cluster, first);
      cluster.start(first);
      const firstId = await readmittedId(cluster, first);
      await client.transferLeader(firstId);
      await cluster.kill(second, "SIGKILL");
      await wipe(cluster, second);
      cluster.start(second);
      await readmittedId(cluster, second);
      const local = await connect([cluster.node(second).address], "serializable");
      try {
        await pollUntil(DEADLINE_MS, async () => ((await local.get("kept:19").catch(() => null)) === 19 ? true : null));
        await expectKeys(local, "kept", 20);
      } finally {
        await local.close();
      }
    } finally {
      await client.close();
    }
  });

  test("a member whose log directory is gone refuses to start and names --rejoin", async () => {
    const cluster = await startCluster({ size: 3 });
    await cluster.waitForLeader(DEADLINE_MS);
    await cluster.kill("n3", "SIGKILL");
    await rm(join(cluster.node("n3").dataDirectory, "log"), { recursive: true, force: true });
    cluster.start("n3");
    await pollUntil(DEADLINE_MS, async () => (cluster.logTail("n3").includes("--rejoin") ? true : null));
    expect(cluster.logTail("n3")).toMatch(/log is missing/);
  });
});

describe("re-provisioning", () => {
  test("removed members wiped and restarted with the founding --peers join the real cluster's id, found nothing and take no writes", async () => {
    const cluster = await startCluster({ size: 3 });
    const leader = await cluster.waitForLeader(DEADLINE_MS);
    const removed = cluster.nodes.map((node) => node.id).filter((id) => id !== leader.id);
    const client = await connect([leader.address]);
    try {
      await writeKeys(client, "real", 20);
      for (const id of removed) await client.removeMember(id);
      for (const id of removed) {
        await cluster.kill(id, "SIGKILL");
        await wipe(cluster, id);
        cluster.start(id);
      }
      // They learn that a cluster exists and wait as new incarnations nobody added.
      for (const id of removed) {
        const status = await pollUntil(DEADLINE_MS, async () => {
          const current = await cluster.status(id).catch(() => null);
          return current !== null && current.id !== id ? current : null;
        });
        expect(status?.membership.voters).toEqual([]);
        expect(await healthOf(cluster, id)).toBe(503);
      }
      const observedUntil = Date.now() + 3000;
      while (Date.now() < observedUntil) {
        for (const id of removed) expect((await cluster.status(id)).role).toBe("follower");
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // A client that knows only the wiped nodes is refused, or sent on to the real leader.
      const stray = await KvClient.connect(`kv://${removed.map((id) => cluster.node(id).address).join(",")}`, { timeoutMs: 3000 });
      const accepted = await stray.set("split", "brain").then(
        () => true,
        () => false,
      );
      await stray.close();
      await writeKeys(client, "still", 10);
      await expectKeys(client, "real", 20);
      expect(await client.get("split")).toBe(accepted ? "brain" : null);
      for (const id of removed) {
        const status = await cluster.status(id);
        expect(status.keys).toBe(0);
        expect(status.leader === null || status.leader === leader.id).toBe(true);
      }
    } finally {
      await client.close();
    }
  });
});

const NODE_ENTRY = join(fileURLToPath(new URL("../../", import.meta.url)), "dist/bin/kv-node.js");

describe("starting without a secret", () => {
  test("a node of a multi-node cluster refuses to start without a cluster secret", async () => {
    const child = spawn(process.execPath, [NODE_ENTRY, "--bind", "127.0.0.1:1", "--peers", "a=127.0.0.1:1,b=127.0.0.1:2", "--data-dir", "/nonexistent-kv-data"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, KV_CLUSTER_SECRET: "" },
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const running = new NodeProcess(child);
    await withDeadline(running.exited, DEADLINE_MS, "kv-node to refuse to start");
    expect(child.exitCode).not.toBe(0);
    expect(stderr).toMatch(/needs a cluster secret/);
  });
});
