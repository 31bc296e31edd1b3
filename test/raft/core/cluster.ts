import { MemoryStorage } from "../../../src/raft/memory-storage.js";
import { defaultRaftConfig, RaftNode } from "../../../src/raft/node.js";
import { planReady, type DriverHardStates, type DurableWrite } from "../../../src/raft/ready-plan.js";
import type { HardState, LogEntry, Membership, Message, NodeId, RaftConfig, ReadState, RefusedMessage, SnapshotChunk } from "../../../src/raft/types.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function command(text: string): Uint8Array {
  return encoder.encode(text);
}

export function membershipOf(voters: readonly NodeId[], learners: readonly NodeId[] = []): Membership {
  const addresses = Object.fromEntries([...voters, ...learners].map((id) => [id, `addr-${id}`]));
  return { voters, learners, addresses };
}

/** Seeded generator (mulberry32) so every run elects the same way. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface InitialNodeState {
  readonly membership: Membership;
  readonly entries?: LogEntry[];
  readonly hardState?: HardState;
}

/** One member: the core, its storage and a state machine that records applied commands. */
export class Member {
  storage: MemoryStorage;
  node: RaftNode;
  applied: string[] = [];
  readStates: ReadState[] = [];
  droppedReads: number[] = [];
  refusedMessages: RefusedMessage[] = [];
  private chunks: SnapshotChunk[] = [];
  private hardStates: DriverHardStates;

  constructor(
    readonly id: NodeId,
    initial: InitialNodeState,
    private readonly overrides: Partial<RaftConfig>,
    seed: number,
  ) {
    this.storage = new MemoryStorage(initial);
    const hardState = this.storage.initialState().hardState;
    this.hardStates = { latest: hardState, written: hardState };
    this.node = this.createNode(seed, 0);
  }

  private createNode(seed: number, applied: number): RaftNode {
    return new RaftNode(defaultRaftConfig({ id: this.id, storage: this.storage, random: seededRandom(seed), applied, ...this.overrides }));
  }

  /** Restarts from storage alone: everything not handed to storage is lost. */
  restart(seed: number): void {
    const snapshot = this.storage.snapshotMetadata();
    this.applied = decodeState(this.storage.snapshotData());
    this.chunks = [];
    const hardState = this.storage.initialState().hardState;
    this.hardStates = { latest: hardState, written: hardState };
    this.node = this.createNode(seed, snapshot.index);
  }

  /**
   * Handles one Ready by the plan every driver executes (ready-plan.ts), with a disk that is
   * durable at once; returns its messages.
   */
  handleReady(): Message[] {
    const ready = this.node.ready();
    const plan = planReady(ready, this.hardStates);
    if (ready.hardState !== undefined) this.hardStates = { ...this.hardStates, latest: ready.hardState };
    if (plan.write !== null) this.write(plan.write);
    for (const entry of plan.apply) {
      if (entry.kind === "command") this.applied.push(decoder.decode(entry.data));
    }
    this.readStates.push(...ready.readStates);
    this.droppedReads.push(...ready.droppedReads);
    this.refusedMessages.push(...ready.refusedMessages);
    this.node.advance();
    if (plan.write !== null) this.node.persisted(plan.write.persisted);
    return [...plan.sendNow, ...plan.sendWhenDurable];
  }

  private write(write: DurableWrite): void {
    for (const chunk of write.snapshotChunks) {
      // A chunk at offset 0 starts a new snapshot: whatever was received before is abandoned.
      if (chunk.offset === 0) this.chunks = [];
      this.chunks.push(chunk);
    }
    const snapshot = write.snapshot;
    if (snapshot !== undefined) {
      const data = concat(this.chunks.filter((chunk) => chunk.metadata.index === snapshot.index).map((chunk) => chunk.data));
      this.storage.applySnapshot(snapshot, data);
      this.applied = decodeState(data);
      this.chunks = [];
    }
    this.storage.append(write.entries);
    this.storage.setHardState(write.hardState);
    this.hardStates = { ...this.hardStates, written: write.hardState };
  }

  /** Compacts the log up to the applied index, like the driver's periodic snapshot. */
  compact(): void {
    const index = this.node.status().applied;
    const term = this.storage.term(index);
    if (term === undefined) throw new Error(`cannot compact at ${index}`);
    const data = encodeState(this.applied);
    this.storage.createSnapshot({ index, term, membership: this.node.status().membership, sizeBytes: data.byteLength }, data);
  }
}

function encodeState(applied: readonly string[]): Uint8Array {
  return encoder.encode(JSON.stringify(applied));
}

