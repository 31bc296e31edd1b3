/**
 * forged-peer: a process that knows the cluster's name and its members' ids, but not the
 * cluster secret, tries to get Raft messages accepted by every node, built with the product's
 * own encoders: votes for a huge term and for the next one, an append in the leader's term with
 * a fake entry, a snapshot at index 5000, a heartbeat in the leader's term. Every attempt must be
 * refused (the link fails to open, or the node closes it); a link still open after the frame went
 * out means the node took it (Raft messages get no answer), an anomaly.
 * Healing checks that no node exited and no term jumped while the fault ran.
 */
import { randomBytes } from "node:crypto";
import { ClientConnection } from "../src/client/connection.js";
import { encode } from "../src/engine/codec.js";
import { KvError } from "../src/errors.js";
import { MAX_INDEX, MAX_TERM, type Message, type NodeId } from "../src/raft/types.js";
import { encodeEntryData } from "../src/server/entry-data.js";
import { memberName } from "../src/server/identity.js";
import { dialPeer, encodeAnnouncement, type PeerAnnouncement, type PeerCredentials } from "../src/server/peer-auth.js";
import { encodeMessages } from "../src/server/peer-codec.js";
import { parseHostPort } from "../src/server/peers.js";
import { COMMAND, PROTOCOL_VERSION } from "../src/server/protocol/commands.js";
import type { NodeStatus } from "../src/server/replicated-node.js";
import { pollUntil } from "../src/util/processes.js";
import { CLUSTER_NAME, leaderOf } from "./control.js";
import type { AppliedFault, FaultContext } from "./nemesis.js";

/** Bounds each step of an attempt (connect, each request): a node that does not answer refused it. */
const ATTEMPT_TIMEOUT_MS = 2000;
/** The sizes peer-auth.ts expects, so that a hello is refused for its missing proof, not its shape. */
const CHALLENGE_BYTES = 32;
const PROOF_BYTES = 32;
const SECRET_BYTES = 32;
const FORGED_SNAPSHOT_INDEX = 5000;
const FORGED_SNAPSHOT_BYTES = 64;
/** How far ahead of the target's log the forged candidate claims to be. */
const FORGED_LOG_LEAD = 1000;
const FORGED_KEY = "jepsen-lite/forged";
/** Elections the cluster may hold by itself while the fault runs; a term further on was set by the forger. */
const MAX_NATURAL_TERM_GROWTH = 3;
const LEADER_DEADLINE_MS = 10_000;
const POLL_INTERVAL_MS = 100;

/** One way of opening a link without the secret; throws when the node refuses it. */
export interface ForgeryMethod {
  readonly name: string;
  readonly open: (address: string, claimed: PeerAnnouncement) => Promise<ClientConnection>;
}

export const FORGERY_METHODS: readonly ForgeryMethod[] = [
  { name: "without a handshake", open: (address) => connect(address) },
  { name: "after a hello, without a proof", open: (address) => openWithHello(address, null) },
  { name: "after a hello and a random proof", open: (address, claimed) => openWithHello(address, claimed) },
  { name: "through dialPeer without a secret", open: (address, claimed) => dial(address, claimed, { mode: "insecure" }) },
  { name: "through dialPeer with a wrong secret", open: (address, claimed) => dial(address, claimed, { mode: "secret", secrets: [randomBytes(SECRET_BYTES)] }) },
];

/**
 * The forged messages for one target, from a real member's id: the leader's, or when the target
 * is the leader, another voter's (a heartbeat in the leader's own term is a second leader).
 */
export function forgedMessages(target: NodeStatus, leader: NodeStatus, nowMs: number): Message[] {
  const from = target.id === leader.id ? (leader.membership.voters.find((voter) => voter !== leader.id) ?? leader.id) : leader.id;
  const header = { from, to: target.id };
  const term = leader.term;
  const data = encodeEntryData(nowMs, { type: "set", namespace: "", key: FORGED_KEY, value: "forged" });
  const snapshotData = randomBytes(FORGED_SNAPSHOT_BYTES);
  const next = target.lastIndex + 1;
  return [
    // The largest term and index the peer codec carries: shaped right, so only the link can refuse it.
    { type: "requestVote", ...header, term: MAX_TERM, lastLogIndex: MAX_INDEX, lastLogTerm: MAX_TERM, preVote: false, transfer: false },
    { type: "requestVote", ...header, term: term + 1, lastLogIndex: target.lastIndex + FORGED_LOG_LEAD, lastLogTerm: term, preVote: false, transfer: true },
    { type: "appendEntries", ...header, term, prevLogIndex: target.lastIndex, prevLogTerm: term, entries: [{ index: next, term, kind: "command", data }], commit: next },
    {
      type: "installSnapshot", ...header, term,
      chunk: { metadata: { index: FORGED_SNAPSHOT_INDEX, term, membership: leader.membership, sizeBytes: snapshotData.byteLength }, offset: 0, data: snapshotData, last: true },
    },
    { type: "heartbeat", ...header, term, commit: target.commit, readRound: 0 },
  ];
}

export function describeMessage(message: Message): string {
  const term = message.term === MAX_TERM ? "2^40 (the bound)" : String(message.term);
  return `${message.type} from ${message.from} in term ${term}`;
}

