import { join } from "node:path";
import type { Logger } from "pino";
import type { Command } from "../engine/commands.js";
import { Engine } from "../engine/engine.js";
import type { EngineLimits } from "../engine/limits.js";
import type { Outcome } from "../engine/outcome.js";
import type { Query } from "../engine/queries.js";
import { KvError } from "../errors.js";
import { assert } from "../util/assert.js";
import { MemoryStorage } from "../raft/memory-storage.js";
import { defaultRaftConfig, RaftNode } from "../raft/node.js";
import {
  RaftError,
  type LogEntry,
  type Membership,
  type MembershipChange,
  type MembershipChangeOptions,
  type Message,
  type NodeId,
  type RaftStatus,
  type Ready,
} from "../raft/types.js";
import { entriesSizeBytes } from "../raft/log-entry.js";
import { mustSync, planReady, type DriverHardStates, type DurableWrite, type ReadyPlan, type ReadyStep } from "../raft/ready-plan.js";
import { decodeEntryData, encodeEntryData } from "./entry-data.js";
import type { Consistency } from "./protocol/operations.js";
import type { Metrics, Counter } from "./metrics.js";
import type { PeerAnnouncement } from "./peer-auth.js";
import type { PeerDirectory } from "./peer-directory.js";
import type { DiskSpaceGuard } from "./disk-space-guard.js";
import { INCARNATION_SEPARATOR } from "./identity.js";
import { MAX_REQUEST_PAYLOAD_BYTES } from "./protocol/frame.js";
import { Readmission } from "./readmission.js";
import { RefusalReporter } from "./refusal-reporter.js";
import { readAll, SnapshotKeeper, type SnapshotFileSlice, type SnapshotSource } from "./snapshot-keeper.js";
import { DurableLog, type FsyncMode } from "./storage/durable-log.js";
import { SnapshotStore, type SnapshotFile } from "./storage/snapshot-store.js";

/** Where Raft messages go; the TCP PeerTransport in production. */
export interface MessageSender {
  send(messages: readonly Message[]): void;
  setAddresses(addresses: Readonly<Record<NodeId, string>>): void;
}

export interface ReplicatedNodeOptions {
  readonly id: NodeId;
  /** Used only when the data directory is empty: the founding members. */
  readonly initialMembership: Membership;
  readonly dataDirectory: string;
  readonly fsync: FsyncMode;
  readonly shardCount: number;
  readonly limits: EngineLimits;
  readonly snapshotEntries: number;
  readonly snapshotIntervalMs: number;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  /** Proposals and linearizable reads waiting for an answer; one more gets BUSY. */
  readonly maxPendingRequests: number;
  /** How often the leader looks for expired keys to purge through the log. */
  readonly expiryIntervalMs: number;
  /** Test-only shift of this node's wall clock, to check that log time makes skew harmless. */
  readonly clockOffsetMs: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Who this node's peers say they are (peer handshakes): re-admission and `add <name>` read it. */
  readonly directory: PeerDirectory;
  /** The cluster this node belongs to (identity.ts); null for a directory from before identities. */
  readonly cluster: string | null;
  /** Free space on the data directory's filesystem: below its reserve, writes and replicated entries are refused. */
  readonly diskSpace: DiskSpaceGuard;
  readonly sender: MessageSender;
  readonly persistence: PersistenceLimits;
  /** Told each step of the Ready plan as the node executes it: the test that compares the node's order with the plan's. */
  readonly onReadyStep?: (step: ReadyStep, plan: ReadyPlan) => void;
  /** Called when the node cannot go on safely (storage failure, broken invariant). */
  readonly onFatal: (error: unknown) => void;
}

/** Bounds of the log writes the Ready loop may have in flight at once. */
export interface PersistenceLimits {
  /** Writes (one per Ready that has something to persist) issued and not yet durable. */
  readonly maxWritesInFlight: number;
  /** Entry bytes of those writes. */
  readonly maxWriteBytesInFlight: number;
}

export const DEFAULT_PERSISTENCE_LIMITS: PersistenceLimits = { maxWritesInFlight: 16, maxWriteBytesInFlight: 64 * 1024 * 1024 };

interface PendingProposal {
  readonly term: number;
  readonly deadline: number;
  readonly resolve: (outcome: Outcome<unknown>) => void;
}

interface PendingRead {
  readonly query: Query;
  readonly deadline: number;
  readonly resolve: (outcome: Outcome<unknown>) => void;
  /** Set once the leader confirmed the read index. */
  index: number | null;
}

