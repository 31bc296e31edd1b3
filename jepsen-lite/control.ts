/**
 * Cluster control: real `kv-node` processes on loopback, every node-to-node link through a
 * `LinkProxy` owned by the harness, clients straight to the nodes.
 *
 * Node i is started with `--peers` in which its own entry is its real address and every other
 * member j is the proxy of link i->j. This works because a node's membership (and so the address
 * it dials for each peer) comes from its own founding `--peers` and is only replaced by a
 * membership-change entry, which jepsen-lite never proposes. Limit: after a membership change
 * every node would dial the addresses in that entry, i.e. one node's proxies, and the per-link
 * faults would no longer be per link. Also, a NOT_LEADER hint carries the leader's address as the
 * answering node knows it (a proxy), so a client that follows a hint talks through that link's
 * proxy, as if it sat next to the answering node.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { reservePorts } from "../src/util/ports.js";
import { NodeProcess, pollUntil, withDeadline } from "../src/util/processes.js";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { KvError } from "../src/errors.js";
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
    const links = new Map<string, LinkProxy>();
    for (const from of nodes) {
      for (const to of nodes) if (from !== to) links.set(linkName(from.id, to.id), await LinkProxy.start(to.port));
    }
    await mkdir(options.directory, { recursive: true });
    return new ClusterControl(nodes, links, options);
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

  /** Spawns the node on its data directory; output is appended to its log file. */
  start(id: string): void {
    const running = this.processes.get(id);
    if (running !== undefined && !running.hasExited) throw new KvError("INVALID", `${id} is already running`);
    const node = this.node(id);
    const logDescriptor = openSync(node.logFile, "a");
    const child = spawn(process.execPath, [NODE_ENTRY, ...this.argumentsOf(node)], { stdio: ["ignore", logDescriptor, logDescriptor] });
    closeSync(logDescriptor);
    const started = new NodeProcess(child);
    void started.exited.then(() => {
      if (!started.killed) this.crashes.push(`${id} exited by itself (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`);
    });
    this.processes.set(id, started);
  }

  private argumentsOf(node: ControlledNode): string[] {
    const peers = this.nodes.map((member) => `${member.id}=${member === node ? member.address : this.link(node.id, member.id).address}`);
    return [
      "--bind", node.address,
      "--id", node.id,
      "--peers", peers.join(","),
      "--data-dir", node.dataDirectory,
      "--admin", `${HOST}:${node.adminPort}`,
      "--fsync", this.options.fsync,
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

  async readLog(id: string): Promise<string> {
    try {
      return await readFile(this.node(id).logFile, "utf8");
    } catch {
      return "";
    }
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

function isRecovered(statuses: ReadonlyMap<string, NodeStatus>, size: number): boolean {
  if (statuses.size !== size) return false;
  const all = [...statuses.values()];
  const leaders = all.filter((status) => status.role === "leader");
  const leader = leaders[0];
  if (leaders.length !== 1 || leader === undefined) return false;
  return all.every((status) => status.leader === leader.id && status.term === leader.term && status.applied >= leader.commit);
}



