/**
 * Faults of a node's disk: `lost-disk` (its data directory is gone) and `corrupt-log-tail` (bytes
 * flipped near the end of its newest LevelDB log file while it is down). Either way the node must
 * not pass itself off as the member it was: it comes back as a new incarnation the cluster
 * re-admits, and a damaged log is refused at start-up instead of being served.
 */
import { open, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import type { ClusterControl, StartOutcome } from "./control.js";
import { expectReadmission } from "./membership-faults.js";
import type { AppliedFault, FaultContext } from "./nemesis.js";
import type { WhiteboxAnomaly } from "./whitebox.js";

/** Where a node keeps its LevelDB write-ahead log, under its data directory. */
const LOG_DIRECTORY = "log";
/** LevelDB's write-ahead log files (`000123.log`); its own info log is `LOG`. */
const LEVELDB_LOG_FILE = /^(\d+)\.log$/;
/** How many bytes are flipped, and how far before the end of the file they end. */
export const FLIPPED_BYTES = 8;
export const TAIL_MARGIN_BYTES = 8;
/** A refusal is a check at start-up: opening the log, reading the watermark. */
const REFUSAL_DEADLINE_MS = 20_000;

/** kill -9, wipe the data directory, restart with the same command line; healing waits for re-admission. */
export async function loseDisk(control: ClusterControl, node: string): Promise<AppliedFault> {
  await control.kill(node);
  await control.wipe(node);
  control.start(node);
  return {
    nodes: [node],
    detail: `kill -9 ${node}, wipe its data directory, restart it with the same command line`,
    heal: () => expectReadmission(control, node),
  };
}

/** The newest LevelDB log file among `names`, by its number; null when there is none. */
export function newestLogFile(names: readonly string[]): string | null {
  let newest: { readonly name: string; readonly number: number } | null = null;
  for (const name of names) {
    const match = LEVELDB_LOG_FILE.exec(name);
    const number = match?.[1] === undefined ? NaN : Number(match[1]);
    if (!Number.isNaN(number) && (newest === null || number > newest.number)) newest = { name, number };
  }
  return newest?.name ?? null;
}

/**
 * Where the flipped bytes start in a log file of `sizeBytes`: inside the last records, which
 * LevelDB writes unpadded up to the end of the file. Null when the file is too short to damage.
 */
export function damageOffset(sizeBytes: number): number | null {
  const offset = sizeBytes - TAIL_MARGIN_BYTES - FLIPPED_BYTES;
  return offset < 0 ? null : offset;
}

/** Inverts every bit of the bytes: each one certainly differs from what was written. */
export function flipBytes(bytes: Uint8Array): Uint8Array {
  return bytes.map((byte) => byte ^ 0xff);
}

export interface Damage {
  readonly file: string;
  readonly offset: number;
}

/** Flips bytes near the end of the newest log file of a stopped node; null when it holds too little. */
async function damageNewestLog(dataDirectory: string): Promise<Damage | null> {
  const directory = join(dataDirectory, LOG_DIRECTORY);
  const newest = newestLogFile(await readdir(directory).catch(() => []));
  if (newest === null) return null;
  const file = join(directory, newest);
  const handle = await open(file, "r+");
  try {
    const offset = damageOffset((await handle.stat()).size);
    if (offset === null) return null;
    const original = new Uint8Array(FLIPPED_BYTES);
    await handle.read(original, 0, FLIPPED_BYTES, offset);
    await handle.write(flipBytes(original), 0, FLIPPED_BYTES, offset);
    await handle.sync();
    return { file, offset };
  } finally {
    await handle.close();
  }
}

/**
 * Stops a node, flips bytes near the end of its newest log file and starts it: it must refuse to
 * start and name the file. Healing starts it once with `--rejoin` (discard the local state, come
 * back as a new incarnation) and waits until the cluster re-admitted it.
 */
export async function corruptLogTail(context: FaultContext, node: string): Promise<AppliedFault> {
  const control = context.control;
  await control.kill(node);
  const damage = await damageNewestLog(control.node(node).dataDirectory);
  if (damage === null) {
    control.start(node);
    return { nodes: [node], detail: `${node}'s newest log file holds too little to damage; restarted as it was`, heal: async () => undefined };
  }
  const logStart = await control.logBytes(node);
  control.start(node, { expectExit: true });
  const outcome = await control.startOutcome(node, REFUSAL_DEADLINE_MS);
  const verdict = judgeStart(node, damage, outcome, await control.readLog(node, logStart));
  if (verdict.anomaly !== undefined) context.reportAnomaly(verdict.anomaly);
  await control.kill(node); // a node that did not refuse is stopped: it comes back through --rejoin like the other
  return {
    nodes: [node],
    detail: `stop ${node}, flip ${FLIPPED_BYTES} bytes at offset ${damage.offset} of ${basename(damage.file)}, start it: ${verdict.summary}; then restart it with --rejoin`,
    heal: async () => {
      control.start(node, { rejoin: true });
      await expectReadmission(control, node);
    },
  };
}

/** A start on a damaged log is right only when it exits and its output names the damaged file. */
export function judgeStart(node: string, damage: Damage, outcome: StartOutcome, output: string): { readonly summary: string; readonly anomaly?: WhiteboxAnomaly } {
  const file = basename(damage.file);
  if (!outcome.exited) {
    const what = outcome.serving ? "started and serves" : `neither exited nor served within ${REFUSAL_DEADLINE_MS} ms`;
    return { summary: what, anomaly: { kind: "damaged-log-accepted", message: `${node} ${what} with ${file} damaged at offset ${damage.offset}` } };
  }
  if (!output.includes(file)) {
    const message = `${node} exited (code ${String(outcome.exitCode)}) on a damaged log without naming ${file}: ${lastLines(output)}`;
    return { summary: `exited without naming ${file}`, anomaly: { kind: "damaged-log-unnamed", message } };
  }
  return { summary: `refused to start (exit code ${String(outcome.exitCode)}), naming ${file}` };
}

const QUOTED_OUTPUT_LINES = 3;

function lastLines(text: string): string {
  return text.trim().split("\n").slice(-QUOTED_OUTPUT_LINES).join(" | ");
}
