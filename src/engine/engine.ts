import { KvError } from "../errors.js";
import { assert } from "../util/assert.js";
import type { Command, CommandType } from "./commands.js";
import { splitStoredKey } from "./hash.js";
import { DEFAULT_LIMITS, type EngineLimits } from "./limits.js";
import { LockTable } from "./locks.js";
import type { Outcome } from "./outcome.js";
import { runQuery, type EngineInfo, type Query } from "./queries.js";
import { DEFAULT_SESSION_LIMITS, SessionTable, type SessionLimits } from "./sessions.js";
import { readSnapshot, writeSnapshot } from "./snapshot.js";
import { isLive, ShardedStore, type Entry } from "./store.js";
import { executeCommand, type EngineState } from "./writes.js";

export interface EngineOptions {
  /** Power of two from 1 to 4096; default 256. */
  readonly shardCount?: number;
  readonly limits?: EngineLimits;
  readonly sessions?: Partial<SessionLimits>;
}

/** Where a command sits in the log, and the leader's timestamp carried by its entry. */
export interface ApplyContext {
  readonly index: number;
  readonly term: number;
  readonly now: number;
}

export interface EvictionCandidate {
  readonly namespace: string;
  readonly key: string;
  readonly lastAccessedAt: number;
  readonly size: number;
  readonly expired: boolean;
}

export const DEFAULT_SHARD_COUNT = 256;
/** Most keys one eviction sample may return. */
export const MAX_EVICTION_SAMPLE = 1024;
/** A sample starts at a random offset below this in each shard, so it does not always see the same keys. */
const MAX_SAMPLE_OFFSET = 64;
/** A sample spreads over at least this many shards. */
const MIN_SHARDS_PER_SAMPLE = 4;

/**
 * The state machine: a sharded store, locks and client sessions. `apply` is deterministic — it
 * depends only on the state and the command with its log position and log time — and never
 * reads a clock; user errors are returned as outcomes, never thrown.
 */
export class Engine {
  readonly limits: EngineLimits;
  readonly shardCount: number;
  private readonly sessionLimits: SessionLimits;
  private state: EngineState;
  private lastIndex = 0;
  private lastTerm = 0;
  private logNow = 0;
  private commandCounts = new Map<CommandType, number>();
  private sampleCursor = 0;

