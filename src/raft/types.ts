/**
 * The contract of the Raft core: the data it exchanges with its driver and its peers.
 *
 * The core (`RaftNode`) is a pure state machine in the style of etcd-io/raft: its only inputs
 * are `tick()`, `step(message)` and the proposal / read / configuration calls; its only output
 * is a `Ready` batch that the driver persists, sends and applies before calling `advance()`.
 * It never touches a socket, a file, a timer, `Date.now()` or `Math.random()`.
 *
 * Indexes and terms are plain numbers, kept far below 2^53 by MAX_TERM and MAX_INDEX so that
 * `term + 1`, `index + count` and `offset + bytes` are always exact.
 */

/**
 * The largest term a message may carry (2^40). One election every millisecond would need 34
 * years to reach it, while a peer that claims a term near 2^53 would leave no safe `term + 1`
 * for anyone's next election. Messages beyond it are refused by the peer codec and the core.
 */
export const MAX_TERM = 2 ** 40;

/**
 * The largest index, commit, offset or size in bytes a message may carry (2^48): a million
 * entries per second for 8.9 years, a 256 TiB snapshot, with 2^5 of headroom below 2^53 for
 * every sum the core and the driver compute from it.
 */
export const MAX_INDEX = 2 ** 48;

/** A node's stable identity in the cluster, e.g. "n1" or "127.0.0.1:7001". */
export type NodeId = string;

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** Who votes and who only replicates. A node is in at most one of the two lists. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Network address of each member (for the driver; the core never dials). */
  readonly addresses: Readonly<Record<NodeId, string>>;
}

/** A single-server change; the dissertation's §4.1 one-at-a-time rule keeps quorums overlapping. */
export type MembershipChange =
  | { readonly type: "addLearner"; readonly node: NodeId; readonly address: string }
  | { readonly type: "promote"; readonly node: NodeId }
  | { readonly type: "remove"; readonly node: NodeId };

export interface MembershipChangeOptions {
  /**
   * Skip the safety checks: that the new voters have a quorum among the members the leader
   * hears from, and that a promoted learner has caught up. For an operator who knows better
   * (a member is down for good and must go); without it such a change is refused.
   */
  readonly force?: boolean;
}

interface EntryHeader {
  readonly index: number;
  readonly term: number;
}

/**
 * A log entry. `noop` is what a new leader appends so that it can commit entries of earlier
 * terms (Raft §5.4.2, §8); `membership` carries the complete configuration that takes effect as
 * soon as it is appended (dissertation §4.1); `command` is opaque to the core.
 */
export type LogEntry =
  | (EntryHeader & { readonly kind: "noop" })
  | (EntryHeader & { readonly kind: "command"; readonly data: Uint8Array })
  | (EntryHeader & { readonly kind: "membership"; readonly membership: Membership });

/** The state that must be on disk before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  /** Candidate voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

export interface SnapshotMetadata {
  /** Index and term of the last entry the snapshot covers (0/0 for "no snapshot"). */
  readonly index: number;
  readonly term: number;
  /** Membership in force at `index`. */
  readonly membership: Membership;
  /** Total size of the snapshot data in bytes, so the receiver knows when it is complete. */
  readonly sizeBytes: number;
}

/** A piece of an incoming snapshot that the driver writes to a temporary place. */
export interface SnapshotChunk {
  readonly metadata: SnapshotMetadata;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly last: boolean;
}

/**
 * Read side of the log, the snapshot and the persisted hard state. The driver keeps it up to
 * date with what it persisted from each `Ready` (append entries, install snapshot, compact).
 * All calls are synchronous: like etcd's MemoryStorage, the log tail since the last snapshot is
 * held in memory, while the durable copy lives in the WAL (LevelDB).
 */
export interface LogStorage {
  /** Hard state and membership as persisted, read once when the core starts. */
  initialState(): { readonly hardState: HardState; readonly membership: Membership };
  /** First index still in the log (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** Term of `index` for index in [snapshot index, lastIndex]; undefined outside that range. */
  term(index: number): number | undefined;
  /** Entries in [low, high), at least one even when it alone exceeds maxBytes. */
  entries(low: number, high: number, maxBytes: number): LogEntry[];
  snapshotMetadata(): SnapshotMetadata;
  /** Bytes [offset, offset + maxBytes) of the current snapshot's data. */
  readSnapshotChunk(offset: number, maxBytes: number): Uint8Array;
}

