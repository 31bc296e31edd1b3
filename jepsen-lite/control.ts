/**
 * Cluster control: real `kv-node` processes on loopback, every node-to-node link through a
 * `LinkProxy` owned by the harness, clients straight to the nodes.
 *
 * Node i is started with `--peers` in which its own entry is its real address and every other
 * member j is the proxy of link i->j. A membership-change entry carries the leader's address
 * book (its proxies), so every node also gets `--pin-peer-addresses`: it keeps dialing each
 * member its `--peers` names, by name, at the address given there. Also, a NOT_LEADER hint carries the leader's address as the
 * answering node knows it (a proxy), so a client that follows a hint talks through that link's
 * proxy, as if it sat next to the answering node.
 *
 * Nodes are named n1..nN; a node's Raft id is its name until it comes back with an empty data
 * directory, after which it is a new incarnation `<name>~<8 hex>`. Everything here is keyed by
 * name, and Raft ids are mapped to names with `memberName`.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { ensureClusterSecretFile } from "../src/util/cluster-secret.js";
import { reservePorts } from "../src/util/ports.js";
import { NodeProcess, pollUntil, withDeadline } from "../src/util/processes.js";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { KvError } from "../src/errors.js";
import type { Membership } from "../src/raft/types.js";
import { memberName } from "../src/server/identity.js";
import type { NodeStatus } from "../src/server/replicated-node.js";
import { LinkProxy, type LinkMode } from "./proxy.js";

const HOST = "127.0.0.1";
/** The compiled node, whether this module runs compiled (dist/jepsen-lite) or from source (tests). */
const MODULE_DIRECTORY = fileURLToPath(new URL(".", import.meta.url));
const PROJECT_ROOT = join(MODULE_DIRECTORY, MODULE_DIRECTORY.includes(`${sep}dist${sep}`) ? "../.." : "..");
const NODE_ENTRY = join(PROJECT_ROOT, "dist/bin/kv-node.js");
const POLL_INTERVAL_MS = 50;
const STATUS_REQUEST_TIMEOUT_MS = 1000;
const EXIT_DEADLINE_MS = 10_000;
/** The cluster secret every node proves itself with, drawn anew for each run directory. */
const CLUSTER_SECRET_FILE = "cluster-secret";
/**
 * The cluster name peers announce in their handshake (`--cluster-id`). It is no secret: the
 * forged peer knows it, as anyone who has seen a node's command line would.
 */
export const CLUSTER_NAME = "jepsen-lite";

export type FsyncMode = "always" | "interval";

export interface ClusterOptions {
  readonly size: number;
  /** Data directories and node logs go here. */
  readonly directory: string;
  readonly fsync: FsyncMode;
  /** Extra flags for every node. */
  readonly nodeOptions?: readonly string[];
}

export interface ControlledNode {
  readonly id: string;
  readonly port: number;
  readonly adminPort: number;
  readonly address: string;
  readonly dataDirectory: string;
  readonly logFile: string;
}

export interface StartOptions {
  /** `--rejoin` for this one start: the node discards its local state and re-enters the cluster. */
  readonly rejoin?: boolean;
  /** The node is meant to exit by itself (a refusal to start): its exit is not a crash. */
  readonly expectExit?: boolean;
}

/** What a node did after a start that should be refused: exited, or answered `/status`. */
export type StartOutcome = { readonly exited: true; readonly exitCode: number | null } | { readonly exited: false; readonly serving: boolean };

export class ClusterControl {
  private readonly processes = new Map<string, NodeProcess>();
  private readonly clockOffsets = new Map<string, number>();
  /** Crashes seen: nodes that exited without being killed, with their exit code or signal. */
  readonly crashes: string[] = [];

  private constructor(
    readonly nodes: readonly ControlledNode[],
    /** Key `${from}->${to}`. */
    private readonly links: ReadonlyMap<string, LinkProxy>,
    private readonly options: ClusterOptions,
    /** Holds the cluster secret: every node gets `--cluster-secret-file`, the forged peer never reads it. */
    readonly secretFile: string,
  ) {}