  constructor(options: EngineOptions = {}) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.sessionLimits = { ...DEFAULT_SESSION_LIMITS, ...options.sessions };
    this.state = this.emptyState(options.shardCount ?? DEFAULT_SHARD_COUNT);
    this.shardCount = this.state.store.shardCount;
  }

  get appliedIndex(): number {
    return this.lastIndex;
  }

  get appliedTerm(): number {
    return this.lastTerm;
  }

  /** Log time: the largest timestamp applied so far. */
  get now(): number {
    return this.logNow;
  }

  apply(command: Command, context: ApplyContext): Outcome<unknown> {
    this.advance(context);
    const now = this.logNow;
    this.state.sessions.purgeExpired(now);
    this.commandCounts.set(command.type, (this.commandCounts.get(command.type) ?? 0) + 1);
    const writeContext = { state: this.state, limits: this.limits, index: context.index, now };
    const execute = (): Outcome<unknown> => executeCommand(command, writeContext);
    if (command.session === undefined || command.type === "registerSession") return execute();
    return this.state.sessions.runOnce(command.session, now, execute);
  }

  /** Records a log entry without a command (leader no-op, membership change). */
  applyNoop(context: ApplyContext): void {
    this.advance(context);
  }

  /** Serves a read at `now` (never earlier than log time, which only moves forward). */
  read(query: Query, now: number): Outcome<unknown> {
    return runQuery(query, { store: this.state.store, limits: this.limits, now: Math.max(this.logNow, now), info: () => this.info() });
  }

  /**
   * For the leader's active expiry: true when a key or a lock has expired by `now`, i.e. when a
   * `purgeExpired` command would remove something.
   */
  hasExpired(now: number): boolean {
    const effectiveNow = Math.max(this.logNow, now);
    return this.state.store.hasExpired(effectiveNow) || this.state.locks.hasExpired(effectiveNow);
  }

  /**
   * A consistent image as of this call, streamed in chunks while the engine keeps applying.
   * The image is frozen here, synchronously, in O(shards).
   */
  snapshot(): AsyncIterable<Uint8Array> {
    const { store, locks, sessions } = this.state;
    return writeSnapshot({
      appliedIndex: this.lastIndex,
      appliedTerm: this.lastTerm,
      now: this.logNow,
      shards: store.share(),
      locks: locks.share(),
      sessions: sessions.share(),
    });
  }

  /** Replaces the whole state with a snapshot's; on CORRUPT the current state is kept. */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const state = this.emptyState(this.shardCount);
    const header = await readSnapshot(chunks, {
      entry: (entry) => state.store.put(entry),
      lock: (record) => state.locks.restoreRecord(record),
      session: (record) => state.sessions.restoreRecord(record),
    });
    this.state = state;
    this.lastIndex = header.appliedIndex;
    this.lastTerm = header.appliedTerm;
    this.logNow = header.now;
    this.commandCounts = new Map();
  }

  /**
   * Approximated LRU as in Redis: a few keys from a few shards, least recently used first
   * (expired keys before all others). For the leader, which proposes an `evict` command; the
   * access times it uses are local and never replicated.
   */
  sampleEvictionCandidates(sampleSize: number, now: number): EvictionCandidate[] {
    if (!Number.isSafeInteger(sampleSize) || sampleSize < 1 || sampleSize > MAX_EVICTION_SAMPLE) {
      throw new KvError("INVALID", `eviction sample size must be between 1 and ${MAX_EVICTION_SAMPLE}`);
    }
    const perShard = Math.max(1, Math.ceil(sampleSize / MIN_SHARDS_PER_SAMPLE));
    const sample: Entry[] = [];
    for (let visited = 0; visited < this.shardCount && sample.length < sampleSize; visited++) {
      const entries = this.state.store.shardEntries(this.sampleCursor);
      this.sampleCursor = (this.sampleCursor + 1) % this.shardCount;
      sample.push(...takeFrom(entries, Math.min(perShard, sampleSize - sample.length)));
    }
    const effectiveNow = Math.max(this.logNow, now);
    return sample
      .map((entry) => ({ ...splitStoredKey(entry.storedKey), lastAccessedAt: entry.lastAccessedAt, size: entry.size, expired: !isLive(entry, effectiveNow) }))
      .sort((left, right) => Number(right.expired) - Number(left.expired) || left.lastAccessedAt - right.lastAccessedAt);
  }

  info(): EngineInfo {
    const { store, locks, sessions } = this.state;
    return {
      keys: store.size,
      memoryBytes: store.memoryBytes,
      shards: this.shardCount,
      locks: locks.size,
      sessions: sessions.size,
      appliedIndex: this.lastIndex,
      appliedTerm: this.lastTerm,
      commandCounts: Object.fromEntries(this.commandCounts),
    };
  }

  private advance(context: ApplyContext): void {
    assert(Number.isSafeInteger(context.index) && context.index > this.lastIndex, `apply index ${context.index} after ${this.lastIndex}`);
    assert(Number.isFinite(context.now), `apply time ${context.now} is not finite`);
    this.lastIndex = context.index;
    this.lastTerm = context.term;
    this.logNow = Math.max(this.logNow, context.now);
  }

  private emptyState(shardCount: number): EngineState {
    return { store: new ShardedStore(shardCount), locks: new LockTable(), sessions: new SessionTable(this.sessionLimits) };
  }
}

/**
 * Up to `count` entries of a shard, starting at a random offset and wrapping around, so that
 * repeated samples do not always see the same keys (leader-local, so randomness is fine).
 */
function takeFrom(entries: ReadonlyMap<string, Entry>, count: number): Entry[] {
  const offset = Math.floor(Math.random() * Math.min(entries.size, MAX_SAMPLE_OFFSET));
  const skipped: Entry[] = [];
  const taken: Entry[] = [];
  for (const entry of entries.values()) {
    if (skipped.length < offset) skipped.push(entry);
    else if (taken.push(entry) >= count) return taken;
  }
  return taken.concat(skipped.slice(0, count - taken.length));
}
