import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { ClientConnection } from "../client/connection.js";
import { decode, encode } from "../engine/codec.js";
import { KvError } from "../errors.js";
import type { NodeId } from "../raft/types.js";
import { COMMAND, PROTOCOL_VERSION } from "./protocol/commands.js";
import { PayloadFields } from "./protocol/payload.js";
import { parseHostPort } from "./peers.js";

/**
 * Peer admission: a link carries Raft traffic only once both ends have proven they hold the
 * cluster secret, and it is then bound to the member id its dialer announced.
 *
 * Challenge-response in two round trips, the secret never on the wire:
 *   dialer  -> hello     { clusterId, protocolVersion, challenge }
 *   listener-> reply     { challenge, proof = HMAC(secret, "listener", ids, both challenges, its announcement), announcement }
 *   dialer  -> prove     { proof = HMAC(secret, "dialer", ids, both challenges, its announcement), announcement }
 *   listener-> ok
 * Fresh random challenges on both sides make every proof good for one connection only; the
 * role label keeps a proof from being reflected back; covering the announcement keeps a
 * man in the middle from changing who a link says it is.
 */

/** What a node says about itself when a link opens; see identity.ts. */
export interface PeerAnnouncement {
  readonly name: string;
  /** Raft id, or null while the node is still discovering its cluster (it sends no Raft traffic). */
  readonly memberId: NodeId | null;
  readonly incarnation: string;
  readonly cluster: string | null;
  readonly founders: Readonly<Record<string, string>> | null;
  /** The address the node listens on (`--bind`). */
  readonly address: string;
  /** Drawn at each process start: a new one tells the leader the follower restarted. */
  readonly bootId: string;
}

/**
 * How this node proves itself: with the cluster secret (the first one proves; every listed one
 * is accepted, so a secret can be rotated node by node), or not at all (`--insecure-peers`,
 * which accepts any peer that speaks the protocol), or `refuseAll` (a single node).
 */
export type PeerCredentials =
  | { readonly mode: "secret"; readonly secrets: readonly Uint8Array[] }
  | { readonly mode: "insecure" }
  | { readonly mode: "refuseAll" };

export const CLUSTER_SECRET_ENVIRONMENT_VARIABLE = "KV_CLUSTER_SECRET";
const CHALLENGE_BYTES = 32;
/** Shorter secrets are refused: the HMAC is only as strong as what it is keyed with. */
export const MIN_SECRET_BYTES = 16;
const MAX_SECRETS = 8;
const HANDSHAKE_TIMEOUT_MS = 5000;

/** Reads `--cluster-secret-file` (one secret a line, the first proves) or the environment variable. */
export async function loadCredentials(options: {
  readonly secretFile?: string | undefined;
  readonly insecurePeers: boolean;
  readonly clustered: boolean;
  readonly environment?: NodeJS.ProcessEnv;
}): Promise<PeerCredentials> {
  const fromEnvironment = (options.environment ?? process.env)[CLUSTER_SECRET_ENVIRONMENT_VARIABLE];
  const text = options.secretFile === undefined ? fromEnvironment : await readSecretFile(options.secretFile);
  if (text !== undefined && text.trim().length > 0) return { mode: "secret", secrets: parseSecrets(text) };
  if (options.insecurePeers) return { mode: "insecure" };
  if (options.clustered) {
    throw new KvError(
      "INVALID",
      `a cluster of several nodes needs a cluster secret: --cluster-secret-file <path> or ${CLUSTER_SECRET_ENVIRONMENT_VARIABLE} (or --insecure-peers on a trusted network)`,
    );
  }
  return { mode: "refuseAll" };
}

async function readSecretFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new KvError("INVALID", `cannot read the cluster secret file ${path}: ${(error as Error).message}`);
  }
}

export function parseSecrets(text: string): Uint8Array[] {
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("#"));
  if (lines.length > MAX_SECRETS) throw new KvError("INVALID", `at most ${MAX_SECRETS} cluster secrets at once`);
  return lines.map((line) => {
    const secret = Buffer.from(line, "utf8");
    if (secret.byteLength < MIN_SECRET_BYTES) throw new KvError("INVALID", `a cluster secret must have at least ${MIN_SECRET_BYTES} bytes`);
    return secret;
  });
}

