import { mkdir } from "node:fs/promises";
import { pino, type Logger } from "pino";
import { DEFAULT_LIMITS } from "../engine/limits.js";
import type { Membership } from "../raft/types.js";
import { startAdminServer } from "./admin.js";
import { KvServer } from "./kv-server.js";
import { PeerTransport } from "./peer-transport.js";
import { findSelf, membershipOf, parsePeers } from "./peers.js";
import { ReplicatedNode, type MessageSender } from "./replicated-node.js";
import type { FsyncMode } from "./storage/durable-log.js";

/** The options of `kv-node`, as commander parses them. */
export interface NodeCommandLine {
  readonly bind: string;
  readonly peers?: string;
  readonly join: boolean;
  readonly id?: string;
  readonly clusterId: string;
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

function membershipFrom(options: NodeCommandLine): { readonly id: string; readonly membership: Membership } {
  if (options.peers === undefined) {
    const id = options.id ?? options.bind;
    return { id, membership: { voters: [id], learners: [], addresses: { [id]: options.bind } } };
  }
  const peers = parsePeers(options.peers);
  const id = findSelf(peers, options.bind, options.id).id;
  const founding = membershipOf(peers);
  // A node joining a running cluster founds nothing: it votes and campaigns only once the
  // cluster's own log makes it a member (`kv cluster add`), and knows the others' addresses.
  return { id, membership: options.join ? { voters: [], learners: [], addresses: founding.addresses } : founding };
}

/** Starts a node and keeps it running until SIGTERM/SIGINT. */
export async function runNode(options: NodeCommandLine): Promise<void> {
  const logger = pino({ level: options.logLevel, base: { node: options.id ?? options.bind } });
  const { id, membership } = membershipFrom(options);
  await mkdir(options.dataDir, { recursive: true });
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: options.maxValueBytes, maxKeyLength: options.maxKeyLength };
  const transport = new PeerTransport({ selfId: id, clusterId: options.clusterId, logger });
  const sender = options.pinPeerAddresses ? pinnedAddresses(transport, membership.addresses) : transport;
  const node = await ReplicatedNode.open({
    id,
    initialMembership: membership,
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
    sender,
    onFatal: (error) => fatal(logger, error),
  });
  const server = await KvServer.start(node, { bind: options.bind, clusterId: options.clusterId, limits, defaultTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS, logger });
  const admin = options.admin === undefined ? null : await startAdminServer(options.admin, adminSource(node));
  logger.info({ id, bind: options.bind, admin: options.admin ?? null, fsync: options.fsync, members: membership.voters, dataDir: options.dataDir }, `kv-node ready (fsync ${options.fsync})`);
  await waitForSignal();
  logger.info("shutting down");
  await server.close();
  await node.close();
  transport.close();
  admin?.close();
  logger.flush();
}

/**
 * Test only (jepsen-lite): a membership entry carries the leader's address book, but a harness
 * that routes every link through its own proxy gives each node a different one. Pinning keeps
 * this node's `--peers` addresses for the members it names; new members come from the log.
 */
function pinnedAddresses(transport: PeerTransport, pinned: Readonly<Record<string, string>>): MessageSender {
  return {
    send: (messages) => transport.send(messages),
    setAddresses: (addresses) => transport.setAddresses({ ...addresses, ...pick(pinned, Object.keys(addresses)) }),
  };
}

function pick(record: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((key) => record[key] !== undefined).map((key) => [key, record[key] as string]));
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
