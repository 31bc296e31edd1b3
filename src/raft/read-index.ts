import type { NodeId } from "./types.js";

/** A linearizable read waiting at the leader; `from` is the leader itself or a forwarding follower. */
export interface PendingRead {
  readonly context: number;
  readonly from: NodeId;
  /** The commit index when the read arrived: it is served once applied reaches it. */
  readonly index: number;
  /** The heartbeat round whose quorum acknowledgement confirms the leadership for it. */
  readonly round: number;
}

/**
 * Leader side of ReadIndex (dissertation §6.4), batched: every read that arrives before the
 * next round is issued joins it, and one heartbeat round confirms the whole batch.
 * Rounds are numbered per leadership term, starting at 1.
 */
export class ReadIndexBatcher {
  private issued = 0;
  private reads: PendingRead[] = [];

  constructor(private readonly maxPendingReads: number) {}

  /** The newest round sent to followers (heartbeats carry it). */
  get issuedRound(): number {
    return this.issued;
  }

  /** Queues a read for the next round; false when the bound is reached. */
  add(context: number, from: NodeId, index: number): boolean {
    if (this.reads.length >= this.maxPendingReads) return false;
    this.reads.push({ context, from, index, round: this.issued + 1 });
    return true;
  }

  /** Reads wait for a round that has not been sent yet. */
  hasUnissuedReads(): boolean {
    const newest = this.reads[this.reads.length - 1];
    return newest !== undefined && newest.round > this.issued;
  }

  issueRound(): number {
    this.issued++;
    return this.issued;
  }

  /** Removes and returns the reads confirmed by a quorum acknowledging `confirmedRound`. */
  release(confirmedRound: number): PendingRead[] {
    const split = this.reads.findIndex((read) => read.round > confirmedRound);
    const released = split === -1 ? this.reads : this.reads.slice(0, split);
    this.reads = split === -1 ? [] : this.reads.slice(split);
    return released;
  }

  /** Leadership is lost: every pending read must be failed, never forgotten. */
  drain(): PendingRead[] {
    const drained = this.reads;
    this.reads = [];
    return drained;
  }
}

/**
 * Follower side of ReadIndex: reads are forwarded to the leader in one message per Ready and
 * remembered until the leader answers, so that a change of leadership fails them instead of
 * losing them.
 */
export class ReadForwarder {
  private unsent: number[] = [];
  private readonly forwarded = new Set<number>();

  constructor(private readonly maxPendingReads: number) {}

  /** Queues a read for the next forward; false when the bound is reached. */
  add(context: number): boolean {
    if (this.unsent.length + this.forwarded.size >= this.maxPendingReads) return false;
    this.unsent.push(context);
    return true;
  }

  hasUnsent(): boolean {
    return this.unsent.length > 0;
  }

  /** The reads to forward now; they wait for the leader's answer from here on. */
  takeUnsent(): number[] {
    const contexts = this.unsent;
    this.unsent = [];
    for (const context of contexts) this.forwarded.add(context);
    return contexts;
  }

  /** The leader answered: returns the contexts still waiting (late or repeated answers are ignored). */
  settle(contexts: readonly number[]): number[] {
    return contexts.filter((context) => this.forwarded.delete(context));
  }

  /** Leadership or role changed: every read still waiting must be failed. */
  drain(): number[] {
    const pending = [...this.unsent, ...this.forwarded];
    this.unsent = [];
    this.forwarded.clear();
    return pending;
  }
}
