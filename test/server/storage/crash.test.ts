import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, expect, test } from "vitest";
import type { LogEntry } from "../../../src/raft/types.js";
import { DurableLog, type FsyncMode } from "../../../src/server/storage/durable-log.js";
import { crashEntryData } from "./fixtures/crash-entry-data.mjs";
import { createTemporaryDirectory, removeTemporaryDirectories } from "./temporary-directories.js";

/**
 * Crash safety with a real kill -9. The writer is a plain `node` child process that runs the
 * TypeScript sources through small module hooks (see fixtures/typescript-hooks.mjs for why),
 * prints every index whose append resolved, and is killed with SIGKILL mid-stream while
 * several appends are in flight. Every index it printed must then load back intact.
 *
 * A killed process loses nothing the OS already has, so the "interval" mode must pass too: its
 * loss window is an OS crash or power cut, which a test on a live machine cannot cause.
 */
const WRITER = fileURLToPath(new URL("./fixtures/crash-writer.mjs", import.meta.url));
/** The child stops by itself after this many entries if it is never killed. */
const WRITER_MAX_ENTRIES = 50_000;

afterEach(removeTemporaryDirectories);

/** Runs the writer until it has acknowledged `killAfter` indexes, then kills it with SIGKILL. */
async function writeUntilKilled(directory: string, fsync: FsyncMode, killAfter: number): Promise<number[]> {
  const child = spawn(process.execPath, [WRITER, directory, fsync, String(WRITER_MAX_ENTRIES)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let errorOutput = "";
  child.stderr.on("data", (chunk: Buffer) => (errorOutput += chunk.toString()));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const lines = createInterface({ input: child.stdout });
  const linesDone = once(lines, "close");
  const acknowledged: number[] = [];
  lines.on("line", (line) => {
    acknowledged.push(Number(line));
    if (acknowledged.length === killAfter) child.kill("SIGKILL");
  });
  const [, signal] = await exited;
  await linesDone;
  expect(signal, errorOutput).toBe("SIGKILL");
  return acknowledged;
}

function expectIntact(entries: readonly LogEntry[], acknowledged: readonly number[]): void {
  // load() verified checksums and contiguity from index 1; entries[i] has index i + 1.
  for (const index of acknowledged) {
    const entry = entries[index - 1];
    expect(entry, `acknowledged index ${index} is missing`).toBeDefined();
    expect(entry).toEqual({ index, term: 1, kind: "command", data: crashEntryData(index) });
  }
}

test.each<FsyncMode>(["always", "interval"])("fsync %s: every acknowledged append survives kill -9, across two crashes", async (fsync) => {
  const directory = await createTemporaryDirectory();
  const acknowledged: number[] = [];
  for (const killAfter of [300, 500]) {
    const acknowledgedThisRound = await writeUntilKilled(directory, fsync, killAfter);
    expect(acknowledgedThisRound.length).toBeGreaterThanOrEqual(killAfter);
    acknowledged.push(...acknowledgedThisRound);
    const log = await DurableLog.open(directory, { fsync });
    const loaded = await log.load();
    await log.close();
    expectIntact(loaded.entries, acknowledged);
    // The hard state was written with each entry: it is at least as new as the last acknowledged one.
    expect(loaded.hardState?.commit).toBeGreaterThanOrEqual(Math.max(...acknowledged));
    console.log(`kill -9 after ${acknowledged.length} acknowledged: ${loaded.entries.length} entries on disk`);
  }
});