/** How the core's refusals reach clients; all but an invalid change are worth retrying. */
const RAFT_REFUSALS: Readonly<Record<RaftError["code"], KvError["code"]>> = {
  NOT_LEADER: "NOT_LEADER",
  BUSY: "BUSY",
  TRANSFERRING: "UNAVAILABLE",
  MEMBERSHIP_CHANGE_PENDING: "UNAVAILABLE",
  // An argument the cluster refuses (adding a member twice): answered, the connection stays open.
  INVALID_MEMBERSHIP_CHANGE: "VALUE_INVALID",
  // Likewise final, answered at once (the client does not retry it): the operator decides
  // whether to wait for the members or to --force it.
  UNSAFE_MEMBERSHIP_CHANGE: "VALUE_INVALID",
};

/** How often the leader looks for members that came back as a new incarnation. */
const READMISSION_INTERVAL_MS = 500;

/** Period of the commit samples that tell a stuck node from a busy one. */
const COMMIT_SAMPLE_INTERVAL_MS = 1000;

function isMember(membership: Membership, id: NodeId | null): boolean {
  return id !== null && (membership.voters.includes(id) || membership.learners.includes(id));
}

/** How long a promotion waits for a learner that trails the commit index only by entries in flight. */
const PROMOTION_CATCH_UP_WAIT_MS = 1000;

/** Longest stretch of applying entries without yielding to the event loop. */
const APPLY_SLICE_MS = 10;

/** Deadline of one purge proposal; a purge still pending blocks the next one. */
const PURGE_TIMEOUT_MS = 10_000;

/** Most expired keys one active-expiry entry purges, so applying it stays short. */
const PURGE_LIMIT = 10_000;

export interface NodeStatus extends RaftStatus {
  readonly leaderAddress: string | null;
  readonly fsync: FsyncMode;
  readonly snapshotIndex: number;
  readonly keys: number;
  readonly memoryBytes: number;
  readonly shards: number;
}

/**
 * One member of the cluster: the Raft core driven by timers and the network, with LevelDB as
 * its write-ahead log and the engine as its state machine.
 *
 * The Ready loop executes each Ready's plan (ready-plan.ts): it sends leader replication,
 * issues the Ready's log write without waiting for it, applies, serves reads and takes the next
 * Ready while earlier writes are in flight (bounded by `persistence`). DurableLog folds the
 * writes queued behind the one in progress into one LevelDB batch with one fsync (group
 * commit); as each lands, the core hears of it and the messages that vouch for it leave.
 */
export class ReplicatedNode {
  readonly metrics: Metrics;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<number, PendingRead>();
  private nextReadContext = 1;
  private lastProposalNow = 0;
  private processing = false;
  private scheduled = false;
  private stopped = false;
  private purgeInFlight = false;
  private appliedMembership: Membership;
  private hardStates: DriverHardStates;
  /** Settles once every write issued so far is durable and handled. */
  private durable: Promise<void> = Promise.resolve();
  /** One promise per write in flight, oldest first: each settles once it and all before it are durable. */
  private readonly writesInFlight: Promise<void>[] = [];
  private writeBytesInFlight = 0;
  /** Commit index on disk at start-up: until applied reaches it, the node is still recovering. */
  private readonly recoveredCommit: number;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly counters: {
    readonly proposals: Counter;
    readonly reads: Counter;
    readonly readies: Counter;
    readonly timeouts: Counter;
    readonly walSeconds: Counter;
    readonly readySeconds: Counter;
    readonly unadmitted: Counter;
  };
  private readonly readmission: Readmission;
  private readonly refusals: RefusalReporter;
  /** Commit index sampled a second or two ago: a node that has not applied it is stuck, not just busy. */
  private commitSamples = { older: 0, newer: 0 };

  private constructor(
    private readonly options: ReplicatedNodeOptions,
    private engine: Engine,
    private readonly raft: RaftNode,
    private readonly storage: MemoryStorage,
    private readonly log: DurableLog,
    private readonly snapshots: SnapshotKeeper,
    private applied: number,
  ) {
    this.metrics = options.metrics;
    this.appliedMembership = storage.snapshotMetadata().membership;
    const hardState = storage.initialState().hardState;
    this.hardStates = { latest: hardState, written: hardState };
    this.recoveredCommit = hardState.commit;
    this.counters = {
      proposals: this.metrics.counter("kv_proposals_total", "Commands proposed by this node as leader."),
      reads: this.metrics.counter("kv_linearizable_reads_total", "Linearizable reads served."),
      readies: this.metrics.counter("kv_raft_ready_batches_total", "Ready batches handled."),
      timeouts: this.metrics.counter("kv_request_timeouts_total", "Requests that passed their deadline."),
      walSeconds: this.metrics.counter("kv_wal_append_seconds_total", "Time spent waiting for the log to persist a Ready (divide by kv_wal_batches_total for the average)."),
      readySeconds: this.metrics.counter("kv_raft_ready_seconds_total", "Time spent handling Ready batches, persisting included."),
      unadmitted: this.metrics.counter("kv_peer_messages_from_non_members_total", "Raft messages dropped because their sender is not a member of this node's configuration."),
    };
    this.readmission = new Readmission(this, options.directory, options.id, options.logger);
    this.refusals = new RefusalReporter(this.metrics, options.logger);
    this.registerGauges();
  }

