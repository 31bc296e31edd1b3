import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pino, type Logger } from "pino";
import { KvError } from "../errors.js";
import { DEFAULT_LIMITS } from "../engine/limits.js";
import type { Membership } from "../raft/types.js";
import { startAdminServer } from "./admin.js";
import { DiskSpaceGuard } from "./disk-space-guard.js";
import { discoverIdentity } from "./discovery.js";
import { foundingIdentity, loadIdentity, memberName, newIncarnation, saveIdentity, type MemberIdentity, type NodeIdentity } from "./identity.js";
import { defaultMaxConnections, maxRequestBytesFor, readOpenFileLimit, reservedDescriptors } from "./connection-limits.js";
import { KvServer, type KvServerOptions } from "./kv-server.js";
import { Metrics, registerProcessMetrics } from "./metrics.js";
import { dialPeer, loadCredentials, type DialerSide, type PeerAnnouncement, type PeerCredentials } from "./peer-auth.js";
import { PeerDirectory } from "./peer-directory.js";
import { PeerGate } from "./peer-gate.js";
import { PeerTransport } from "./peer-transport.js";
import { findSelf, membershipOf, parsePeers, type PeerAddress } from "./peers.js";
import { DEFAULT_PERSISTENCE_LIMITS, ReplicatedNode, type MessageSender } from "./replicated-node.js";
import { discardLocalState } from "./storage/discard.js";
import type { FsyncMode } from "./storage/durable-log.js";
import { isNoSpaceError, noSpaceError } from "./storage/no-space.js";

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
  /** Move the data directory's contents aside and start empty, to be caught up by the cluster. */
  readonly rejoin: boolean;
  /** Below this many free bytes on the data directory's filesystem, writes are refused (NO_SPACE). */
  readonly minFreeDiskBytes: number;
  readonly fsync: FsyncMode;
  readonly shards: number;
  readonly snapshotEntries: number;
  readonly snapshotInterval: number;
  readonly maxValueBytes: number;
  readonly maxKeyLength: number;
  /** Largest client request; absent: DEFAULT_MAX_REQUEST_BYTES, or enough for one --max-value-bytes value. */
  readonly maxRequestBytes?: number;
  /** Client connections accepted at once; absent: what the open-file limit leaves (connection-limits.ts). */
  readonly maxConnections?: number;
  /** Seconds without traffic after which a client connection with nothing in flight is closed; 0: never. */
  readonly idleTimeout: number;
  /** Request bytes read and not yet answered, all client connections together. */
  readonly maxInflightRequestBytes: number;
  /** Unsent answer bytes to one client past which nothing more is read from it until it drains. */
  readonly clientOutputPauseBytes: number;
  /** Answer bytes one client may owe (unsent, or waiting to be built) before it is disconnected. */
  readonly clientOutputLimitBytes: number;
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
  const credentials = await loadCredentials({ secretFile: options.clusterSecretFile, insecurePeers: options.insecurePeers, clustered: peers.length > 0 });
  await mkdir(options.dataDir, { recursive: true });
  if (options.rejoin) await discardForRejoin(options.dataDir, peers.length > 0, logger);
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: options.maxValueBytes, maxKeyLength: options.maxKeyLength };
  const metrics = new Metrics();
  registerProcessMetrics(metrics);
  const diskSpace = await DiskSpaceGuard.start({ directory: options.dataDir, minFreeBytes: options.minFreeDiskBytes, logger, metrics });
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
  const server = await KvServer.start({ bind: options.bind, peers: gate, limits, defaultTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS, logger, metrics, ...connectionBounds(options, logger) });
  let started: ReplicatedNode | null = null;
  const admin = options.admin === undefined ? null : await startAdminServer(options.admin, adminSource(metrics, () => started));
  const member = await decideIdentity(identity, peers, options.join, dialer, logger);
  if (member !== identity) await saveIdentity(options.dataDir, member);
  else if (!existsSync(join(options.dataDir, "log", "CURRENT"))) {
    // A member's directory whose log is gone lost every vote and acknowledgement in it: serving
    // on under the same id could break quorums. Only a new incarnation may come back.
    throw new KvError("CORRUPT", `${options.dataDir} belongs to member ${member.memberId} but its log is missing: every vote and acknowledgement it gave is gone`);
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
    diskSpace,
    sender,
    persistence: DEFAULT_PERSISTENCE_LIMITS,
    onFatal: (error) => fatal(logger, error),
  });
  started = node;
  gate.sink = (link, messages) => node.receive(link, messages);
  server.attach(node);
  logger.info({ id: member.memberId, cluster: member.cluster, bind: options.bind, admin: options.admin ?? null, fsync: options.fsync, dataDir: options.dataDir }, `kv-node ready (fsync ${options.fsync})`);
  await waitForSignal();
  logger.info("shutting down");
  await server.close();
  await node.close();
  transport.close();
  admin?.close();
  diskSpace.close();
  logger.flush();
}

