import { createHash } from "node:crypto";
import { MemoryStorage, type MemoryStorageInitial } from "../../src/raft/memory-storage.js";
import { RaftNode, defaultRaftConfig } from "../../src/raft/node.js";
import { RaftError } from "../../src/raft/types.js";
import type { LogEntry, Membership, MembershipChange, Message, NodeId, ReadState, Ready, RefusalReason, Role, SnapshotChunk } from "../../src/raft/types.js";
import { ClientHistory, SafetyChecker, SafetyViolation } from "./checker.js";
import { EventQueue, SimulatedClock } from "./clock.js";
import { SimulatedNetwork } from "./network.js";
import type { Random } from "./random.js";
import { RegisterMachine, encodeWrite, type WriteCommand } from "./register-machine.js";
import { planReady, type DriverHardStates, type DurableWrite, type ReadyPlan } from "../../src/raft/ready-plan.js";
import { PlanOrderChecker } from "../raft/plan-order.js";

/** Timing, limits and fault rates of one simulated cluster. */
export interface ClusterConfig {
  /** Simulated time between two ticks of a node (each node drifts by up to 1 ms from it). */
  readonly tickIntervalMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  /** A node snapshots its state machine once this many applied entries sit in its log. */
  readonly compactionThresholdEntries: number;
  /** Small, so that a snapshot travels in several chunks. */
  readonly maxSnapshotChunkBytes: number;
  readonly maxEntriesBytesPerMessage: number;
  /** Chance that a node crashes between two steps of a Ready's plan, or right after one of its writes lands. */
  readonly crashDuringReadyProbability: number;
  /**
   * Chance that a leader dies in the Ready in which it is elected, or in the one in which its
   * commit index first moves in its term (crash before persisting, after persisting or after
   * sending). Leaders that die holding entries nobody else has, or right as they commit entries
   * of earlier terms, are what Figure 8 of the Raft paper is made of.
   */
  readonly crashAtLeaderMilestoneProbability: number;
  /** A node that crashed in the middle of a Ready restarts after a random downtime up to this. */
  readonly maxDowntimeAfterReadyCrashMs: number;
  /** A removed node shuts itself down this long after applying its removal. */
  readonly removedNodeShutdownDelayMs: number;
  readonly logMatchingCheckIntervalMs: number;
  readonly maxPendingEvents: number;
  readonly maxInFlightMessages: number;
  /** Client requests waiting on one node; past it the simulated client gives up (BUSY). */
  readonly maxPendingRequestsPerNode: number;
  /** A client stops waiting for an answer after this long (outcome unknown, like TIMEOUT). */
  readonly clientTimeoutMs: number;
  /** Ready batches handled for one input before the core is declared stuck in a loop. */
  readonly maxReadyBatchesPerInput: number;
  /** A write lands this long after it was issued, at most (in issue order, like LevelDB's). */
  readonly maxWriteDelayMs: number;
  /** Writes a node may have in flight; past it the node takes no Ready until the oldest lands. */
  readonly maxWritesInFlight: number;
}

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = {
  tickIntervalMs: 10,
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  compactionThresholdEntries: 16,
  maxSnapshotChunkBytes: 64,
  maxEntriesBytesPerMessage: 256,
  crashDuringReadyProbability: 0,
  crashAtLeaderMilestoneProbability: 0,
  maxDowntimeAfterReadyCrashMs: 1_000,
  removedNodeShutdownDelayMs: 200,
  logMatchingCheckIntervalMs: 50,
  maxPendingEvents: 200_000,
  maxInFlightMessages: 20_000,
  maxPendingRequestsPerNode: 1_000,
  clientTimeoutMs: 3_000,
  maxReadyBatchesPerInput: 1_000,
  maxWriteDelayMs: 2,
  maxWritesInFlight: 8,
};

export interface NodeSetup {
  readonly id: NodeId;
  /** Preloaded durable state (default: an empty log under the cluster's initial membership). */
  readonly initial?: MemoryStorageInitial;
  /** False to create the node crashed, for a scripted scenario to restart later. */
  readonly up?: boolean;
}

