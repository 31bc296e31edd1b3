#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_MIN_FREE_DISK_BYTES } from "../src/server/disk-space-guard.js";
import { DEFAULT_CONNECTION_LIMITS } from "../src/server/connection.js";
import { explainStartFailure, runNode, type NodeCommandLine } from "../src/server/main.js";
import { DEFAULT_MAX_INFLIGHT_REQUEST_BYTES } from "../src/server/request-budget.js";

function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError("must be a positive integer");
  return value;
}

function nonNegativeInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError("must be a non-negative integer");
  return value;
}

function integer(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError("must be an integer");
  return value;
}

const program = new Command()
  .name("kv-node")
  .description("A data-bridge-kv node. Without --peers it is a single-node cluster.")
  .option("-b, --bind <host:port>", "address for clients and peers", "127.0.0.1:6380")
  .option("--peers <list>", "cluster members: comma-separated host:port or name=host:port (absent: single node)")
  .option("--id <name>", "this node's name among --peers (default: found by --bind)")
  .option("--join", "join a running cluster instead of founding one: wait to be added with `kv cluster add`", false)
  .option("--cluster-id <id>", "cluster name checked when peers connect", "data-bridge-kv")
  .option("--cluster-secret-file <path>", "file whose first line is the cluster secret peers prove they hold (further lines: older secrets still accepted); or set KV_CLUSTER_SECRET")
  .option("--insecure-peers", "accept peers without a cluster secret (trusted networks only)", false)
  .option("--data-dir <path>", "where the log and snapshots live", "./data")
  .option("--rejoin", "discard this node's local state (moved aside to <data-dir>.discarded-<time>, not deleted) and start empty, to be caught up by the cluster: the way back after a damaged log", false)
  .option("--min-free-disk-bytes <bytes>", "below this much free space on the data directory's filesystem, refuse writes (NO_SPACE) and keep serving reads", nonNegativeInteger, DEFAULT_MIN_FREE_DISK_BYTES)
  .addOption(new Option("--fsync <mode>", "durability: always (group commit) or interval (every 100 ms)").choices(["always", "interval"]).default("always"))
  .option("-s, --shards <count>", "engine shards (power of two)", positiveInteger, 256)
  .option("--snapshot-entries <count>", "snapshot after this many applied entries", positiveInteger, 100_000)
  .option("--snapshot-interval <seconds>", "snapshot at least this often when something changed", positiveInteger, 300)
  .option("--max-value-bytes <bytes>", "largest value accepted", positiveInteger, 8 * 1024 * 1024)
  .option("--max-key-length <chars>", "longest key accepted", positiveInteger, 256)
  .option("--max-request-bytes <bytes>", "largest client request; larger ones are refused TOO_LARGE (default: 16 MiB, or enough for one --max-value-bytes value; at most 64 MiB - 64 KiB, so that its entry fits a peer frame)", positiveInteger)
  .option("--max-connections <count>", "client connections accepted at once; more are refused at accept (default: what the open-file limit leaves after LevelDB, peers and snapshots)", positiveInteger)
  .option("--idle-timeout <seconds>", "close a client connection with nothing in flight and no traffic for this long (0: never)", nonNegativeInteger, DEFAULT_CONNECTION_LIMITS.idleTimeoutMs / 1000)
  .option("--max-inflight-request-bytes <bytes>", "request bytes read and not yet answered, all clients together; past it the node stops reading until answers drain", positiveInteger, DEFAULT_MAX_INFLIGHT_REQUEST_BYTES)
  .option("--client-output-pause-bytes <bytes>", "unsent answer bytes to one client past which nothing more is read from it until it drains", positiveInteger, DEFAULT_CONNECTION_LIMITS.outputPauseBytes)
  .option("--client-output-limit-bytes <bytes>", "answer bytes one client may owe (unsent or waiting) before it is disconnected", positiveInteger, DEFAULT_CONNECTION_LIMITS.outputLimitBytes)
  .addOption(new Option("-l, --log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"))
  .option("--admin <host:port>", "HTTP admin endpoint: /health, /status, /metrics")
  .addOption(new Option("--tick-ms <ms>", "Raft tick").argParser(positiveInteger).default(50).hideHelp())
  .addOption(new Option("--election-ticks <ticks>", "base election timeout in ticks").argParser(positiveInteger).default(10).hideHelp())
  .addOption(new Option("--clock-offset-ms <ms>", "test only: shift this node's wall clock").argParser(integer).default(0).hideHelp())
  .addOption(new Option("--pin-peer-addresses", "test only: dial peers at their --peers addresses even after membership changes").default(false).hideHelp())
  .action(async (options: NodeCommandLine) => {
    await runNode(options).catch((error: unknown) => {
      throw explainStartFailure(error, options.dataDir);
    });
  });

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`kv-node: ${(error as Error).message}\n`);
  process.exit(1);
});
