import type { Message } from "../raft/types.js";
import { encodeMessages } from "./peer-codec.js";

/** Estimated bytes of a message's fixed fields (type, ids, term, indexes), generously. */
const MESSAGE_FIELDS_BYTES = 256;
/** Estimated bytes of an entry's record around its data (index, term, kind, checksum). */
const ENTRY_RECORD_BYTES = 64;

/**
 * Roughly the encoded size of a message: exact enough to group messages into frames and to
 * bound queues, never trusted alone for the frame limit (encodePeerFrames checks the bytes).
 */
export function estimatedMessageBytes(message: Message): number {
  if (message.type === "installSnapshot") return MESSAGE_FIELDS_BYTES + message.chunk.data.byteLength;
  if (message.type !== "appendEntries") return MESSAGE_FIELDS_BYTES;
  return message.entries.reduce((sum, entry) => sum + ENTRY_RECORD_BYTES + (entry.kind === "command" ? entry.data.byteLength : 0), MESSAGE_FIELDS_BYTES);
}

export interface PeerFrame {
  readonly payload: Uint8Array;
  readonly messages: readonly Message[];
}

/**
 * The messages of one Ready to one peer as frame payloads of at most `maxFrameBytes` each, in
 * order: the receiver refuses a larger frame and drops the link, so an oversized batch would be
 * resent and refused forever. Messages are grouped by estimate, and a group whose encoding
 * still exceeds the limit is split in halves. A single message over the limit can never be
 * delivered: it is handed to `onOversized` instead (entries are sized at proposal so that this
 * does not happen; see MAX_REQUEST_PAYLOAD_BYTES).
 */
export function encodePeerFrames(messages: readonly Message[], maxFrameBytes: number, onOversized: (message: Message, bytes: number) => void): PeerFrame[] {
  const frames: PeerFrame[] = [];
  for (const group of groupByEstimate(messages, maxFrameBytes)) encodeGroup(group, maxFrameBytes, frames, onOversized);
  return frames;
}

function groupByEstimate(messages: readonly Message[], maxFrameBytes: number): Message[][] {
  const groups: Message[][] = [];
  let current: Message[] = [];
  let currentBytes = 0;
  for (const message of messages) {
    const bytes = estimatedMessageBytes(message);
    if (current.length > 0 && currentBytes + bytes > maxFrameBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(message);
    currentBytes += bytes;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

function encodeGroup(group: readonly Message[], maxFrameBytes: number, frames: PeerFrame[], onOversized: (message: Message, bytes: number) => void): void {
  const payload = encodeMessages(group);
  if (payload.byteLength <= maxFrameBytes) {
    frames.push({ payload, messages: group });
    return;
  }
  const [only] = group;
  if (group.length === 1 && only !== undefined) {
    onOversized(only, payload.byteLength);
    return;
  }
  const middle = Math.ceil(group.length / 2);
  encodeGroup(group.slice(0, middle), maxFrameBytes, frames, onOversized);
  encodeGroup(group.slice(middle), maxFrameBytes, frames, onOversized);
}