interface PendingWrite extends WriteCommand {
  readonly term: number;
  readonly invokedAtMs: number;
}

interface PendingRead {
  readonly key: string;
  readonly invokedAtMs: number;
}

/** Between the steps of a plan (ready-plan.ts); "after landing" falls between a write landing and what it lets out. */
type CrashPoint = "before sending" | "after sending" | "after issuing the write" | "after advancing" | "after landing";
const CRASH_POINTS: readonly CrashPoint[] = ["before sending", "after sending", "after issuing the write", "after advancing"];

/** A write on its way to the disk, and the plans whose messages wait for it (its own first). */
interface WriteInFlight {
  readonly plan: ReadyPlan;
  readonly write: DurableWrite;
  readonly waiting: ReadyPlan[];
  readonly dueMs: number;
}

/** One simulated server: its durable storage survives crashes, everything else is volatile. */
export class SimulatedNode {
  raft: RaftNode | null = null;
  machine: RegisterMachine;
  /** Bumped on every crash, so that timers of a dead incarnation do nothing. */
  incarnation = 0;
  removed = false;
  role: Role = "follower";
  term = 0;
  /** Last term in which this node's leadership was checked for completeness. */
  leaderCheckedTerm = 0;
  /** Last term in which this node, as leader, was considered for a crash at its first commit. */
  firstCommitConsideredTerm = 0;
  incomingSnapshot: { readonly index: number; readonly term: number; readonly bytes: Uint8Array; received: number } | null = null;
  readonly pendingWrites = new Map<number, PendingWrite>();
  readonly pendingReads = new Map<number, PendingRead>();
  confirmedReads: ReadState[] = [];
  hardStates: DriverHardStates;
  /** This incarnation's steps, checked against the plan's order (the node's are checked by the same checker). */
  planOrder = new PlanOrderChecker();
  /** Oldest first; lost with a crash. */
  writesInFlight: WriteInFlight[] = [];

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    readonly random: Random,
    readonly tickIntervalMs: number,
  ) {
    this.machine = restoreMachine(storage);
    this.hardStates = durableHardStates(storage);
  }

  get up(): boolean {
    return this.raft !== null;
  }

  /** The core's status; the node must be up. */
  status(): ReturnType<RaftNode["status"]> {
    if (this.raft === null) throw new RangeError(`${this.id} is down`);
    return this.raft.status();
  }
}

export interface ClusterStatistics {
  crashes: number;
  restarts: number;
  leadersElected: number;
  snapshotsCreated: number;
  snapshotsInstalled: number;
  membershipChanges: number;
  /** Most writes one node had in flight at once. */
  peakWritesInFlight: number;
  /** Writes still in flight when their node crashed: lost, as the plan allows. */
  writesLostInCrashes: number;
  /** Peer messages the cores refused (Ready.refusedMessages), by reason. */
  readonly refusals: Map<RefusalReason, number>;
}

/**
 * A whole Raft cluster in one process, driven by simulated time. It is the Ready-contract
 * driver (persist, send, apply, serve reads, advance) and reports everything it sees to the
 * safety checker, which throws at the first violation.
 */
export class SimulatedCluster {
  readonly clock = new SimulatedClock();
  readonly queue: EventQueue;
  readonly network: SimulatedNetwork;
  readonly checker = new SafetyChecker();
  readonly history = new ClientHistory();
  readonly nodes = new Map<NodeId, SimulatedNode>();
  readonly statistics: ClusterStatistics = { crashes: 0, restarts: 0, leadersElected: 0, snapshotsCreated: 0, snapshotsInstalled: 0, membershipChanges: 0, peakWritesInFlight: 0, writesLostInCrashes: 0, refusals: new Map() };
  /** Start from the config; the heal phase sets them to 0 so that only liveness is measured. */
  crashDuringReadyProbability: number;
  crashAtLeaderMilestoneProbability: number;
  /**
   * A correct peer never sends what a core refuses, so without forged traffic a refusal is a bug
   * (in the core or in this driver); a scenario that forges messages allows them.
   */
  refusalsAllowed = false;
  private readonly acknowledgedOperations = new Set<number>();
  private nextOperationId = 1;
  private nextReadId = 1;