/** Sends every forged message to every node by every method; healing checks the aftermath. */
export async function forgePeerTraffic(context: FaultContext): Promise<AppliedFault> {
  const control = context.control;
  const crashesBefore = control.crashes.length;
  const view = await pollUntil(LEADER_DEADLINE_MS, async () => {
    const statuses = await control.statuses();
    const leader = leaderOf(statuses);
    return leader === undefined ? null : { statuses, leader };
  }, POLL_INTERVAL_MS);
  if (view === null) throw new KvError("UNAVAILABLE", `no leader within ${LEADER_DEADLINE_MS} ms to forge traffic against`);
  const attempts = [...view.statuses].flatMap(([node, target]) =>
    forgedMessages(target, view.leader, Date.now()).flatMap((message) => FORGERY_METHODS.map((method) => ({ node, message, method }))),
  );
  const answers = await Promise.all(attempts.map(async (attempt) => ({ ...attempt, accepted: await isForgeryAccepted(control.node(attempt.node).address, attempt.message, attempt.method) })));
  const accepted = answers.filter((answer) => answer.accepted);
  for (const { node, message, method } of accepted) {
    context.reportAnomaly({ kind: "forged-message-accepted", message: `${node} took a forged ${describeMessage(message)} sent ${method.name} without closing the link` });
  }
  const nodes = [...view.statuses.keys()];
  return {
    nodes,
    detail: `${attempts.length} forged attempts on ${nodes.join(",")} (leader ${view.leader.id}, term ${view.leader.term}): ${accepted.length} taken`,
    heal: () => checkAftermath(context, view.leader.term, crashesBefore),
  };
}

/**
 * True when the node at `address` took `message` sent over a link opened by `method`. Raft
 * messages travel one way: a node that refuses a frame answers and closes the link, one that
 * takes it says nothing, so a link still open after ATTEMPT_TIMEOUT_MS means accepted.
 */
export async function isForgeryAccepted(address: string, message: Message, method: ForgeryMethod): Promise<boolean> {
  let connection: ClientConnection;
  try {
    connection = await method.open(address, announcementOf(message.from));
  } catch {
    return false;
  }
  try {
    if (!connection.notify(COMMAND.raftMessages, encodeMessages([message]))) return false;
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<"open">((resolve) => {
      timer = setTimeout(() => resolve("open"), ATTEMPT_TIMEOUT_MS);
    });
    const outcome = await Promise.race([connection.closed.then(() => "closed" as const), silence]);
    clearTimeout(timer);
    return outcome === "open";
  } finally {
    connection.close();
  }
}

/** No node exited, and no term moved further than the cluster's own elections could take it. */
async function checkAftermath(context: FaultContext, term: number, crashesBefore: number): Promise<void> {
  for (const crash of context.control.crashes.slice(crashesBefore)) context.reportAnomaly({ kind: "node-exited", message: `during forged-peer: ${crash}` });
  for (const [node, status] of await context.control.statuses()) {
    if (status.term > term + MAX_NATURAL_TERM_GROWTH) {
      context.reportAnomaly({ kind: "term-jumped", message: `${node} is in term ${status.term} after forged traffic in term ${term}` });
    }
  }
}

/** Who the forger claims to be: a real member, with made-up incarnation and boot. */
function announcementOf(memberId: NodeId): PeerAnnouncement {
  return { name: memberName(memberId), memberId, incarnation: randomHex(), cluster: null, founders: null, address: "127.0.0.1:1", bootId: randomHex() };
}

function randomHex(): string {
  return randomBytes(4).toString("hex");
}

async function connect(address: string): Promise<ClientConnection> {
  const { host, port } = parseHostPort(address);
  return ClientConnection.connect(host, port, { connectTimeoutMs: ATTEMPT_TIMEOUT_MS });
}

/** The handshake of peer-auth.ts by hand: a hello with the right cluster name, then a random proof or none. */
async function openWithHello(address: string, claimed: PeerAnnouncement | null): Promise<ClientConnection> {
  const connection = await connect(address);
  try {
    const hello = encode({ clusterId: CLUSTER_NAME, protocolVersion: PROTOCOL_VERSION, challenge: randomBytes(CHALLENGE_BYTES) });
    await connection.request(COMMAND.handshake, hello, { timeoutMs: ATTEMPT_TIMEOUT_MS });
    if (claimed !== null) {
      const proof = encode({ proof: randomBytes(PROOF_BYTES), announcement: encodeAnnouncement(claimed) });
      await connection.request(COMMAND.handshakeProof, proof, { timeoutMs: ATTEMPT_TIMEOUT_MS });
    }
    return connection;
  } catch (error) {
    connection.close();
    throw error;
  }
}

/** The product's own dialer, holding no secret or a wrong one. */
async function dial(address: string, claimed: PeerAnnouncement, credentials: PeerCredentials): Promise<ClientConnection> {
  const { connection } = await dialPeer(address, { clusterId: CLUSTER_NAME, credentials, announcement: claimed, connectTimeoutMs: ATTEMPT_TIMEOUT_MS });
  return connection;
}
