import { appendFile, copyFile, readFile, readdir, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Level } from "level";
import { afterEach, describe, expect, test } from "vitest";
import { KvError } from "../../../src/errors.js";
import { crc32c, maskCrc } from "../../../src/server/storage/crc32c.js";
import { checkLevelDbLogs, LOG_BLOCK_BYTES } from "../../../src/server/storage/leveldb-log-check.js";
import { createTemporaryDirectory, removeTemporaryDirectories } from "./temporary-directories.js";

afterEach(removeTemporaryDirectories);

const SMALL_BATCHES = 40;
/** Spans four blocks: FIRST, MIDDLE, MIDDLE, LAST. */
const LARGE_VALUE_BYTES = 100_000;

/** A LevelDB directory whose one log file holds SMALL_BATCHES small batches, then one large value. */
async function writtenDatabase(): Promise<{ readonly directory: string; readonly logPath: string }> {
  const directory = await createTemporaryDirectory();
  const db = new Level<string, Uint8Array>(directory, { valueEncoding: "view" });
  await db.open();
  for (let batch = 0; batch < SMALL_BATCHES; batch++) {
    await db.batch([{ type: "put", key: `k${batch}`, value: new Uint8Array((batch * 97) % 2000).fill(batch) }], { sync: true });
  }
  await db.put("large", new Uint8Array(LARGE_VALUE_BYTES).fill(7), { sync: true });
  // Closing does not flush the memtable: every batch stays in the log file.
  await db.close();
  const logs = (await readdir(directory)).filter((name) => name.endsWith(".log"));
  expect(logs).toHaveLength(1);
  return { directory, logPath: join(directory, logs[0] as string) };
}

async function flipBytes(path: string, offset: number, count: number): Promise<void> {
  const bytes = await readFile(path);
  for (let position = offset; position < offset + count; position++) bytes[position] = (bytes[position] as number) ^ 0xff;
  await writeFile(path, bytes);
}

async function checkError(directory: string): Promise<KvError> {
  const error: unknown = await checkLevelDbLogs(directory).then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(KvError);
  expect((error as KvError).code).toBe("CORRUPT");
  return error as KvError;
}

/** A physical record as LevelDB's writer lays it out. */
function physicalRecord(type: number, payload: Uint8Array): Uint8Array {
  const record = new Uint8Array(7 + payload.length);
  const view = new DataView(record.buffer);
  view.setUint32(0, maskCrc(crc32c(payload, crc32c(Uint8Array.of(type)))), true);
  view.setUint16(4, payload.length, true);
  record[6] = type;
  record.set(payload, 7);
  return record;
}

describe("checkLevelDbLogs", () => {
  test("a log LevelDB wrote verifies: every batch counted, our crc32c agrees with LevelDB's", async () => {
    const { directory, logPath } = await writtenDatabase();
    const report = await checkLevelDbLogs(directory);
    expect(report.files).toEqual([{ path: logPath, bytes: (await stat(logPath)).size, records: SMALL_BATCHES + 1, tornTailBytes: 0 }]);
  });

  test("a directory without log files, or no directory yet, has nothing to check", async () => {
    const directory = await createTemporaryDirectory();
    expect(await checkLevelDbLogs(directory)).toEqual({ files: [] });
    expect(await checkLevelDbLogs(join(directory, "absent"))).toEqual({ files: [] });
  });

  test("a flipped byte in the middle is damage naming the file and offset; LevelDB alone would drop the batches silently", async () => {
    const { directory, logPath } = await writtenDatabase();
    await flipBytes(logPath, 5000, 1);
    const error = await checkError(directory);
    expect(error.message).toContain(logPath);
    expect(error.message).toMatch(/damaged at byte \d+ \(block 0, write batch \d+\): checksum mismatch/);

    // Why the check exists: LevelDB opens this directory without complaint and some keys are gone.
    const db = new Level<string, Uint8Array>(directory, { valueEncoding: "view" });
    await db.open();
    const keys = await db.keys().all();
    await db.close();
    expect(keys.length).toBeLessThan(SMALL_BATCHES + 1);
  });

  test("8 flipped bytes near the end (inside the last record) are damage too", async () => {
    const { directory, logPath } = await writtenDatabase();
    const { size } = await stat(logPath);
    await flipBytes(logPath, size - 100, 8);
    const error = await checkError(directory);
    expect(error.message).toContain("checksum mismatch");
    expect(error.message).toContain(`write batch ${SMALL_BATCHES + 1}`);
  });

  test.each([
    ["inside the last record's header", 3],
    ["inside the last fragment's payload", 500],
    ["at a block boundary inside the fragmented record", -1],
    ["inside the first fragment", LARGE_VALUE_BYTES - 100],
  ])("a torn tail (cut %s) is not damage: that write was never acknowledged", async (_, cutFromEnd) => {
    const { directory, logPath } = await writtenDatabase();
    const { size } = await stat(logPath);
    const cutAt = cutFromEnd === -1 ? Math.floor((size - 1) / LOG_BLOCK_BYTES) * LOG_BLOCK_BYTES : size - cutFromEnd;
    await truncate(logPath, cutAt);
    const report = await checkLevelDbLogs(directory);
    expect(report.files[0]?.records).toBe(SMALL_BATCHES);
    expect(report.files[0]?.tornTailBytes).toBeGreaterThan(0);
  });

  test("zero padding at the end of the newest file is not damage; data after zeros is", async () => {
    const { directory, logPath } = await writtenDatabase();
    await appendFile(logPath, new Uint8Array(3000));
    const report = await checkLevelDbLogs(directory);
    expect(report.files[0]).toMatchObject({ records: SMALL_BATCHES + 1, tornTailBytes: 3000 });

    await appendFile(logPath, physicalRecord(1, new Uint8Array(20).fill(1)));
    expect((await checkError(directory)).message).toContain("after the zero-filled tail");
  });

  test("a torn tail in an older log file is damage: only the newest file is being written", async () => {
    const { directory, logPath } = await writtenDatabase();
    const older = join(directory, "000001.log");
    await copyFile(logPath, older);
    await truncate(older, (await stat(older)).size - 500);
    const error = await checkError(directory);
    expect(error.message).toContain(older);
    expect(error.message).toContain("runs past the end of its block");
  });

  test.each([
    ["an unknown record type", [physicalRecord(9, new Uint8Array(20))], "unknown record type 9"],
    ["a LAST without its FIRST", [physicalRecord(4, new Uint8Array(20))], "LAST record without its FIRST"],
    ["a FULL inside a fragmented record", [physicalRecord(2, new Uint8Array(20)), physicalRecord(1, new Uint8Array(20))], "FULL record inside"],
    ["a batch shorter than its header", [physicalRecord(1, new Uint8Array(5))], "write batch of 5 bytes"],
  ])("a well-checksummed but malformed record is damage: %s", async (_, records, message) => {
    const directory = await createTemporaryDirectory();
    await writeFile(join(directory, "000005.log"), Buffer.concat(records));
    expect((await checkError(directory)).message).toContain(message);
  });
});