/** `--rejoin`: the local state is moved aside (never deleted) and the node starts empty. */
async function discardForRejoin(dataDirectory: string, clustered: boolean, logger: Logger): Promise<void> {
  if (!clustered) throw new KvError("INVALID", "--rejoin needs --peers: a single node has no cluster to catch up from, and would start empty");
  const { movedTo, entries } = await discardLocalState(dataDirectory, new Date());
  if (entries.length === 0) logger.warn({ dataDir: dataDirectory }, "--rejoin: the data directory is already empty; nothing moved");
  else logger.warn({ dataDir: dataDirectory, movedTo, entries }, `--rejoin: local state moved aside to ${movedTo}; starting empty, to be caught up by the cluster`);
}

/**
 * What an operator reads when the node does not start: a full disk says where, and a damaged
 * log or snapshot says how to bring the node back (its data is unusable, the cluster's is not).
 */
export function explainStartFailure(error: unknown, dataDirectory: string): unknown {
  if (error instanceof KvError && error.code === "NO_SPACE") return error;
  if (isNoSpaceError(error)) return noSpaceError(dataDirectory, error, "the node cannot start");
  if (error instanceof KvError && error.code === "CORRUPT") {
    return new KvError("CORRUPT", `${error.message}\nthis node's local state cannot be trusted: start it with --rejoin to move it aside and be caught up by the cluster`);
  }
  return error;
}

/** The connection bounds of the command line, with --max-connections derived from the open-file limit when absent. */
function connectionBounds(options: NodeCommandLine, logger: Logger): Pick<KvServerOptions, "maxConnections" | "maxInFlightRequestBytes" | "connectionLimits"> {
  if (options.clientOutputLimitBytes < options.clientOutputPauseBytes) {
    throw new KvError("INVALID", "--client-output-limit-bytes must be at least --client-output-pause-bytes");
  }
  const derived = defaultMaxConnections(readOpenFileLimit());
  const maxConnections = options.maxConnections ?? derived.maxConnections;
  const figures = { maxConnections, openFileLimit: derived.openFileLimit, reservedDescriptors: reservedDescriptors(), leftForClients: derived.maxConnections };
  if (derived.tooLow || maxConnections > derived.maxConnections) {
    logger.warn(figures, "the open-file limit leaves fewer descriptors than --max-connections needs next to LevelDB and peers: raise it (ulimit -n) or lower --max-connections");
  } else logger.info(figures, "connection limit");
  return {
    maxConnections,
    maxInFlightRequestBytes: options.maxInflightRequestBytes,
    connectionLimits: {
      maxRequestBytes: maxRequestBytesFor(options.maxRequestBytes, options.maxValueBytes),
      idleTimeoutMs: options.idleTimeout * 1000,
      outputPauseBytes: options.clientOutputPauseBytes,
      outputLimitBytes: options.clientOutputLimitBytes,
    },
  };
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

/** The admin endpoint answers from the start: 503 while the node is still discovering its cluster. */
function adminSource(metrics: Metrics, node: () => ReplicatedNode | null): Parameters<typeof startAdminServer>[1] {
  return {
    metrics,
    healthy: () => node()?.isHealthy() ?? false,
    status: () => node()?.status() ?? null,
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