  constructor(
    readonly config: ClusterConfig,
    private readonly random: Random,
    membership: Membership,
    setups: readonly NodeSetup[],
    private readonly onTrace: ((line: string) => void) | null = null,
  ) {
    this.crashDuringReadyProbability = config.crashDuringReadyProbability;
    this.crashAtLeaderMilestoneProbability = config.crashAtLeaderMilestoneProbability;
    this.queue = new EventQueue(this.clock, config.maxPendingEvents);
    this.network = new SimulatedNetwork(this.queue, random.fork(), (message) => this.deliver(message), config.maxInFlightMessages);
    for (const setup of setups) {
      this.addNode(setup.id, setup.initial ?? { membership });
      if (setup.up !== false) this.restart(setup.id);
    }
    this.scheduleLogMatchingChecks();
  }

  /** Creates a node with an empty or preloaded disk, down until `restart`. */
  addNode(id: NodeId, initial: MemoryStorageInitial): SimulatedNode {
    if (this.nodes.has(id)) throw new RangeError(`node ${id} exists`);
    const drift = this.random.integer(-1, 2);
    const node = new SimulatedNode(id, new MemoryStorage(initial), this.random.fork(), this.config.tickIntervalMs + drift);
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): SimulatedNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new RangeError(`no node ${id}`);
    return node;
  }

  /** The up node that believes it leads the highest term, if any. */
  leader(): SimulatedNode | undefined {
    let best: SimulatedNode | undefined;
    for (const node of this.nodes.values()) {
      if (node.up && node.role === "leader" && (best === undefined || node.term > best.term)) best = node;
    }
    return best;
  }

  upNodes(): SimulatedNode[] {
    return [...this.nodes.values()].filter((node) => node.up);
  }

  /** Notable events (not every message), for the report of a failing seed. */
  trace(text: string): void {
    this.onTrace?.(`[${this.clock.nowMs}ms] ${text}`);
  }

  runFor(durationMs: number): void {
    this.queue.runUntil(this.clock.nowMs + durationMs);
  }

  /** Runs until `condition` holds (checked every tick interval); false if `maxDurationMs` passed first. */
  runUntil(condition: () => boolean, maxDurationMs: number): boolean {
    const deadlineMs = this.clock.nowMs + maxDurationMs;
    while (!condition()) {
      if (this.clock.nowMs >= deadlineMs) return false;
      this.runFor(Math.min(this.config.tickIntervalMs, deadlineMs - this.clock.nowMs));
    }
    return true;
  }

  crash(id: NodeId, reason = "crash"): void {
    const node = this.node(id);
    if (!node.up) return;
    node.raft = null;
    node.incarnation++;
    node.role = "follower";
    node.leaderCheckedTerm = 0;
    node.incomingSnapshot = null;
    this.statistics.writesLostInCrashes += node.writesInFlight.length;
    node.writesInFlight = [];
    node.pendingWrites.clear();
    for (const readId of node.pendingReads.keys()) this.history.failRead(readId);
    node.pendingReads.clear();
    node.confirmedReads = [];
    this.statistics.crashes++;
    this.trace(`${id} down (${reason})`);
  }

  /** Starts a node over its durable storage: a fresh core, and a state machine rebuilt from the snapshot. */
  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.up || node.removed) return;
    const snapshot = node.storage.snapshotMetadata();
    node.machine = restoreMachine(node.storage);
    node.hardStates = durableHardStates(node.storage);
    node.planOrder = new PlanOrderChecker();
    node.raft = new RaftNode(
      defaultRaftConfig({
        id,
        storage: node.storage,
        random: () => node.random.next(),
        applied: snapshot.index,
        electionTimeoutTicks: this.config.electionTimeoutTicks,
        heartbeatIntervalTicks: this.config.heartbeatIntervalTicks,
        maxSnapshotChunkBytes: this.config.maxSnapshotChunkBytes,
        maxEntriesBytesPerMessage: this.config.maxEntriesBytesPerMessage,
      }),
    );
    const status = node.raft.status();
    node.role = status.role;
    node.term = status.term;
    this.statistics.restarts++;
    this.trace(`${id} up (term ${status.term}, commit ${status.commit}, snapshot ${snapshot.index}, last ${node.storage.lastIndex()})`);
    this.scheduleTicks(node);
    this.drain(node);
  }

  /** A client write of `key` sent to `id`; returns its operation id, or null when refused. */
  write(id: NodeId, key: string): number | null {
    const node = this.node(id);
    const raft = node.raft;
    this.expireRequests(node);
    if (raft === null || node.pendingWrites.size >= this.config.maxPendingRequestsPerNode) return null;
    const operationId = this.nextOperationId++;
    const proposal = refusedAsNull(() => raft.propose([encodeWrite({ key, operationId })]));
    if (proposal === null) return null;
    node.pendingWrites.set(proposal.firstIndex, { key, operationId, term: proposal.term, invokedAtMs: this.clock.nowMs });
    this.drain(node);
    return operationId;
  }

  /** Clients that waited longer than their timeout give up: the outcome of such a write stays unknown. */
  private expireRequests(node: SimulatedNode): void {
    const oldestAllowedMs = this.clock.nowMs - this.config.clientTimeoutMs;
    for (const [index, write] of node.pendingWrites) if (write.invokedAtMs < oldestAllowedMs) node.pendingWrites.delete(index);
    for (const [readId, read] of node.pendingReads) {
      if (read.invokedAtMs >= oldestAllowedMs) continue;
      node.pendingReads.delete(readId);
      this.history.failRead(readId);
    }
  }

  isAcknowledged(operationId: number): boolean {
    return this.acknowledgedOperations.has(operationId);
  }

  /** A linearizable read of `key` sent to `id`; returns its read id, or null when refused. */
  read(id: NodeId, key: string): number | null {
    const node = this.node(id);
    const raft = node.raft;
    this.expireRequests(node);
    if (raft === null || node.pendingReads.size >= this.config.maxPendingRequestsPerNode) return null;
    const readId = this.nextReadId++;
    this.history.invokeRead(readId, key);
    node.pendingReads.set(readId, { key, invokedAtMs: this.clock.nowMs });
    if (refusedAsNull(() => raft.readIndex(readId)) === null) {
      node.pendingReads.delete(readId);
      this.history.failRead(readId);
      return null;
    }
    this.drain(node);
    return readId;
  }

  proposeMembershipChange(id: NodeId, change: MembershipChange): boolean {
    const node = this.node(id);
    const raft = node.raft;
    if (raft === null) return false;
    const result = refusedAsNull(() => raft.proposeMembershipChange(change));
    this.trace(`${id} proposes ${change.type} ${change.node}: ${result === null ? "refused" : `index ${result.index}`}`);
    if (result === null) return false;
    this.statistics.membershipChanges++;
    this.drain(node);
    return true;
  }

  transferLeadership(id: NodeId, to: NodeId): void {
    const raft = this.node(id).raft;
    if (raft === null) return;
    this.trace(`${id} transfers leadership to ${to}`);
    refusedAsNull(() => raft.transferLeadership(to));
    this.drain(this.node(id));
  }

  campaign(id: NodeId): void {
    const raft = this.node(id).raft;
    if (raft === null) return;
    this.trace(`${id} campaigns`);
    refusedAsNull(() => raft.campaign());
    this.drain(this.node(id));
  }

  /** Log matching over every node's durable log, up or down. */
  checkLogMatching(): void {
    this.checker.checkLogMatching(new Map([...this.nodes.values()].map((node) => [node.id, node.storage])));
  }

  private scheduleLogMatchingChecks(): void {
    this.queue.after(this.config.logMatchingCheckIntervalMs, () => {
      this.checkLogMatching();
      this.scheduleLogMatchingChecks();
    });
  }

  private scheduleTicks(node: SimulatedNode): void {
    const incarnation = node.incarnation;
    const tick = (): void => {
      if (node.incarnation !== incarnation || node.raft === null) return;
      node.raft.tick();
      this.drain(node);
      this.queue.after(node.tickIntervalMs, tick);
    };
    this.queue.after(node.random.integer(1, node.tickIntervalMs + 1), tick);
  }

  /** A message that arrives right now, past the network: how a forging peer's traffic lands. */
  inject(message: Message): void {
    this.deliver(message);
  }

  private deliver(message: Message): void {
    const node = this.nodes.get(message.to);
    if (node?.raft == null) return;
    node.raft.step(message);
    this.drain(node);
  }

  /** Handles Ready batches until the core has nothing more for now. */
  private drain(node: SimulatedNode): void {
    for (let batch = 0; node.raft?.hasReady() === true && node.writesInFlight.length < this.config.maxWritesInFlight; batch++) {
      if (batch >= this.config.maxReadyBatchesPerInput) {
        throw new SafetyViolation("driver contract", `${node.id} still has a Ready after ${batch} batches for one input`);
      }
      this.handleReady(node, node.raft);
    }
  }

  /**
   * Executes the Ready's plan (ready-plan.ts), the one the node executes, with a possible crash
   * between its steps. Writes land later, in order; a crash loses those still in flight.
   */
  private handleReady(node: SimulatedNode, raft: RaftNode): void {
    const ready = raft.ready();
    this.countRefusals(node, ready);
    const crashProbability = this.isLeaderMilestone(node, ready)
      ? Math.max(this.crashDuringReadyProbability, this.crashAtLeaderMilestoneProbability)
      : this.crashDuringReadyProbability;
    const crashPoint = this.random.chance(crashProbability) ? this.random.pick(CRASH_POINTS) : null;
    const plan = planReady(ready, node.hardStates);
    if (ready.hardState !== undefined) node.hardStates = { ...node.hardStates, latest: ready.hardState };
    if (crashPoint === "before sending") return this.crashDuringReady(node, crashPoint);
    node.planOrder.step("sendNow", plan);
    this.send(node, plan.sendNow);
    if (crashPoint === "after sending") return this.crashDuringReady(node, crashPoint);
    if (plan.exclusive) {
      if (!this.writeAlone(node, raft, plan)) return;
    } else {
      this.issueWrite(node, plan);
    }
    if (crashPoint === "after issuing the write") return this.crashDuringReady(node, crashPoint);
    node.planOrder.step("apply", plan);
    const removed = this.apply(node, plan.apply);
    this.serveReads(node, ready);
    node.planOrder.step("advance", plan);
    raft.advance();
    if (crashPoint === "after advancing") return this.crashDuringReady(node, crashPoint);
    this.observe(node, raft);
    this.compactIfDue(node);
    if (removed) this.scheduleShutdown(node);
  }

  private send(node: SimulatedNode, messages: readonly Message[]): void {
    for (const message of messages) {
      if (message.type === "appendEntries") checkContiguous(node.id, "appendEntries", message.entries, message.prevLogIndex + 1);
      this.network.send(message);
    }
  }

  private sendDurable(node: SimulatedNode, plan: ReadyPlan): void {
    if (plan.sendWhenDurable.length === 0) return;
    node.planOrder.step("sendWhenDurable", plan);
    this.send(node, plan.sendWhenDurable);
  }

  private issueWrite(node: SimulatedNode, plan: ReadyPlan): void {
    const last = node.writesInFlight[node.writesInFlight.length - 1];
    const write = plan.write;
    if (write === null) {
      if (last === undefined) this.sendDurable(node, plan);
      else last.waiting.push(plan);
      return;
    }
    node.planOrder.step("write", plan);
    node.hardStates = { ...node.hardStates, written: write.hardState };
    const dueMs = Math.max(last?.dueMs ?? 0, this.clock.nowMs + node.random.integer(0, this.config.maxWriteDelayMs + 1));
    const inFlight: WriteInFlight = { plan, write, waiting: [plan], dueMs };
    node.writesInFlight.push(inFlight);
    this.statistics.peakWritesInFlight = Math.max(this.statistics.peakWritesInFlight, node.writesInFlight.length);
    const incarnation = node.incarnation;
    this.queue.after(dueMs - this.clock.nowMs, () => {
      // Landed early by a snapshot's drain, or lost in a crash: nothing to do.
      if (node.incarnation === incarnation && node.writesInFlight[0] === inFlight) this.land(node);
    });
  }

  /** The oldest write is durable: the core hears of it and what waited for it leaves. */
  private land(node: SimulatedNode): void {
    const landed = node.writesInFlight.shift();
    const raft = node.raft;
    if (landed === undefined || raft === null) throw new SafetyViolation("driver contract", `${node.id} lands a write it does not have`);
    this.persist(node, landed.write);
    if (this.random.chance(this.crashDuringReadyProbability)) return this.crashDuringReady(node, "after landing");
    node.planOrder.step("durable", landed.plan);
    raft.persisted(landed.write.persisted);
    for (const plan of landed.waiting) this.sendDurable(node, plan);
    this.observe(node, raft);
    this.drain(node);
  }

  /** A snapshot replaces the log under earlier writes: they land first, then it lands alone. False if the node crashed. */
  private writeAlone(node: SimulatedNode, raft: RaftNode, plan: ReadyPlan): boolean {
    const write = plan.write;
    if (write === null) throw new SafetyViolation("driver contract", `${node.id} got an exclusive plan without a write`);
    const incarnation = node.incarnation;
    while (node.writesInFlight.length > 0 && node.incarnation === incarnation) this.landNow(node);
    if (node.incarnation !== incarnation) return false;
    node.planOrder.step("write", plan);
    node.hardStates = { ...node.hardStates, written: write.hardState };
    this.persist(node, write);
    if (write.snapshot !== undefined) this.installInMachine(node, write.snapshot.index);
    node.planOrder.step("durable", plan);
    raft.persisted(write.persisted);
    this.sendDurable(node, plan);
    return true;
  }

  /** Lands the oldest write ahead of its time (its scheduled event then finds it gone). */
  private landNow(node: SimulatedNode): void {
    const count = node.writesInFlight.length;
    this.land(node);
    if (node.writesInFlight.length === count) throw new SafetyViolation("driver contract", `${node.id} did not land its oldest write`);
  }

  private countRefusals(node: SimulatedNode, ready: Ready): void {
    for (const refusal of ready.refusedMessages) {
      if (!this.refusalsAllowed) {
        throw new SafetyViolation("driver contract", `${node.id} refused a message from a correct peer: ${JSON.stringify(refusal)}`);
      }
      this.statistics.refusals.set(refusal.reason, (this.statistics.refusals.get(refusal.reason) ?? 0) + refusal.count);
    }
  }

  /** This Ready makes the node leader, or is the first in which it commits as leader of its term. */
  private isLeaderMilestone(node: SimulatedNode, ready: Ready): boolean {
    if (ready.softState?.role === "leader") return true;
    const firstCommit = node.role === "leader" && ready.hardState !== undefined && node.firstCommitConsideredTerm !== node.term;
    if (firstCommit && ready.hardState.commit > node.storage.initialState().hardState.commit) {
      node.firstCommitConsideredTerm = node.term;
      return true;
    }
    return false;
  }

  private crashDuringReady(node: SimulatedNode, crashPoint: CrashPoint): void {
    this.crash(node.id, `crash ${crashPoint}`);
    this.queue.after(this.random.integer(1, this.config.maxDowntimeAfterReadyCrashMs + 1), () => this.restart(node.id));
  }

  private persist(node: SimulatedNode, write: DurableWrite): void {
    for (const chunk of write.snapshotChunks) this.receiveChunk(node, chunk);
    if (write.snapshot !== undefined) {
      const incoming = node.incomingSnapshot;
      const { index, term, sizeBytes } = write.snapshot;
      if (incoming === null || incoming.index !== index || incoming.term !== term || incoming.received !== sizeBytes) {
        throw new SafetyViolation("driver contract", `${node.id} is told to install snapshot ${index}/${term} it has not fully received`);
      }
      this.checker.observeSnapshot(node.id, index, term, digestBytes(incoming.bytes));
      node.storage.applySnapshot(write.snapshot, incoming.bytes);
      node.incomingSnapshot = null;
      this.statistics.snapshotsInstalled++;
      this.trace(`${node.id} installs snapshot ${index}/${term}`);
    }
    if (write.entries.length > 0) {
      checkContiguous(node.id, "Ready.entries", write.entries, write.entries[0]?.index ?? 0);
      this.checker.observeAppend(node.id, write.entries, node.storage);
      node.storage.append(write.entries);
    }
    node.storage.setHardState(write.hardState);
    const { hardState } = node.storage.initialState();
    if (hardState.commit > node.storage.lastIndex()) {
      throw new SafetyViolation("driver contract", `${node.id} wrote commit ${hardState.commit} beyond its durable log ${node.storage.lastIndex()}`);
    }
  }

  /** Snapshot chunks go to a temporary place (volatile here: a restarted node starts over). */
  private receiveChunk(node: SimulatedNode, chunk: SnapshotChunk): void {
    const { index, term, sizeBytes } = chunk.metadata;
    if (chunk.offset === 0) node.incomingSnapshot = { index, term, bytes: new Uint8Array(sizeBytes), received: 0 };
    const incoming = node.incomingSnapshot;
    const end = chunk.offset + chunk.data.byteLength;
    if (incoming === null || incoming.index !== index || incoming.term !== term || chunk.offset > incoming.received || end > sizeBytes) {
      throw new SafetyViolation("driver contract", `${node.id} got chunk [${chunk.offset}, ${end}) of snapshot ${index}/${term} out of sequence`);
    }
    incoming.bytes.set(chunk.data, chunk.offset);
    incoming.received = Math.max(incoming.received, end);
  }

  /** The state machine takes a durable snapshot's state; writes at or below it were decided elsewhere. */
  private installInMachine(node: SimulatedNode, snapshotIndex: number): void {
    if (snapshotIndex < node.machine.appliedIndex) {
      throw new SafetyViolation("driver contract", `${node.id} is told to install snapshot ${snapshotIndex} behind applied ${node.machine.appliedIndex}`);
    }
    node.machine = restoreMachine(node.storage);
    for (const index of node.pendingWrites.keys()) if (index <= snapshotIndex) node.pendingWrites.delete(index);
  }

  /** Applies committed entries; true when this node applied its own removal. */
  private apply(node: SimulatedNode, entries: readonly LogEntry[]): boolean {
    let removed = false;
    // The current term, not the last observed one: a lower term would make the leader-completeness check too strict.
    const term = entries.length > 0 ? (node.raft?.status().term ?? node.term) : node.term;
    for (const entry of entries) {
      this.checker.observeApply(node.id, term, entry, node.machine.appliedIndex);
      const wasMember = isMember(node.machine.membership, node.id);
      const write = node.machine.apply(entry);
      if (wasMember && !isMember(node.machine.membership, node.id)) removed = true;
      this.acknowledge(node, entry.index, entry.term, write);
    }
    return removed;
  }

  /** The proposing node's client learns the outcome once the entry it got is applied. */
  private acknowledge(node: SimulatedNode, index: number, term: number, write: WriteCommand | null): void {
    const pending = node.pendingWrites.get(index);
    if (pending === undefined) return;
    node.pendingWrites.delete(index);
    if (pending.term !== term) return; // overwritten before commit: never acknowledged
    if (write?.operationId !== pending.operationId) {
      throw new SafetyViolation("lost write", `${node.id} applied index ${index} term ${term} but it is not write ${pending.operationId}`);
    }
    this.acknowledgedOperations.add(pending.operationId);
    this.history.acknowledgeWrite(pending.key, index);
  }

  private serveReads(node: SimulatedNode, ready: Ready): void {
    node.confirmedReads.push(...ready.readStates);
    const waiting: ReadState[] = [];
    for (const readState of node.confirmedReads) {
      if (readState.index > node.machine.appliedIndex) {
        waiting.push(readState);
        continue;
      }
      const read = node.pendingReads.get(readState.context);
      if (read === undefined) continue;
      node.pendingReads.delete(readState.context);
      this.history.completeRead(readState.context, node.id, node.machine.read(read.key));
    }
    node.confirmedReads = waiting;
    for (const readId of ready.droppedReads) {
      node.pendingReads.delete(readId);
      this.history.failRead(readId);
    }
  }

  private observe(node: SimulatedNode, raft: RaftNode): void {
    const status = raft.status();
    if (status.role === "leader" && (node.role !== "leader" || node.term !== status.term)) {
      this.statistics.leadersElected++;
      this.trace(`${node.id} leads term ${status.term} (last ${node.storage.lastIndex()}, commit ${status.commit})`);
    }
    node.role = status.role;
    node.term = status.term;
    // Leader completeness is checked on the durable log, once the writes it had in flight landed.
    if (status.role === "leader" && node.leaderCheckedTerm !== status.term && node.writesInFlight.length === 0) {
      node.leaderCheckedTerm = status.term;
      this.checker.observeLeader(node.id, status.term, node.storage);
    }
    // Up to what is applied: above it the durable log may still hold entries a write in flight replaces.
    this.checker.observeCommit(node.id, status.term, Math.min(status.commit, status.applied), node.storage);
  }

  /** Local compaction at the applied index, with a low threshold so that followers often need InstallSnapshot. */
  private compactIfDue(node: SimulatedNode): void {
    const applied = node.machine.appliedIndex;
    if (applied - node.storage.firstIndex() + 1 < this.config.compactionThresholdEntries) return;
    const term = node.storage.term(applied);
    if (term === undefined) throw new SafetyViolation("driver contract", `${node.id} applied ${applied} which is not in its log`);
    const data = node.machine.snapshotData();
    this.checker.observeSnapshot(node.id, applied, term, digestBytes(data));
    node.storage.createSnapshot({ index: applied, term, membership: node.machine.membership, sizeBytes: data.byteLength }, data);
    this.statistics.snapshotsCreated++;
  }

  /** Like a real server, a removed node stops by itself a little later (after telling the others what it knows). */
  private scheduleShutdown(node: SimulatedNode): void {
    const incarnation = node.incarnation;
    this.trace(`${node.id} applied its own removal`);
    this.queue.after(this.config.removedNodeShutdownDelayMs, () => {
      if (node.incarnation !== incarnation) return;
      this.crash(node.id, "removed from the cluster");
      node.removed = true;
    });
  }
}

