import { expect, test } from "vitest";
import { startCluster } from "./harness.js";
import { TestClient } from "./test-client.js";
import { expectAllPresent, WriteLoad } from "./workload.js";

const LEADER_WAIT_MS = 15_000;
const WRITERS = 64;
/** Long enough to ride out an election, short enough that a stopped load ends soon. */
const WRITE_DEADLINE_MS = 5000;

test("kill -9 of every node in the middle of 64 concurrent writers (fsync always), restart all: every acknowledged write is there", async () => {
  const cluster = await startCluster({ size: 3, fsync: "always" });
  await cluster.waitForLeader(LEADER_WAIT_MS, cluster.startedAt);
  const client = new TestClient(cluster.addresses);
  const load = new WriteLoad(client, { writers: WRITERS, keyPrefix: "crash-", writeDeadlineMs: WRITE_DEADLINE_MS });
  await load.waitForAcknowledged(3000, 60_000, () => cluster.assertNoCrash());

  // Every writer has a write in flight at this moment; none starts another after it.
  load.requestStop();
  await Promise.all(cluster.nodes.map((node) => cluster.kill(node.id, "SIGKILL")));
  await load.finished();
  expect(load.unexpectedErrors).toEqual([]);
  console.info(`figure: kill-all ${load.acknowledged.size} acknowledged writes, ${load.unknownOutcomes} in flight with unknown outcome`);

  for (const node of cluster.nodes) await cluster.restart(node.id);
  const restarted = Date.now();
  const leader = await cluster.waitForLeader(LEADER_WAIT_MS);
  console.info(`figure: kill-all recovery ${Date.now() - restarted} ms from restart to an agreed leader (${leader.id})`);
  await expectAllPresent(client, load.acknowledged);
  client.close();
});
