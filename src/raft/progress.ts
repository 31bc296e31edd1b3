/**
 * The leader's view of one follower (etcd's tracker.Progress): how far its log matches and how
 * messages to it are paced.
 *  - probe: one AppendEntries at a time until the follower's match point is found;
 *  - replicate: pipelined AppendEntries, bounded by the in-flight window;
 *  - snapshot: the follower needs entries the leader compacted; snapshot chunks are streamed.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** The bounded window of AppendEntries sent and not yet acknowledged in the replicate state. */
export class Inflights {
  private readonly messages: { readonly lastIndex: number; readonly bytes: number }[] = [];
  private totalBytes = 0;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  add(lastIndex: number, bytes: number): void {
    this.messages.push({ lastIndex, bytes });
    this.totalBytes += bytes;
  }

  /** Frees every message acknowledged by a match at `index`. */
  freeTo(index: number): void {
    while (this.messages[0] !== undefined && this.messages[0].lastIndex <= index) {
      this.totalBytes -= this.messages[0].bytes;
      this.messages.shift();
    }
  }

  /** Frees the oldest message, whose answer is presumed lost. */
  freeFirst(): void {
    const first = this.messages.shift();
    if (first !== undefined) this.totalBytes -= first.bytes;
  }

  full(): boolean {
    return this.messages.length >= this.maxMessages || this.totalBytes >= this.maxBytes;
  }

  reset(): void {
    this.messages.length = 0;
    this.totalBytes = 0;
  }
}

/** A snapshot being streamed: one chunk in flight, resumed from the follower's acknowledged offset. */
export interface SnapshotTransfer {
  readonly index: number;
  /** Start of the chunk in flight: the follower has everything before it. */
  ackedOffset: number;
  /** End of the chunk in flight: the response that acknowledges it reports this offset. */
  inFlightEnd: number;
  /** Ticks without a response; the chunk is sent again after an election timeout. */
  idleTicks: number;
}

export class Progress {
  match = 0;
  state: ProgressState = "probe";
  /** Probe state: an AppendEntries is out, wait for its answer or a heartbeat answer. */
  probeSent = false;
  /**
   * Leader ticks since this follower was last heard from (infinite: never). Check-quorum and the
   * membership safety check count a follower as active within one election timeout.
   */
  inactiveTicks = Number.POSITIVE_INFINITY;
  /** Newest ReadIndex round this follower acknowledged. */
  readRoundAcked = 0;
  snapshot: SnapshotTransfer | undefined;
  readonly inflights: Inflights;

  constructor(
    public next: number,
    maxInflightMessages: number,
    maxInflightBytes: number,
  ) {
    this.inflights = new Inflights(maxInflightMessages, maxInflightBytes);
  }

  /** Probes right after the match; after a snapshot, the follower's answer has set the match. */
  becomeProbe(): void {
    this.enter("probe", this.match + 1);
  }

  /**
   * Forgets what the follower acknowledged and probes from `next`: its process restarted and may
   * have lost a tail it had not synced, or it contradicted its match. Lowering match is safe:
   * the commit index never decreases, so nothing already committed is taken back; match only
   * counts toward future commits and bounds the commit index the follower is told, and a lower
   * value can only make both more cautious until the follower's answers establish it again.
   */
  forgetMatch(next: number): void {
    this.match = 0;
    this.enter("probe", next);
  }

  becomeReplicate(): void {
    this.enter("replicate", this.match + 1);
  }

  becomeSnapshot(index: number): void {
    this.enter("snapshot", this.next);
    this.snapshot = { index, ackedOffset: 0, inFlightEnd: 0, idleTicks: 0 };
  }

  private enter(state: ProgressState, next: number): void {
    this.state = state;
    this.next = next;
    this.probeSent = false;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /** Records an AppendEntries just sent that carries entries up to `lastIndex`. */
  sentEntries(lastIndex: number | undefined, bytes: number): void {
    if (this.state === "probe") {
      this.probeSent = true;
    } else if (this.state === "replicate" && lastIndex !== undefined) {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    }
  }

  /** A successful append acknowledged `index`; false when it was already known. */
  maybeUpdate(index: number): boolean {
    const updated = this.match < index;
    if (updated) {
      this.match = index;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an append at `rejectedIndex`; `matchHint` is the leader's guess of
   * the last index that may match (conflict-term backtracking, Raft §5.3 optimisation). False
   * when the rejection is stale (an answer to an older message).
   */
  maybeDecreaseTo(rejectedIndex: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // etcd ignores a rejection at or below match as stale. But a follower that lost entries it
      // acknowledged (a restart without fsync, a wiped disk) rejects exactly there, and ignoring
      // it would stall that follower for good. Neither the index nor the hint tells a stale
      // answer from such a one (both point below match), so every rejection costs one probe:
      // a follower whose log is intact accepts the probe at match at once.
      this.becomeProbe();
      return true;
    }
    if (this.state === "snapshot" || this.next - 1 !== rejectedIndex) return false;
    // The answer to the probe in flight. Rejecting at match contradicts the match: the follower
    // lost entries it acknowledged, so its match is forgotten (see forgetMatch) and probing
    // goes below it.
    if (rejectedIndex <= this.match) this.match = 0;
    this.next =
      matchHint > rejectedIndex
        ? matchHint + 1 // the follower compacted past the probe: continue from its snapshot
        : Math.max(Math.min(rejectedIndex, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
