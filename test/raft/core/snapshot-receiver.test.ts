import { describe, expect, it } from "vitest";
import { SnapshotReceiver } from "../../../src/raft/snapshot-receiver.js";
import type { SnapshotChunk, SnapshotMetadata } from "../../../src/raft/types.js";
import { membershipOf } from "./cluster.js";

const metadata = (index: number, term = 1): SnapshotMetadata => ({ index, term, membership: membershipOf(["a"]), sizeBytes: 10 });

function chunk(offset: number, length: number, meta = metadata(5)): SnapshotChunk {
  return { metadata: meta, offset, data: new Uint8Array(length), last: offset + length === meta.sizeBytes };
}

describe("SnapshotReceiver", () => {
  it("accepts chunks in order and completes on the last one", () => {
    const receiver = new SnapshotReceiver();
    expect(receiver.receive(chunk(0, 4))).toEqual({ kind: "accepted", nextOffset: 4 });
    expect(receiver.receive(chunk(4, 4))).toEqual({ kind: "accepted", nextOffset: 8 });
    expect(receiver.receive(chunk(8, 2))).toEqual({ kind: "complete", nextOffset: 10 });
  });

  it("answers duplicates and gaps with the offset it expects", () => {
    const receiver = new SnapshotReceiver();
    receiver.receive(chunk(0, 4));
    expect(receiver.receive(chunk(0, 4))).toEqual({ kind: "resend", nextOffset: 4 });
    expect(receiver.receive(chunk(8, 2))).toEqual({ kind: "resend", nextOffset: 4 });
    expect(receiver.receive(chunk(4, 6))).toEqual({ kind: "complete", nextOffset: 10 });
  });

  it("asks for offset 0 when it does not know the snapshot (after a restart or a newer snapshot)", () => {
    const receiver = new SnapshotReceiver();
    expect(receiver.receive(chunk(4, 4))).toEqual({ kind: "resend", nextOffset: 0 });
    receiver.receive(chunk(0, 4));
    expect(receiver.receive(chunk(4, 4, metadata(7)))).toEqual({ kind: "resend", nextOffset: 0 });
    expect(receiver.receive(chunk(0, 4, metadata(7)))).toEqual({ kind: "accepted", nextOffset: 4 });
    receiver.reset();
    expect(receiver.receive(chunk(4, 4, metadata(7)))).toEqual({ kind: "resend", nextOffset: 0 });
  });

  it("rejects a chunk past the announced size or with a wrong last flag", () => {
    const receiver = new SnapshotReceiver();
    expect(receiver.receive(chunk(0, 11))).toEqual({ kind: "resend", nextOffset: 0 });
    expect(receiver.receive({ ...chunk(0, 4), last: true })).toEqual({ kind: "resend", nextOffset: 0 });
  });
});
