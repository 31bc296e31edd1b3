import type { LogEntry, LogStorage, NodeId } from "../../src/raft/types.js";
import type { RegisterValue } from "./register-machine.js";

export type SafetyProperty =
  | "election safety"
  | "log matching"
  | "leader completeness"
  | "committed entry overwritten"
  | "state-machine safety"
  | "snapshot safety"
  | "lost write"
  | "stale read"
  | "liveness"
  | "driver contract";

/** A broken Raft guarantee. The run stops at the first one, and its seed replays it. */
export class SafetyViolation extends Error {
  override readonly name = "SafetyViolation";

  constructor(
    readonly property: SafetyProperty,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
  }
}

/** The part of a node's log the checks read. */
export type LogView = Pick<LogStorage, "firstIndex" | "lastIndex" | "term" | "entries">;

/** Identity of an entry: equal digests mean equal entries. */
export function entryDigest(entry: LogEntry): string {
  switch (entry.kind) {
    case "noop":
      return `${entry.term}/noop`;
    case "command":
      return `${entry.term}/command/${Buffer.from(entry.data).toString("base64")}`;
    case "membership":
      return `${entry.term}/membership/${entry.membership.voters.join(",")}/${entry.membership.learners.join(",")}`;
  }
}

interface CommittedRecord {
  readonly term: number;
  readonly digest: string;
  /** Lowest term any node was in when it saw this entry committed: the term that committed it or later. */
  commitTerm: number;
}

/**
 * Checks the Raft safety properties (Raft paper, Figure 3) on observations of the cluster.
 * It knows nothing about the simulator: the cluster reports what each node did, and hand-made
 * histories can test the checks themselves.
 */
export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly committed = new Map<number, CommittedRecord>();
  private readonly commitChecked = new Map<NodeId, number>();
  private readonly snapshotDigests = new Map<number, string>();
  private highestCommittedIndex = 0;

  get committedIndex(): number {
    return this.highestCommittedIndex;
  }

  /** Digest of the committed entry at `index`, when some node has reported it. */
  committedDigest(index: number): string | undefined {
    return this.committed.get(index)?.digest;
  }

  /** A node is leader of `term`: no other node ever was (election safety), and it holds every entry committed in an earlier term. */
  observeLeader(node: NodeId, term: number, log: LogView): void {
    const previous = this.leaderOfTerm.get(term);
    if (previous !== undefined && previous !== node) {
      throw new SafetyViolation("election safety", `${previous} and ${node} are both leaders of term ${term}`);
    }
    this.leaderOfTerm.set(term, node);
    const snapshotIndex = log.firstIndex() - 1;
    for (let index = snapshotIndex; index <= this.highestCommittedIndex; index++) {
      const record = this.committed.get(index);
      if (record === undefined || record.commitTerm >= term) continue;
      const held = index === snapshotIndex ? log.term(index) : digestAt(log, index);
      const expected = index === snapshotIndex ? record.term : record.digest;
      if (held !== expected) {
        throw new SafetyViolation(
          "leader completeness",
          `${node} leads term ${term} without entry ${index} (${record.digest}) committed in term ${record.commitTerm}; it holds ${String(held)}`,
        );
      }
    }
  }

  /** A node in `term` reports `commitIndex`: record the newly committed entries it holds and compare with other nodes. */
  observeCommit(node: NodeId, term: number, commitIndex: number, log: LogView): void {
    const checkedUpTo = this.commitChecked.get(node) ?? 0;
    if (commitIndex <= checkedUpTo) return;
    const low = Math.max(checkedUpTo + 1, log.firstIndex());
    if (low <= commitIndex) {
      for (const entry of log.entries(low, commitIndex + 1, Number.MAX_SAFE_INTEGER)) this.recordCommitted(node, term, entry);
    }
    this.commitChecked.set(node, commitIndex);
  }

  /**
   * A node is about to persist `entries`: none may replace a committed entry that it holds or
   * knows to be committed. (A node cut off in a minority may still receive a stale leader's
   * conflicting entry at an index committed elsewhere: that entry is not committed and will go.)
   */
  observeAppend(node: NodeId, entries: readonly LogEntry[], log: LogView): void {
    const nodeCommit = this.commitChecked.get(node) ?? 0;
    for (const entry of entries) {
      const record = this.committed.get(entry.index);
      if (record === undefined || record.digest === entryDigest(entry)) continue;
      if (entry.index <= nodeCommit || digestAt(log, entry.index) === record.digest) {
        throw new SafetyViolation(
          "committed entry overwritten",
          `${node} replaces committed entry ${entry.index} (${record.digest}) with ${entryDigest(entry)}`,
        );
      }
    }
  }

  /** A node applies `entry` right after `previousApplied`; every node applies the same entry at each index. */
  observeApply(node: NodeId, term: number, entry: LogEntry, previousApplied: number): void {
    if (entry.index !== previousApplied + 1) {
      throw new SafetyViolation("state-machine safety", `${node} applies index ${entry.index} right after ${previousApplied}`);
    }
    this.recordCommitted(node, term, entry);
  }

  /** A snapshot at `index` (created locally or installed) has contents `digest`: every snapshot of one index is identical. */
  observeSnapshot(node: NodeId, index: number, term: number, digest: string): void {
    const known = this.snapshotDigests.get(index);
    if (known !== undefined && known !== digest) {
      throw new SafetyViolation("snapshot safety", `${node} holds a snapshot at ${index} that differs from another node's`);
    }
    this.snapshotDigests.set(index, digest);
    const record = this.committed.get(index);
    if (record !== undefined && record.term !== term) {
      throw new SafetyViolation("snapshot safety", `${node} holds a snapshot at ${index} of term ${term}, committed term is ${record.term}`);
    }
  }

  /** Log matching (Figure 3): two logs with an entry of equal index and term are identical up to it. */
  checkLogMatching(logs: ReadonlyMap<NodeId, LogView>): void {
    const nodes = [...logs.entries()];
    for (let first = 0; first < nodes.length; first++) {
      for (let second = first + 1; second < nodes.length; second++) {
        const [leftNode, left] = nodes[first] as [NodeId, LogView];
        const [rightNode, right] = nodes[second] as [NodeId, LogView];
        checkPair(leftNode, left, rightNode, right);
      }
    }
  }

  private recordCommitted(node: NodeId, term: number, entry: LogEntry): void {
    const digest = entryDigest(entry);
    const record = this.committed.get(entry.index);
    if (record === undefined) {
      this.committed.set(entry.index, { term: entry.term, digest, commitTerm: term });
      this.highestCommittedIndex = Math.max(this.highestCommittedIndex, entry.index);
      return;
    }
    if (record.digest !== digest) {
      throw new SafetyViolation(
        "state-machine safety",
        `${node} has ${digest} committed at index ${entry.index}, another node has ${record.digest}`,
      );
    }
    record.commitTerm = Math.min(record.commitTerm, term);
  }
}

