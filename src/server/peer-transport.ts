import type { Logger } from "pino";
import type { ClientConnection } from "../client/connection.js";
import { KvError } from "../errors.js";
import type { Message, NodeId } from "../raft/types.js";
import { COMMAND } from "./protocol/commands.js";
import { dialPeer, type DialerSide } from "./peer-auth.js";
import { memberName } from "./identity.js";
import { MAX_FRAME_BYTES } from "../engine/limits.js";
import { ThrottledLog } from "./connection-limits.js";
import { encodePeerFrames, estimatedMessageBytes } from "./peer-frames.js";
import { outboundLinkId, type PeerDirectory } from "./peer-directory.js";

export interface PeerTransportOptions {
  readonly selfId: NodeId;
  /** How links prove this node's membership (cluster name, secret, announcement). */
  readonly dialer: DialerSide;
  /** Learns each listener's announcement. */
  readonly directory: PeerDirectory;
  readonly logger: Logger;
  /** Messages waiting for a link to open; past it new ones are dropped (Raft resends). */
  readonly maxQueuedMessages?: number;
  /** Entry and chunk bytes waiting for a link; same rule. */
  readonly maxQueuedBytes?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

const DEFAULTS = { maxQueuedMessages: 4096, maxQueuedBytes: 64 * 1024 * 1024, reconnectMinMs: 50, reconnectMaxMs: 1000 };

type Settings = Required<PeerTransportOptions>;

const OVERSIZED_LOG_INTERVAL_MS = 1000;

/**
 * Outbound Raft traffic: one TCP link per peer, opened with the authenticated handshake of
 * peer-auth.ts (and only to a listener that answers as the member it is dialled for), reopened with capped exponential backoff and jitter. Sending never blocks the core:
 * messages of one Ready go out as one frame per peer; while a link is down they wait in a
 * bounded queue and are dropped past it, which Raft tolerates by design (it retries on the next
 * heartbeat or probe). Inbound links are served by the node's listener.
 */
export class PeerTransport {
  private readonly links = new Map<NodeId, PeerLink>();
  /** Links to peers the membership gives no address for, opened from their own announcement. */
  private readonly learned = new Set<NodeId>();
  private readonly settings: Settings;
  droppedMessages = 0;

  constructor(options: PeerTransportOptions) {
    this.settings = { ...DEFAULTS, ...options };
  }

  /** Opens links to new members and closes links to removed ones. */
  setAddresses(addresses: Readonly<Record<NodeId, string>>): void {
    for (const [id, link] of this.links) {
      if (addresses[id] === undefined && this.learned.has(id)) continue;
      this.learned.delete(id);
      if (addresses[id] !== link.address) {
        link.close();
        this.links.delete(id);
      }
    }
    for (const [id, address] of Object.entries(addresses)) {
      // An earlier incarnation of this node (same name) lives at this node's own address.
      if (memberName(id) === memberName(this.settings.selfId) || this.links.has(id)) continue;
      this.links.set(id, new PeerLink(id, address, this.settings, this));
    }
  }

  send(messages: readonly Message[]): void {
    const byPeer = new Map<NodeId, Message[]>();
    for (const message of messages) {
      const batch = byPeer.get(message.to) ?? [];
      batch.push(message);
      byPeer.set(message.to, batch);
    }
    for (const [id, batch] of byPeer) {
      const link = this.links.get(id) ?? this.learnLink(id);
      if (link === null) this.droppedMessages += batch.length;
      else link.send(batch);
    }
  }

  /**
   * A node waiting to be (re-)admitted knows only the founders' ids, but must answer a leader
   * that is a later incarnation: its address comes from the leader's own authenticated
   * announcement. The link is kept until the membership names the peer.
   */
  private learnLink(id: NodeId): PeerLink | null {
    const address = this.settings.directory.addressOf(id, Date.now());
    if (address === null || memberName(id) === memberName(this.settings.selfId)) return null;
    const link = new PeerLink(id, address, this.settings, this);
    this.links.set(id, link);
    this.learned.add(id);
    return link;
  }

  connectedPeers(): NodeId[] {
    return [...this.links.values()].filter((link) => link.isOpen).map((link) => link.id);
  }

