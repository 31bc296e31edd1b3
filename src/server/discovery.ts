import type { Logger } from "pino";
import { foundingIdentity, joiningIdentity, type MemberIdentity, type NodeIdentity } from "./identity.js";
import type { PeerAnnouncement } from "./peer-auth.js";
import type { PeerAddress } from "./peers.js";

/** Pause between discovery rounds: short at first, so a cluster whose nodes start together forms fast. */
const DISCOVERY_MIN_PAUSE_MS = 100;
const DISCOVERY_MAX_PAUSE_MS = 2000;
/** A node still waiting says so (and for whom) this often. */
const DISCOVERY_LOG_INTERVAL_MS = 10_000;

export interface DiscoveryOptions {
  readonly identity: Extract<NodeIdentity, { state: "new" }>;
  /** The other members named by `--peers`. */
  readonly peers: readonly PeerAddress[];
  /** `--join`: never found, only join. */
  readonly join: boolean;
  /** Opens an authenticated link, returns the listener's announcement and closes the link. */
  readonly probe: (address: string) => Promise<PeerAnnouncement>;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/**
 * A node with an empty data directory decides what it is, from its peers' handshakes:
 * - a peer belongs to a cluster that counted this very incarnation among its founders: this
 *   node is that founder, starting late;
 * - a peer belongs to any other cluster: this node joins it as a new incarnation (a wiped
 *   founder, a re-provisioned member, a `--join` node), with a Raft id of its own;
 * - every `--peers` member answered and none belongs to a cluster yet: they found one together
 *   (each computes the same cluster id from the same founders).
 * Otherwise it waits: founding needs every founder, so a node that lost its disk while the
 * others are down cannot found a second cluster beside theirs.
 */
export function decideIdentity(
  identity: Extract<NodeIdentity, { state: "new" }>,
  peers: readonly PeerAddress[],
  heard: ReadonlyMap<string, PeerAnnouncement>,
  join: boolean,
): MemberIdentity | null {
  const members = [...heard.values()].filter((announcement) => announcement.memberId !== null);
  const counted = members.find((announcement) => announcement.founders?.[identity.name] === identity.incarnation);
  if (counted?.founders != null) return foundingIdentity(identity, counted.founders);
  const [member] = members;
  if (member !== undefined) return joiningIdentity(identity, member.cluster, member.founders);
  if (join) return null;
  const founders: Record<string, string> = { [identity.name]: identity.incarnation };
  for (const peer of peers) {
    const announcement = heard.get(peer.id);
    if (announcement?.name !== peer.id) return null;
    founders[peer.id] = announcement.incarnation;
  }
  return foundingIdentity(identity, founders);
}

/** Probes every peer round after round until `decideIdentity` decides. */
export async function discoverIdentity(options: DiscoveryOptions): Promise<MemberIdentity> {
  const heard = new Map<string, PeerAnnouncement>();
  const failures = new Map<string, string>();
  let lastLoggedMs = Date.now();
  for (let round = 1; ; round++) {
    options.signal?.throwIfAborted();
    await Promise.all(options.peers.map((peer) => probeOnce(options, peer, heard, failures)));
    const decided = decideIdentity(options.identity, options.peers, heard, options.join);
    if (decided !== null) return decided;
    if (Date.now() - lastLoggedMs >= DISCOVERY_LOG_INTERVAL_MS) {
      lastLoggedMs = Date.now();
      options.logger.info({ heard: Object.fromEntries([...heard].map(([id, peer]) => [id, peer.memberId ?? "new"])), unreachable: Object.fromEntries(failures) }, options.join ? "waiting for a member of the cluster to answer" : "waiting for every founding peer, or a member of an existing cluster, to answer");
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(DISCOVERY_MAX_PAUSE_MS, DISCOVERY_MIN_PAUSE_MS * 2 ** Math.min(round - 1, 10))));
  }
}

async function probeOnce(options: DiscoveryOptions, peer: PeerAddress, heard: Map<string, PeerAnnouncement>, failures: Map<string, string>): Promise<void> {
  try {
    heard.set(peer.id, await options.probe(peer.address));
    failures.delete(peer.id);
  } catch (error) {
    heard.delete(peer.id);
    failures.set(peer.id, (error as Error).message);
  }
}
