import { assert } from "../util/assert.js";
import { entriesSizeBytes, entrySizeBytes } from "./log-entry.js";
import { changeMembership, isVoter, peersOf } from "./membership.js";
import { Progress } from "./progress.js";
import { hasQuorum, quorumValue, voteOutcome } from "./quorum.js";
import { RaftLog } from "./raft-log.js";
import { ReadForwarder, ReadIndexBatcher } from "./read-index.js";
import { RefusalCollector } from "./refusals.js";
import { SnapshotReceiver } from "./snapshot-receiver.js";
import { MAX_TERM, RaftError } from "./types.js";
import type {
  HardState,
  LogEntry,
  Membership,
  MembershipChange,
  MembershipChangeOptions,
  Message,
  NodeId,
  PersistedPoint,
  RaftConfig,
  RaftStatus,
  ReadState,
  Ready,
  RefusalReason,
  Role,
  SnapshotChunk,
  SoftState,
} from "./types.js";

/** Reads waiting at one node (leader batch, held until the term's first commit, or forwarded). */
const MAX_PENDING_READS = 10_000;
/** Committed entries handed out per Ready, so one Ready never holds the whole log in memory. */
const MAX_COMMITTED_BYTES_PER_READY = 64 * 1024 * 1024;

/** Defaults in the spirit of etcd: 10-tick elections, 1-tick heartbeats, 1 MiB messages. */
export function defaultRaftConfig(
  partial: Pick<RaftConfig, "id" | "storage" | "random"> & Partial<RaftConfig>,
): RaftConfig {
  return {
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxEntriesBytesPerMessage: 1024 * 1024,
    maxInflightMessages: 256,
    maxInflightBytes: 16 * 1024 * 1024,
    maxUncommittedEntriesBytes: 64 * 1024 * 1024,
    maxSnapshotChunkBytes: 1024 * 1024,
    applied: 0,
    ...partial,
  };
}

type Campaign = "preElection" | "election" | "transfer";
type EntryBody =
  | { readonly kind: "noop" }
  | { readonly kind: "command"; readonly data: Uint8Array }
  | { readonly kind: "membership"; readonly membership: Membership };
type LeaderMessage = Extract<Message, { type: "appendEntries" | "heartbeat" | "installSnapshot" }>;
/** A read to answer: `from` is this node or the follower that forwarded it; null index = failed. */
interface ReadAnswer {
  readonly context: number;
  readonly from: NodeId;
  readonly index: number | null;
}
/** What the outstanding Ready handed out to apply, acknowledged by advance(). */
interface OutstandingReady {
  readonly appliedTo: number;
}

/**
 * The Raft core as a pure state machine (etcd-io/raft's design): inputs are tick(), step()
 * and the client calls; output is the Ready batch. Role behaviour is swapped in by the
 * become* methods as a step and a tick function.
 */
export class RaftNode {
  private readonly id: NodeId;
  private readonly log: RaftLog;
  private term: number;
  private vote: NodeId | null;
  private role: Role = "follower";
  private leader: NodeId | null = null;
  private membership: Membership;
  private applied: number;
  /** Applied index once the outstanding Ready is handled. */
  private applying: number;
  private electionElapsedTicks = 0;
  private heartbeatElapsedTicks = 0;
  private randomizedElectionTimeoutTicks = 0;
  private stepRole: (message: Message) => void = (message) => this.stepFollower(message);
  private tickRole: () => void = () => this.tickElection();
  private readonly votes = new Map<NodeId, boolean>();
  private readonly progress = new Map<NodeId, Progress>();
  private transferTarget: NodeId | null = null;
  /** New entries were appended by this leader and not yet offered to the followers. */
  private replicationPending = false;
  /** The commit index moved and the followers have not been told yet. */
  private commitBroadcastPending = false;
  /** Bytes of this leader's proposals not yet committed (maxUncommittedEntriesBytes). */
  private uncommittedBytes = 0;
  private leaderReads = new ReadIndexBatcher(MAX_PENDING_READS);
  /** Leader reads that arrived before an entry of this term committed (dissertation §6.4 step 1). */
  private readsAwaitingTermCommit: { readonly context: number; readonly from: NodeId }[] = [];
  private readonly readForwarder = new ReadForwarder(MAX_PENDING_READS);
  private readonly snapshotReceiver = new SnapshotReceiver();
  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  private droppedReads: number[] = [];
  private snapshotChunks: SnapshotChunk[] = [];
  private readonly refusals = new RefusalCollector();
  private previousSoftState: SoftState = { role: "follower", leader: null };
  private previousHardState: HardState;
  private outstanding: OutstandingReady | undefined;

  constructor(private readonly config: RaftConfig) {
    assert(config.heartbeatIntervalTicks > 0, "heartbeatIntervalTicks must be positive");
    assert(config.electionTimeoutTicks > config.heartbeatIntervalTicks, "election timeout must exceed the heartbeat interval");
    assert(config.maxInflightMessages > 0 && config.maxSnapshotChunkBytes > 0, "flow-control limits must be positive");
    this.id = config.id;
    this.log = new RaftLog(config.storage);
    const { hardState } = config.storage.initialState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.previousHardState = hardState;
    this.membership = this.log.membership();
    assert(config.applied <= this.log.committed, `applied ${config.applied} beyond commit ${this.log.committed}`);
    this.applied = config.applied;
    this.applying = config.applied;
    this.becomeFollower(this.term, null);
  }

  // ---- public API -------------------------------------------------------------------------

