import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { ensureClusterSecretFile } from "../../src/util/cluster-secret.js";
import { reservePorts } from "../../src/util/ports.js";
import { NodeProcess, pollUntil, withDeadline } from "../../src/util/processes.js";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";
import { memberName } from "../../src/server/identity.js";
import type { NodeStatus } from "../../src/server/replicated-node.js";
import type { FsyncMode } from "../../src/server/storage/durable-log.js";

/**
 * Real-process cluster harness: every node is `node dist/bin/kv-node.js` on 127.0.0.1 with its
 * own temp data directory, admin port and log file. Every wait has a deadline; nothing sleeps
 * for a fixed time.
 */

const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NODE_ENTRY = join(PROJECT_ROOT, "dist/bin/kv-node.js");
const HOST = "127.0.0.1";
const STATUS_REQUEST_TIMEOUT_MS = 1000;
const EXIT_DEADLINE_MS = 10_000;
/** A SIGTERM'd node hands leadership over and closes its log; past this it is killed. */
const GRACEFUL_STOP_DEADLINE_MS = 15_000;
const LOG_TAIL_LINES = 40;

export type Signal = "SIGKILL" | "SIGSTOP" | "SIGCONT" | "SIGTERM";

export interface ClusterOptions {
  readonly size: 1 | 3 | 5;
  /** Extra kv-node flags given to every node, e.g. ["--snapshot-entries", "20000"]. */
  readonly nodeOptions?: readonly string[];
  readonly fsync?: FsyncMode;
  /** Nodes prepared (ports, directories) but not started: `join(id)` starts one with `--join`. */
  readonly spares?: number;
  /** Where the data directories go (default: the cluster's temp directory), e.g. a small tmpfs. */
  readonly dataRoot?: string;
}

/** `/status` is the node's status as JSON; it holds no bigint, so the type carries over as is. */
export type { NodeStatus };

export interface ClusterNode {
  readonly id: string;
  /** host:port for clients and peers. */
  readonly address: string;
  readonly adminAddress: string;
  readonly dataDirectory: string;
  readonly logFile: string;
  /** False for a spare, which joins the running cluster instead of founding it. */
  readonly founding: boolean;
}

export interface AgreedLeader {
  readonly id: string;
  readonly address: string;
  readonly term: number;
  /** Time from the call (or from `since`) to agreement. */
  readonly elapsedMs: number;
}


const liveClusters = new Set<Cluster>();

// A test that fails or times out still leaves no process and no temp directory behind.
afterEach(async (context) => {
  const failed = context.task.result?.state === "fail";
  for (const cluster of [...liveClusters]) {
    if (failed) cluster.printLogTails();
    await cluster.stop();
  }
});

// Last resort when the worker exits abruptly: never leave orphaned nodes running.
process.once("exit", () => {
  for (const cluster of liveClusters) cluster.killAllNow();
});

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), "kv-integration-"));
  const total = options.size + (options.spares ?? 0);
  const ports = await reservePorts(total * 2, HOST);
  const nodes: ClusterNode[] = [];
  for (let index = 0; index < total; index++) {
    const id = `n${index + 1}`;
    nodes.push({
      id,
      address: `${HOST}:${ports[index * 2]}`,
      adminAddress: `${HOST}:${ports[index * 2 + 1]}`,
      dataDirectory: join(options.dataRoot ?? root, id),
      logFile: join(root, `${id}.log`),
      founding: index < options.size,
    });
  }
  const cluster = new Cluster(root, nodes, options, await ensureClusterSecretFile(join(root, "cluster-secret")));
  liveClusters.add(cluster);
  for (const node of nodes) if (node.founding) cluster.start(node.id);
  return cluster;
}

export class Cluster {
  /** When the nodes were first spawned: election time is measured from here. */
  readonly startedAt = Date.now();
  private readonly processes = new Map<string, NodeProcess>();
  private stopped = false;

  constructor(
    readonly root: string,
    readonly nodes: readonly ClusterNode[],
    private readonly options: ClusterOptions,
    /** Every node proves it belongs with this file's secret. */
    readonly secretFile: string,
  ) {}

