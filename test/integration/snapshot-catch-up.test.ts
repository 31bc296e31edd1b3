import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { requests } from "../../src/client/requests.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster } from "./harness.js";
import { TestClient } from "./test-client.js";
import { expectAllPresent, WriteLoad } from "./workload.js";

const LEADER_WAIT_MS = 15_000;
const SNAPSHOT_ENTRIES = 20_000;
const WRITERS = 64;
const WRITES_PER_WRITER = 3125; // 200,000 writes in all
const LOAD_DEADLINE_MS = 150_000;
const CATCH_UP_DEADLINE_MS = 60_000;

test(
  "a node down during 200k writes comes back, is caught up by snapshot, and holds the same state as the others",
  async () => {
    const cluster = await startCluster({ size: 3, nodeOptions: ["--snapshot-entries", String(SNAPSHOT_ENTRIES)] });
    const leader = await cluster.waitForLeader(LEADER_WAIT_MS, cluster.startedAt);
    const lagging = cluster.nodes.find((node) => node.id !== leader.id);
    if (lagging === undefined) throw new Error("no follower");
    await cluster.kill(lagging.id, "SIGKILL");
    const laggingBefore = Date.now();

    const client = new TestClient([leader.address]);
    const load = new WriteLoad(client, { writers: WRITERS, writesPerWriter: WRITES_PER_WRITER, keyPrefix: "snap-", writeDeadlineMs: 30_000 });
    const loaded = await pollUntil(LOAD_DEADLINE_MS, async () => {
      cluster.assertNoCrash();
      return load.acknowledged.size + load.unknownOutcomes + load.unexpectedErrors.length === WRITERS * WRITES_PER_WRITER ? true : null;
    });
    expect(loaded, `only ${load.acknowledged.size} writes done within ${LOAD_DEADLINE_MS} ms`).toBe(true);
    await load.finished();
    const loadMs = Date.now() - laggingBefore;
    expect(load.unexpectedErrors).toEqual([]);
    expect(load.acknowledged.size).toBe(WRITERS * WRITES_PER_WRITER);
    console.info(`figure: ${load.acknowledged.size} writes with one node down in ${loadMs} ms (${Math.round((load.acknowledged.size * 1000) / loadMs)}/s)`);

    // The leader has compacted its log past everything the lagging node has, so only a snapshot helps.
    const leaderStatus = await cluster.status(leader.id);
    expect(leaderStatus.snapshotIndex).toBeGreaterThanOrEqual(SNAPSHOT_ENTRIES);

    const restartedAt = Date.now();
    await cluster.restart(lagging.id);
    await cluster.waitForApplied(leaderStatus.commit, CATCH_UP_DEADLINE_MS, [lagging.id]);
    const caughtUp = await cluster.status(lagging.id);
    console.info(`figure: catch-up ${Date.now() - restartedAt} ms from restart to applied ${caughtUp.applied} (snapshot ${caughtUp.snapshotIndex})`);
    expect(caughtUp.snapshotIndex).toBeGreaterThanOrEqual(SNAPSHOT_ENTRIES);
    expect(readFileSync(lagging.logFile, "utf8")).toContain("snapshot received from the leader");

    const statuses = await cluster.waitForQuiescence(CATCH_UP_DEADLINE_MS);
    expect(new Set([...statuses.values()].map((status) => status.applied)).size).toBe(1);
    for (const node of cluster.nodes) {
      expect(await client.call(requests.count({ consistency: "serializable" }), { node: node.address })).toBe(load.acknowledged.size);
      await expectAllPresent(client, load.acknowledged, node.address);
    }
    client.close();
  },
  240_000,
);