type Role = "dialer" | "listener";

function proofOf(secret: Uint8Array, role: Role, clusterId: string, dialerChallenge: Uint8Array, listenerChallenge: Uint8Array, announcement: Uint8Array): Uint8Array {
  const mac = createHmac("sha256", secret);
  for (const part of [Buffer.from(`data-bridge-kv peer ${role}\u0000${clusterId}\u0000`), dialerChallenge, listenerChallenge, announcement]) {
    mac.update(lengthPrefix(part.byteLength));
    mac.update(part);
  }
  return mac.digest();
}

function lengthPrefix(length: number): Uint8Array {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(length);
  return prefix;
}

function prove(credentials: PeerCredentials, role: Role, context: ProofContext, announcement: Uint8Array): Uint8Array {
  if (credentials.mode !== "secret") return new Uint8Array(0);
  const [secret] = credentials.secrets;
  if (secret === undefined) throw new KvError("INVALID", "no cluster secret");
  return proofOf(secret, role, context.clusterId, context.dialerChallenge, context.listenerChallenge, announcement);
}

function verify(credentials: PeerCredentials, role: Role, context: ProofContext, announcement: Uint8Array, proof: Uint8Array): boolean {
  if (credentials.mode === "refuseAll") return false;
  if (credentials.mode === "insecure") return true;
  return credentials.secrets.some((secret) => {
    const expected = proofOf(secret, role, context.clusterId, context.dialerChallenge, context.listenerChallenge, announcement);
    return expected.byteLength === proof.byteLength && timingSafeEqual(expected, proof);
  });
}

interface ProofContext {
  readonly clusterId: string;
  readonly dialerChallenge: Uint8Array;
  readonly listenerChallenge: Uint8Array;
}

// ---- announcements on the wire ----------------------------------------------------------------

export function encodeAnnouncement(announcement: PeerAnnouncement): Uint8Array {
  return encode({
    name: announcement.name,
    memberId: announcement.memberId,
    incarnation: announcement.incarnation,
    cluster: announcement.cluster,
    founders: announcement.founders === null ? null : new Map(Object.entries(announcement.founders)),
    address: announcement.address,
    bootId: announcement.bootId,
  });
}

const MAX_NAME_LENGTH = 256;
const MAX_FOUNDERS = 64;

/** Validates everything a peer says about itself: it is network input. */
export function decodeAnnouncement(bytes: Uint8Array): PeerAnnouncement {
  const fields = PayloadFields.of(decode(bytes), "peer announcement");
  const text = (name: string): string => boundedString(fields.string(name), name);
  const optionalText = (name: string): string | null => {
    const value = fields.optionalString(name);
    return value === undefined ? null : boundedString(value, name);
  };
  return {
    name: text("name"),
    memberId: optionalText("memberId"),
    incarnation: text("incarnation"),
    cluster: optionalText("cluster"),
    founders: decodeFounders(fields.value("founders")),
    address: text("address"),
    bootId: text("bootId"),
  };
}

function boundedString(value: string, name: string): string {
  if (value.length === 0 || value.length > MAX_NAME_LENGTH) throw new KvError("INVALID", `peer field "${name}" must have 1 to ${MAX_NAME_LENGTH} characters`);
  return value;
}

function decodeFounders(value: unknown): Readonly<Record<string, string>> | null {
  if (value === null || value === undefined) return null;
  if (!(value instanceof Map) || value.size > MAX_FOUNDERS) throw new KvError("INVALID", `peer field "founders" must be a map of at most ${MAX_FOUNDERS} names`);
  const founders: Record<string, string> = {};
  for (const [name, incarnation] of value) {
    if (typeof name !== "string" || typeof incarnation !== "string") throw new KvError("INVALID", 'peer field "founders" maps names to incarnations');
    founders[boundedString(name, "founders")] = boundedString(incarnation, "founders");
  }
  return founders;
}

// ---- listener side ----------------------------------------------------------------------------

/** The listener's half of one handshake, between the hello and the proof. */
export interface PendingPeerHandshake {
  readonly context: ProofContext;
}

