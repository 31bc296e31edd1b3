import { KvError } from "../errors.js";
import type { Membership, NodeId } from "../raft/types.js";

/** One member as given on the command line: `host:port` or `name=host:port`. */
export interface PeerAddress {
  readonly id: NodeId;
  readonly address: string;
}

const ADDRESS_PATTERN = /^(?<host>[^\s:]+|\[[0-9a-fA-F:]+\]):(?<port>\d{1,5})$/;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function parseHostPort(address: string): HostPort {
  const match = ADDRESS_PATTERN.exec(address.trim());
  const host = match?.groups?.["host"];
  const port = Number(match?.groups?.["port"]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new KvError("INVALID", `"${address}" is not a host:port address`);
  }
  return { host: host.replace(/^\[|\]$/g, ""), port };
}

/** Parses `--peers`: a comma-separated list of `host:port` or `name=host:port`. */
export function parsePeers(list: string): PeerAddress[] {
  const peers = list
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0)
    .map(parsePeer);
  const ids = new Set(peers.map((peer) => peer.id));
  if (ids.size !== peers.length) throw new KvError("INVALID", "--peers names the same member twice");
  return peers;
}

function parsePeer(item: string): PeerAddress {
  const separator = item.indexOf("=");
  const address = separator === -1 ? item : item.slice(separator + 1);
  parseHostPort(address);
  const id = separator === -1 ? address : item.slice(0, separator);
  if (id.length === 0) throw new KvError("INVALID", `peer "${item}" has an empty name`);
  return { id, address };
}

/**
 * Finds this node among the peers: by `--id` when given, else by the `--bind` address. The node
 * must be one of the members, or it would start a cluster of its own by mistake.
 */
export function findSelf(peers: readonly PeerAddress[], bind: string, id: string | undefined): PeerAddress {
  const self = id === undefined ? peers.find((peer) => peer.address === bind) : peers.find((peer) => peer.id === id);
  if (self === undefined) {
    const by = id === undefined ? `--bind ${bind}` : `--id ${id}`;
    throw new KvError("INVALID", `${by} is not one of --peers (${peers.map((peer) => `${peer.id}=${peer.address}`).join(",")})`);
  }
  return self;
}

export function membershipOf(peers: readonly PeerAddress[]): Membership {
  return {
    voters: peers.map((peer) => peer.id),
    learners: [],
    addresses: Object.fromEntries(peers.map((peer) => [peer.id, peer.address])),
  };
}
