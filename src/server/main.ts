import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pino, type Logger } from "pino";
import { KvError } from "../errors.js";
import { DEFAULT_LIMITS } from "../engine/limits.js";
import type { Membership } from "../raft/types.js";
import { startAdminServer } from "./admin.js";
import { discoverIdentity } from "./discovery.js";
import { foundingIdentity, loadIdentity, memberName, newIncarnation, saveIdentity, type MemberIdentity, type NodeIdentity } from "./identity.js";
import { KvServer } from "./kv-server.js";
import { Metrics } from "./metrics.js";
import { dialPeer, loadCredentials, type DialerSide, type PeerAnnouncement, type PeerCredentials } from "./peer-auth.js";
import { PeerDirectory } from "./peer-directory.js";
import { PeerGate } from "./peer-gate.js";
import { PeerTransport } from "./peer-transport.js";
import { findSelf, membershipOf, parsePeers, type PeerAddress } from "./peers.js";
import { ReplicatedNode, type MessageSender } from "./replicated-node.js";
import type { FsyncMode } from "./storage/durable-log.js";

/** The options of `kv-node`, as commander parses them. */
export interface NodeCommandLine {
  readonly bind: string;
  readonly peers?: string;
  readonly join: boolean;
  readonly id?: string;
  readonly clusterId: string;
  readonly clusterSecretFile?: string;
  readonly insecurePeers: boolean;
  readonly dataDir: string;
  readonly fsync: FsyncMode;
  readonly shards: number;
  readonly snapshotEntries: number;
  readonly snapshotInterval: number;
  readonly maxValueBytes: number;
  readonly maxKeyLength: number;
  readonly logLevel: string;
  readonly admin?: string;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly clockOffsetMs: number;
  readonly pinPeerAddresses: boolean;
}

/** Requests wait at most this long unless they name their own deadline. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const MAX_PENDING_REQUESTS = 100_000;
const EXPIRY_INTERVAL_MS = 100;

/** Connect timeout of one peer dial: discovery and links both retry after it. */
const PEER_CONNECT_TIMEOUT_MS = 2000;

/** This node's name and the other members `--peers` names (none for a single node). */
function namesFrom(options: NodeCommandLine): { readonly name: string; readonly peers: readonly PeerAddress[]; readonly founding: Membership } {
  if (options.peers === undefined) {
    const name = options.id ?? options.bind;
    return { name, peers: [], founding: { voters: [name], learners: [], addresses: { [name]: options.bind } } };
  }
  const all = parsePeers(options.peers);
  const name = findSelf(all, options.bind, options.id).id;
  return { name, peers: all.filter((peer) => peer.id !== name), founding: membershipOf(all) };
}

/**
 * The configuration a node starts from when its log is empty: the founders found the cluster
 * with `--peers`; any other incarnation founds nothing and votes and campaigns only once the
 * cluster's own log makes it a member, knowing the others' addresses.
 */
function initialMembership(identity: MemberIdentity, founding: Membership, join: boolean): Membership {
  const isFounder = identity.memberId === identity.name && !join && (identity.founders === null || identity.founders[identity.name] === identity.incarnation);
  return isFounder ? founding : { voters: [], learners: [], addresses: founding.addresses };
}

function announcementOf(identity: NodeIdentity, bind: string, bootId: string): PeerAnnouncement {
  const member = identity.state === "member" ? identity : null;
  return {
    name: identity.name,
    memberId: member?.memberId ?? null,
    incarnation: identity.incarnation,
    cluster: member?.cluster ?? null,
    founders: member?.founders ?? null,
    address: bind,
    bootId,
  };
}

/** An empty data directory becomes a founder, a late founder or a new incarnation (discovery.ts). */
async function decideIdentity(identity: NodeIdentity, peers: readonly PeerAddress[], join: boolean, dialer: () => DialerSide, logger: Logger): Promise<MemberIdentity> {
  if (identity.state === "member") return identity;
  if (peers.length === 0 && !join) return foundingIdentity(identity, { [identity.name]: identity.incarnation });
  logger.info({ peers: peers.map((peer) => peer.id) }, "empty data directory: asking the peers whether a cluster exists");
  return discoverIdentity({
    identity,
    peers,
    join,
    logger,
    probe: async (address) => {
      const { connection, announcement } = await dialPeer(address, dialer());
      connection.close();
      return announcement;
    },
  });
}