function durableHardStates(storage: MemoryStorage): DriverHardStates {
  const { hardState } = storage.initialState();
  return { latest: hardState, written: hardState };
}

function restoreMachine(storage: MemoryStorage): RegisterMachine {
  const snapshot = storage.snapshotMetadata();
  return RegisterMachine.restore(storage.snapshotData(), snapshot.index, snapshot.membership);
}

/** Entries the core hands out must be consecutive: a gap means its log bookkeeping is broken. */
function checkContiguous(node: NodeId, what: string, entries: readonly LogEntry[], firstIndex: number): void {
  entries.forEach((entry, offset) => {
    if (entry.index !== firstIndex + offset) {
      const indexes = entries.map((each) => each.index).join(",");
      throw new SafetyViolation("driver contract", `${node} produced ${what} with indexes [${indexes}], expected consecutive from ${firstIndex}`);
    }
  });
}

function isMember(membership: Membership, id: NodeId): boolean {
  return membership.voters.includes(id) || membership.learners.includes(id);
}

function digestBytes(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Runs a client call on the core; a consensus refusal (RaftError) becomes null, anything else is a bug and propagates. */
function refusedAsNull<T>(call: () => T): T | null {
  try {
    return call();
  } catch (error) {
    if (error instanceof RaftError) return null;
    throw error;
  }
}
