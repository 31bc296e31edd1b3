/**
 * Faults that go through the cluster's membership: a follower removed through the log and added
 * back (`membership-readd`), and a removed member re-provisioned (`reprovision`: wiped and
 * restarted with its founding command line, which must not make it a second cluster).
 */
import { KvClient } from "../src/client/client.js";
import { ClientConnection } from "../src/client/connection.js";
import { requests } from "../src/client/requests.js";
import { KvError } from "../src/errors.js";
import { memberName } from "../src/server/identity.js";
import { parseHostPort } from "../src/server/peers.js";
import { pollUntil } from "../src/util/processes.js";
import { leaderOf, type ClusterControl } from "./control.js";
import type { AppliedFault, FaultContext } from "./nemesis.js";

/** Bounds one membership change, catching up of a re-added member included. */
const MEMBERSHIP_CHANGE_DEADLINE_MS = 20_000;
/** Bounds a node's return to the cluster after its data was lost: re-admission, catching up, promotion. */
const READMISSION_DEADLINE_MS = 30_000;
/** How often the re-provisioned node is asked whether it leads or takes a write. */
const PROBE_INTERVAL_MS = 250;
const PROBE_TIMEOUT_MS = 1000;
const POLL_INTERVAL_MS = 50;
/** Written only to the re-provisioned node, never through the cluster: no workload reads it. */
const PROBE_KEY = "jepsen-lite/reprovision-probe";

/**
 * The Raft id the cluster knows `node` by: the leader's membership names it (its name, or
 * `<name>~<incarnation>` once it came back with an empty disk); else what the node reports.
 */
export async function memberIdOf(control: ClusterControl, node: string): Promise<string> {
  const leader = leaderOf(await control.statuses());
  const members = leader === undefined ? [] : [...leader.membership.voters, ...leader.membership.learners];
  return members.find((member) => memberName(member) === node) ?? (await control.status(node))?.id ?? node;
}

/** Waits until the cluster took `node` back (see `ClusterControl.waitForReadmission`); throws past the deadline. */
export async function expectReadmission(control: ClusterControl, node: string, why = ""): Promise<void> {
  if ((await control.waitForReadmission(node, READMISSION_DEADLINE_MS)) === null) {
    throw new KvError("TIMEOUT", `${node} was not a caught-up voter again within ${READMISSION_DEADLINE_MS} ms${why}`);
  }
}

/**
 * Removes a follower through the log; healing adds it back the safe way (learner, caught up,
 * promoted). The node keeps running meanwhile: removed, it neither votes nor campaigns.
 */
export async function removeMember(control: ClusterControl, node: string): Promise<AppliedFault> {
  const memberId = await memberIdOf(control, node);
  await withAdminClient(control, (client) => client.removeMember(memberId));
  return { nodes: [node], detail: `remove ${memberId} from the cluster, then add it back`, heal: () => addBack(control, node) };
}

/**
 * An operator re-provisions a removed member: its data directory is wiped and it is started with
 * the command line that founded the cluster. It must not found a second cluster: while the fault
 * holds it is asked, again and again, whether it leads and whether it takes a write sent to it
 * alone. Healing adds it back by name, as `kv cluster add <name> <address>` does (the leader
 * finds the Raft id its new incarnation announces).
 */
export async function reprovision(context: FaultContext, node: string): Promise<AppliedFault> {
  const control = context.control;
  const memberId = await memberIdOf(control, node);
  await withAdminClient(control, (client) => client.removeMember(memberId));
  await control.kill(node);
  await control.wipe(node);
  control.start(node);
  const watch = watchForSecondCluster(context, node);
  const heal = async (): Promise<void> => {
    await watch.stop();
    await addBack(control, node);
  };
  const detail = `remove ${memberId}, wipe it, restart it with its founding command line (it must neither lead nor take a write), then add it back`;
  return { nodes: [node], detail, heal };
}

function watchForSecondCluster(context: FaultContext, node: string): { stop: () => Promise<void> } {
  let stopped = false;
  const reported = new Set<string>();
  const report = (finding: string): void => {
    if (reported.has(finding)) return;
    reported.add(finding);
    context.reportAnomaly({ kind: "second-cluster", message: `${node}, removed, wiped and restarted with its founding command line, ${finding}` });
  };
  const watching = (async (): Promise<void> => {
    while (!stopped) {
      const status = await context.control.status(node);
      if (status?.role === "leader") report(`became a leader (term ${status.term}, members ${status.membership.voters.join(",")})`);
      if (await acceptsWrite(context.control, node)) report("accepted a write sent to it alone");
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await watching;
    },
  };
}

/** One `set` on a connection to `node` alone: no redirect can carry it to the real leader. */
async function acceptsWrite(control: ClusterControl, node: string): Promise<boolean> {
  const { host, port } = parseHostPort(control.node(node).address);
  let connection: ClientConnection;
  try {
    connection = await ClientConnection.connect(host, port, { connectTimeoutMs: PROBE_TIMEOUT_MS });
  } catch {
    return false;
  }
  try {
    const request = requests.set({ key: PROBE_KEY, value: "written by a re-provisioned node" });
    await connection.request(request.code, request.payload, { timeoutMs: PROBE_TIMEOUT_MS });
    return true;
  } catch {
    return false; // refused (NOT_LEADER, UNAVAILABLE, …) or no answer: not taken
  } finally {
    connection.close();
  }
}

/**
 * Adds a removed node back by name (learner, caught up, promoted) and waits until it is a
 * caught-up voter. The leader's own re-admission may promote the learner first, and the add
 * then ends in an error although it did its part: only the outcome counts.
 */
async function addBack(control: ClusterControl, node: string): Promise<void> {
  if ((await pollUntil(READMISSION_DEADLINE_MS, () => control.status(node), POLL_INTERVAL_MS)) === null) {
    throw new KvError("TIMEOUT", `${node} did not answer within ${READMISSION_DEADLINE_MS} ms`);
  }
  const failure = await withAdminClient(control, (client) => client.addMember(node, control.node(node).address)).then(
    () => null,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  await expectReadmission(control, node, failure === null ? "" : `; adding it failed: ${failure}`);
}

export async function withAdminClient<T>(control: ClusterControl, action: (client: KvClient) => Promise<T>): Promise<T> {
  const client = await KvClient.connect(`kv://${control.clientAddresses.join(",")}`, { timeoutMs: MEMBERSHIP_CHANGE_DEADLINE_MS });
  try {
    return await action(client);
  } finally {
    await client.close();
  }
}