export interface ListenerSide {
  readonly clusterId: string;
  readonly credentials: PeerCredentials;
  announcement(): PeerAnnouncement;
}

/** Answers a hello: refuses another protocol or cluster name, else proves itself and challenges. */
export function answerHello(side: ListenerSide, payload: Uint8Array): { readonly reply: Uint8Array; readonly pending: PendingPeerHandshake } {
  if (side.credentials.mode === "refuseAll") {
    throw new KvError("INVALID", "this node runs alone and accepts no peers (start it with --peers and a cluster secret to form a cluster)");
  }
  const fields = PayloadFields.decode(payload);
  const protocolVersion = fields.integer("protocolVersion");
  const clusterId = fields.string("clusterId");
  const dialerChallenge = fields.bytes("challenge");
  if (protocolVersion !== PROTOCOL_VERSION) throw new KvError("INVALID", `peer speaks protocol ${protocolVersion}, this node ${PROTOCOL_VERSION}`);
  if (clusterId !== side.clusterId) throw new KvError("INVALID", `peer belongs to cluster "${clusterId}", not "${side.clusterId}"`);
  if (dialerChallenge.byteLength !== CHALLENGE_BYTES) throw new KvError("INVALID", `a challenge has ${CHALLENGE_BYTES} bytes`);
  const context: ProofContext = { clusterId, dialerChallenge: Uint8Array.from(dialerChallenge), listenerChallenge: randomBytes(CHALLENGE_BYTES) };
  const announcement = encodeAnnouncement(side.announcement());
  const proof = prove(side.credentials, "listener", context, announcement);
  return { reply: encode({ challenge: context.listenerChallenge, proof, announcement }), pending: { context } };
}

/** Checks the dialer's proof; returns who the link belongs to from now on. */
export function acceptProof(side: ListenerSide, pending: PendingPeerHandshake, payload: Uint8Array): PeerAnnouncement {
  const fields = PayloadFields.decode(payload);
  const announcementBytes = fields.bytes("announcement");
  if (!verify(side.credentials, "dialer", pending.context, announcementBytes, fields.bytes("proof"))) {
    throw new KvError("INVALID", "peer failed to prove it holds the cluster secret");
  }
  return decodeAnnouncement(announcementBytes);
}

// ---- dialer side ------------------------------------------------------------------------------

export interface DialerSide {
  readonly clusterId: string;
  readonly credentials: PeerCredentials;
  readonly announcement: PeerAnnouncement;
  readonly connectTimeoutMs: number;
}

/**
 * Opens an authenticated link to `address`: the listener must prove it holds the secret before
 * this node proves anything. Resolves with the open connection and the listener's announcement.
 */
export async function dialPeer(address: string, side: DialerSide): Promise<{ readonly connection: ClientConnection; readonly announcement: PeerAnnouncement }> {
  const { host, port } = parseHostPort(address);
  const connection = await ClientConnection.connect(host, port, { connectTimeoutMs: side.connectTimeoutMs });
  try {
    const dialerChallenge = randomBytes(CHALLENGE_BYTES);
    const hello = encode({ clusterId: side.clusterId, protocolVersion: PROTOCOL_VERSION, challenge: dialerChallenge });
    const reply = PayloadFields.decode((await connection.request(COMMAND.handshake, hello, { timeoutMs: HANDSHAKE_TIMEOUT_MS })).payload);
    const context: ProofContext = { clusterId: side.clusterId, dialerChallenge, listenerChallenge: reply.bytes("challenge") };
    const listenerAnnouncement = reply.bytes("announcement");
    if (!verify(side.credentials, "listener", context, listenerAnnouncement, reply.bytes("proof"))) {
      throw new KvError("INVALID", `${address} failed to prove it holds the cluster secret`);
    }
    const announcement = encodeAnnouncement(side.announcement);
    const proof = prove(side.credentials, "dialer", context, announcement);
    await connection.request(COMMAND.handshakeProof, encode({ proof, announcement }), { timeoutMs: HANDSHAKE_TIMEOUT_MS });
    return { connection, announcement: decodeAnnouncement(listenerAnnouncement) };
  } catch (error) {
    connection.close();
    throw error;
  }
}