  close(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.learned.clear();
  }
}

class PeerLink {
  private connection: ClientConnection | null = null;
  private queue: Message[] = [];
  private queuedBytes = 0;
  private connecting = false;
  private closed = false;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** A message no frame can hold means replication to this peer is stuck: said loudly, once a second. */
  private lastOversized = { type: "", bytes: 0 };
  private readonly oversizedLog = new ThrottledLog(OVERSIZED_LOG_INTERVAL_MS, (count) => {
    const details = { peer: this.id, dropped: count, last: this.lastOversized, maxFrameBytes: MAX_FRAME_BYTES };
    this.settings.logger.error(details, "a Raft message exceeds the peer frame limit and cannot be sent");
  });

  constructor(
    readonly id: NodeId,
    readonly address: string,
    private readonly settings: Settings,
    private readonly transport: PeerTransport,
  ) {
    this.connect();
  }

  get isOpen(): boolean {
    return this.connection?.isOpen === true;
  }

  send(messages: readonly Message[]): void {
    if (this.connection?.isOpen === true && this.queue.length === 0) return this.write(messages);
    for (const message of messages) this.enqueue(message);
    if (this.connection === null && !this.connecting && this.reconnectTimer === null) this.connect();
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.connection?.close();
    this.connection = null;
  }

  private enqueue(message: Message): void {
    const bytes = estimatedMessageBytes(message);
    if (this.queue.length >= this.settings.maxQueuedMessages || this.queuedBytes + bytes > this.settings.maxQueuedBytes) {
      this.transport.droppedMessages++;
      return;
    }
    this.queue.push(message);
    this.queuedBytes += bytes;
  }

  /** As many frames as it takes to keep each within the peer frame limit (peer-frames.ts). */
  private write(messages: readonly Message[]): void {
    const connection = this.connection;
    if (connection === null) return;
    for (const frame of encodePeerFrames(messages, MAX_FRAME_BYTES, (message, bytes) => this.dropOversized(message, bytes))) {
      // One way: Raft's own responses carry the meaning, so no answer per frame costs a write each way.
      if (!connection.notify(COMMAND.raftMessages, frame.payload)) this.transport.droppedMessages += frame.messages.length;
    }
  }

  private dropOversized(message: Message, bytes: number): void {
    this.transport.droppedMessages += 1;
    this.lastOversized = { type: message.type, bytes };
    this.oversizedLog.occurred();
  }

  private connect(): void {
    if (this.closed) return;
    this.connecting = true;
    this.open()
      .then((connection) => this.onOpen(connection))
      .catch((error: Error) => this.onFailure(error));
  }

  /**
   * A listener that answers as another member (a re-provisioned node on the old address, a
   * stale address book) gets none of this member's messages: they would be taken as its own.
   */
  private async open(): Promise<ClientConnection> {
    const { connection, announcement } = await dialPeer(this.address, this.settings.dialer);
    if (announcement.memberId !== this.id) {
      this.settings.directory.sighted(announcement, Date.now());
      connection.close();
      throw new KvError("INVALID", `${this.address} answers as ${announcement.memberId ?? `a node still joining (${announcement.name})`}, not ${this.id}`);
    }
    const linkId = outboundLinkId();
    this.settings.directory.linkOpened(linkId, announcement);
    void connection.closed.then(() => this.settings.directory.linkClosed(linkId));
    return connection;
  }

  private onOpen(connection: ClientConnection): void {
    this.connecting = false;
    if (this.closed) return connection.close();
    this.failures = 0;
    this.connection = connection;
    this.settings.logger.debug({ peer: this.id, address: this.address }, "peer link open");
    void connection.closed.then((reason) => this.onFailure(reason));
    const queued = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (queued.length > 0) this.write(queued);
  }

  private onFailure(error: Error): void {
    this.connecting = false;
    this.connection = null;
    if (this.closed || this.reconnectTimer !== null) return;
    this.failures++;
    // Stale messages are worth nothing after a pause: Raft regenerates what is still needed.
    this.transport.droppedMessages += this.queue.length;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.failures === 1 || this.failures % 50 === 0) {
      this.settings.logger.info({ peer: this.id, address: this.address, failures: this.failures, reason: error.message }, "peer link down");
    }
    const delayMs = backoffMs(this.failures, this.settings.reconnectMinMs, this.settings.reconnectMaxMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delayMs);
    this.reconnectTimer.unref();
  }
}

/** Capped exponential backoff with full jitter over the upper half, so links do not retry in lockstep. */
export function backoffMs(failures: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

