import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, test } from "vitest";
import { KvClient } from "../../src/client/client.js";
import { ClientConnection } from "../../src/client/connection.js";
import { requests } from "../../src/client/requests.js";
import { KvError } from "../../src/errors.js";
import { parseHostPort } from "../../src/server/peers.js";
import { COMMAND } from "../../src/server/protocol/commands.js";
import { RESERVED_PEER_CONNECTIONS } from "../../src/server/connection-limits.js";
import { DEFAULT_MAX_REQUEST_BYTES, encodeFrame, MAX_REQUEST_PAYLOAD_BYTES } from "../../src/server/protocol/frame.js";
import { pollUntil, withDeadline } from "../../src/util/processes.js";
import { startCluster, type Cluster } from "./harness.js";
import { RawConnection } from "./raw-connection.js";
import { TestClient } from "./test-client.js";

const MIB = 1024 * 1024;
const START_DEADLINE_MS = 15_000;
const FLOOD_CONNECTIONS = 20_000;
/** One process may hold 20,000 descriptors on the test machine: the flood comes from several. */
const FLOOD_PROCESSES = 4;
const FLOOD_DEADLINE_MS = 30_000;
const UNREAD_GETS = 1100;
const UNREAD_VALUE_BYTES = 4 * MIB;
const RSS_GROWTH_LIMIT_BYTES = 100 * MIB;
const REPLICATION_DEADLINE_MS = 30_000;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

/**
 * A helper process that opens `count` connections (at most `concurrency` connecting at once),
 * keeps those the node accepts, and reports once every attempt has settled and no connection
 * has closed for a while, and again for each "report" line on its stdin. It holds them until
 * its stdin closes.
 */
const FLOOD_SCRIPT = `
const net = require("node:net");
const [host, port, count, concurrency] = process.argv.slice(1).map((arg, index) => (index === 0 ? arg : Number(arg)));
const sockets = [];
let started = 0, settled = 0, open = 0, closed = 0, failed = 0, lastChangeMs = Date.now();
const next = () => {
  if (started >= count) return;
  started++;
  const socket = net.connect({ host, port });
  let connected = false;
  socket.on("connect", () => { connected = true; open++; settled++; lastChangeMs = Date.now(); next(); });
  socket.on("error", () => undefined);
  socket.on("close", () => {
    if (connected) { open--; closed++; } else { failed++; settled++; next(); }
    lastChangeMs = Date.now();
  });
  sockets.push(socket);
};
for (let index = 0; index < concurrency; index++) next();
const timer = setInterval(() => {
  if (settled < count || Date.now() - lastChangeMs < 500) return;
  clearInterval(timer);
  report();
}, 100);
const report = () => process.stdout.write(JSON.stringify({ open, closed, failed }) + "\\n");
require("node:readline").createInterface({ input: process.stdin }).on("line", report).on("close", () => process.exit(0));
`;

interface FloodReport {
  readonly open: number;
  readonly closed: number;
  readonly failed: number;
}

/** A running flood helper: its report once settled, and a fresh one on request. */
interface Flood {
  readonly settled: Promise<FloodReport>;
  readonly report: () => Promise<FloodReport>;
}

function flood(address: string, count: number): Flood {
  const { host, port } = parseHostPort(address);
  const child = spawn(process.execPath, ["-e", FLOOD_SCRIPT, host, String(port), String(count), "100"], { stdio: ["pipe", "pipe", "inherit"] });
  children.push(child);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextReport = async (): Promise<FloodReport> => {
    const line = await withDeadline(lines.next(), FLOOD_DEADLINE_MS, "a flood helper to report");
    if (line.done === true) throw new Error(`a flood helper exited with code ${String(child.exitCode)} before reporting`);
    return JSON.parse(line.value) as FloodReport;
  };
  const settled = nextReport();
  return {
    settled,
    report: async () => {
      await settled;
      const report = nextReport();
      child.stdin?.write("report\n");
      return report;
    },
  };
}

/** The connections every flood helper holds, and how many the node refused, summed. */
async function floodTotals(floods: readonly Flood[], reportOf: (flood: Flood) => Promise<FloodReport>): Promise<{ held: number; refused: number }> {
  const reports = await Promise.all(floods.map(reportOf));
  return {
    held: reports.reduce((sum, report) => sum + report.open, 0),
    refused: reports.reduce((sum, report) => sum + report.closed + report.failed, 0),
  };
}

/** The pid of the node process started on `dataDirectory` (its command line names it). */
function pidOfNode(dataDirectory: string): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(dataDirectory)) return Number(entry);
    } catch {
      // The process ended while the list was read.
    }
  }
  throw new Error(`no process runs on ${dataDirectory}`);
}