  static async open(options: ReplicatedNodeOptions): Promise<ReplicatedNode> {
    const store = await SnapshotStore.open(join(options.dataDirectory, "snapshots"));
    const log = await DurableLog.open(join(options.dataDirectory, "log"), { fsync: options.fsync, onBatchWritten: (bytes) => options.diskSpace.noteWritten(bytes) });
    logTornTails(log, options.logger);
    try {
      return await ReplicatedNode.recover(options, store, log);
    } catch (error) {
      await log.close();
      throw error;
    }
  }

  /** Start-up = newest valid snapshot + the log tail after it. */
  private static async recover(options: ReplicatedNodeOptions, store: SnapshotStore, log: DurableLog): Promise<ReplicatedNode> {
    const engine = new Engine({ shardCount: options.shardCount, limits: options.limits });
    const snapshot = await store.latest();
    const snapshotData = snapshot === null ? null : await restoreEngine(engine, snapshot);
    const loaded = await log.load();
    const snapshotIndex = snapshot?.metadata.index ?? 0;
    if (loaded.snapshotIndex > snapshotIndex) {
      throw new KvError("CORRUPT", `the log was compacted up to ${loaded.snapshotIndex} but the newest snapshot covers only ${snapshotIndex}`);
    }
    const storage = new MemoryStorage({
      membership: snapshot?.metadata.membership ?? options.initialMembership,
      ...(loaded.hardState === null ? {} : { hardState: loaded.hardState }),
      ...(snapshot === null || snapshotData === null ? {} : { snapshot: { ...snapshot.metadata, data: snapshotData } }),
      entries: loaded.entries.filter((entry) => entry.index > snapshotIndex),
    });
    const raft = new RaftNode(
      defaultRaftConfig({
        id: options.id,
        storage,
        random: Math.random,
        applied: snapshotIndex,
        electionTimeoutTicks: options.electionTimeoutTicks,
      }),
    );
    const keeper = new SnapshotKeeper(store, storage, log, options.logger, snapshot, Date.now(), (bytes) => options.diskSpace.noteWritten(bytes));
    const node = new ReplicatedNode(options, engine, raft, storage, log, keeper, snapshotIndex);
    node.start();
    return node;
  }

  private start(): void {
    const { membership } = this.raft.status();
    this.options.sender.setAddresses(membership.addresses);
    this.every(this.options.tickMs, () => this.tick());
    this.every(this.options.expiryIntervalMs, () => this.proposeExpiry());
    this.every(READMISSION_INTERVAL_MS, () => this.readmission.poll());
    this.every(COMMIT_SAMPLE_INTERVAL_MS, () => {
      this.commitSamples = { older: this.commitSamples.newer, newer: this.raft.status().commit };
    });
    this.options.directory.onRestart = (memberId) => this.onPeerRestart(memberId);
    // A lone voter need not wait an election timeout to lead itself.
    if (membership.voters.length === 1 && membership.voters[0] === this.options.id) this.raft.campaign();
    this.schedule();
  }

  private every(intervalMs: number, action: () => void): void {
    const timer = setInterval(action, intervalMs);
    timer.unref();
    this.timers.push(timer);
  }

  get id(): NodeId {
    return this.options.id;
  }

  /**
   * Raft messages from an admitted peer link (the gate checked they come from the link's own
   * member). Only members of this node's configuration are heard, except while this node is
   * not a member itself: a node waiting to be added hears the cluster it joined.
   */
  receive(link: PeerAnnouncement, messages: readonly Message[]): void {
    if (this.stopped) return;
    const { membership } = this.raft.status();
    const heard = isMember(membership, link.memberId) || (!isMember(membership, this.id) && link.cluster === this.options.cluster);
    if (!heard) {
      this.counters.unadmitted.increment(messages.length);
      return;
    }
    // A follower low on disk drops entries and snapshot chunks before the core sees them.
    for (const message of this.options.diskSpace.admit(messages)) this.raft.step(message);
    this.schedule();
  }

  /** A follower's process restarted: it may have lost what it had not synced, so catch it up from its real state. */
  private onPeerRestart(memberId: NodeId): void {
    if (this.stopped || this.raft.status().role !== "leader") return;
    this.raft.resetProgress(memberId);
    this.schedule();
  }

