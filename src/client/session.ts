import type { SessionStamp } from "../engine/sessions.js";

/**
 * Exactly-once bookkeeping (SPEC §4, dissertation §6.3): the client's session id and the numbers
 * of its writes. A write keeps its stamp across retries, so the server applies it once and
 * answers a repeat with the recorded result.
 *
 * `acknowledged` is the highest sequence such that every write up to it is settled (answered,
 * or given up by the caller): the server may then forget those results. Sequences are issued in
 * increasing order and the unsettled ones kept in a Set in that order, so its first element is
 * the lowest unsettled sequence.
 */
export class WriteSession {
  private clientId: bigint | null = null;
  private registering: Promise<bigint> | null = null;
  private nextSequence = 1;
  private readonly unsettled = new Set<number>();

  /** `register` opens a session on the server and returns its client id. */
  constructor(private readonly register: () => Promise<bigint>) {}

  /** The current session id, or null before the first write or after the session expired. */
  get id(): bigint | null {
    return this.clientId;
  }

  /** Unsettled writes of the current session. */
  get unsettledCount(): number {
    return this.unsettled.size;
  }

  /** A new stamp for a new write, registering the session first when there is none. */
  async begin(): Promise<SessionStamp> {
    const clientId = this.clientId ?? (await this.registered());
    if (clientId !== this.clientId) return this.begin(); // expired while registering
    const sequence = this.nextSequence++;
    this.unsettled.add(sequence);
    return { clientId, sequence, acknowledged: this.acknowledged() };
  }

  /** The same write, retried: same client id and sequence, a fresh `acknowledged`. */
  refresh(stamp: SessionStamp): SessionStamp {
    return stamp.clientId === this.clientId ? { ...stamp, acknowledged: this.acknowledged() } : stamp;
  }

  /** The write has its answer, or its caller gave up on it: the server may forget its result. */
  settle(stamp: SessionStamp): void {
    if (stamp.clientId === this.clientId) this.unsettled.delete(stamp.sequence);
  }

  /**
   * The server no longer knows the session of `stamp` (expired): the next write registers a new
   * one. Writes still under the old session start over with stamps of the new one.
   */
  expire(stamp: SessionStamp): void {
    if (stamp.clientId !== this.clientId) return;
    this.clientId = null;
    this.nextSequence = 1;
    this.unsettled.clear();
  }

  private acknowledged(): number {
    for (const lowest of this.unsettled) return lowest - 1;
    return this.nextSequence - 1;
  }

  /** One registration at a time: concurrent first writes share it. */
  private registered(): Promise<bigint> {
    if (this.registering === null) {
      const registering = this.register().then(
        (clientId) => {
          this.registering = null;
          this.clientId = clientId;
          return clientId;
        },
        (error: unknown) => {
          this.registering = null;
          throw error;
        },
      );
      this.registering = registering;
    }
    return this.registering;
  }
}