/** Starts a node and keeps it running until SIGTERM/SIGINT. */
export async function runNode(options: NodeCommandLine): Promise<void> {
  const { name, peers, founding } = namesFrom(options);
  const logger = pino({ level: options.logLevel, base: { node: name } });
  await mkdir(options.dataDir, { recursive: true });
  const credentials = await loadCredentials({ secretFile: options.clusterSecretFile, insecurePeers: options.insecurePeers, clustered: peers.length > 0 });
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: options.maxValueBytes, maxKeyLength: options.maxKeyLength };
  const metrics = new Metrics();
  const directory = new PeerDirectory();
  const bootId = newIncarnation();
  let identity: NodeIdentity = await loadIdentity(options.dataDir, name);
  const dialer = (): DialerSide => dialerSide(options.clusterId, credentials, announcementOf(identity, options.bind, bootId));
  const gate = new PeerGate(
    { clusterId: options.clusterId, credentials, announcement: () => announcementOf(identity, options.bind, bootId), selfId: () => (identity.state === "member" ? identity.memberId : null) },
    directory,
    logger,
    metrics,
  );
  const server = await KvServer.start({ bind: options.bind, peers: gate, limits, defaultTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS, logger });
  const member = await decideIdentity(identity, peers, options.join, dialer, logger);
  if (member !== identity) await saveIdentity(options.dataDir, member);
  else if (!existsSync(join(options.dataDir, "log"))) {
    // A member's directory whose log is gone lost every vote and acknowledgement in it: serving
    // on under the same id could break quorums. Only a new incarnation may come back.
    throw new KvError("CORRUPT", `${options.dataDir} belongs to member ${member.memberId} but its log is missing; start with --rejoin to come back as a new incarnation`);
  }
  identity = member;
  const transport = new PeerTransport({ selfId: member.memberId, dialer: dialer(), directory, logger });
  const sender = options.pinPeerAddresses ? pinnedAddresses(transport, founding.addresses) : transport;
  const node = await ReplicatedNode.open({
    id: member.memberId,
    initialMembership: initialMembership(member, founding, options.join),
    dataDirectory: options.dataDir,
    fsync: options.fsync,
    shardCount: options.shards,
    limits,
    snapshotEntries: options.snapshotEntries,
    snapshotIntervalMs: options.snapshotInterval * 1000,
    tickMs: options.tickMs,
    electionTimeoutTicks: options.electionTicks,
    maxPendingRequests: MAX_PENDING_REQUESTS,
    expiryIntervalMs: EXPIRY_INTERVAL_MS,
    clockOffsetMs: options.clockOffsetMs,
    logger,
    metrics,
    directory,
    cluster: member.cluster,
    sender,
    onFatal: (error) => fatal(logger, error),
  });
  gate.sink = (link, messages) => node.receive(link, messages);
  server.attach(node);
  const admin = options.admin === undefined ? null : await startAdminServer(options.admin, adminSource(node));
  logger.info({ id: member.memberId, cluster: member.cluster, bind: options.bind, admin: options.admin ?? null, fsync: options.fsync, dataDir: options.dataDir }, `kv-node ready (fsync ${options.fsync})`);
  await waitForSignal();
  logger.info("shutting down");
  await server.close();
  await node.close();
  transport.close();
  admin?.close();
  logger.flush();
}

function dialerSide(clusterId: string, credentials: PeerCredentials, announcement: PeerAnnouncement): DialerSide {
  return { clusterId, credentials, announcement, connectTimeoutMs: PEER_CONNECT_TIMEOUT_MS };
}

/**
 * Test only (jepsen-lite): a membership entry carries the leader's address book, but a harness
 * that routes every link through its own proxy gives each node a different one. Pinning keeps
 * this node's `--peers` addresses for the members it names; new members come from the log.
 */
function pinnedAddresses(transport: PeerTransport, pinned: Readonly<Record<string, string>>): MessageSender {
  return {
    send: (messages) => transport.send(messages),
    setAddresses: (addresses) => transport.setAddresses(pinByName(addresses, pinned)),
  };
}

/** A new incarnation of a member (`name~incarnation`) is reached where its name is pinned. */
function pinByName(addresses: Readonly<Record<string, string>>, pinned: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(addresses).map(([id, address]) => [id, pinned[memberName(id)] ?? address]));
}

function adminSource(node: ReplicatedNode): Parameters<typeof startAdminServer>[1] {
  return {
    metrics: node.metrics,
    healthy: () => node.isHealthy(),
    status: () => node.status(),
  };
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
}

/** Storage failures and broken invariants stop the process: serving on would risk wrong data. */
function fatal(logger: Logger, error: unknown): never {
  logger.fatal({ error: error instanceof Error ? { message: error.message, stack: error.stack } : String(error) }, "node stopped to protect data");
  logger.flush();
  process.exit(2);
}