function decodeState(data: Uint8Array): string[] {
  return data.byteLength === 0 ? [] : (JSON.parse(decoder.decode(data)) as string[]);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const result = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.byteLength;
  }
  return result;
}

/** Bound on stabilize rounds: a cluster that does not go quiet by then has a livelock bug. */
const MAX_STABILIZE_ROUNDS = 10_000;

/**
 * A tiny in-memory network: messages wait in a queue until delivered; `cut` links drop them.
 * Every delivered message is recorded in `delivered` for assertions on traffic.
 */
export class Cluster {
  readonly members = new Map<NodeId, Member>();
  queue: Message[] = [];
  delivered: Message[] = [];
  private readonly cutLinks = new Set<string>();
  /** Drops a message when it returns true (after the link check). */
  dropWhen: (message: Message) => boolean = () => false;

  constructor(initial: Record<NodeId, InitialNodeState>, overrides: Partial<RaftConfig> = {}) {
    let seed = 1;
    for (const [id, state] of Object.entries(initial)) this.members.set(id, new Member(id, state, overrides, seed++));
  }

  /** A fresh cluster whose voters all start from the same bootstrap membership. */
  static of(voters: readonly NodeId[], overrides: Partial<RaftConfig> = {}): Cluster {
    const membership = membershipOf(voters);
    return new Cluster(Object.fromEntries(voters.map((id) => [id, { membership }])), overrides);
  }

  member(id: NodeId): Member {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  node(id: NodeId): RaftNode {
    return this.member(id).node;
  }

  add(id: NodeId, state: InitialNodeState, overrides: Partial<RaftConfig> = {}): Member {
    const member = new Member(id, state, overrides, this.members.size + 1);
    this.members.set(id, member);
    return member;
  }

  cut(a: NodeId, b: NodeId): void {
    this.cutLinks.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.members.keys()) if (other !== id) this.cut(id, other);
  }

  heal(): void {
    this.cutLinks.clear();
  }

  /** Handles every pending Ready once; returns whether there was any. */
  processReadies(): boolean {
    let any = false;
    for (const member of this.members.values()) {
      while (member.node.hasReady()) {
        any = true;
        this.queue.push(...member.handleReady());
      }
    }
    return any;
  }

  /** Delivers the messages queued so far (not those they cause). */
  deliverAll(): number {
    const batch = this.queue;
    this.queue = [];
    for (const message of batch) this.deliver(message);
    return batch.length;
  }

  deliver(message: Message): void {
    if (this.cutLinks.has(`${message.from}|${message.to}`) || this.dropWhen(message)) return;
    const target = this.members.get(message.to);
    if (target === undefined) return;
    this.delivered.push(message);
    target.node.step(message);
  }

  /** Runs Ready handling and delivery until nothing moves. */
  stabilize(): void {
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      const readies = this.processReadies();
      if (this.deliverAll() === 0 && !readies) return;
    }
    throw new Error("cluster did not stabilize");
  }

  /** Ticks every node (or the given ones) `ticks` times, stabilizing after each tick. */
  tick(ticks: number, ids: readonly NodeId[] = [...this.members.keys()]): void {
    for (let tick = 0; tick < ticks; tick++) {
      for (const id of ids) this.node(id).tick();
      this.stabilize();
    }
  }

  /** Campaigns `id` and stabilizes; returns the leader. */
  elect(id: NodeId): NodeId {
    this.node(id).campaign();
    this.stabilize();
    return this.leader();
  }

  /** The single node that is leader in the highest term; throws when there is none. */
  leader(): NodeId {
    const leaders = [...this.members.values()].filter((member) => member.node.status().role === "leader");
    const best = leaders.sort((a, b) => b.node.status().term - a.node.status().term)[0];
    if (best === undefined) throw new Error("no leader");
    return best.id;
  }

  /** Ticks until some node is leader, within a bound. */
  tickUntilLeader(maxTicks = 200, ids?: readonly NodeId[]): NodeId {
    for (let tick = 0; tick < maxTicks; tick++) {
      const leader = [...this.members.values()].find(
        (member) => member.node.status().role === "leader" && (ids === undefined || ids.includes(member.id)),
      );
      if (leader !== undefined) return leader.id;
      this.tick(1, ids);
    }
    throw new Error(`no leader within ${maxTicks} ticks`);
  }

  propose(leader: NodeId, ...texts: string[]): void {
    this.node(leader).propose(texts.map(command));
    this.stabilize();
  }

  /** Every message of `type` delivered since the last reset. */
  deliveredOf<T extends Message["type"]>(type: T): Extract<Message, { type: T }>[] {
    return this.delivered.filter((message): message is Extract<Message, { type: T }> => message.type === type);
  }
}
