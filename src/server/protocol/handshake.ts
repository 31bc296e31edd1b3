import { KvError } from "../../errors.js";
import { encode } from "../../engine/codec.js";
import { PROTOCOL_VERSION } from "./commands.js";
import { PayloadFields } from "./payload.js";

/**
 * The first frame of a peer link. It keeps nodes of different clusters (a stale address, a
 * copied config) and of incompatible protocol versions from exchanging Raft messages.
 */
export interface Handshake {
  readonly clusterId: string;
  readonly protocolVersion: number;
  readonly nodeId: string;
}

export function encodeHandshake(handshake: Handshake): Uint8Array {
  return encode({ clusterId: handshake.clusterId, protocolVersion: handshake.protocolVersion, nodeId: handshake.nodeId });
}

export function readHandshake(payload: Uint8Array): Handshake {
  const fields = PayloadFields.decode(payload);
  return {
    clusterId: fields.string("clusterId"),
    protocolVersion: fields.integer("protocolVersion"),
    nodeId: fields.string("nodeId"),
  };
}

/** Refuses a peer of another cluster or protocol version with INVALID (the link is closed). */
export function checkHandshake(handshake: Handshake, clusterId: string): void {
  if (handshake.protocolVersion !== PROTOCOL_VERSION) {
    throw new KvError("INVALID", `peer ${handshake.nodeId} speaks protocol ${handshake.protocolVersion}, this node ${PROTOCOL_VERSION}`);
  }
  if (handshake.clusterId !== clusterId) {
    throw new KvError("INVALID", `peer ${handshake.nodeId} belongs to cluster ${handshake.clusterId}, not ${clusterId}`);
  }
}