/**
 * What a state machine must do to be replicated. `apply` must be deterministic: same entries,
 * same results and same state on every replica.
 */
export interface StateMachine<Result> {
  apply(entry: LogEntry): Result;
  /** A consistent image of the state as of the last applied index. */
  snapshot(): AsyncIterable<Uint8Array>;
  restore(chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** A linearizable read whose index is confirmed; serve it once applied >= index. */
export interface ReadState {
  readonly index: number;
  readonly context: number;
}

interface MessageHeader {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export type Message =
  | (MessageHeader & {
      readonly type: "requestVote";
      readonly lastLogIndex: number;
      readonly lastLogTerm: number;
      /** Pre-vote round (dissertation §9.6): no term change, no vote recorded. */
      readonly preVote: boolean;
      /** Sent after TimeoutNow: voters must not ignore it because of a live leader. */
      readonly transfer: boolean;
    })
  | (MessageHeader & {
      readonly type: "requestVoteResponse";
      readonly granted: boolean;
      readonly preVote: boolean;
    })
  | (MessageHeader & {
      readonly type: "appendEntries";
      readonly prevLogIndex: number;
      readonly prevLogTerm: number;
      readonly entries: readonly LogEntry[];
      readonly commit: number;
    })
  | (MessageHeader & {
      readonly type: "appendEntriesResponse";
      readonly success: boolean;
      /**
       * On success: the last index now matching the leader's log. On rejection: the rejected
       * prevLogIndex, so the leader can tell a stale rejection from a current one.
       */
      readonly matchIndex: number;
      /** On rejection: a hint for fast backtracking (etcd's conflict index/term). */
      readonly rejectHint?: { readonly index: number; readonly term: number };
    })
  | (MessageHeader & {
      readonly type: "heartbeat";
      readonly commit: number;
      /** The newest ReadIndex batch this heartbeat confirms, 0 when none. */
      readonly readRound: number;
    })
  | (MessageHeader & { readonly type: "heartbeatResponse"; readonly readRound: number })
  | (MessageHeader & {
      readonly type: "installSnapshot";
      readonly chunk: SnapshotChunk;
    })
  | (MessageHeader & {
      readonly type: "installSnapshotResponse";
      /**
       * With `done`: the index of the leader's snapshot this node now verifiably holds (installed,
       * or already in its log with the same term), 0 when it holds a later snapshot of its own
       * and cannot tell (the log's consistency check settles it next). Otherwise: the snapshot
       * being received.
       */
      readonly snapshotIndex: number;
      /** Bytes received so far; the leader continues from here (or restarts at 0). */
      readonly nextOffset: number;
      readonly done: boolean;
    })
  | (MessageHeader & { readonly type: "timeoutNow" })
  /** A follower forwards linearizable reads to the leader, many at once. */
  | (MessageHeader & { readonly type: "readIndex"; readonly contexts: readonly number[] })
  | (MessageHeader & {
      readonly type: "readIndexResponse";
      readonly contexts: readonly number[];
      /** Confirmed read index, or null when the leader could not serve (it lost leadership). */
      readonly index: number | null;
    });

export type MessageType = Message["type"];

/**
 * Why a peer's message was dropped without effect: it contradicts this node's own state, so it
 * comes from a broken or forged peer (or a node that lost its disk), never from a correct one.
 * Assertions guard this node's own state; remote input that would trip one is refused instead.
 */
export const REFUSAL_REASONS = [
  "term_beyond_bound", // a term above MAX_TERM: no `term + 1` would be left for an election
  "two_leaders", // a leader's message in the term this node leads
  "leader_conflict", // a leader's message from another node than the leader of this term
  "not_from_leader", // timeoutNow or readIndexResponse from a node that is not this term's leader
  "malformed_message", // entries with a gap or a term above the sender's, a snapshot newer than its term
  "committed_conflict", // an entry or snapshot that disagrees with an entry this node has committed
  "match_beyond_log", // an acknowledgement of entries this leader never had
  "snapshot_beyond_log", // a snapshot installed beyond this leader's log
  "read_round_beyond_issued", // a ReadIndex round this leader never issued
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A refused message, for the driver to log and count. */
export interface RefusedMessage {
  readonly reason: RefusalReason;
  readonly from: NodeId;
  readonly type: MessageType;
  readonly term: number;
  /** Refusals this record stands for: past a bound per Ready, the same reason adds up here. */
  readonly count: number;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
}

/**
 * One batch of work for the driver. What to do with it, and in which order, is `planReady`
 * (ready-plan.ts): the one plan the node, the simulator and the core tests execute. In short:
 * leader replication leaves at once; `snapshotChunks`, `snapshot`, `entries` (an entry at an
 * existing index replaces it and everything after it) and `hardState` go to disk in one write
 * behind every earlier one, reported with `persisted()` once durable, and the other messages
 * (they may vouch for that write) leave only then; `committedEntries` are already durable and
 * are applied at once; `readStates` are served once applied up to theirs, `droppedReads`
 * failed, `refusedMessages` reported; then `advance()`, and the next Ready may follow while
 * writes are in flight.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly LogEntry[];
  readonly snapshotChunks: readonly SnapshotChunk[];
  /** A fully received snapshot to install: the log before it is discarded. */
  readonly snapshot?: SnapshotMetadata;
  readonly committedEntries: readonly LogEntry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** Read contexts that cannot be confirmed (no leader, leadership lost): fail them. */
  readonly droppedReads: readonly number[];
  /** Peer messages dropped because they contradict this node's state: log and count them. */
  readonly refusedMessages: readonly RefusedMessage[];
}

/** What one durable write covered, for `RaftNode.persisted`. */
export interface PersistedPoint {
  readonly lastEntry?: { readonly index: number; readonly term: number };
  readonly snapshotIndex?: number;
}

/** Limits of the core, each a named field with its unit (etcd's Config style). */
export interface RaftConfig {
  readonly id: NodeId;
  /** Base election timeout; the actual one is random in [base, 2 * base). */
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Upper bound of entry bytes in one AppendEntries. */
  readonly maxEntriesBytesPerMessage: number;
  /** AppendEntries messages in flight to one follower in the replicate state. */
  readonly maxInflightMessages: number;
  /** Entry bytes in flight to one follower. */
  readonly maxInflightBytes: number;
  /** Proposals beyond this many uncommitted bytes are refused with BUSY. */
  readonly maxUncommittedEntriesBytes: number;
  readonly maxSnapshotChunkBytes: number;
  /** Seeded source of randomness in [0, 1): election jitter only. */
  readonly random: () => number;
  readonly storage: LogStorage;
  /** Last index the state machine has applied (after a restart: the snapshot's index). */
  readonly applied: number;
}

export const RAFT_ERROR_CODES = [
  "NOT_LEADER",
  "BUSY", // too many uncommitted bytes
  "TRANSFERRING", // leadership transfer in progress; proposals wait for the new leader
  "MEMBERSHIP_CHANGE_PENDING", // one change at a time
  "INVALID_MEMBERSHIP_CHANGE",
  // the change could leave the cluster without a quorum (or promotes a learner that is behind);
  // MembershipChangeOptions.force overrides
  "UNSAFE_MEMBERSHIP_CHANGE",
] as const;

export type RaftErrorCode = (typeof RAFT_ERROR_CODES)[number];

/** Consensus refusals, kept apart from the state machine's own results. */
export class RaftError extends Error {
  override readonly name = "RaftError";
  readonly code: RaftErrorCode;
  /** Known leader, with NOT_LEADER. */
  readonly leader: NodeId | null;

  constructor(code: RaftErrorCode, message: string, leader: NodeId | null = null) {
    super(message);
    this.code = code;
    this.leader = leader;
  }
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly membership: Membership;
  /** Leader only: match index of each member. */
  readonly progress: Readonly<Record<NodeId, { readonly match: number; readonly next: number; readonly state: "probe" | "replicate" | "snapshot" }>>;
}
