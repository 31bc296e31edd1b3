#!/usr/bin/env node
/**
 * `npm run cluster`: a local 3-node cluster in one terminal, for trying the product by hand.
 *
 * Nodes n1..n3 listen on 127.0.0.1:7001-7003 (admin HTTP on 8001-8003) with data in
 * ./data/n1..n3. Their pino JSON logs become one readable, prefixed stream:
 *
 *   [n1] 12:00:01.123 INFO  raft role role=leader term=2
 *
 * Ctrl-C stops all three gracefully (SIGTERM: leadership hand-over, log closed) and exits; a
 * second Ctrl-C kills them. It builds nothing: run `npm run build` first.
 * Extra arguments after `--` go to every node, e.g. `npm run cluster -- --fsync interval`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Command } from "commander";
import { ensureClusterSecretFile } from "../src/util/cluster-secret.js";

const NODE_COUNT = 3;
const FIRST_PORT = 7001;
const FIRST_ADMIN_PORT = 8001;
const HOST = "127.0.0.1";
/**
 * Under `npm run`, one Ctrl-C arrives twice (from the terminal and forwarded by npm); only a
 * signal this long after the first counts as the second Ctrl-C that kills the nodes.
 */
const REPEATED_SIGNAL_GRACE_MS = 1000;

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** Fields every line carries; the prefix and the time already say them. */
const HIDDEN_FIELDS = new Set(["level", "time", "msg", "node", "pid", "hostname"]);
const NODE_COLOURS = ["\u001b[36m", "\u001b[35m", "\u001b[33m", "\u001b[32m", "\u001b[34m"] as const;
const RESET = "\u001b[0m";

interface ClusterMember {
  readonly id: string;
  readonly address: string;
  readonly adminAddress: string;
  readonly dataDirectory: string;
}

/**
 * One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value ...`; anything that is not a pino
 * line (a stack trace on stderr) comes back unchanged.
 */
export function formatLogLine(line: string): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) return line;
  const fields = record as Record<string, unknown>;
  const time = typeof fields["time"] === "number" ? clockTime(new Date(fields["time"])) : "--:--:--.---";
  const level = (LEVEL_NAMES[Number(fields["level"])] ?? String(fields["level"])).padEnd(5);
  const extras = Object.entries(fields)
    .filter(([name]) => !HIDDEN_FIELDS.has(name))
    .map(([name, value]) => `${name}=${formatField(value)}`);
  return [time, level, String(fields["msg"] ?? ""), ...extras].join(" ");
}

function clockTime(date: Date): string {
  const two = (value: number): string => String(value).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

function formatField(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function membersOf(dataRoot: string): ClusterMember[] {
  return Array.from({ length: NODE_COUNT }, (_, index) => ({
    id: `n${index + 1}`,
    address: `${HOST}:${FIRST_PORT + index}`,
    adminAddress: `${HOST}:${FIRST_ADMIN_PORT + index}`,
    dataDirectory: join(dataRoot, `n${index + 1}`),
  }));
}

function startMember(entry: string, member: ClusterMember, peers: string, secretFile: string, nodeArguments: readonly string[]): ChildProcess {
  const argumentsOfNode = ["--bind", member.address, "--id", member.id, "--peers", peers, "--data-dir", member.dataDirectory, "--admin", member.adminAddress, "--cluster-secret-file", secretFile];
  // Its own process group: a terminal's Ctrl-C reaches only this script, which then stops the
  // nodes one way (SIGTERM) instead of racing the signal the terminal sends each of them.
  return spawn(process.execPath, [entry, ...argumentsOfNode, ...nodeArguments], { stdio: ["ignore", "pipe", "pipe"], detached: true });
}

function relay(child: ChildProcess, prefix: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    createInterface({ input: stream }).on("line", (line) => process.stdout.write(`${prefix} ${formatLogLine(line)}\n`));
  }
}

function prefixOf(id: string, index: number): string {
  if (!process.stdout.isTTY) return `[${id}]`;
  return `${NODE_COLOURS[index % NODE_COLOURS.length]}[${id}]${RESET}`;
}

async function main(): Promise<void> {
  const program = new Command()
    .name("cluster")
    .description("Runs a local 3-node data-bridge-kv cluster (ports 7001-7003, admin 8001-8003)")
    .option("--data-dir <path>", "parent directory of the nodes' data directories", "./data")
    .argument("[nodeArguments...]", "extra kv-node flags for every node (after --)")
    .parse();
  const nodeArguments = program.args;
  const { dataDir } = program.opts<{ dataDir: string }>();
  const projectRoot = fileURLToPath(new URL("../../", import.meta.url));
  const entry = join(projectRoot, "dist/bin/kv-node.js");
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`);

  const members = membersOf(resolve(dataDir));
  const peers = members.map((member) => `${member.id}=${member.address}`).join(",");
  // Peers prove they hold the cluster secret; a local cluster gets one of its own, beside its data.
  const secretFile = await ensureClusterSecretFile(join(resolve(dataDir), "cluster-secret"));
  const children = members.map((member, index) => {
    const child = startMember(entry, member, peers, secretFile, nodeArguments);
    relay(child, prefixOf(member.id, index));
    return child;
  });
  process.stdout.write(
    `cluster: ${members.map((member) => `${member.id} ${member.address} (admin http://${member.adminAddress}/status)`).join(", ")}\n` +
      `cluster: data in ${resolve(dataDir)}; Ctrl-C stops all nodes\n`,
  );
  await superviseUntilStopped(children);
}

/** Ctrl-C (or SIGTERM) stops every node gracefully; a second one kills them. Ends when all exited. */
async function superviseUntilStopped(children: readonly ChildProcess[]): Promise<void> {
  const exits = children.map(
    (child, index) =>
      new Promise<number | null>((done) =>
        child.once("exit", (code, signal) => {
          process.stdout.write(`${prefixOf(`n${index + 1}`, index)} exited (code ${String(code)}${signal === null ? "" : `, signal ${signal}`})\n`);
          done(code);
        }),
      ),
  );
  let stoppingSince: number | null = null;
  const stop = (): void => {
    if (stoppingSince !== null && Date.now() - stoppingSince < REPEATED_SIGNAL_GRACE_MS) return;
    const signal = stoppingSince === null ? "SIGTERM" : "SIGKILL";
    process.stdout.write(signal === "SIGTERM" ? "cluster: stopping all nodes (Ctrl-C again to kill them)\n" : "cluster: killing all nodes\n");
    stoppingSince ??= Date.now();
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // Should this script die some other way, the detached nodes must not outlive it.
  process.once("exit", () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const codes = await Promise.all(exits);
  process.stdout.write(`cluster: all nodes stopped (exit codes ${codes.map(String).join(", ")})\n`);
  process.exitCode = stoppingSince !== null && codes.every((code) => code === 0) ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
