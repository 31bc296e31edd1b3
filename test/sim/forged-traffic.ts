import type { LogEntry, Message, NodeId, RaftStatus, RefusalReason, SnapshotChunk } from "../../src/raft/types.js";
import type { SimulatedCluster, SimulatedNode } from "./cluster.js";
import type { Random } from "./random.js";

/** A forged message and the refusal the core owes it. */
interface Forgery {
  readonly message: Message;
  readonly reason: RefusalReason;
}

/** Whom a forgery goes to and whose name it may use. */
interface ForgeryContext {
  readonly target: SimulatedNode;
  readonly status: RaftStatus;
  /** Any other node of the cluster, up or not. */
  readonly other: NodeId;
}

type Forger = (context: ForgeryContext) => Forgery | null;

/** A term no correct node reaches (the three-packet attack used 2^53 - 1). */
const EXHAUSTED_TERM = Number.MAX_SAFE_INTEGER;

/** Entries and snapshots the forger claims, far beyond anything the cluster writes. */
const FORGED_INDEX_DISTANCE = 5_000;

/**
 * A byzantine-ish peer that knows everything (it reads every node's state) and sends, at random,
 * the messages a core can tell are wrong because they contradict its own state: leader messages
 * in a term that has another leader, acknowledgements of what a leader never sent, entries or
 * snapshots that disagree with committed ones, exhausted terms. Each is delivered at once, while
 * the state it contradicts still holds, so each must be refused: `expected` counts what the
 * cores owe, and the run stays linearizable only if they refuse every one.
 *
 * Forgeries a core cannot detect (a vote or an acknowledgement that could be true) are out of
 * its reach by design: peer admission (a cluster secret or TLS) keeps such senders off the links.
 */
export class ForgedTraffic {
  readonly expected = new Map<RefusalReason, number>();
  private readonly forgers: readonly Forger[] = [
    (context) => this.asSecondLeader(context),
    (context) => this.asRivalLeader(context),
    (context) => this.asOverEagerFollower(context),
    (context) => this.asExhaustedTerm(context),
    (context) => this.asContradictingLeader(context),
    (context) => this.asImpostorLeader(context),
    (context) => this.asMalformedLeader(context),
  ];

  constructor(
    private readonly cluster: SimulatedCluster,
    private readonly random: Random,
  ) {}

  /** Forges one message at a random up node, if that node's state allows a detectable one. */
  inject(): void {
    const targets = this.cluster.upNodes();
    if (targets.length < 2) return;
    const target = this.random.pick(targets);
    const other = this.random.pick([...this.cluster.nodes.keys()].filter((id) => id !== target.id));
    const forgery = this.random.pick(this.forgers)({ target, status: target.status(), other });
    if (forgery === null) return;
    this.expected.set(forgery.reason, (this.expected.get(forgery.reason) ?? 0) + 1);
    this.cluster.trace(`forged ${forgery.message.type} ${forgery.message.from} -> ${forgery.message.to} term ${forgery.message.term} (${forgery.reason})`);
    this.cluster.inject(forgery.message);
  }

  /** To a leader, from another node, in the leader's own term. */
  private asSecondLeader({ status, other }: ForgeryContext): Forgery | null {
    if (status.role !== "leader") return null;
    const header = { from: other, to: status.id, term: status.term };
    const message: Message = this.random.chance(0.5)
      ? { type: "heartbeat", ...header, commit: status.commit, readRound: 0 }
      : { type: "installSnapshot", ...header, chunk: foreignSnapshot(status, status.lastIndex + FORGED_INDEX_DISTANCE) };
    return { message, reason: "two_leaders" };
  }

  /** To a follower, from another node than its leader, in its term: a forged entry or snapshot. */
  private asRivalLeader({ target, status, other }: ForgeryContext): Forgery | null {
    if (status.role !== "follower" || status.leader === null || status.leader === other) return null;
    const header = { from: other, to: status.id, term: status.term };
    const prevLogIndex = status.lastIndex;
    const prevLogTerm = target.storage.term(prevLogIndex) ?? 0;
    const entry: LogEntry = { kind: "noop", index: prevLogIndex + 1, term: status.term };
    const message: Message = this.random.chance(0.5)
      ? { type: "appendEntries", ...header, prevLogIndex, prevLogTerm, entries: [entry], commit: entry.index }
      : { type: "installSnapshot", ...header, chunk: foreignSnapshot(status, FORGED_INDEX_DISTANCE) };
    return { message, reason: "leader_conflict" };
  }