function digestAt(log: LogView, index: number): string | undefined {
  if (index < log.firstIndex() || index > log.lastIndex()) return undefined;
  const [entry] = log.entries(index, index + 1, Number.MAX_SAFE_INTEGER);
  return entry === undefined ? undefined : entryDigest(entry);
}

function checkPair(leftNode: NodeId, left: LogView, rightNode: NodeId, right: LogView): void {
  const low = Math.max(left.firstIndex(), right.firstIndex());
  let high = Math.min(left.lastIndex(), right.lastIndex());
  while (high >= low && left.term(high) !== right.term(high)) high--;
  if (high < low) return;
  const leftEntries = left.entries(low, high + 1, Number.MAX_SAFE_INTEGER);
  const rightEntries = right.entries(low, high + 1, Number.MAX_SAFE_INTEGER);
  for (let offset = 0; offset <= high - low; offset++) {
    const leftEntry = leftEntries[offset];
    const rightEntry = rightEntries[offset];
    const leftDigest = leftEntry === undefined ? "missing" : entryDigest(leftEntry);
    const rightDigest = rightEntry === undefined ? "missing" : entryDigest(rightEntry);
    if (leftDigest !== rightDigest) {
      throw new SafetyViolation(
        "log matching",
        `${leftNode} and ${rightNode} agree on term ${String(left.term(high))} at index ${high} but differ at ${low + offset}: ${leftDigest} vs ${rightDigest}`,
      );
    }
  }
}

interface PendingRead {
  readonly key: string;
  /** Index of the newest write to `key` acknowledged before the read was invoked (0 = none). */
  readonly requiredIndex: number;
}

/**
 * The clients' view: which writes were acknowledged, and whether every linearizable read saw
 * at least the newest write acknowledged before it started.
 */
export class ClientHistory {
  private readonly newestAcknowledgedIndex = new Map<string, number>();
  private readonly pendingReads = new Map<number, PendingRead>();
  acknowledgedWrites = 0;
  servedReads = 0;
  failedReads = 0;

  acknowledgeWrite(key: string, index: number): void {
    this.acknowledgedWrites++;
    this.newestAcknowledgedIndex.set(key, Math.max(index, this.newestAcknowledgedIndex.get(key) ?? 0));
  }

  invokeRead(readId: number, key: string): void {
    this.pendingReads.set(readId, { key, requiredIndex: this.newestAcknowledgedIndex.get(key) ?? 0 });
  }

  /** A read returns `observed`; a second answer to the same read (a duplicate) is ignored. */
  completeRead(readId: number, node: NodeId, observed: RegisterValue | undefined): void {
    const read = this.pendingReads.get(readId);
    if (read === undefined) return;
    this.pendingReads.delete(readId);
    this.servedReads++;
    const observedIndex = observed?.index ?? 0;
    if (observedIndex < read.requiredIndex) {
      throw new SafetyViolation(
        "stale read",
        `read ${readId} of "${read.key}" on ${node} saw the write at index ${observedIndex}, but the write at ${read.requiredIndex} was acknowledged before the read started`,
      );
    }
  }

  failRead(readId: number): void {
    if (this.pendingReads.delete(readId)) this.failedReads++;
  }

  /** At the end of a run: every key of `node` holds at least its newest acknowledged write. */
  checkNoWriteLost(node: NodeId, read: (key: string) => RegisterValue | undefined): void {
    for (const [key, index] of this.newestAcknowledgedIndex) {
      const observedIndex = read(key)?.index ?? 0;
      if (observedIndex < index) {
        throw new SafetyViolation("lost write", `${node} holds "${key}" from index ${observedIndex}, the write at ${index} was acknowledged`);
      }
    }
  }
}
