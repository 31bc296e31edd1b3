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
  /** Nodes that authenticated on a link dialled for another id, by node, with when (ms). */
  private readonly sightings = new Map<string, { readonly announcement: PeerAnnouncement; readonly atMs: number }>();
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

  /**
   * A node that proved it belongs to the cluster on a link this node dialled for another id
   * (a member's address now answers as its new incarnation). The link is closed, since its
   * messages would be taken as the other id's, but the node is reachable: the leader must see
   * it to re-admit it, even when the new incarnation cannot hold a link of its own to the
   * leader (it dials the leader by the id it knew, which may be an earlier incarnation too).
   */
  sighted(announcement: PeerAnnouncement, nowMs: number): void {
    this.sightings.set(nodeKey(announcement), { announcement, atMs: nowMs });
  }

  /** Every distinct node connected right now, or sighted within SIGHTING_TTL_MS, by its newest announcement. */
  reachablePeers(nowMs: number): PeerAnnouncement[] {
    const byNode = new Map<string, PeerAnnouncement>();
    for (const [key, sighting] of this.sightings) {
      if (nowMs - sighting.atMs > SIGHTING_TTL_MS) this.sightings.delete(key);
      else byNode.set(key, sighting.announcement);
    }
    for (const announcement of this.connected.values()) byNode.set(nodeKey(announcement), announcement);
    return [...byNode.values()];
  }

  /** The address a reachable node with this Raft id listens on, from its own announcement. */
  addressOf(memberId: NodeId, nowMs: number): string | null {
    return this.reachablePeers(nowMs).find((peer) => peer.memberId === memberId)?.address ?? null;
  }

  /** The Raft id a reachable node with this name announces, when exactly one does. */
  reachableMemberIdOf(name: string, nowMs: number): NodeId | null {
    const ids = new Set(this.reachablePeers(nowMs).filter((peer) => peer.name === name && peer.memberId !== null).map((peer) => peer.memberId));
    return ids.size === 1 ? ([...ids][0] ?? null) : null;
  }
}

/**
 * How long a sighting counts as reachable: several times the transport's longest reconnect
 * delay, so a link that keeps being dialled and refused keeps its node in view.
 */
const SIGHTING_TTL_MS = 5000;

function nodeKey(announcement: PeerAnnouncement): string {
  return `${announcement.memberId ?? ""}\u0000${announcement.incarnation}`;
}

let nextLinkId = 1;

/** Link ids for outbound links; inbound ones use the server connection's id, from another range. */
export function outboundLinkId(): number {
  return -nextLinkId++;
}