  /**
   * Proposes a write and resolves with its outcome once applied here. Async so that a refusal
   * (not leader, busy) is always a rejected promise, never a throw into a timer's callback.
   */
  async write(command: Command, timeoutMs: number): Promise<Outcome<unknown>> {
    this.checkCapacity();
    // Only a leader's refusal is NO_SPACE: a follower answers NOT_LEADER, and the leader's disk decides.
    if (this.raft.status().role === "leader") this.options.diskSpace.refuseIfLow();
    const now = this.proposalNow();
    const data = encodeEntryData(now, command);
    // The encoded entry can outgrow its request (floats widen, decimals normalise): one that no
    // peer frame could carry would stall replication, so it is refused before it is proposed.
    if (data.byteLength > MAX_REQUEST_PAYLOAD_BYTES) {
      throw new KvError("TOO_LARGE", `the write encodes to an entry of ${data.byteLength} bytes; at most ${MAX_REQUEST_PAYLOAD_BYTES} fit a peer frame`);
    }
    const { firstIndex, term } = this.guard(() => this.raft.propose([data]));
    this.counters.proposals.increment();
    this.schedule();
    return new Promise<Outcome<unknown>>((resolve) => this.proposals.set(firstIndex, { term, deadline: Date.now() + timeoutMs, resolve }));
  }

  /** Serializable reads answer from local state; linearizable ones wait for a ReadIndex. */
  async read(query: Query, consistency: Consistency, timeoutMs: number): Promise<Outcome<unknown>> {
    if (consistency === "serializable") {
      const behind = this.notReadyReason();
      if (behind !== null) throw new KvError("UNAVAILABLE", `this node cannot serve serializable reads: ${behind}`);
      return this.engine.read(query, this.clock());
    }
    this.checkCapacity();
    const context = this.nextReadContext++;
    const promise = new Promise<Outcome<unknown>>((resolve) => {
      this.reads.set(context, { query, deadline: Date.now() + timeoutMs, resolve, index: null });
    });
    this.raft.readIndex(context);
    this.schedule();
    return promise;
  }

  /** Adds, promotes or removes one member; resolves once the change is applied here. */
  async changeMembership(change: MembershipChange, timeoutMs: number, options: MembershipChangeOptions = {}): Promise<Membership> {
    this.checkCapacity();
    const { index, term } = this.guard(() => this.raft.proposeMembershipChange(change, options));
    this.schedule();
    const outcome = await new Promise<Outcome<unknown>>((resolve) => this.proposals.set(index, { term, deadline: Date.now() + timeoutMs, resolve }));
    if (!outcome.ok) throw new KvError(outcome.error.code, outcome.error.message);
    return this.appliedMembership;
  }

  /** Adds a member the safe way (dissertation §4.2.1): as a learner, caught up, then promoted. */
  async addMember(name: NodeId, address: string, timeoutMs: number, options: MembershipChangeOptions = {}): Promise<Membership> {
    const deadline = Date.now() + timeoutMs;
    const id = await this.memberIdOf(name, timeoutMs / 2);
    await this.changeMembership({ type: "addLearner", node: id, address }, timeoutMs, options);
    const target = this.raft.status().commit;
    await this.waitFor(() => (this.raft.status().progress[id]?.match ?? 0) >= target, deadline - Date.now());
    if ((this.raft.status().progress[id]?.match ?? 0) < target) {
      throw new KvError("TIMEOUT", `${id} joined as a learner but did not catch up in time; promote it later (kv cluster promote)`);
    }
    return this.promoteCaughtUp(id, deadline, options);
  }

  /** Makes a learner a voter (`kv cluster promote`); refused while it is behind the commit index, unless forced. */
  async promoteMember(name: NodeId, timeoutMs: number, options: MembershipChangeOptions = {}): Promise<Membership> {
    const deadline = Date.now() + timeoutMs;
    const id = await this.memberIdOf(name, timeoutMs / 2);
    return this.promoteCaughtUp(id, deadline, options);
  }

  /**
   * The core refuses to promote a learner whose match is behind the commit index. Under load a
   * caught-up learner trails it by the entries in flight, so wait (briefly) for a moment when it
   * holds every committed entry: the proposal follows in the same turn of the event loop, before
   * any new message can move the commit index. A learner still behind by then is refused.
   */
  private async promoteCaughtUp(id: NodeId, deadline: number, options: MembershipChangeOptions): Promise<Membership> {
    if (options.force !== true) {
      const caughtUp = (): boolean => (this.raft.status().progress[id]?.match ?? 0) >= this.raft.status().commit;
      await this.waitFor(caughtUp, Math.min(PROMOTION_CATCH_UP_WAIT_MS, deadline - Date.now()));
    }
    return this.changeMembership({ type: "promote", node: id }, Math.max(1, deadline - Date.now()), options);
  }

  /**
   * A node that joined runs under `name~incarnation`: the operator names it and its handshake
   * says which id. It may still be starting, so wait a while for it to connect; a node that
   * never does is added under the name given (if a new incarnation of it connects later, the
   * re-admission replaces that entry).
   */
  private async memberIdOf(name: string, waitMs: number): Promise<NodeId> {
    const directory = this.options.directory;
    if (name.includes(INCARNATION_SEPARATOR)) return name;
    await this.waitFor(() => directory.reachableMemberIdOf(name, Date.now()) !== null, waitMs);
    return directory.reachableMemberIdOf(name, Date.now()) ?? name;
  }

