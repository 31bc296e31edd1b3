import type { SnapshotChunk, SnapshotMetadata } from "./types.js";

/** What to do with an incoming chunk, and what to tell the leader. */
export type ChunkVerdict =
  /** Out of order, unknown snapshot or malformed: ask the leader to continue at `nextOffset`. */
  | { readonly kind: "resend"; readonly nextOffset: number }
  /** Accepted: hand it to the driver; more chunks follow from `nextOffset`. */
  | { readonly kind: "accepted"; readonly nextOffset: number }
  /** Accepted and it was the last one: the snapshot is complete. */
  | { readonly kind: "complete"; readonly nextOffset: number };

/**
 * Follower side of the chunked InstallSnapshot: chunks must arrive in order; a chunk at offset 0
 * (re)starts a snapshot. The state is volatile on purpose: after a restart the leader is told to
 * start again at 0, since the partial data the driver kept cannot be trusted to be complete.
 */
export class SnapshotReceiver {
  private incoming: { readonly metadata: SnapshotMetadata; receivedBytes: number } | undefined;

  receive(chunk: SnapshotChunk): ChunkVerdict {
    const { metadata } = chunk;
    const current = this.incoming;
    const same = current !== undefined && current.metadata.index === metadata.index && current.metadata.term === metadata.term;
    if (!same && chunk.offset !== 0) return { kind: "resend", nextOffset: 0 };
    const receiving = same ? current : { metadata, receivedBytes: 0 };
    this.incoming = receiving;
    if (chunk.offset !== receiving.receivedBytes) return { kind: "resend", nextOffset: receiving.receivedBytes };
    const end = chunk.offset + chunk.data.byteLength;
    if (end > metadata.sizeBytes || chunk.last !== (end === metadata.sizeBytes)) {
      this.incoming = undefined;
      return { kind: "resend", nextOffset: 0 };
    }
    receiving.receivedBytes = end;
    if (!chunk.last) return { kind: "accepted", nextOffset: end };
    this.incoming = undefined;
    return { kind: "complete", nextOffset: end };
  }

  /** A new term: a stream from an earlier leader is abandoned. */
  reset(): void {
    this.incoming = undefined;
  }
}
