import type { Logger } from "pino";
import { KvError } from "../errors.js";
import type { Message } from "../raft/types.js";
import { acceptProof, answerHello, type ListenerSide, type PeerAnnouncement, type PendingPeerHandshake } from "./peer-auth.js";
import { decodeMessages } from "./peer-codec.js";
import type { PeerDirectory } from "./peer-directory.js";
import type { ConnectionInfo, ServerResponse } from "./connection.js";
import { EMPTY_PAYLOAD, STATUS } from "./protocol/status.js";
import type { Counter, Metrics } from "./metrics.js";

/** Where admitted Raft messages go: the node, once it exists (not while it discovers its cluster). */
export type MessageSink = (link: PeerAnnouncement, messages: readonly Message[]) => void;

/** A refusal is logged at most this often per reason, and always counted. */
const REFUSAL_LOG_INTERVAL_MS = 1000;

/**
 * The listener side of peer admission: the handshake of peer-auth.ts on each inbound link,
 * and no Raft message before it succeeded. A link is bound to the member id it proved; every
 * message must come from that id, to this node.
 */
export class PeerGate {
  private readonly links = new WeakMap<ConnectionInfo, PendingPeerHandshake | AdmittedLink>();
  private readonly lastLoggedMs = new Map<string, number>();
  private readonly refusedHandshakes: Counter;
  private readonly refusedMessages: Counter;
  sink: MessageSink | null = null;

  constructor(
    private readonly side: ListenerSide & { readonly selfId: () => string | null },
    private readonly directory: PeerDirectory,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    this.refusedHandshakes = metrics.counter("kv_peer_handshakes_refused_total", "Peer links refused: wrong cluster, protocol, secret or identity.");
    this.refusedMessages = metrics.counter("kv_peer_messages_unadmitted_total", "Raft messages dropped because their link does not speak for their sender.");
  }

  hello(payload: Uint8Array, info: ConnectionInfo): ServerResponse {
    try {
      const { reply, pending } = answerHello(this.side, payload);
      this.links.set(info, pending);
      return { status: STATUS.OK, payload: reply };
    } catch (error) {
      throw this.refuseHandshake(error, info);
    }
  }

  proof(payload: Uint8Array, info: ConnectionInfo): ServerResponse {
    const pending = this.links.get(info);
    try {
      if (pending === undefined || pending instanceof AdmittedLink) throw new KvError("INVALID", "a handshake proof must follow the hello, once");
      const announcement = acceptProof(this.side, pending, payload);
      this.checkIdentity(announcement);
      this.links.set(info, new AdmittedLink(announcement));
      this.directory.linkOpened(info.id, announcement);
      return { status: STATUS.OK, payload: EMPTY_PAYLOAD };
    } catch (error) {
      throw this.refuseHandshake(error, info);
    }
  }

  /** Raft messages of an admitted link; anything not from the link's own member is dropped. */
  messages(payload: Uint8Array, info: ConnectionInfo): ServerResponse {
    const link = this.links.get(info);
    if (!(link instanceof AdmittedLink)) throw this.refuseHandshake(new KvError("INVALID", "raft messages before a completed handshake"), info);
    const messages = decodeMessages(payload);
    const self = this.side.selfId();
    const admitted = messages.filter((message) => message.from === link.announcement.memberId && message.to === self);
    if (admitted.length < messages.length) this.refuseMessages(messages.length - admitted.length, link.announcement, info);
    if (admitted.length > 0) this.sink?.(link.announcement, admitted);
    return { status: STATUS.OK, payload: EMPTY_PAYLOAD };
  }

  /** The server's connection closed. */
  closed(info: ConnectionInfo): void {
    this.directory.linkClosed(info.id);
  }

  /** Another cluster's node, or a node that claims this node's own id, never gets a link. */
  private checkIdentity(peer: PeerAnnouncement): void {
    const self = this.side.announcement();
    if (peer.cluster !== null && self.cluster !== null && peer.cluster !== self.cluster) {
      throw new KvError("INVALID", `peer ${peer.name} belongs to cluster ${peer.cluster}, this node to ${self.cluster}`);
    }
    if (peer.memberId !== null && peer.memberId === self.memberId) {
      throw new KvError("INVALID", `peer at ${peer.address} claims this node's own id ${peer.memberId}`);
    }
  }

  private refuseHandshake(error: unknown, info: ConnectionInfo): unknown {
    this.refusedHandshakes.increment();
    const reason = error instanceof Error ? error.message : String(error);
    this.logRateLimited("handshake", { from: info.remoteAddress, reason }, "peer refused");
    return error;
  }

  private refuseMessages(count: number, link: PeerAnnouncement, info: ConnectionInfo): void {
    this.refusedMessages.increment(count);
    this.logRateLimited("messages", { from: info.remoteAddress, link: link.memberId, count }, "peer messages not from the link's member dropped");
  }

  private logRateLimited(reason: string, details: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - (this.lastLoggedMs.get(reason) ?? 0) < REFUSAL_LOG_INTERVAL_MS) return;
    this.lastLoggedMs.set(reason, now);
    this.logger.warn(details, message);
  }
}

class AdmittedLink {
  constructor(readonly announcement: PeerAnnouncement) {}
}