  transferLeadership(to: NodeId): void {
    this.guard(() => this.raft.transferLeadership(to));
    this.schedule();
  }

  /** Hands leadership to `to`, or to the most up-to-date voter; resolves with the new leader. */
  async transferLeadershipTo(to: NodeId | null, timeoutMs: number): Promise<{ readonly leader: NodeId | null }> {
    const status = this.raft.status();
    if (status.role !== "leader") {
      const leader = this.leaderAddress(status.leader);
      throw new KvError("NOT_LEADER", "only the leader can hand over leadership", leader === null ? {} : { leader });
    }
    const target = to ?? this.bestSuccessor();
    if (target === null) throw new KvError("UNAVAILABLE", "no other voter to hand leadership to");
    this.transferLeadership(target);
    await this.waitFor(() => this.raft.status().role !== "leader", timeoutMs);
    if (this.raft.status().role === "leader") throw new KvError("TIMEOUT", `${target} did not take over in time`);
    return { leader: this.raft.status().leader };
  }

  /** Takes a snapshot now (`kv snapshot save`); resolves with the index it covers. */
  async snapshotNow(): Promise<{ readonly index: number }> {
    if (this.snapshots.inProgress) throw new KvError("BUSY", "a snapshot is already being written");
    const source = this.snapshotSource();
    if (source === null) throw new KvError("UNAVAILABLE", "nothing applied yet");
    if (source.index > this.snapshots.lastSnapshotIndex) await this.snapshots.take(source, Date.now());
    return { index: this.snapshots.lastSnapshotIndex };
  }

  status(): NodeStatus {
    const raft = this.raft.status();
    const info = this.engine.info();
    return {
      ...raft,
      leaderAddress: this.leaderAddress(raft.leader),
      fsync: this.options.fsync,
      snapshotIndex: this.snapshots.lastSnapshotIndex,
      keys: info.keys,
      memoryBytes: info.memoryBytes,
      shards: info.shards,
    };
  }

  /** Engine figures for `info`, without a round through the log. */
  engineInfo(): ReturnType<Engine["info"]> {
    return this.engine.info();
  }

  logStats(): ReturnType<DurableLog["stats"]> {
    return this.log.stats();
  }

  /**
   * Graceful stop: hand leadership to an up-to-date follower first (so clients see no
   * election timeout), then stop the timers, finish the batch in hand and close the log.
   */
  async close(handOverTimeoutMs = 2000): Promise<void> {
    if (this.stopped) return;
    await this.handOverLeadership(handOverTimeoutMs);
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.waitFor(() => !this.processing, 5000);
    this.failAll(new KvError("UNAVAILABLE", "the node is shutting down"));
    await this.snapshots.close();
    await this.log.close();
  }

  /** A piece of the newest snapshot file, for `kv snapshot save`. */
  readSnapshotFile(offset: number, maxBytes: number): Promise<SnapshotFileSlice> {
    return this.snapshots.readLatestFile(offset, maxBytes);
  }

  private bestSuccessor(): NodeId | null {
    const status = this.raft.status();
    const successor = Object.entries(status.progress)
      .filter(([id]) => id !== this.options.id && status.membership.voters.includes(id))
      .sort(([, left], [, right]) => right.match - left.match)[0]?.[0];
    return successor ?? null;
  }

  private async handOverLeadership(timeoutMs: number): Promise<void> {
    if (this.raft.status().role !== "leader") return;
    const successor = this.bestSuccessor();
    if (successor === null) return;
    try {
      this.transferLeadership(successor);
      await this.waitFor(() => this.raft.status().role !== "leader", timeoutMs);
    } catch (error) {
      this.options.logger.warn({ error: (error as Error).message }, "leadership hand-over failed");
    }
  }

  private async waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  private clock(): number {
    return Date.now() + this.options.clockOffsetMs;
  }

  /** Log time never goes backwards, even if this node's clock does. */
  private proposalNow(): number {
    this.lastProposalNow = Math.max(this.lastProposalNow, this.engine.now, this.clock());
    return this.lastProposalNow;
  }

  private checkCapacity(): void {
    if (this.stopped) throw new KvError("UNAVAILABLE", "the node is shutting down");
    if (this.proposals.size + this.reads.size >= this.options.maxPendingRequests) {
      throw new KvError("BUSY", `${this.options.maxPendingRequests} requests already waiting on this node`);
    }
  }

  /** Runs a core call, turning its refusals into the product's error codes. */
  private guard<T>(call: () => T): T {
    try {
      return call();
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
      if (error.code === "NOT_LEADER") {
        const leader = this.leaderAddress(error.leader);
        throw new KvError("NOT_LEADER", error.message, leader === null ? {} : { leader });
      }
      throw new KvError(RAFT_REFUSALS[error.code], error.message);
    }
  }

