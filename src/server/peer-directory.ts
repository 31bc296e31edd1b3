import type { NodeId } from "../raft/types.js";
import type { PeerAnnouncement } from "./peer-auth.js";

/**
 * What this node has heard from its peers' handshakes, in both directions: who is connected
 * now, under which member id and incarnation, and when a member's process restarted. The
 * leader re-admits a re-provisioned node from here, and `kv cluster add <name>` finds the Raft
 * id of the node that waits to join.
 */
export class PeerDirectory {
  private readonly connected = new Map<number, PeerAnnouncement>();
  private readonly latestBootId = new Map<NodeId, string>();
  /** Called when a member's process is new since its last handshake (it may have lost an unsynced tail). */
  onRestart: (memberId: NodeId) => void = () => undefined;

  /** A link authenticated; `linkId` is unique per link and this node's process. */
  linkOpened(linkId: number, announcement: PeerAnnouncement): void {
    this.connected.set(linkId, announcement);
    const memberId = announcement.memberId;
    if (memberId === null) return;
    const previousBootId = this.latestBootId.get(memberId);
    this.latestBootId.set(memberId, announcement.bootId);
    if (previousBootId !== undefined && previousBootId !== announcement.bootId) this.onRestart(memberId);
  }

  linkClosed(linkId: number): void {
    this.connected.delete(linkId);
  }

  /** Every distinct node connected right now, by its newest announcement. */
  connectedPeers(): PeerAnnouncement[] {
    const byNode = new Map<string, PeerAnnouncement>();
    for (const announcement of this.connected.values()) byNode.set(`${announcement.memberId ?? ""}\u0000${announcement.incarnation}`, announcement);
    return [...byNode.values()];
  }

  /** The Raft id a connected node with this name announces, when exactly one does. */
  connectedMemberIdOf(name: string): NodeId | null {
    const ids = new Set(this.connectedPeers().filter((peer) => peer.name === name && peer.memberId !== null).map((peer) => peer.memberId));
    return ids.size === 1 ? ([...ids][0] ?? null) : null;
  }
}

let nextLinkId = 1;

/** Link ids for outbound links; inbound ones use the server connection's id, from another range. */
export function outboundLinkId(): number {
  return -nextLinkId++;
}