  static async create(options: ClusterOptions): Promise<ClusterControl> {
    if (options.size < 1) throw new KvError("INVALID", "a cluster needs at least one node");
    const ports = await reservePorts(options.size * 2, HOST);
    const nodes: ControlledNode[] = [];
    for (let index = 0; index < options.size; index++) {
      const id = `n${index + 1}`;
      const port = ports[index * 2] ?? 0;
      const dataDirectory = join(options.directory, id);
      nodes.push({ id, port, adminPort: ports[index * 2 + 1] ?? 0, address: `${HOST}:${port}`, dataDirectory, logFile: join(options.directory, `${id}.log`) });
    }
    // A run checks a history that starts from nothing: data left by an earlier run in the same
    // directory (the same --out or seed) would show up as phantom values and lost updates.
    await rm(options.directory, { recursive: true, force: true });
    await mkdir(options.directory, { recursive: true });
    const secretFile = await ensureClusterSecretFile(join(options.directory, CLUSTER_SECRET_FILE));
    const links = new Map<string, LinkProxy>();
    for (const from of nodes) {
      for (const to of nodes) if (from !== to) links.set(linkName(from.id, to.id), await LinkProxy.start(to.port));
    }
    return new ClusterControl(nodes, links, options, secretFile);
  }

  get ids(): string[] {
    return this.nodes.map((node) => node.id);
  }

  get clientAddresses(): string[] {
    return this.nodes.map((node) => node.address);
  }