  private leaderAddress(leader: NodeId | null): string | null {
    if (leader === null) return null;
    return this.raft.status().membership.addresses[leader] ?? null;
  }

  private tick(): void {
    if (this.stopped) return;
    this.raft.tick();
    this.expireRequests(Date.now());
    this.maybeSnapshot();
    this.schedule();
  }

  /** Leader-driven active expiry: purging is a log entry, so every replica purges the same keys. */
  private proposeExpiry(): void {
    if (this.stopped || this.purgeInFlight || this.raft.status().role !== "leader") return;
    if (!this.engine.hasExpired(this.clock())) return;
    this.purgeInFlight = true;
    this.write({ type: "purgeExpired", namespace: "", limit: PURGE_LIMIT }, PURGE_TIMEOUT_MS)
      // Losing leadership or a busy log only delays the purge: the next interval proposes it again.
      .catch((error: unknown) => this.options.logger.debug({ error: (error as Error).message }, "expiry purge not applied; will retry"))
      .finally(() => {
        this.purgeInFlight = false;
      });
  }

  private schedule(): void {
    if (this.scheduled || this.processing || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.processReadies();
    });
  }

  private async processReadies(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (!this.stopped && this.raft.hasReady()) {
        await this.roomForWrite();
        if (this.stopped || !this.raft.hasReady()) break;
        await this.handle(this.raft.ready());
      }
    } catch (error) {
      this.fatal(error);
    } finally {
      this.processing = false;
    }
  }

  private fatal(error: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.onFatal(error);
  }

  /** Writes in flight are bounded in number and bytes: past either, the next Ready waits for the oldest. */
  private async roomForWrite(): Promise<void> {
    const { maxWritesInFlight, maxWriteBytesInFlight } = this.options.persistence;
    while (!this.stopped && (this.writesInFlight.length >= maxWritesInFlight || this.writeBytesInFlight >= maxWriteBytesInFlight)) {
      await this.writesInFlight[0];
    }
  }

  private async handle(ready: Ready): Promise<void> {
    const started = performance.now();
    await this.handleReady(ready);
    this.counters.readySeconds.increment((performance.now() - started) / 1000);
  }

  /** Executes the Ready's plan (ready-plan.ts), the one the simulator and the core tests execute too. */
  private async handleReady(ready: Ready): Promise<void> {
    this.counters.readies.increment();
    this.refusals.report(ready.refusedMessages);
    const plan = planReady(ready, this.hardStates);
    if (ready.hardState !== undefined) this.hardStates = { ...this.hardStates, latest: ready.hardState };
    this.options.onReadyStep?.("sendNow", plan);
    this.options.sender.send(plan.sendNow);
    if (plan.exclusive) await this.writeAlone(plan);
    else this.issueWrite(plan);
    this.options.onReadyStep?.("apply", plan);
    await this.applyEntries(plan.apply);
    this.acceptReadStates(ready);
    this.options.onReadyStep?.("advance", plan);
    this.raft.advance();
    if (ready.softState !== undefined) this.onSoftState();
  }

  /**
   * Issues the write behind every earlier one without waiting for it (LevelDB folds writes
   * queued meanwhile into one batch: group commit); what vouches for it leaves once it and
   * every earlier write are durable.
   */
  private issueWrite(plan: ReadyPlan): void {
    const write = plan.write;
    if (write === null) {
      if (plan.sendWhenDurable.length === 0) return;
      if (this.writesInFlight.length === 0) return this.sendDurable(plan);
      this.durable = this.durable.then(() => this.sendDurable(plan));
      return;
    }
    this.options.onReadyStep?.("write", plan);
    const started = performance.now();
    const bytes = entriesSizeBytes(write.entries);
    const written = this.log.append(write.entries, write.hardState);
    this.hardStates = { ...this.hardStates, written: write.hardState };
    this.writeBytesInFlight += bytes;
    // Settles either way: a failed write (or a broken invariant while handling it) stops the node.
    const landed = Promise.all([this.durable, written])
      .then(() => {
        this.writesInFlight.shift();
        this.writeBytesInFlight -= bytes;
        this.counters.walSeconds.increment((performance.now() - started) / 1000);
        this.onDurable(plan, write);
      })
      .catch((error: unknown) => this.fatal(error));
    this.durable = landed;
    this.writesInFlight.push(landed);
  }

  /** A snapshot replaces the log under earlier writes: they finish first, and nothing runs beside it. */
  private async writeAlone(plan: ReadyPlan): Promise<void> {
    const write = plan.write;
    assert(write !== null, "an exclusive plan has a write");
    await this.durable;
    this.options.onReadyStep?.("write", plan);
    for (const chunk of write.snapshotChunks) await this.snapshots.receiveChunk(chunk);
    const installed = write.snapshot === undefined ? null : await this.snapshots.install(write.snapshot, write.hardState);
    if (write.entries.length > 0 || mustSync(write.hardState, this.hardStates.written)) await this.log.append(write.entries, write.hardState);
    this.hardStates = { ...this.hardStates, written: write.hardState };
    if (installed !== null) await this.installSnapshot(installed);
    this.onDurable(plan, write);
  }

  private onDurable(plan: ReadyPlan, write: DurableWrite): void {
    if (this.stopped) return;
    this.options.onReadyStep?.("durable", plan);
    this.storage.append(write.entries);
    this.storage.setHardState(write.hardState);
    this.raft.persisted(write.persisted);
    this.sendDurable(plan);
    this.schedule();
  }

  private sendDurable(plan: ReadyPlan): void {
    if (this.stopped || plan.sendWhenDurable.length === 0) return;
    this.options.onReadyStep?.("sendWhenDurable", plan);
    this.options.sender.send(plan.sendWhenDurable);
  }

  private async installSnapshot(file: SnapshotFile): Promise<void> {
    const engine = new Engine({ shardCount: this.options.shardCount, limits: this.options.limits });
    await engine.restore(file.data());
    this.engine = engine;
    this.applied = file.metadata.index;
    this.appliedMembership = file.metadata.membership;
    this.options.sender.setAddresses(this.raft.status().membership.addresses);
    // Proposals at or below the snapshot were decided elsewhere; their outcome is unknown here.
    for (const [index, pending] of this.proposals) {
      if (index > this.applied) continue;
      this.proposals.delete(index);
      pending.resolve(failure("TIMEOUT", "the outcome is unknown: this node caught up by snapshot"));
    }
  }

  /**
   * Applies in slices of at most APPLY_SLICE_MS, yielding to the event loop between them: a
   * restart replays a whole log tail in one Ready, and the node must keep answering meanwhile.
   */
  private async applyEntries(entries: readonly LogEntry[]): Promise<void> {
    let sliceStart = performance.now();
    for (const entry of entries) {
      if (entry.index <= this.applied) continue;
      const outcome = this.applyEntry(entry);
      this.applied = entry.index;
      this.settleProposal(entry, outcome);
      if (performance.now() - sliceStart < APPLY_SLICE_MS) continue;
      this.serveConfirmedReads();
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    this.serveConfirmedReads();
  }

  /** Ready (`/health`): it can serve and a leader is known. */
  isHealthy(): boolean {
    return this.notReadyReason() === null && this.raft.status().leader !== null;
  }

  /**
   * Why this node's state is known to be behind, or null: it is not a member (waiting to be
   * added, or removed), it is replaying what it committed before this process started, or it
   * has not applied what was committed a second or two ago (stuck, not just busy).
   */
  private notReadyReason(): string | null {
    if (!isMember(this.raft.status().membership, this.id)) return "it is not a member of the cluster (waiting to be added, or removed)";
    if (this.applied < this.recoveredCommit) return "it is still replaying its log";
    if (this.applied < this.commitSamples.older) return `it has not applied index ${this.commitSamples.older}, committed more than a second ago`;
    return null;
  }

  private applyEntry(entry: LogEntry): Outcome<unknown> {
    const context = { index: entry.index, term: entry.term, now: this.engine.now };
    switch (entry.kind) {
      case "command": {
        const { now, command } = decodeEntryData(entry.data, this.options.limits);
        return this.engine.apply(command, { ...context, now });
      }
      case "noop":
        this.engine.applyNoop(context);
        return { ok: true, value: null };
      case "membership":
        this.engine.applyNoop(context);
        this.appliedMembership = entry.membership;
        this.options.sender.setAddresses(this.raft.status().membership.addresses);
        return { ok: true, value: null };
    }
  }

  private settleProposal(entry: LogEntry, outcome: Outcome<unknown>): void {
    const pending = this.proposals.get(entry.index);
    if (pending === undefined) return;
    this.proposals.delete(entry.index);
    // Another leader's entry took this index: ours was never applied, so a retry is safe.
    if (pending.term !== entry.term) pending.resolve(failure("UNAVAILABLE", "leadership changed before the write committed"));
    else pending.resolve(outcome);
  }

  private acceptReadStates(ready: Ready): void {
    for (const state of ready.readStates) {
      const read = this.reads.get(state.context);
      if (read !== undefined) read.index = state.index;
    }
    for (const context of ready.droppedReads) {
      const read = this.reads.get(context);
      if (read === undefined) continue;
      this.reads.delete(context);
      read.resolve(failure("UNAVAILABLE", "no leader could confirm the read"));
    }
    this.serveConfirmedReads();
  }

  private serveConfirmedReads(): void {
    for (const [context, read] of this.reads) {
      if (read.index === null || read.index > this.applied) continue;
      this.reads.delete(context);
      this.counters.reads.increment();
      read.resolve(this.engine.read(read.query, this.clock()));
    }
  }

  private onSoftState(): void {
    const status = this.raft.status();
    this.options.logger.info({ role: status.role, term: status.term, leader: status.leader }, "raft role");
  }

  /** Past its deadline a write's outcome is unknown (TIMEOUT); the client retries with its session. */
  private expireRequests(now: number): void {
    for (const [index, pending] of this.proposals) {
      if (pending.deadline > now) continue;
      this.proposals.delete(index);
      this.counters.timeouts.increment();
      pending.resolve(failure("TIMEOUT", "the write was not applied in time; its outcome is unknown"));
    }
    for (const [context, read] of this.reads) {
      if (read.deadline > now) continue;
      this.reads.delete(context);
      this.counters.timeouts.increment();
      read.resolve(failure("TIMEOUT", "the read was not confirmed in time"));
    }
  }

  private failAll(error: KvError): void {
    for (const pending of this.proposals.values()) pending.resolve(failure("TIMEOUT", `${error.message}; the outcome is unknown`));
    for (const read of this.reads.values()) read.resolve(failure(error.code, error.message));
    this.proposals.clear();
    this.reads.clear();
  }

  private maybeSnapshot(): void {
    if (this.snapshots.inProgress || this.applied <= this.snapshots.lastSnapshotIndex) return;
    const now = Date.now();
    if (!this.snapshots.isRetryDue(now)) return;
    const dueByEntries = this.applied - this.snapshots.lastSnapshotIndex >= this.options.snapshotEntries;
    const dueByTime = now - this.snapshots.lastSnapshotAtMs >= this.options.snapshotIntervalMs;
    if (!dueByEntries && !dueByTime) return;
    const source = this.snapshotSource();
    if (source === null) return;
    this.snapshots.takeInBackground(source, now);
  }

  /** The engine's image as of the applied index, with the log position it covers. */
  private snapshotSource(): SnapshotSource | null {
    const index = this.applied;
    const term = this.storage.term(index);
    if (index === 0 || term === undefined) return null;
    return { index, term, membership: this.appliedMembership, data: this.engine.snapshot() };
  }

  private registerGauges(): void {
    const gauge = (name: string, help: string, read: () => number): void => this.metrics.gauge(name, help, read);
    gauge("kv_raft_term", "Current Raft term.", () => this.raft.status().term);
    gauge("kv_raft_is_leader", "1 when this node is the leader.", () => (this.raft.status().role === "leader" ? 1 : 0));
    gauge("kv_raft_commit_index", "Highest index known committed.", () => this.raft.status().commit);
    gauge("kv_raft_applied_index", "Highest index applied to the engine.", () => this.applied);
    gauge("kv_raft_last_index", "Last index in the log.", () => this.raft.status().lastIndex);
    gauge("kv_snapshot_index", "Index of the newest snapshot.", () => this.snapshots.lastSnapshotIndex);
    gauge("kv_pending_proposals", "Writes waiting to be applied.", () => this.proposals.size);
    gauge("kv_pending_reads", "Linearizable reads waiting for confirmation.", () => this.reads.size);
    gauge("kv_keys", "Keys in the engine, including expired ones not purged yet.", () => this.engine.info().keys);
    gauge("kv_memory_bytes", "Estimated engine memory.", () => this.engine.info().memoryBytes);
    gauge("kv_wal_batches_total", "LevelDB batches written by the log.", () => this.log.stats().batches);
    gauge("kv_wal_syncs_total", "Synced LevelDB writes (fsyncs).", () => this.log.stats().syncs);
    gauge("kv_wal_entries_total", "Log entries written.", () => this.log.stats().entries);
    gauge("kv_wal_average_batch_size", "Average log entries per LevelDB batch: how many writes one fsync covers (group commit).", () => {
      const { entries, batches } = this.log.stats();
      return batches === 0 ? 0 : entries / batches;
    });
  }
}

/** A torn tail is a write that was never acknowledged: worth a line in the log, not a refusal. */
function logTornTails(log: DurableLog, logger: Logger): void {
  for (const file of log.startupCheck.files) {
    if (file.tornTailBytes > 0) logger.info({ file: file.path, tornTailBytes: file.tornTailBytes }, "LevelDB log ends in an incomplete write (a crash mid-write, never acknowledged); LevelDB drops it");
  }
}

/** Reads the (already verified) snapshot once, restores the engine from it and keeps the bytes for followers. */
async function restoreEngine(engine: Engine, snapshot: SnapshotFile): Promise<Uint8Array> {
  const data = await readAll(snapshot);
  await engine.restore(slices(data, RESTORE_SLICE_BYTES));
  return data;
}

const RESTORE_SLICE_BYTES = 1024 * 1024;

async function* slices(data: Uint8Array, sliceBytes: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.byteLength; offset += sliceBytes) yield data.subarray(offset, offset + sliceBytes);
}

function failure(code: KvError["code"], message: string): Outcome<never> {
  return { ok: false, error: { code, message } };
}

