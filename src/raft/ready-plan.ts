import type { HardState, LogEntry, Message, PersistedPoint, Ready, SnapshotChunk, SnapshotMetadata } from "./types.js";

/**
 * What a driver does with one Ready, and in which order. The node (ReplicatedNode), the
 * simulator and the core tests all execute this plan, so the order production uses is the
 * order the seed sweep checks (etcd-io/raft's async storage writes; dissertation §10.2.1):
 *
 * 1. send `sendNow`;
 * 2. issue `write` (behind every earlier write; an `exclusive` plan first waits until those are
 *    durable, and no other Ready is taken until its own write is);
 * 3. apply `apply`, serve the Ready's read states, `advance()`;
 * 4. once `write` and every earlier write are durable: `persisted(write.persisted)`, then send
 *    `sendWhenDurable`.
 *
 * A crash may fall between any two steps; writes not yet durable are lost with it.
 */
export interface ReadyPlan {
  /** Leader replication, which vouches for nothing on this node's disk: it leaves at once. */
  readonly sendNow: readonly Message[];
  /** One durable write, or null when the Ready changes nothing that must survive a restart. */
  readonly write: DurableWrite | null;
  /**
   * Acknowledgements and votes vouch for this write and every earlier one: they leave once
   * all of them are durable (sent at once when nothing is in flight).
   */
  readonly sendWhenDurable: readonly Message[];
  /** Committed entries, all durable here already (the core hands out no others). */
  readonly apply: readonly LogEntry[];
  /** A snapshot replaces the log under earlier writes: they finish first, and it finishes alone. */
  readonly exclusive: boolean;
}

export interface DurableWrite {
  /** Written first, in order: the snapshot being received. */
  readonly snapshotChunks: readonly SnapshotChunk[];
  /** A fully received snapshot: installed before the entries, the log under it dropped. */
  readonly snapshot?: SnapshotMetadata;
  readonly entries: readonly LogEntry[];
  /** The hard state as of this write (a commit index alone rides along with the next write). */
  readonly hardState: HardState;
  /** What to report to the core once durable. */
  readonly persisted: PersistedPoint;
}

/** The steps of a plan, as a driver reports executing them ("durable": its write landed). */
export type ReadyStep = "sendNow" | "write" | "apply" | "advance" | "durable" | "sendWhenDurable";

/** The hard states a driver tracks: the latest the core reported, and the latest it wrote. */
export interface DriverHardStates {
  readonly latest: HardState;
  readonly written: HardState;
}

/** Messages only a leader sends, which acknowledge nothing about the sender's own disk. */
const LEADER_REPLICATION: ReadonlySet<Message["type"]> = new Set(["appendEntries", "heartbeat", "installSnapshot"]);

export function planReady(ready: Ready, hardStates: DriverHardStates): ReadyPlan {
  const hardState = ready.hardState ?? hardStates.latest;
  const exclusive = ready.snapshot !== undefined || ready.snapshotChunks.length > 0;
  // Term and vote must be durable before any message that depends on them leaves (etcd's
  // MustSync). A commit index alone need not: after a restart it is learned again.
  const termOrVoteChanges = mustSync(hardState, hardStates.written);
  const needsWrite = exclusive || ready.entries.length > 0 || termOrVoteChanges;
  const write = needsWrite ? durableWrite(ready, hardState) : null;
  const holdAll = termOrVoteChanges || exclusive;
  const sendNow = holdAll ? [] : ready.messages.filter((message) => LEADER_REPLICATION.has(message.type));
  const sendWhenDurable = holdAll ? ready.messages : ready.messages.filter((message) => !LEADER_REPLICATION.has(message.type));
  return { sendNow, write, sendWhenDurable, apply: ready.committedEntries, exclusive };
}

export function mustSync(hardState: HardState, written: HardState): boolean {
  return hardState.term !== written.term || hardState.vote !== written.vote;
}

function durableWrite(ready: Ready, hardState: HardState): DurableWrite {
  const last = ready.entries[ready.entries.length - 1];
  const persisted: PersistedPoint = {
    ...(last === undefined ? {} : { lastEntry: { index: last.index, term: last.term } }),
    ...(ready.snapshot === undefined ? {} : { snapshotIndex: ready.snapshot.index }),
  };
  return {
    snapshotChunks: ready.snapshotChunks,
    ...(ready.snapshot === undefined ? {} : { snapshot: ready.snapshot }),
    entries: ready.entries,
    hardState,
    persisted,
  };
}