  node(id: string): ControlledNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new KvError("INVALID", `no node ${id}`);
    return node;
  }

  link(from: string, to: string): LinkProxy {
    const proxy = this.links.get(linkName(from, to));
    if (proxy === undefined) throw new KvError("INVALID", `no link ${from}->${to}`);
    return proxy;
  }

  startAll(): void {
    for (const node of this.nodes) this.start(node.id);
  }

  /** Spawns the node on its data directory with its usual command line; output is appended to its log file. */
  start(id: string, options: StartOptions = {}): void {
    const running = this.processes.get(id);
    if (running !== undefined && !running.hasExited) throw new KvError("INVALID", `${id} is already running`);
    const node = this.node(id);
    const logDescriptor = openSync(node.logFile, "a");
    const flags = [...this.argumentsOf(node), ...(options.rejoin === true ? ["--rejoin"] : [])];
    const child = spawn(process.execPath, [NODE_ENTRY, ...flags], { stdio: ["ignore", logDescriptor, logDescriptor] });
    closeSync(logDescriptor);
    const started = new NodeProcess(child);
    void started.exited.then(() => {
      if (!started.killed && options.expectExit !== true) this.crashes.push(`${id} exited by itself (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`);
    });
    this.processes.set(id, started);
  }

  /**
   * After a start that should be refused: resolves once the node exited (with its code) or
   * answered `/status` (it opened its data and serves), or when the deadline passed.
   */
  async startOutcome(id: string, deadlineMs: number): Promise<StartOutcome> {
    const running = this.processes.get(id);
    if (running === undefined) throw new KvError("INVALID", `${id} was never started`);
    const outcome = await pollUntil<StartOutcome>(deadlineMs, async () => {
      if (running.hasExited) return { exited: true, exitCode: running.child.exitCode };
      return (await this.status(id)) === null ? null : { exited: false, serving: true };
    }, POLL_INTERVAL_MS);
    return outcome ?? { exited: false, serving: false };
  }

  /** Deletes a stopped node's data directory: a lost or replaced disk. */
  async wipe(id: string): Promise<void> {
    if (this.isRunning(id)) throw new KvError("INVALID", `${id} is running; stop it before wiping its data`);
    await rm(this.node(id).dataDirectory, { recursive: true, force: true });
  }

  private argumentsOf(node: ControlledNode): string[] {
    const peers = this.nodes.map((member) => `${member.id}=${member === node ? member.address : this.link(node.id, member.id).address}`);
    return [
      "--bind", node.address,
      "--id", node.id,
      "--peers", peers.join(","),
      "--cluster-id", CLUSTER_NAME,
      "--data-dir", node.dataDirectory,
      "--admin", `${HOST}:${node.adminPort}`,
      "--fsync", this.options.fsync,
      "--cluster-secret-file", this.secretFile,
      "--clock-offset-ms", String(this.clockOffsets.get(node.id) ?? 0),
      // Membership entries carry the leader's address book; each node keeps its own proxies.
      "--pin-peer-addresses",
      ...(this.options.nodeOptions ?? []),
    ];
  }

  isRunning(id: string): boolean {
    const running = this.processes.get(id);
    return running !== undefined && !running.hasExited;
  }

  isPaused(id: string): boolean {
    return this.processes.get(id)?.paused ?? false;
  }

  /** kill -9; resolves once the process is gone. */
  async kill(id: string): Promise<void> {
    const running = this.processes.get(id);
    if (running === undefined || running.hasExited) return;
    running.killed = true;
    running.child.kill("SIGKILL");
    await withDeadline(running.exited, EXIT_DEADLINE_MS, `${id} to exit after SIGKILL`);
    running.paused = false;
  }

  /** Starts a node again, optionally with its wall clock shifted (`--clock-offset-ms`). */
  async restart(id: string, clockOffsetMs?: number): Promise<void> {
    await this.kill(id);
    if (clockOffsetMs !== undefined) this.clockOffsets.set(id, clockOffsetMs);
    this.start(id);
  }

  clockOffsetOf(id: string): number {
    return this.clockOffsets.get(id) ?? 0;
  }

  pause(id: string): void {
    const running = this.processes.get(id);
    if (running === undefined || running.hasExited || running.paused) return;
    running.child.kill("SIGSTOP");
    running.paused = true;
  }

  resume(id: string): void {
    const running = this.processes.get(id);
    if (running === undefined || running.hasExited || !running.paused) return;
    running.child.kill("SIGCONT");
    running.paused = false;
  }

  /** Sets the mode of the directed link from -> to. */
  setLink(from: string, to: string, mode: LinkMode): void {
    this.link(from, to).setMode(mode);
  }

  /** Delays the directed link from -> to (each way of its connections). */
  delayLink(from: string, to: string, delayMs: number): void {
    this.link(from, to).setDelay(delayMs);
  }

  /** Every link back to pass without delay. */
  healLinks(): void {
    for (const proxy of this.links.values()) proxy.restore();
  }

  /** `/status` of one node, or null when it does not answer in time. */
  async status(id: string): Promise<NodeStatus | null> {
    if (!this.isRunning(id) || this.isPaused(id)) return null;
    try {
      const response = await fetch(`http://${HOST}:${this.node(id).adminPort}/status`, { signal: AbortSignal.timeout(STATUS_REQUEST_TIMEOUT_MS) });
      return response.ok ? ((await response.json()) as NodeStatus) : null;
    } catch {
      return null;
    }
  }

  async statuses(): Promise<Map<string, NodeStatus>> {
    const answers = await Promise.all(this.ids.map(async (id) => [id, await this.status(id)] as const));
    return new Map(answers.filter((answer): answer is readonly [string, NodeStatus] => answer[1] !== null));
  }

  /**
   * Waits until every node answers, all name the same leader in the same term, and every node has
   * applied the leader's commit index: the cluster has recovered. Returns the last statuses.
   */
  async waitForRecovery(deadlineMs: number): Promise<Map<string, NodeStatus> | null> {
    const recovered = async (): Promise<Map<string, NodeStatus> | null> => {
      const statuses = await this.statuses();
      return isRecovered(statuses, this.nodes.length) ? statuses : null;
    };
    return pollUntil(deadlineMs, recovered, POLL_INTERVAL_MS);
  }

  /** The node's log file from byte `fromByte` (0: all of it); "" when there is none. */
  async readLog(id: string, fromByte = 0): Promise<string> {
    let file;
    try {
      file = await open(this.node(id).logFile, "r");
    } catch {
      return "";
    }
    try {
      const { size } = await file.stat();
      const buffer = Buffer.alloc(Math.max(0, size - fromByte));
      await file.read(buffer, 0, buffer.byteLength, fromByte);
      return buffer.toString("utf8");
    } finally {
      await file.close();
    }
  }

  /** Bytes in the node's log file, to read only what a later start writes. */
  async logBytes(id: string): Promise<number> {
    return (await stat(this.node(id).logFile).catch(() => ({ size: 0 }))).size;
  }

  /**
   * Waits until `id` is a voter again under the Raft id it reports now (a new incarnation after
   * its disk was lost), no other incarnation of it is left in the leader's membership, and it
   * applied what the leader had committed at that moment. Null when the deadline passes.
   */
  async waitForReadmission(id: string, deadlineMs: number): Promise<NodeStatus | null> {
    const deadline = Date.now() + deadlineMs;
    const readmittedAt = await pollUntil(deadlineMs, async () => {
      const statuses = await this.statuses();
      const own = statuses.get(id);
      const leader = leaderOf(statuses);
      if (own === undefined || leader === undefined) return null;
      const incarnations = membersOf(leader.membership).filter((member) => memberName(member) === id);
      const readmitted = incarnations.length === 1 && leader.membership.voters.includes(own.id);
      return readmitted ? leader.commit : null;
    }, POLL_INTERVAL_MS);
    if (readmittedAt === null) return null;
    return pollUntil(Math.max(0, deadline - Date.now()), async () => {
      const own = await this.status(id);
      return own !== null && own.applied >= readmittedAt ? own : null;
    }, POLL_INTERVAL_MS);
  }

  /** Kills every node and closes every proxy. Data directories and logs stay for the report. */
  async stop(): Promise<void> {
    for (const running of this.processes.values()) running.killed = true;
    this.killAllNow();
    await Promise.all([...this.processes.values()].map((running) => withDeadline(running.exited, EXIT_DEADLINE_MS, "a node to exit")));
    await Promise.all([...this.links.values()].map((proxy) => proxy.close()));
  }

  /** Synchronous last resort (process exit): never leave nodes behind. */
  killAllNow(): void {
    for (const running of this.processes.values()) running.killNow();
  }
}

