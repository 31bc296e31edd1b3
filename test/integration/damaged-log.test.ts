import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, test } from "vitest";
import { requests } from "../../src/client/requests.js";
import { valuesEqual } from "../../src/engine/equality.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster } from "./harness.js";
import { TestClient } from "./test-client.js";
import { expectAllPresent, readMany } from "./workload.js";

/**
 * A damaged log is never served: bytes flipped near the end of LevelDB's newest write-ahead
 * file of a stopped node make it refuse to start, naming the file and offset (LevelDB alone
 * would drop the damaged records and serve without acknowledged writes); `--rejoin` moves the
 * local state aside and the node comes back with every acknowledged write.
 */

const DEADLINE_MS = 30_000;
const WRITES = 200;
const WRITERS = 8;
const FLIPPED_BYTES = 8;
/** Where the flip lands, counted back from the end of the file: inside the last few batches. */
const FLIP_DISTANCE_FROM_END_BYTES = 100;

async function newestLevelDbLog(dataDirectory: string): Promise<string> {
  const directory = join(dataDirectory, "log");
  const logs = (await readdir(directory)).filter((name) => /^\d+\.log$/.test(name)).sort((left, right) => Number.parseInt(left, 10) - Number.parseInt(right, 10));
  const newest = logs.at(-1);
  if (newest === undefined) throw new Error(`no LevelDB log file in ${directory}`);
  return join(directory, newest);
}

async function flipBytesNearEnd(path: string): Promise<number> {
  const bytes = await readFile(path);
  const offset = bytes.length - FLIP_DISTANCE_FROM_END_BYTES;
  for (let position = offset; position < offset + FLIPPED_BYTES; position++) bytes[position] = (bytes[position] as number) ^ 0xff;
  await writeFile(path, bytes);
  return offset;
}

/** Writes WRITES keys from WRITERS concurrent writers; every one must be acknowledged. */
async function writeAcknowledged(client: TestClient): Promise<Map<string, string>> {
  const acknowledged = new Map<string, string>();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      for (let sequence = writer; sequence < WRITES; sequence += WRITERS) {
        const key = `damaged-${sequence}`;
        const value = `value ${sequence}`;
        expect(await client.call(requests.set({ key, value }), { deadlineMs: DEADLINE_MS })).toBe(true);
        acknowledged.set(key, value);
      }
    }),
  );
  return acknowledged;
}

test("8 flipped bytes near the end of a stopped node's newest LevelDB log: it refuses to start naming the file; --rejoin brings it back with every acknowledged write", async () => {
  const cluster = await startCluster({ size: 3 });
  const leader = await cluster.waitForLeader(DEADLINE_MS, cluster.startedAt);
  const client = new TestClient(cluster.addresses);
  const acknowledged = await writeAcknowledged(client);
  await cluster.waitForQuiescence(DEADLINE_MS);

  const victim = cluster.nodes.find((node) => node.id !== leader.id);
  if (victim === undefined) throw new Error("a 3-node cluster has a follower");
  await cluster.kill(victim.id, "SIGKILL");
  const logFile = await newestLevelDbLog(victim.dataDirectory);
  const flippedAt = await flipBytesNearEnd(logFile);
  console.info(`figure: damaged-log flipped ${FLIPPED_BYTES} bytes at ${flippedAt} of ${(await stat(logFile)).size} in ${logFile}`);

  // The usual command line: the node refuses, names the file and where, and says how to come back.
  cluster.start(victim.id);
  const exitCode = await cluster.expectExit(victim.id, DEADLINE_MS);
  expect(exitCode).not.toBe(0);
  const refusal = cluster.logTail(victim.id, 10);
  expect(refusal).toContain(`LevelDB log ${logFile} is damaged at byte`);
  expect(refusal).toContain("--rejoin");
  // A second try with the same command line refuses the same way: nothing was "repaired" meanwhile.
  cluster.start(victim.id);
  expect(await cluster.expectExit(victim.id, DEADLINE_MS)).toBe(exitCode);

  const rejoinStarted = Date.now();
  cluster.start(victim.id, ["--rejoin"]);
  // Every acknowledged write, read from the rejoined node's own state (serializable, pinned).
  let lastMissing = acknowledged.size;
  const caughtUp = await pollUntil(DEADLINE_MS, async () => {
    cluster.assertNoCrash();
    const found = await readMany(client, [...acknowledged.keys()], victim.address).catch(() => new Map());
    lastMissing = [...acknowledged].filter(([key, value]) => !valuesEqual(found.get(key) ?? null, value)).length;
    return lastMissing === 0 ? true : null;
  }, 100);
  expect({ caughtUp, lastMissing }).toEqual({ caughtUp: true, lastMissing: 0 });
  console.info(`figure: damaged-log rejoined node served all ${acknowledged.size} acknowledged writes ${Date.now() - rejoinStarted} ms after --rejoin`);
  await expectAllPresent(client, acknowledged, victim.address);
  await expectAllPresent(client, acknowledged);

  // The damaged state was moved aside, not deleted, and the node said where.
  const discarded = (await readdir(cluster.root)).filter((name) => name.startsWith(`${victim.id}.discarded-`));
  expect(discarded).toHaveLength(1);
  expect(await readdir(join(cluster.root, discarded[0] as string, "log"))).toContain(logFile.split("/").at(-1));
  expect(cluster.logTail(victim.id, 400)).toContain(`local state moved aside to ${join(cluster.root, discarded[0] as string)}`);
  client.close();
});