function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match?.[1] === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

async function singleNode(nodeOptions: readonly string[] = []): Promise<{ cluster: Cluster; address: string; client: TestClient }> {
  const cluster = await startCluster({ size: 1, nodeOptions });
  const leader = await cluster.waitForLeader(START_DEADLINE_MS);
  const client = new TestClient([leader.address]);
  return { cluster, address: leader.address, client };
}

async function metric(cluster: Cluster, id: string, name: string): Promise<number> {
  const value = (await cluster.metrics(id)).get(name);
  if (value === undefined) throw new Error(`${id} has no metric ${name}`);
  return value;
}

async function connectOnce(address: string): Promise<ClientConnection> {
  const { host, port } = parseHostPort(address);
  return ClientConnection.connect(host, port, { connectTimeoutMs: 5000 });
}

/** What a fresh connection gets from a node: an answer, or the code it was refused with. */
async function freshPing(address: string): Promise<string> {
  try {
    const connection = await connectOnce(address);
    try {
      await connection.request(COMMAND.ping, requests.ping().payload, { timeoutMs: 5000 });
      return "answered";
    } finally {
      connection.close();
    }
  } catch (error) {
    return error instanceof KvError ? error.code : String(error);
  }
}

describe("resources a client cannot exhaust", () => {
  test("20,000 connections: the excess is refused at accept, a canary keeps reading and writing", async () => {
    const { cluster, address, client: canary } = await singleNode();
    expect(await canary.call(requests.set({ key: "canary", value: 0n }))).toBe(true);
    const maxConnections = await metric(cluster, "n1", "kv_max_connections");
    const share = FLOOD_CONNECTIONS / FLOOD_PROCESSES;
    const floods = Array.from({ length: FLOOD_PROCESSES }, () => flood(address, share));
    await floodTotals(floods, (each) => each.settled);
    // The canary holds one client slot; connections on peer slots are dropped at their probation
    // deadline, and the node may not yet have accepted (and refused) the last of the kernel's
    // backlog when a helper first goes quiet: wait for the count to come within the bound.
    const bound = maxConnections - 1 + RESERVED_PEER_CONNECTIONS;
    let totals = await floodTotals(floods, (each) => each.report());
    await pollUntil(FLOOD_DEADLINE_MS, async () => {
      if (totals.held <= bound) return true;
      totals = await floodTotals(floods, (each) => each.report());
      return null;
    }, 200);
    const { held, refused } = totals;
    console.info(`figure: ${FLOOD_CONNECTIONS} connections opened, ${held} held, ${refused} refused; --max-connections default ${maxConnections} (from the open-file limit)`);
    expect(held + refused).toBe(FLOOD_CONNECTIONS);
    expect(refused).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(bound);
    expect(await metric(cluster, "n1", "kv_client_connections")).toBe(maxConnections);
    expect(await metric(cluster, "n1", "kv_connections_refused_total")).toBeGreaterThan(0);

    for (let round = 1; round <= 5; round++) {
      expect(await canary.call(requests.set({ key: "canary", value: BigInt(round) }))).toBe(true);
      expect(await canary.call(requests.get({ key: "canary" }))).toBe(BigInt(round));
    }
    expect(["BUSY", "CONNECTION"]).toContain(await freshPing(address));
    cluster.assertNoCrash();

    for (const child of children.splice(0)) child.stdin?.end();
    const drained = await pollUntil(FLOOD_DEADLINE_MS, async () => ((await metric(cluster, "n1", "kv_client_connections")) <= 1 ? true : null), 100);
    expect(drained).toBe(true);
    expect(await freshPing(address)).toBe("answered");
    canary.close();
  });

  test("1,100 pipelined gets of a 4 MiB value never read: the node's RSS grows by less than 100 MiB", async () => {
    const { cluster, address, client } = await singleNode();
    expect(await client.call(requests.set({ key: "big", value: new Uint8Array(UNREAD_VALUE_BYTES).fill(7) }))).toBe(true);
    expect(await client.call(requests.get({ key: "big" }))).toHaveLength(UNREAD_VALUE_BYTES);
    const pid = pidOfNode(cluster.node("n1").dataDirectory);
    const before = residentBytes(pid);

    const { host, port } = parseHostPort(address);
    const reader = connect({ host, port });
    await new Promise<void>((resolve, reject) => reader.once("connect", resolve).once("error", reject));
    reader.pause();
    const get = requests.get({ key: "big" });
    reader.write(Buffer.concat(Array.from({ length: UNREAD_GETS }, (_, index) => encodeFrame(get.code, index, get.payload))));
    let peak = before;
    const ended = await pollUntil(REPLICATION_DEADLINE_MS, async () => {
      peak = Math.max(peak, residentBytes(pid));
      return (await metric(cluster, "n1", "kv_connections_output_limit_closed_total")) >= 1 ? true : null;
    }, 50);
    for (let sample = 0; sample < 10; sample++) peak = Math.max(peak, residentBytes(pid));
    console.info(`figure: node RSS ${(before / MIB).toFixed(1)} MiB before ${UNREAD_GETS} unread gets of 4 MiB, peak ${(peak / MIB).toFixed(1)} MiB (+${((peak - before) / MIB).toFixed(1)} MiB)`);
    expect(ended).toBe(true);
    expect(peak - before).toBeLessThan(RSS_GROWTH_LIMIT_BYTES);
    // Others are served meanwhile and after.
    expect(await client.call(requests.get({ key: "big" }))).toHaveLength(UNREAD_VALUE_BYTES);
    expect(await metric(cluster, "n1", "kv_connection_output_pauses_total")).toBeGreaterThanOrEqual(1);
    destroyQuietly(reader);
    client.close();
  });

  test("a request of about 64 MiB is refused TOO_LARGE, one at the request limit is replicated, and replication goes on", async () => {
    const cluster = await startCluster({ size: 3 });
    const leader = await cluster.waitForLeader(START_DEADLINE_MS);
    const client = new TestClient(cluster.addresses);

    // ~64 MiB: refused from its header alone (the payload is never held), or by the client
    // before it sends a byte past the protocol's ceiling.
    const raw = await RawConnection.open(leader.address);
    raw.write(Uint8Array.of(COMMAND.mset, 0, 0, 0, 1, ...u32(MAX_REQUEST_PAYLOAD_BYTES - 1024), 0x80));
    const answer = await raw.next(10_000);
    expect(answer.kind === "answer" ? answer.error?.code : answer.kind).toBe("TOO_LARGE");
    raw.destroy();
    expect(await codeOf(client.call(requests.mset({ entries: bigEntries(MAX_REQUEST_PAYLOAD_BYTES - 1024) })))).toBe("TOO_LARGE");
    expect(await codeOf(client.call(requests.mset({ entries: bigEntries(MAX_REQUEST_PAYLOAD_BYTES + 1024) })))).toBe("TOO_LARGE");

    // Just under the node's request limit: one large entry, replicated to every node.
    const started = Date.now();
    const largest = DEFAULT_MAX_REQUEST_BYTES - 16 * 1024;
    expect(await client.call(requests.mset({ entries: bigEntries(largest) }), { deadlineMs: REPLICATION_DEADLINE_MS })).toBe(true);
    expect(await client.call(requests.set({ key: "after", value: 1n }))).toBe(true);
    for (const node of cluster.nodes) {
      const seen = await pollUntil(REPLICATION_DEADLINE_MS, async () => {
        const value = await client.call(requests.get({ key: "after", consistency: "serializable" }), { node: node.address }).catch(() => null);
        return value === 1n ? true : null;
      }, 100);
      expect({ node: node.id, seen }).toEqual({ node: node.id, seen: true });
    }
    console.info(`figure: a ${(largest / MIB).toFixed(2)} MiB mset and the next write on all 3 nodes in ${Date.now() - started} ms`);

    // Every value at once is an answer over the frame limit: TOO_LARGE, unbuilt, asked once.
    for (let index = 0; index < 7; index++) {
      expect(await client.call(requests.set({ key: `fill-${index}`, value: new Uint8Array(8 * MIB - 64 * 1024) }), { deadlineMs: REPLICATION_DEADLINE_MS })).toBe(true);
    }
    const leaderId = (await cluster.waitForLeader(START_DEADLINE_MS)).id;
    const tooLargeBefore = await metric(cluster, leaderId, "kv_responses_too_large_total");
    const kvClient = await KvClient.connect(`kv://${cluster.addresses.join(",")}`);
    try {
      expect(await codeOf(kvClient.getPattern("*"))).toBe("TOO_LARGE");
    } finally {
      await kvClient.close();
    }
    expect(await metric(cluster, leaderId, "kv_responses_too_large_total")).toBe(tooLargeBefore + 1);
    client.close();
  });
});

/** Eight values of the same size whose mset request takes about `requestBytes`. */
function bigEntries(requestBytes: number): [string, Uint8Array][] {
  const valueBytes = Math.floor(requestBytes / 8) - 32;
  return Array.from({ length: 8 }, (_, index) => [`big-${index}`, new Uint8Array(valueBytes).fill(index)]);
}

function u32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "answered";
  } catch (error) {
    return error instanceof KvError ? error.code : String(error);
  }
}

function destroyQuietly(socket: Socket): void {
  socket.on("error", () => undefined);
  socket.destroy();
}