  get addresses(): string[] {
    return this.nodes.map((node) => node.address);
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id} in this cluster`);
    return node;
  }

  /** Ids of nodes whose process runs and is not paused. */
  liveIds(): string[] {
    return this.nodes.filter((node) => this.isLive(node.id)).map((node) => node.id);
  }

  isLive(id: string): boolean {
    const running = this.processes.get(id);
    return running !== undefined && !running.hasExited && !running.paused;
  }

  /** Spawns the node's process (its usual flags, then `extraArguments`); its output is appended to its log file. */
  start(id: string, extraArguments: readonly string[] = []): void {
    if (this.stopped) throw new Error("the cluster is stopped");
    if (this.processes.get(id)?.hasExited === false) throw new Error(`${id} is already running`);
    const node = this.node(id);
    const logFd = openSync(node.logFile, "a");
    const child = spawn(process.execPath, [NODE_ENTRY, ...this.argumentsOf(node), ...extraArguments], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", logFd, logFd],
    });
    closeSync(logFd);
    this.processes.set(id, new NodeProcess(child));
  }

  /** Starts a spare with `--join`: it waits until the cluster adds it (`kv cluster add`). */
  join(id: string): void {
    if (this.node(id).founding) throw new Error(`${id} founded the cluster; it cannot join it`);
    this.start(id);
  }

  private argumentsOf(node: ClusterNode): string[] {
    const known = this.nodes.filter((member) => member.founding || member.id === node.id);
    const peers = known.map((member) => `${member.id}=${member.address}`).join(",");
    return [
      ...(node.founding ? [] : ["--join"]),
      "--bind", node.address,
      "--id", node.id,
      "--peers", peers,
      "--data-dir", node.dataDirectory,
      "--admin", node.adminAddress,
      "--fsync", this.options.fsync ?? "always",
      "--cluster-secret-file", this.secretFile,
      ...(this.options.nodeOptions ?? []),
    ];
  }

  /** Sends a signal. SIGKILL and SIGTERM wait until the process is gone. */
  async kill(id: string, signal: Signal): Promise<void> {
    const running = this.processes.get(id);
    if (running === undefined || running.hasExited) throw new Error(`${id} is not running`);
    if (signal === "SIGKILL" || signal === "SIGTERM") running.killed = true;
    if (signal === "SIGTERM" && running.paused) running.child.kill("SIGCONT");
    running.child.kill(signal);
    if (signal === "SIGSTOP") running.paused = true;
    if (signal === "SIGCONT") running.paused = false;
    if (signal === "SIGKILL") await withDeadline(running.exited, EXIT_DEADLINE_MS, `${id} to exit after SIGKILL`);
    if (signal === "SIGTERM") await this.awaitGracefulExit(id, running);
  }

  private async awaitGracefulExit(id: string, running: NodeProcess): Promise<void> {
    try {
      await withDeadline(running.exited, GRACEFUL_STOP_DEADLINE_MS, `${id} to stop after SIGTERM`);
    } catch (error) {
      running.child.kill("SIGKILL");
      await running.exited;
      throw error;
    }
    const code = running.child.exitCode;
    if (code !== 0) throw new Error(`${id} exited with code ${String(code)} after SIGTERM:\n${this.logTail(id)}`);
  }

  /**
   * Waits for a node that is expected to exit by itself (a refused start) and returns its exit
   * code; that exit is then no crash.
   */
  async expectExit(id: string, deadlineMs: number): Promise<number | null> {
    const running = this.processes.get(id);
    if (running === undefined) throw new Error(`${id} was never started`);
    await withDeadline(running.exited, deadlineMs, `${id} to exit by itself`);
    running.killed = true;
    return running.child.exitCode;
  }

  /** Starts a stopped or killed node again on the same data directory and ports. */
  async restart(id: string): Promise<void> {
    const running = this.processes.get(id);
    if (running !== undefined && !running.hasExited) await this.kill(id, "SIGKILL");
    this.start(id);
  }

  /** The node's `/status`; throws when it does not answer in time. */
  async status(id: string): Promise<NodeStatus> {
    const response = await fetch(`http://${this.node(id).adminAddress}/status`, { signal: AbortSignal.timeout(STATUS_REQUEST_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`${id} /status answered ${response.status}`);
    return (await response.json()) as NodeStatus;
  }

  /** The node's `/metrics` as name -> value (families without labels). */
  async metrics(id: string): Promise<Map<string, number>> {
    const response = await fetch(`http://${this.node(id).adminAddress}/metrics`, { signal: AbortSignal.timeout(STATUS_REQUEST_TIMEOUT_MS) });
    const text = await response.text();
    const metrics = new Map<string, number>();
    for (const line of text.split("\n")) {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/.exec(line);
      if (match?.[1] !== undefined && match[2] !== undefined) metrics.set(match[1], Number(match[2]));
    }
    return metrics;
  }

  /** A node that exited without being killed has crashed: no wait should go on past that. */
  assertNoCrash(): void {
    for (const [id, running] of this.processes) {
      if (!running.hasExited || running.killed) continue;
      const { exitCode, signalCode } = running.child;
      throw new Error(`${id} exited on its own (code ${String(exitCode)}, signal ${String(signalCode)}):\n${this.logTail(id)}`);
    }
  }

  /** Status of every live node that answers; a node that does not answer is left out. */
  async statuses(): Promise<Map<string, NodeStatus>> {
    this.assertNoCrash();
    const ids = this.liveIds();
    const answers = await Promise.all(ids.map((id) => this.status(id).catch(() => null)));
    const statuses = new Map<string, NodeStatus>();
    ids.forEach((id, index) => {
      const status = answers[index];
      if (status !== null && status !== undefined) statuses.set(id, status);
    });
    return statuses;
  }

  /**
   * Polls `/status` of every live node until all of them answer and name the same leader, which
   * itself reports the leader role in that term. `since` is the moment the wait is measured from.
   */
  async waitForLeader(deadlineMs: number, since = Date.now()): Promise<AgreedLeader> {
    let last = new Map<string, NodeStatus>();
    const found = await pollUntil(deadlineMs, async () => {
      last = await this.statuses();
      return agreedLeader(last, this.liveIds().length);
    });
    if (found === null) throw new Error(`no agreed leader within ${deadlineMs} ms; last statuses: ${summarize(last)}`);
    // A node that came back as a new incarnation leads under `name~incarnation`.
    return { id: found.id, address: this.node(memberName(found.id)).address, term: found.term, elapsedMs: Date.now() - since };
  }

  /**
   * Waits until every live node answers on its admin endpoint and returns that moment: the
   * cluster has started. Node start-up itself (loading Node.js and the modules) is not part of
   * an election, and on a loaded machine it alone can take seconds.
   */
  async waitForAllListening(deadlineMs: number): Promise<number> {
    const listening = await pollUntil(deadlineMs, async () => ((await this.statuses()).size === this.liveIds().length ? Date.now() : null));
    if (listening === null) throw new Error(`not every node was listening within ${deadlineMs} ms`);
    return listening;
  }

  /** Waits until every live node has applied at least `index`, or throws with their statuses. */
  async waitForApplied(index: number, deadlineMs: number, ids = this.liveIds()): Promise<Map<string, NodeStatus>> {
    let last = new Map<string, NodeStatus>();
    const done = await pollUntil(deadlineMs, async () => {
      last = await this.statuses();
      return ids.every((id) => (last.get(id)?.applied ?? -1) >= index) ? true : null;
    });
    if (done === null) throw new Error(`nodes ${ids.join(",")} did not apply ${index} within ${deadlineMs} ms: ${summarize(last)}`);
    return last;
  }

  /** Waits until every live node reports the same applied index as the leader's commit. */
  async waitForQuiescence(deadlineMs: number): Promise<Map<string, NodeStatus>> {
    let last = new Map<string, NodeStatus>();
    const done = await pollUntil(deadlineMs, async () => {
      last = await this.statuses();
      const applied = new Set([...last.values()].map((status) => status.applied));
      const commits = new Set([...last.values()].map((status) => status.commit));
      const settled = last.size === this.liveIds().length && applied.size === 1 && commits.size === 1 && [...applied][0] === [...commits][0];
      return settled ? true : null;
    });
    if (done === null) throw new Error(`the cluster did not settle within ${deadlineMs} ms: ${summarize(last)}`);
    return last;
  }

  logTail(id: string, lines = LOG_TAIL_LINES): string {
    try {
      return readFileSync(this.node(id).logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Makes a failed test diagnosable: the last lines each node wrote. */
  printLogTails(): void {
    for (const node of this.nodes) process.stderr.write(`\n----- ${node.id} (${node.address}) log tail -----\n${this.logTail(node.id)}\n`);
  }

  /** Kills every node and removes the temp directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    liveClusters.delete(this);
    this.killAllNow();
    await Promise.all([...this.processes.values()].map((running) => withDeadline(running.exited, EXIT_DEADLINE_MS, "a node to exit")));
    await rm(this.root, { recursive: true, force: true });
  }

  killAllNow(): void {
    for (const running of this.processes.values()) running.killNow();
  }
}

function agreedLeader(statuses: ReadonlyMap<string, NodeStatus>, liveCount: number): NodeStatus | null {
  if (statuses.size !== liveCount || liveCount === 0) return null;
  const leaders = [...statuses.values()].filter((status) => status.role === "leader");
  const [leader] = leaders;
  if (leaders.length !== 1 || leader === undefined) return null;
  const agreed = [...statuses.values()].every((status) => status.leader === leader.id && status.term === leader.term);
  return agreed ? leader : null;
}

function summarize(statuses: ReadonlyMap<string, NodeStatus>): string {
  const parts = [...statuses.entries()].map(
    ([id, status]) => `${id}: ${status.role} term=${status.term} leader=${String(status.leader)} commit=${status.commit} applied=${status.applied}`,
  );
  return parts.length === 0 ? "(no node answered)" : parts.join("; ");
}