function linkName(from: string, to: string): string {
  return `${from}->${to}`;
}

/** The leader of the highest term among the answering nodes. */
export function leaderOf(statuses: ReadonlyMap<string, NodeStatus>): NodeStatus | undefined {
  const leaders = [...statuses.values()].filter((status) => status.role === "leader");
  return leaders.sort((left, right) => right.term - left.term)[0];
}

function membersOf(membership: Membership): string[] {
  return [...membership.voters, ...membership.learners];
}

/**
 * One leader that every node follows in its term, every node caught up to its commit, and its
 * membership exactly the nodes' current Raft ids as voters: an earlier incarnation left in it
 * would count toward every quorum without ever answering.
 */
export function isRecovered(statuses: ReadonlyMap<string, NodeStatus>, size: number): boolean {
  if (statuses.size !== size) return false;
  const all = [...statuses.values()];
  const leaders = all.filter((status) => status.role === "leader");
  const leader = leaders[0];
  if (leaders.length !== 1 || leader === undefined) return false;
  const ids = all.map((status) => status.id).sort();
  const voters = [...leader.membership.voters].sort();
  const everyNodeVotes = leader.membership.learners.length === 0 && voters.length === ids.length && ids.every((id, index) => voters[index] === id);
  return everyNodeVotes && all.every((status) => status.leader === leader.id && status.term === leader.term && status.applied >= leader.commit);
}