  /** To a leader, from one of its followers: acknowledgements of what the leader never had or sent. */
  private asOverEagerFollower({ status }: ForgeryContext): Forgery | null {
    const followers = Object.keys(status.progress).filter((id) => id !== status.id);
    if (status.role !== "leader" || followers.length === 0) return null;
    const header = { from: this.random.pick(followers), to: status.id, term: status.term };
    const beyond = status.lastIndex + this.random.integer(1, FORGED_INDEX_DISTANCE);
    switch (this.random.integer(0, 3)) {
      case 0:
        return { message: { type: "appendEntriesResponse", ...header, success: true, matchIndex: beyond }, reason: "match_beyond_log" };
      case 1:
        return { message: { type: "installSnapshotResponse", ...header, snapshotIndex: beyond, nextOffset: 0, done: true }, reason: "snapshot_beyond_log" };
      default:
        return { message: { type: "heartbeatResponse", ...header, readRound: beyond }, reason: "read_round_beyond_issued" };
    }
  }

  /** Any message with a term that would leave no safe term + 1. */
  private asExhaustedTerm({ status, other }: ForgeryContext): Forgery {
    const header = { from: other, to: status.id, term: EXHAUSTED_TERM };
    const message: Message = this.random.chance(0.5)
      ? { type: "requestVote", ...header, lastLogIndex: EXHAUSTED_TERM, lastLogTerm: EXHAUSTED_TERM, preVote: false, transfer: true }
      : { type: "heartbeat", ...header, commit: 0, readRound: 0 };
    return { message, reason: "term_beyond_bound" };
  }

  /** From a follower's own leader: an entry that disagrees with the follower's committed one. */
  private asContradictingLeader({ target, status }: ForgeryContext): Forgery | null {
    if (status.role !== "follower" || status.leader === null) return null;
    const index = status.commit;
    const ourTerm = target.storage.term(index);
    const prevLogTerm = target.storage.term(index - 1);
    // Same term means same entry (log matching): only a different term is a contradiction.
    if (index < 1 || ourTerm === undefined || prevLogTerm === undefined || ourTerm === status.term) return null;
    const entry: LogEntry = { kind: "noop", index, term: status.term };
    const message: Message = { type: "appendEntries", from: status.leader, to: status.id, term: status.term, prevLogIndex: index - 1, prevLogTerm, entries: [entry], commit: index };
    return { message, reason: "committed_conflict" };
  }

  /** To a follower, from a node that is not its leader: a transfer order or a read index. */
  private asImpostorLeader({ status, other }: ForgeryContext): Forgery | null {
    if (status.role !== "follower" || status.leader === null || status.leader === other) return null;
    const header = { from: other, to: status.id, term: status.term };
    const message: Message = this.random.chance(0.5)
      ? { type: "timeoutNow", ...header }
      : { type: "readIndexResponse", ...header, contexts: [1, 2, 3], index: 0 };
    return { message, reason: "not_from_leader" };
  }

  /** From a follower's own leader: entries with a gap after prevLogIndex. */
  private asMalformedLeader({ status }: ForgeryContext): Forgery | null {
    if (status.role !== "follower" || status.leader === null) return null;
    const entry: LogEntry = { kind: "noop", index: status.lastIndex + 2, term: status.term };
    const message: Message = { type: "appendEntries", from: status.leader, to: status.id, term: status.term, prevLogIndex: status.lastIndex, prevLogTerm: 0, entries: [entry], commit: entry.index };
    return { message, reason: "malformed_message" };
  }
}

/** A complete one-chunk snapshot of another cluster, at `index`. */
function foreignSnapshot(status: RaftStatus, index: number): SnapshotChunk {
  const data = new Uint8Array([1, 2, 3, 4]);
  return { metadata: { index, term: status.term, membership: status.membership, sizeBytes: data.byteLength }, offset: 0, data, last: true };
}
