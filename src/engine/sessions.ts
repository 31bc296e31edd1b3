import { CopyOnWriteMap } from "./copy-on-write.js";
import { fail, type Outcome } from "./outcome.js";

/** What a client attaches to a write so that a retry of it is applied once (dissertation §6.3). */
export interface SessionStamp {
  readonly clientId: bigint;
  /** The client's number for this write, from 1 upwards. */
  readonly sequence: number;
  /** Every result with a sequence up to this one has reached the client and may be forgotten. */
  readonly acknowledged: number;
}

export interface SessionRecord {
  readonly clientId: bigint;
  readonly lastActiveAt: number;
  readonly acknowledged: number;
  /** Recorded outcomes by sequence, in the order they were recorded. */
  readonly results: ReadonlyMap<number, Outcome<unknown>>;
}

interface MutableSessionRecord {
  readonly clientId: bigint;
  lastActiveAt: number;
  acknowledged: number;
  readonly results: Map<number, Outcome<unknown>>;
  /** The share epoch this record was created in; older records are cloned before a change. */
  epoch: number;
}

export interface SessionLimits {
  /** Inactivity after which a session is forgotten (log time). */
  readonly sessionTimeoutMs: number;
  /** Unacknowledged results kept per session; past it the write fails with BUSY. */
  readonly maxResultsPerSession: number;
  readonly maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = Object.freeze({
  sessionTimeoutMs: 60 * 60 * 1000,
  maxResultsPerSession: 1024,
  maxSessions: 65_536,
});

/**
 * Client sessions. The Map's insertion order is the order of last activity (a record is moved
 * to the end when used) and log time never goes backwards, so expired sessions are always at
 * the front: purging costs what it removes.
 */
export class SessionTable {
  private readonly table = new CopyOnWriteMap<bigint, MutableSessionRecord>();
  private epoch = 0;

  constructor(private readonly limits: SessionLimits) {}

  get size(): number {
    return this.table.size;
  }

  /** The client id is the registration's log index: unique and the same on every replica. */
  register(index: number, now: number): Outcome<bigint> {
    if (this.table.size >= this.limits.maxSessions) {
      return fail("BUSY", `too many client sessions (limit ${this.limits.maxSessions}); retry later`);
    }
    const clientId = BigInt(index);
    this.table.set(clientId, { clientId, lastActiveAt: now, acknowledged: 0, results: new Map(), epoch: this.epoch });
    return { ok: true, value: clientId };
  }

  purgeExpired(now: number): void {
    for (const record of this.table.current.values()) {
      if (record.lastActiveAt + this.limits.sessionTimeoutMs > now) return;
      this.table.delete(record.clientId);
    }
  }

  /** Applies `execute` once per (client, sequence); a repeat gets the recorded outcome. */
  runOnce(stamp: SessionStamp, now: number, execute: () => Outcome<unknown>): Outcome<unknown> {
    const found = this.table.get(stamp.clientId);
    if (found === undefined) {
      return fail("NOT_FOUND", `client session ${stamp.clientId} is unknown or expired; register a new session`);
    }
    const recorded = found.results.get(stamp.sequence);
    if (recorded !== undefined) {
      this.touch(this.writable(found), now);
      return recorded;
    }
    if (stamp.sequence <= found.acknowledged) {
      return fail("INVALID", `write ${stamp.sequence} of session ${stamp.clientId} was already acknowledged`);
    }
    const record = this.writable(found);
    this.forgetAcknowledged(record, stamp.acknowledged);
    this.touch(record, now);
    if (record.results.size >= this.limits.maxResultsPerSession) {
      return fail("BUSY", `session ${stamp.clientId} has ${record.results.size} unacknowledged results; acknowledge some first`);
    }
    const outcome = execute();
    record.results.set(stamp.sequence, outcome);
    return outcome;
  }

  /** Records in activity order (the order is part of the state: it decides expiry order). */
  records(view: ReadonlyMap<bigint, SessionRecord> = this.table.current): Iterable<SessionRecord> {
    return view.values();
  }

  share(): ReadonlyMap<bigint, SessionRecord> {
    this.epoch++;
    return this.table.share();
  }

  /** Appends a record read from a snapshot (records arrive in activity order). */
  restoreRecord(record: SessionRecord): void {
    this.table.set(record.clientId, { ...record, results: new Map(record.results), epoch: this.epoch });
  }

  private writable(record: MutableSessionRecord): MutableSessionRecord {
    if (record.epoch === this.epoch) return record;
    const copy = { ...record, results: new Map(record.results), epoch: this.epoch };
    this.table.set(copy.clientId, copy);
    return copy;
  }

  private touch(record: MutableSessionRecord, now: number): void {
    record.lastActiveAt = now;
    this.table.delete(record.clientId);
    this.table.set(record.clientId, record);
  }

  private forgetAcknowledged(record: MutableSessionRecord, acknowledged: number): void {
    if (acknowledged <= record.acknowledged) return;
    record.acknowledged = acknowledged;
    for (const sequence of record.results.keys()) {
      if (sequence <= acknowledged) record.results.delete(sequence);
    }
  }
}