  tick(): void {
    this.tickRole();
  }

  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id) return;
    // The peer codec refuses such terms already; the core does not rely on its driver for it.
    if (message.term > MAX_TERM) return this.refuse("term_beyond_bound", message);
    if (message.term > this.term && !this.acceptHigherTerm(message)) return;
    if (message.term < this.term) return this.answerLowerTerm(message);
    if (message.type === "requestVote") return this.handleVoteRequest(message);
    this.stepRole(message);
  }

  propose(commands: readonly Uint8Array[]): { readonly firstIndex: number; readonly term: number } {
    this.assertCanPropose();
    const bytes = commands.reduce((sum, data) => sum + entrySizeBytes({ kind: "command", data, index: 0, term: 0 }), 0);
    this.reserveUncommitted(bytes);
    const firstIndex = this.appendAsLeader(commands.map((data) => ({ kind: "command", data })));
    return { firstIndex, term: this.term };
  }

  proposeMembershipChange(change: MembershipChange, options: MembershipChangeOptions = {}): { readonly index: number; readonly term: number } {
    this.assertCanPropose();
    if (this.log.membershipChangePending()) {
      throw new RaftError("MEMBERSHIP_CHANGE_PENDING", "a membership change is not committed yet");
    }
    // A new leader commits an entry of its term before changing membership, otherwise two
    // single-server changes from different terms could form disjoint quorums (raft-dev, 2015).
    if (!this.committedInCurrentTerm()) {
      throw new RaftError("MEMBERSHIP_CHANGE_PENDING", "the leader has not committed an entry of its term yet");
    }
    const membership = changeMembership(this.membership, change);
    if (options.force !== true) this.checkChangeKeepsQuorum(change, membership);
    this.reserveUncommitted(entrySizeBytes({ kind: "membership", membership, index: 0, term: 0 }));
    const index = this.appendAsLeader([{ kind: "membership", membership }]);
    return { index, term: this.term };
  }

  /**
   * The driver learned that `peer`'s process restarted (a new incarnation on its link): it may
   * have lost a tail it had not synced (fsync "interval"), so what it acknowledged no longer
   * counts. Its progress
   * probes again from the end of the log (see Progress.forgetMatch for why this is safe), and the
   * log's consistency check or a snapshot catches it up, without a change of leader.
   */
  resetProgress(peer: NodeId): void {
    if (this.role !== "leader" || peer === this.id) return;
    const progress = this.progress.get(peer);
    if (progress === undefined) return;
    progress.forgetMatch(this.log.lastIndex() + 1);
    this.sendAppend(peer, true);
  }

  readIndex(context: number): void {
    if (this.role === "leader") return this.leaderRead(context, this.id);
    if (this.leader === null || !this.readForwarder.add(context)) this.droppedReads.push(context);
  }

  transferLeadership(to: NodeId): void {
    if (this.role !== "leader") throw new RaftError("NOT_LEADER", `${this.id} is not the leader`, this.leader);
    if (to === this.id || this.transferTarget === to) return;
    if (!isVoter(this.membership, to)) {
      throw new RaftError("INVALID_MEMBERSHIP_CHANGE", `transfer target ${to} is not a voter`);
    }
    this.transferTarget = to;
    // The transfer is aborted when it has not finished within one election timeout.
    this.electionElapsedTicks = 0;
    if (this.progress.get(to)?.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.replicateTo(to);
  }

  campaign(): void {
    this.hup(this.config.preVote ? "preElection" : "election");
  }

  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    return (
      this.softStateChanged() ||
      this.hardStateChanged() ||
      this.log.entriesToPersist().length > 0 ||
      this.log.snapshotToPersist() !== undefined ||
      this.snapshotChunks.length > 0 ||
      this.messages.length > 0 ||
      this.readStates.length > 0 ||
      this.droppedReads.length > 0 ||
      this.refusals.hasRecords() ||
      this.applicableIndex() > this.nextApplyFloor() ||
      this.readForwarder.hasUnsent() ||
      (this.role === "leader" && (this.replicationPending || this.commitBroadcastPending)) ||
      (this.role === "leader" && this.leaderReads.hasUnissuedReads())
    );
  }

  ready(): Ready {
    assert(this.outstanding === undefined, "ready() called while the previous Ready is not advanced");
    this.flushReplication();
    this.flushReads();
    const snapshot = this.log.snapshotToPersist();
    const entries = [...this.log.entriesToPersist()];
    this.log.markInProgress();
    const committedEntries = this.nextCommittedEntries();
    const softState = this.softState();
    const hardState = this.hardState();
    const ready: Ready = {
      ...(this.softStateChanged() ? { softState } : {}),
      ...(this.hardStateChanged() ? { hardState } : {}),
      ...(snapshot === undefined ? {} : { snapshot }),
      entries,
      snapshotChunks: this.snapshotChunks,
      committedEntries,
      messages: this.messages,
      readStates: this.readStates,
      droppedReads: this.droppedReads,
      refusedMessages: this.refusals.take(),
    };
    this.outstanding = {
      appliedTo: committedEntries[committedEntries.length - 1]?.index ?? this.nextApplyFloor(),
    };
    this.applying = this.outstanding.appliedTo;
    this.previousSoftState = softState;
    this.previousHardState = hardState;
    this.snapshotChunks = [];
    this.messages = [];
    this.readStates = [];
    this.droppedReads = [];
    return ready;
  }

  /**
   * The driver has taken the outstanding Ready: its messages are sent or scheduled, its write
   * issued, its committed entries applied. The next Ready may come while writes are in flight.
   */
  advance(): void {
    const done = this.outstanding;
    assert(done !== undefined, "advance() without an outstanding Ready");
    this.outstanding = undefined;
    assert(done.appliedTo >= this.applied && done.appliedTo <= this.log.committed, "applied must stay within [applied, commit]");
    this.applied = done.appliedTo;
  }

  /**
   * A write the driver issued is durable (etcd's MsgStorageAppendResp): a Ready's snapshot and
   * entries, reported in the order the Readies were handed out. Any time, between Readies or not.
   */
  persisted(point: PersistedPoint): void {
    if (point.snapshotIndex !== undefined) this.log.stableSnapshotTo(point.snapshotIndex);
    if (point.lastEntry !== undefined) this.log.stableTo(point.lastEntry.index, point.lastEntry.term);
    if (this.role !== "leader") return;
    // The leader counts its own entries only once they are durable.
    this.progress.get(this.id)?.maybeUpdate(this.log.persistedLastIndex());
    this.advanceCommit();
  }

  status(): RaftStatus {
    const progress: Record<NodeId, { match: number; next: number; state: "probe" | "replicate" | "snapshot" }> = {};
    if (this.role === "leader") {
      for (const [id, peer] of this.progress) progress[id] = { match: peer.match, next: peer.next, state: peer.state };
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.applied,
      lastIndex: this.log.lastIndex(),
      membership: this.membership,
      progress,
    };
  }

  // ---- term and role transitions ----------------------------------------------------------

  private setTerm(term: number): void {
    assert(term >= this.term, `term must never decrease (${this.term} -> ${term})`);
    if (term === this.term) return;
    this.term = term;
    this.vote = null;
  }

  private setVote(candidate: NodeId): void {
    assert(this.vote === null || this.vote === candidate, `second vote in term ${this.term}`);
    this.vote = candidate;
  }

  private reset(term: number): void {
    this.failPendingReads();
    if (term !== this.term) this.snapshotReceiver.reset();
    this.setTerm(term);
    this.leader = null;
    this.electionElapsedTicks = 0;
    this.heartbeatElapsedTicks = 0;
    this.randomizedElectionTimeoutTicks =
      this.config.electionTimeoutTicks + Math.floor(this.config.random() * this.config.electionTimeoutTicks);
    this.votes.clear();
    this.progress.clear();
    this.transferTarget = null;
    this.replicationPending = false;
    this.commitBroadcastPending = false;
    this.uncommittedBytes = 0;
    this.leaderReads = new ReadIndexBatcher(MAX_PENDING_READS);
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.leader = leader;
    this.role = "follower";
    this.stepRole = (message) => this.stepFollower(message);
    this.tickRole = () => this.tickElection();
  }

  /** Pre-vote (dissertation §9.6): ask whether we could win before disturbing anyone's term. */
  private becomePreCandidate(): void {
    this.failPendingReads();
    this.leader = null;
    this.electionElapsedTicks = 0;
    this.votes.clear();
    this.role = "preCandidate";
    this.stepRole = (message) => this.stepCandidate(message);
    this.tickRole = () => this.tickElection();
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.setVote(this.id);
    this.role = "candidate";
    this.stepRole = (message) => this.stepCandidate(message);
    this.tickRole = () => this.tickElection();
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.leader = this.id;
    this.role = "leader";
    this.stepRole = (message) => this.stepLeader(message);
    this.tickRole = () => this.tickLeader();
    const own = this.newProgress();
    own.maybeUpdate(this.log.persistedLastIndex());
    this.progress.set(this.id, own);
    this.syncProgress();
    // Raft §8: an entry of the new term lets earlier entries commit and unblocks ReadIndex.
    this.appendAsLeader([{ kind: "noop" }]);
  }

  private newProgress(): Progress {
    return new Progress(this.log.lastIndex() + 1, this.config.maxInflightMessages, this.config.maxInflightBytes);
  }

  /**
   * Leader: one Progress per member (and itself), following the configuration in force. A
   * removed member keeps receiving entries until its removal commits, so that it learns it was
   * removed and does not campaign; it never counts toward a quorum meanwhile.
   */
  private syncProgress(): void {
    const peers = peersOf(this.membership, this.id);
    const removalCommitted = !this.log.membershipChangePending();
    for (const id of this.progress.keys()) {
      if (id !== this.id && !peers.includes(id) && removalCommitted) this.progress.delete(id);
    }
    for (const id of peers) {
      if (!this.progress.has(id)) this.progress.set(id, this.newProgress());
    }
  }

  /** The configuration is the latest membership entry in the log; it changes on append and truncation. */
  private onLogChanged(): void {
    const latest = this.log.membership();
    if (latest === this.membership) return;
    this.membership = latest;
    if (this.role !== "leader") return;
    this.syncProgress();
    if (this.transferTarget !== null && !isVoter(latest, this.transferTarget)) this.transferTarget = null;
  }

  // ---- ticks --------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsedTicks++;
    if (!this.promotable() || this.electionElapsedTicks < this.randomizedElectionTimeoutTicks) return;
    this.electionElapsedTicks = 0;
    this.campaign();
  }

  private tickLeader(): void {
    for (const peer of this.progress.values()) peer.inactiveTicks++;
    this.heartbeatElapsedTicks++;
    this.electionElapsedTicks++;
    this.tickSnapshotTransfers();
    if (this.electionElapsedTicks >= this.config.electionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      this.transferTarget = null;
      if (this.config.checkQuorum && !this.quorumActive()) return this.becomeFollower(this.term, null);
    }
    if (this.heartbeatElapsedTicks >= this.config.heartbeatIntervalTicks) {
      this.heartbeatElapsedTicks = 0;
      this.broadcastHeartbeat();
    }
  }

  /** Check-quorum: did a quorum of voters answer within the last election timeout? */
  private quorumActive(): boolean {
    return hasQuorum(this.membership.voters, (id) => this.recentlyActive(id));
  }

  /** This node, or a member heard from within the last election timeout. */
  private recentlyActive(id: NodeId): boolean {
    const inactiveTicks = this.progress.get(id)?.inactiveTicks ?? Number.POSITIVE_INFINITY;
    return id === this.id || inactiveTicks <= this.config.electionTimeoutTicks;
  }

  /**
   * Refuses a change after which the voters would have no quorum among the members this leader
   * currently hears from (etcd's --strict-reconfig-check): it could not commit, or would leave
   * a cluster that cannot commit anything else. A promoted learner must hold every committed
   * entry, or the new, larger quorum would wait for it.
   */
  private checkChangeKeepsQuorum(change: MembershipChange, next: Membership): void {
    if (change.type === "promote") {
      const match = this.progress.get(change.node)?.match ?? 0;
      if (match < this.log.committed) {
        throw new RaftError("UNSAFE_MEMBERSHIP_CHANGE", `learner ${change.node} holds entries up to ${match}, behind the commit index ${this.log.committed}: promote it once it caught up, or force it`, this.leader);
      }
    }
    if (hasQuorum(next.voters, (id) => this.recentlyActive(id))) return;
    const heard = next.voters.filter((id) => this.recentlyActive(id));
    throw new RaftError(
      "UNSAFE_MEMBERSHIP_CHANGE",
      `after this change the voters [${next.voters.join(", ")}] would have no quorum among the members the leader hears from ([${heard.join(", ")}]); force it to go ahead anyway`,
      this.leader,
    );
  }

  // ---- elections ----------------------------------------------------------------------------

  private promotable(): boolean {
    return isVoter(this.membership, this.id);
  }

  private hup(campaign: Campaign): void {
    if (!this.promotable() || this.role === "leader") return;
    // No peer accepts a term beyond the bound; reaching it takes 2^40 elections.
    if (this.term >= MAX_TERM) return;
    if (campaign === "preElection") this.becomePreCandidate();
    else this.becomeCandidate();
    this.votes.set(this.id, true);
    if (this.tallyVotes()) return;
    const preVote = campaign === "preElection";
    for (const voter of this.membership.voters) {
      if (voter === this.id) continue;
      this.messages.push({
        type: "requestVote",
        from: this.id,
        to: voter,
        term: preVote ? this.term + 1 : this.term,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        preVote,
        transfer: campaign === "transfer",
      });
    }
  }

  /** Acts on the votes so far; true when the election is decided. */
  private tallyVotes(): boolean {
    const outcome = voteOutcome(this.membership.voters, this.votes);
    if (outcome === "won" && this.role === "preCandidate") this.hup("election");
    else if (outcome === "won") this.becomeLeader();
    else if (outcome === "lost") this.becomeFollower(this.term, null);
    return outcome !== "pending";
  }

  /** A message from a later term: false when it must be ignored (leader lease, §4.2.3 / §9.6). */
  private acceptHigherTerm(message: Message): boolean {
    if (message.type === "requestVote") {
      const leaderIsLive = this.leader !== null && this.electionElapsedTicks < this.config.electionTimeoutTicks;
      const leaseApplies = this.config.checkQuorum || message.preVote;
      if (leaderIsLive && leaseApplies && !message.transfer) return false;
      if (message.preVote) return true;
    }
    // A granted pre-vote carries the term the candidate will run in: adopt it only on winning.
    if (message.type === "requestVoteResponse" && message.preVote && message.granted) return true;
    this.becomeFollower(message.term, this.isFromLeader(message) ? message.from : null);
    return true;
  }

  private isFromLeader(message: Message): message is LeaderMessage {
    return message.type === "appendEntries" || message.type === "heartbeat" || message.type === "installSnapshot";
  }

  /** A message from an earlier term: answer so that a stale leader or pre-candidate learns our term. */
  private answerLowerTerm(message: Message): void {
    if (this.isFromLeader(message) && (this.config.checkQuorum || this.config.preVote)) {
      this.send({ type: "appendEntriesResponse", ...this.header(message.from), success: false, matchIndex: 0 });
    } else if (message.type === "requestVote" && message.preVote) {
      this.send({ type: "requestVoteResponse", ...this.header(message.from), granted: false, preVote: true });
    } else if (message.type === "readIndex") {
      this.send({ type: "readIndexResponse", ...this.header(message.from), contexts: message.contexts, index: null });
    }
  }

  private handleVoteRequest(message: Extract<Message, { type: "requestVote" }>): void {
    const canVote =
      this.vote === message.from ||
      (this.vote === null && this.leader === null) ||
      (message.preVote && message.term > this.term);
    const grant = this.promotable() && canVote && this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    if (grant && !message.preVote) {
      this.electionElapsedTicks = 0;
      this.setVote(message.from);
    }
    // A granted pre-vote answers in the candidate's future term; anything else in ours.
    const term = grant && message.preVote ? message.term : this.term;
    this.send({ type: "requestVoteResponse", from: this.id, to: message.from, term, granted: grant, preVote: message.preVote });
  }

  // ---- per-role step functions --------------------------------------------------------------

  private stepFollower(message: Message): void {
    switch (message.type) {
      case "appendEntries":
      case "heartbeat":
      case "installSnapshot":
        // One leader per term (Raft §5.2): another node claiming this term is not a leader.
        if (this.leader !== null && this.leader !== message.from) return this.refuse("leader_conflict", message);
        this.electionElapsedTicks = 0;
        this.leader = message.from;
        return this.handleLeaderMessage(message);
      case "timeoutNow":
        if (this.leader !== null && this.leader !== message.from) return this.refuse("not_from_leader", message);
        return this.hup("transfer");
      case "readIndex":
        return this.refuseForwardedReads(message.from, message.contexts);
      case "readIndexResponse":
        return this.handleReadIndexResponse(message);
      default:
        return;
    }
  }

  private stepCandidate(message: Message): void {
    if (this.isFromLeader(message)) {
      this.becomeFollower(this.term, message.from);
      return this.stepFollower(message);
    }
    if (message.type === "readIndex") return this.refuseForwardedReads(message.from, message.contexts);
    if (message.type !== "requestVoteResponse" || message.preVote !== (this.role === "preCandidate")) return;
    this.votes.set(message.from, message.granted);
    this.tallyVotes();
  }

  private stepLeader(message: Message): void {
    // This node leads this term, so no other node does (Raft §5.2): the sender is broken or forged.
    if (this.isFromLeader(message)) return this.refuse("two_leaders", message);
    if (message.type === "readIndex") {
      for (const context of message.contexts) this.leaderRead(context, message.from);
      return;
    }
    const peer = this.progress.get(message.from);
    if (peer === undefined) return;
    const refusal = this.contradictsLeader(message);
    if (refusal !== undefined) return this.refuse(refusal, message);
    peer.inactiveTicks = 0;
    if (message.type === "appendEntriesResponse") this.handleAppendResponse(message, peer);
    else if (message.type === "heartbeatResponse") this.handleHeartbeatResponse(message, peer);
    else if (message.type === "installSnapshotResponse") this.handleSnapshotResponse(message, peer);
  }

  /** A follower's answer that claims what this leader never sent. */
  private contradictsLeader(message: Message): RefusalReason | undefined {
    const lastIndex = this.log.lastIndex();
    if (message.type === "appendEntriesResponse" && message.success && message.matchIndex > lastIndex) return "match_beyond_log";
    if (message.type === "installSnapshotResponse" && message.done && message.snapshotIndex > lastIndex) return "snapshot_beyond_log";
    if (message.type === "heartbeatResponse" && message.readRound > this.leaderReads.issuedRound) return "read_round_beyond_issued";
    return undefined;
  }

  /** Drops a message that contradicts this node's state, for the driver to log and count. */
  private refuse(reason: RefusalReason, message: Message): void {
    this.refusals.record(reason, message);
  }

  // ---- follower side of replication ---------------------------------------------------------

  private handleLeaderMessage(message: LeaderMessage): void {
    if (message.type === "appendEntries") this.handleAppendEntries(message);
    else if (message.type === "heartbeat") this.handleHeartbeat(message);
    else this.handleSnapshotChunk(message);
  }

  /**
   * Acknowledges only the index the leader's terms confirm, also below our commit index: a
   * follower that vouched for entries it does not hold would let the leader count it.
   */
  private handleAppendEntries(message: Extract<Message, { type: "appendEntries" }>): void {
    if (!isWellFormedAppend(message)) return this.refuse("malformed_message", message);
    const reply = { type: "appendEntriesResponse", ...this.header(message.from), matchIndex: message.prevLogIndex } as const;
    const outcome = this.log.maybeAppend(message.prevLogIndex, message.prevLogTerm, message.commit, message.entries);
    switch (outcome.kind) {
      case "matched":
        this.onLogChanged();
        return this.send({ ...reply, success: true, matchIndex: outcome.lastIndex });
      case "contradiction":
        return this.refuse("committed_conflict", message);
      case "compacted": {
        // The probe lies inside our snapshot: point the leader at the snapshot's entry, which it
        // can compare with its own log and probe from.
        const rejectHint = { index: outcome.snapshotIndex, term: this.log.term(outcome.snapshotIndex) ?? 0 };
        return this.send({ ...reply, success: false, rejectHint });
      }
      case "mismatch": {
        // Fast backtracking: point the leader at the last index that can match its term.
        const hintIndex = this.log.findConflictByTerm(Math.min(message.prevLogIndex, this.log.lastIndex()), message.prevLogTerm);
        const rejectHint = { index: hintIndex, term: this.log.term(hintIndex) ?? 0 };
        return this.send({ ...reply, success: false, rejectHint });
      }
    }
  }

  private handleHeartbeat(message: Extract<Message, { type: "heartbeat" }>): void {
    // A leader sends min(match, commit), so a commit beyond our log means this node lost the
    // entries it once acknowledged (a wiped data directory). Taking it would break the log
    // invariant; ignoring it lets AppendEntries rebuild the log through its consistency check.
    if (message.commit <= this.log.lastIndex()) this.log.commitTo(message.commit);
    this.send({ type: "heartbeatResponse", ...this.header(message.from), readRound: message.readRound });
  }

  /** Receives one chunk; the answer tells the leader where to resume (or that it is installed). */
  private handleSnapshotChunk(message: Extract<Message, { type: "installSnapshot" }>): void {
    const { chunk } = message;
    if (chunk.metadata.term > message.term) return this.refuse("malformed_message", message);
    if (chunk.metadata.index <= this.log.committed) return this.answerCoveredSnapshot(message);
    const verdict = this.snapshotReceiver.receive(chunk);
    if (verdict.kind === "resend") return this.replySnapshot(message.from, chunk.metadata.index, verdict.nextOffset, false);
    this.snapshotChunks.push(chunk);
    if (verdict.kind === "accepted") return this.replySnapshot(message.from, chunk.metadata.index, verdict.nextOffset, false);
    this.log.restore(chunk.metadata);
    this.onLogChanged();
    this.replySnapshot(message.from, chunk.metadata.index, verdict.nextOffset, true);
  }

  /** A snapshot our commit index covers: `done` only for what our log really holds. */
  private answerCoveredSnapshot(message: Extract<Message, { type: "installSnapshot" }>): void {
    const { index, term } = message.chunk.metadata;
    const heldTerm = this.log.term(index);
    if (heldTerm === term) return this.replySnapshot(message.from, index, 0, true);
    if (heldTerm !== undefined) return this.refuse("committed_conflict", message);
    // Inside a later snapshot of ours, whose terms are gone: nothing to vouch for. The leader
    // probes next, and the log's consistency check finds where we stand.
    this.replySnapshot(message.from, 0, 0, true);
  }

  private replySnapshot(to: NodeId, snapshotIndex: number, nextOffset: number, done: boolean): void {
    this.send({ type: "installSnapshotResponse", ...this.header(to), snapshotIndex, nextOffset, done });
  }

  // ---- leader side of replication -----------------------------------------------------------

  private assertCanPropose(): void {
    if (this.role !== "leader") throw new RaftError("NOT_LEADER", `${this.id} is not the leader`, this.leader);
    if (this.transferTarget !== null) {
      throw new RaftError("TRANSFERRING", `leadership is moving to ${this.transferTarget}`, this.leader);
    }
  }

  private reserveUncommitted(bytes: number): void {
    // An empty budget always admits one proposal, so that a single large entry can progress.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.config.maxUncommittedEntriesBytes) {
      throw new RaftError("BUSY", `more than ${this.config.maxUncommittedEntriesBytes} uncommitted bytes`, this.leader);
    }
    this.uncommittedBytes += bytes;
  }

  /** Appends at the end of the leader's log (a leader never truncates its own log) and replicates. */
  private appendAsLeader(bodies: readonly EntryBody[]): number {
    const firstIndex = this.log.lastIndex() + 1;
    const entries = bodies.map((body, offset): LogEntry => ({ ...body, index: firstIndex + offset, term: this.term }));
    this.log.append(entries);
    assert(this.log.lastIndex() === firstIndex + entries.length - 1, "the leader's log only grows");
    this.onLogChanged();
    this.replicationPending = true;
    return firstIndex;
  }

  /**
   * Proposals and commit advances are sent when the Ready is built, not one by one: every
   * proposal since the last Ready travels in the same AppendEntries batch, and followers hear
   * of a new commit index once per Ready.
   */
  private flushReplication(): void {
    const broadcastCommit = this.commitBroadcastPending;
    if (!this.replicationPending && !broadcastCommit) return;
    this.replicationPending = false;
    this.commitBroadcastPending = false;
    if (this.role !== "leader") return;
    for (const peer of this.progress.keys()) {
      if (peer === this.id) continue;
      if (broadcastCommit) this.sendAppend(peer, true);
      this.replicateTo(peer);
    }
  }

  /** Sends as many AppendEntries as flow control allows (one in probe, a window in replicate). */
  private replicateTo(peer: NodeId): void {
    while (this.sendAppend(peer, false));
  }

  /** Sends one AppendEntries (or starts a snapshot); true when one with entries left. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const peer = this.progress.get(to);
    if (peer === undefined || peer.isPaused()) return false;
    const prevLogIndex = peer.next - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    const entries =
      prevLogTerm === undefined ? undefined : this.log.entries(peer.next, this.log.lastIndex() + 1, this.config.maxEntriesBytesPerMessage);
    if (prevLogTerm === undefined || entries === undefined) {
      this.startSnapshot(to, peer);
      return false;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: "appendEntries", ...this.header(to), prevLogIndex, prevLogTerm, entries, commit: this.log.committed });
    peer.sentEntries(entries[entries.length - 1]?.index, entriesSizeBytes(entries));
    return entries.length > 0;
  }

  private handleAppendResponse(message: Extract<Message, { type: "appendEntriesResponse" }>, peer: Progress): void {
    if (!message.success) {
      const hint = message.rejectHint;
      const matchHint = hint === undefined ? message.matchIndex - 1 : this.log.findConflictByTerm(hint.index, hint.term);
      if (peer.maybeDecreaseTo(message.matchIndex, matchHint)) this.replicateTo(message.from);
      return;
    }
    const wasPaused = peer.isPaused();
    if (!peer.maybeUpdate(message.matchIndex)) return;
    if (peer.state === "probe") peer.becomeReplicate();
    else if (peer.state === "replicate") peer.inflights.freeTo(message.matchIndex);
    const committed = this.advanceCommit();
    if (this.role !== "leader") return;
    // A paused follower missed the commit broadcast: tell it now, not at the next heartbeat.
    if (!committed && wasPaused) this.sendAppend(message.from, true);
    this.replicateTo(message.from);
    if (this.transferTarget === message.from && peer.match === this.log.lastIndex()) this.sendTimeoutNow(message.from);
  }

  private handleHeartbeatResponse(message: Extract<Message, { type: "heartbeatResponse" }>, peer: Progress): void {
    peer.probeSent = false;
    // A full window after lost messages would stall forever: free a slot to probe again (etcd).
    if (peer.state === "replicate" && peer.inflights.full()) peer.inflights.freeFirst();
    peer.readRoundAcked = Math.max(peer.readRoundAcked, message.readRound);
    this.releaseConfirmedReads();
    if (peer.match < this.log.lastIndex()) this.sendAppend(message.from, true);
  }

  /** Raft §5.4.2: only an entry of the current term commits by counting replicas. True when commit moved. */
  private advanceCommit(): boolean {
    const previousCommit = this.log.committed;
    const matches = this.membership.voters.map((id) => this.progress.get(id)?.match ?? 0);
    const index = quorumValue(matches);
    if (index <= previousCommit || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    this.releaseUncommitted(previousCommit);
    this.serveReadsAwaitingTermCommit();
    this.syncProgress();
    this.commitBroadcastPending = true;
    // A leader removed from the configuration leaves once the removal is committed (§4.2.2),
    // after telling the others what is committed.
    if (!this.promotable() && !this.log.membershipChangePending()) {
      this.flushReplication();
      this.becomeFollower(this.term, null);
    }
    return true;
  }

  private releaseUncommitted(previousCommit: number): void {
    let low = previousCommit + 1;
    while (low <= this.log.committed && this.uncommittedBytes > 0) {
      const entries = this.log.entries(low, this.log.committed + 1, MAX_COMMITTED_BYTES_PER_READY) ?? [];
      assert(entries.length > 0, "newly committed entries are in the log");
      for (const entry of entries) {
        if (entry.term === this.term && entry.kind !== "noop") this.uncommittedBytes -= entrySizeBytes(entry);
      }
      low += entries.length;
    }
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: "timeoutNow", ...this.header(to) });
  }

  private broadcastHeartbeat(): void {
    for (const [id, peer] of this.progress) {
      if (id === this.id) continue;
      const commit = Math.min(peer.match, this.log.committed);
      this.send({ type: "heartbeat", ...this.header(id), commit, readRound: this.leaderReads.issuedRound });
    }
  }

  // ---- snapshots (leader side) ----------------------------------------------------------------

  private startSnapshot(to: NodeId, peer: Progress): void {
    peer.becomeSnapshot(this.config.storage.snapshotMetadata().index);
    this.sendSnapshotChunk(to, peer, 0);
  }

  /** Sends the chunk at `offset`; restarts at 0 when the snapshot was replaced by a newer one. */
  private sendSnapshotChunk(to: NodeId, peer: Progress, offset: number): void {
    const metadata = this.config.storage.snapshotMetadata();
    const replaced = peer.snapshot?.index !== metadata.index;
    if (replaced) peer.becomeSnapshot(metadata.index);
    const transfer = peer.snapshot;
    assert(transfer !== undefined, "snapshot state has a transfer");
    const start = replaced || offset > metadata.sizeBytes ? 0 : offset;
    const data = this.config.storage.readSnapshotChunk(start, this.config.maxSnapshotChunkBytes);
    const end = start + data.byteLength;
    transfer.ackedOffset = start;
    transfer.inFlightEnd = end;
    transfer.idleTicks = 0;
    const chunk: SnapshotChunk = { metadata, offset: start, data, last: end >= metadata.sizeBytes };
    this.send({ type: "installSnapshot", ...this.header(to), chunk });
  }

  private handleSnapshotResponse(message: Extract<Message, { type: "installSnapshotResponse" }>, peer: Progress): void {
    if (message.done) {
      peer.maybeUpdate(message.snapshotIndex);
      // From right after what the follower says it holds (match, now at least snapshotIndex).
      if (peer.state === "snapshot") peer.becomeProbe();
      this.advanceCommit();
      if (this.role === "leader") this.replicateTo(message.from);
      return;
    }
    const transfer = peer.snapshot;
    if (transfer === undefined || message.snapshotIndex !== transfer.index) return;
    // Only the answer to the chunk in flight (or a restart request) moves the stream on;
    // duplicates are dropped so that at most one chunk is ever in flight.
    if (message.nextOffset === transfer.inFlightEnd || message.nextOffset === 0) {
      this.sendSnapshotChunk(message.from, peer, message.nextOffset);
    }
  }

  /** A chunk lost on the way would stall the transfer: resend it after an election timeout. */
  private tickSnapshotTransfers(): void {
    for (const [id, peer] of this.progress) {
      const transfer = peer.snapshot;
      if (transfer === undefined) continue;
      transfer.idleTicks++;
      if (transfer.idleTicks >= this.config.electionTimeoutTicks) this.sendSnapshotChunk(id, peer, transfer.ackedOffset);
    }
  }

  // ---- ReadIndex -----------------------------------------------------------------------------

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private leaderRead(context: number, from: NodeId): void {
    if (!this.committedInCurrentTerm()) {
      if (this.readsAwaitingTermCommit.length < MAX_PENDING_READS) this.readsAwaitingTermCommit.push({ context, from });
      else this.answerReads([{ context, from, index: null }]);
      return;
    }
    const voters = this.membership.voters;
    if (voters.length === 1 && voters[0] === this.id) {
      return this.answerReads([{ context, from, index: this.log.committed }]);
    }
    if (!this.leaderReads.add(context, from, this.log.committed)) this.answerReads([{ context, from, index: null }]);
  }

  private serveReadsAwaitingTermCommit(): void {
    const waiting = this.readsAwaitingTermCommit;
    this.readsAwaitingTermCommit = [];
    for (const read of waiting) this.leaderRead(read.context, read.from);
  }

  /** Called when a Ready is built: one heartbeat round for all new reads, one forward per batch. */
  private flushReads(): void {
    if (this.role === "leader" && this.leaderReads.hasUnissuedReads()) {
      this.leaderReads.issueRound();
      this.broadcastHeartbeat();
      this.releaseConfirmedReads();
    }
    if (!this.readForwarder.hasUnsent()) return;
    // Reads are queued only while a leader is known; any change of it drains the queue.
    assert(this.leader !== null && this.role !== "leader", "forwarded reads need a leader to go to");
    this.send({ type: "readIndex", ...this.header(this.leader), contexts: this.readForwarder.takeUnsent() });
  }

  private releaseConfirmedReads(): void {
    const rounds = this.membership.voters.map((id) =>
      id === this.id ? this.leaderReads.issuedRound : (this.progress.get(id)?.readRoundAcked ?? 0),
    );
    this.answerReads(this.leaderReads.release(quorumValue(rounds)));
  }

  /** Local reads become readStates or droppedReads; forwarded ones one response per (follower, index). */
  private answerReads(reads: readonly ReadAnswer[]): void {
    const responses = new Map<string, { to: NodeId; index: number | null; contexts: number[] }>();
    for (const read of reads) {
      if (read.from === this.id) {
        if (read.index === null) this.droppedReads.push(read.context);
        else this.readStates.push({ index: read.index, context: read.context });
        continue;
      }
      const key = `${read.from}\u0000${read.index}`;
      const response = responses.get(key) ?? { to: read.from, index: read.index, contexts: [] };
      response.contexts.push(read.context);
      responses.set(key, response);
    }
    for (const { to, index, contexts } of responses.values()) {
      this.send({ type: "readIndexResponse", ...this.header(to), contexts, index });
    }
  }

  private refuseForwardedReads(from: NodeId, contexts: readonly number[]): void {
    this.answerReads(contexts.map((context) => ({ context, from, index: null })));
  }

  /**
   * Reads are forwarded to the leader only, and every change of leader fails them, so only the
   * leader's answer settles any. Other nodes answer too, with no index: a node that left the
   * leadership refuses reads it got late. An index from one of them is forged.
   */
  private handleReadIndexResponse(message: Extract<Message, { type: "readIndexResponse" }>): void {
    if (this.leader !== message.from) {
      if (this.leader !== null && message.index !== null) this.refuse("not_from_leader", message);
      return;
    }
    for (const context of this.readForwarder.settle(message.contexts)) {
      if (message.index === null) this.droppedReads.push(context);
      else this.readStates.push({ index: message.index, context });
    }
  }

  /** Leadership, term or role changed: no pending read can be confirmed any more. */
  private failPendingReads(): void {
    const leaderSide = [...this.leaderReads.drain(), ...this.readsAwaitingTermCommit];
    this.readsAwaitingTermCommit = [];
    this.answerReads(leaderSide.map(({ context, from }) => ({ context, from, index: null })));
    this.droppedReads.push(...this.readForwarder.drain());
  }

  // ---- Ready bookkeeping ---------------------------------------------------------------------

  private header(to: NodeId): { readonly from: NodeId; readonly to: NodeId; readonly term: number } {
    return { from: this.id, to, term: this.term };
  }

  private send(message: Message): void {
    this.messages.push(message);
  }

  private softState(): SoftState {
    return { role: this.role, leader: this.leader };
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private softStateChanged(): boolean {
    return this.role !== this.previousSoftState.role || this.leader !== this.previousSoftState.leader;
  }

  private hardStateChanged(): boolean {
    const previous = this.previousHardState;
    return this.term !== previous.term || this.vote !== previous.vote || this.log.committed !== previous.commit;
  }

  /** Everything up to here is applied or being applied (a pending snapshot counts as applied). */
  private nextApplyFloor(): number {
    return Math.max(this.applying, this.log.unstableSnapshot()?.index ?? 0);
  }

  /**
   * Committed entries are applied only once durable here too: with writes in flight a
   * follower can learn an index is committed before its own copy is on disk.
   */
  private applicableIndex(): number {
    return Math.min(this.log.committed, this.log.persistedLastIndex());
  }

  private nextCommittedEntries(): LogEntry[] {
    const low = this.nextApplyFloor() + 1;
    const high = this.applicableIndex();
    if (low > high) return [];
    const entries = this.log.entries(low, high + 1, MAX_COMMITTED_BYTES_PER_READY);
    assert(entries !== undefined, `committed entries from ${low} were compacted before being applied`);
    return entries;
  }
}

/**
 * Entries of an AppendEntries follow prevLogIndex without gaps, with terms that never decrease
 * and never exceed the sender's: anything else comes from a broken peer and is ignored rather
 * than allowed to corrupt the log.
 */
function isWellFormedAppend(message: Extract<Message, { type: "appendEntries" }>): boolean {
  let previousTerm = message.prevLogTerm;
  return message.entries.every((entry, offset) => {
    const wellFormed = entry.index === message.prevLogIndex + 1 + offset && entry.term >= previousTerm && entry.term <= message.term;
    previousTerm = entry.term;
    return wellFormed;
  });
}
