import { readFileSync } from "node:fs";
import { KvError } from "../errors.js";
import { DEFAULT_MAX_REQUEST_BYTES, MAX_REQUEST_PAYLOAD_BYTES } from "./protocol/frame.js";

/**
 * How many connections a node accepts, derived from the process's open-file limit: every
 * socket is a file descriptor, and a node that runs out of them fails its next LevelDB file
 * open and stops. So descriptors are kept back for everything else the node opens.
 */

/**
 * LevelDB's table-file cache (classic-level's `maxOpenFiles`, which defaults to 1000). The
 * durable log must open LevelDB with this value so that the reserve below is exact.
 */
export const LEVELDB_MAX_OPEN_FILES = 1000;

/** Descriptors kept back, by what uses them. */
export const RESERVED_DESCRIPTORS = Object.freeze({
  /** LevelDB's table cache, plus its LOG, LOCK, CURRENT, MANIFEST, write-ahead log and compaction outputs. */
  levelDb: LEVELDB_MAX_OPEN_FILES + 16,
  /** Snapshot files being written, read for a follower, or downloaded; the identity file. */
  snapshots: 16,
  /** Standard streams, the event loop, the listeners, the log destination. */
  process: 64,
  /** Admin (HTTP) connections: /health, /status, /metrics. */
  admin: 32,
  /** This node's outgoing links to its peers, and dials in progress. */
  outboundPeers: 32,
});

/** Incoming peer links are never refused for want of a client slot: they have their own. */
export const RESERVED_PEER_CONNECTIONS = 32;

/** Below this the node can hardly serve; the default never goes lower (and says why in the log). */
export const MIN_DEFAULT_MAX_CONNECTIONS = 64;

/** Assumed when the limit cannot be read (no /proc): the common default soft limit. */
export const FALLBACK_OPEN_FILE_LIMIT = 1024;

export interface DescriptorBudget {
  /** The process's open-file limit, or null when it could not be read. */
  readonly openFileLimit: number | null;
  readonly maxConnections: number;
  /** True when the limit leaves less than MIN_DEFAULT_MAX_CONNECTIONS: the default is then that minimum. */
  readonly tooLow: boolean;
}

/** Descriptors the node needs besides its client connections. */
export function reservedDescriptors(): number {
  const kept = Object.values(RESERVED_DESCRIPTORS).reduce((sum, count) => sum + count, 0);
  return kept + RESERVED_PEER_CONNECTIONS;
}

/** The default of `--max-connections`: what the open-file limit leaves for clients. */
export function defaultMaxConnections(openFileLimit: number | null): DescriptorBudget {
  const available = (openFileLimit ?? FALLBACK_OPEN_FILE_LIMIT) - reservedDescriptors();
  const tooLow = available < MIN_DEFAULT_MAX_CONNECTIONS;
  return { openFileLimit, maxConnections: tooLow ? MIN_DEFAULT_MAX_CONNECTIONS : available, tooLow };
}

/**
 * The soft open-file limit of this process. Node has no getrlimit, so it is read from
 * /proc/self/limits (Linux); Node raises the soft limit to the hard one at start-up, so this is
 * usually the hard limit. Null where it cannot be read.
 */
export function readOpenFileLimit(limitsFile = "/proc/self/limits"): number | null {
  try {
    return parseOpenFileLimit(readFileSync(limitsFile, "utf8"));
  } catch {
    return null;
  }
}

/** The soft limit of the "Max open files" row; null when absent or "unlimited". */
export function parseOpenFileLimit(limits: string): number | null {
  const row = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const soft = row?.[1];
  if (soft === undefined || !/^\d+$/.test(soft)) return null;
  return Number(soft);
}

/** Room a request needs around its largest value: key, options, session stamp. */
export const REQUEST_FIELDS_BYTES = 64 * 1024;

/**
 * `--max-request-bytes`, or by default DEFAULT_MAX_REQUEST_BYTES raised to fit one value of
 * `maxValueBytes`. Never above MAX_REQUEST_PAYLOAD_BYTES: its entry must fit a peer frame.
 */
export function maxRequestBytesFor(requested: number | undefined, maxValueBytes: number): number {
  const needed = maxValueBytes + REQUEST_FIELDS_BYTES;
  const chosen = requested ?? Math.max(DEFAULT_MAX_REQUEST_BYTES, needed);
  if (chosen > MAX_REQUEST_PAYLOAD_BYTES) {
    throw new KvError("INVALID", `a request of ${chosen} bytes would not fit a peer frame as an entry: at most ${MAX_REQUEST_PAYLOAD_BYTES} bytes (--max-request-bytes, --max-value-bytes)`);
  }
  if (chosen < needed) throw new KvError("INVALID", `--max-request-bytes must leave room for one value of --max-value-bytes: at least ${needed}`);
  return chosen;
}

/** Which count a connection's place is taken from. */
export type SlotKind = "client" | "peer";

/**
 * Client slots up to `maxConnections`, and RESERVED_PEER_CONNECTIONS more that only peer links
 * may keep. Peers and clients share one port and a peer is known only after its handshake, so
 * a connection accepted when the client slots are full lands on a peer slot on probation: it
 * must prove it is a peer quickly (ServerConnection's `peerOnly`) or it is dropped. A client
 * slot whose connection turns out to be a peer moves to the peer reserve when there is room,
 * so peer links do not count against the clients' limit.
 */
export class ConnectionSlots {
  private clients = 0;
  private peers = 0;

  constructor(
    readonly maxConnections: number,
    readonly reservedPeerConnections = RESERVED_PEER_CONNECTIONS,
  ) {}

  get clientConnections(): number {
    return this.clients;
  }

  get peerConnections(): number {
    return this.peers;
  }

  /** A slot for a new connection, or null: every slot is taken and it must be refused. */
  take(): SlotKind | null {
    if (this.clients < this.maxConnections) {
      this.clients += 1;
      return "client";
    }
    if (this.peers < this.reservedPeerConnections) {
      this.peers += 1;
      return "peer";
    }
    return null;
  }

  /** The connection on `slot` proved it is a peer link; returns the slot it holds now. */
  promote(slot: SlotKind): SlotKind {
    if (slot === "peer" || this.peers >= this.reservedPeerConnections) return slot;
    this.clients -= 1;
    this.peers += 1;
    return "peer";
  }

  release(slot: SlotKind): void {
    if (slot === "client") this.clients -= 1;
    else this.peers -= 1;
  }
}

/** A log line at most once per interval, saying how many occurrences it stands for. */
export class ThrottledLog {
  private lastLoggedMs = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly log: (occurrences: number) => void,
  ) {}

  occurred(nowMs = Date.now()): void {
    this.suppressed += 1;
    if (nowMs - this.lastLoggedMs < this.intervalMs) return;
    this.lastLoggedMs = nowMs;
    const occurrences = this.suppressed;
    this.suppressed = 0;
    this.log(occurrences);
  }
}
