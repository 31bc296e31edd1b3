import { pino } from "pino";
import { afterEach, describe, expect, test } from "vitest";
import type { LogEntry, Message } from "../../src/raft/types.js";
import { DiskSpaceGuard } from "../../src/server/disk-space-guard.js";
import { Metrics } from "../../src/server/metrics.js";
import { isNoSpaceError, noSpaceError } from "../../src/server/storage/no-space.js";

const RESERVE_BYTES = 10_000;
const guards: DiskSpaceGuard[] = [];

afterEach(() => {
  for (const guard of guards.splice(0)) guard.close();
});

/** A guard over a pretend disk whose free bytes the test sets; by default it measures only when asked. */
async function guardOver(disk: { free: number; measurements: number }, refreshIntervalMs = 3_600_000): Promise<DiskSpaceGuard> {
  const guard = await DiskSpaceGuard.start({
    directory: "/data",
    minFreeBytes: RESERVE_BYTES,
    refreshIntervalMs,
    logger: pino({ level: "silent" }),
    metrics: new Metrics(),
    measureFreeBytes: () => {
      disk.measurements++;
      return Promise.resolve(disk.free);
    },
  });
  guards.push(guard);
  return guard;
}

const entry: LogEntry = { index: 5, term: 2, kind: "noop" };
const traffic: Message[] = [
  { type: "appendEntries", from: "n1", to: "n2", term: 2, prevLogIndex: 4, prevLogTerm: 2, entries: [entry], commit: 4 },
  { type: "appendEntries", from: "n1", to: "n2", term: 2, prevLogIndex: 5, prevLogTerm: 2, entries: [], commit: 5 },
  { type: "heartbeat", from: "n1", to: "n2", term: 2, commit: 5, readRound: 0 },
  { type: "installSnapshot", from: "n1", to: "n2", term: 2, chunk: { metadata: { index: 9, term: 2, membership: { voters: ["n1"], learners: [], addresses: {} }, sizeBytes: 1 }, offset: 0, data: new Uint8Array(1), last: true } },
  { type: "requestVote", from: "n3", to: "n2", term: 3, lastLogIndex: 5, lastLogTerm: 2, preVote: true, transfer: false },
];

describe("DiskSpaceGuard", () => {
  test("above the reserve everything passes; below it writes are refused with NO_SPACE naming the directory and reserve", async () => {
    const disk = { free: RESERVE_BYTES, measurements: 0 };
    const guard = await guardOver(disk);
    expect(guard.isLow).toBe(false);
    expect(() => guard.refuseIfLow()).not.toThrow();
    expect(guard.admit(traffic)).toBe(traffic);

    disk.free = RESERVE_BYTES - 1;
    await guard.refresh();
    expect(guard.isLow).toBe(true);
    expect(() => guard.refuseIfLow()).toThrow(expect.objectContaining({ code: "NO_SPACE", message: expect.stringMatching(/only 9999 bytes free in \/data, below the reserve of 10000/) }));
  });

  test("a follower below the reserve drops entries and snapshot chunks, and keeps heartbeats, empty appends and votes", async () => {
    const guard = await guardOver({ free: 0, measurements: 0 });
    expect(guard.admit(traffic).map((message) => message.type)).toEqual(["appendEntries", "heartbeat", "requestVote"]);
    expect(guard.admit(traffic)[0]).toMatchObject({ entries: [] });
  });

  test("bytes written count against the last measurement at once, and a megabyte of them measures again", async () => {
    const disk = { free: RESERVE_BYTES + 5000, measurements: 0 };
    const guard = await guardOver(disk);
    expect(disk.measurements).toBe(1);
    guard.noteWritten(5001);
    expect(guard.isLow).toBe(true);
    expect(disk.measurements).toBe(1);
    disk.free = 10 * 1024 * 1024;
    guard.noteWritten(1024 * 1024);
    expect(disk.measurements).toBe(2);
    await guard.refresh();
    expect(guard.isLow).toBe(false);
  });

  test("recovers by itself: the periodic measurement sees space return", async () => {
    const disk = { free: 0, measurements: 0 };
    const guard = await guardOver(disk, 5);
    expect(guard.isLow).toBe(true);
    disk.free = RESERVE_BYTES * 2;
    const deadline = Date.now() + 5000;
    while (guard.isLow && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(guard.isLow).toBe(false);
  });

  test("a negative reserve is refused", async () => {
    await expect(DiskSpaceGuard.start({ directory: "/data", minFreeBytes: -1, logger: pino({ level: "silent" }), metrics: new Metrics() })).rejects.toMatchObject({ code: "INVALID" });
  });

  test("measures the real filesystem with statfs by default", async () => {
    const guard = await DiskSpaceGuard.start({ directory: ".", minFreeBytes: 0, logger: pino({ level: "silent" }), metrics: new Metrics() });
    guards.push(guard);
    expect(guard.freeBytes).toBeGreaterThan(0);
  });
});

describe("isNoSpaceError", () => {
  test("fs ENOSPC, LevelDB's IO error text (also as a cause) and NO_SPACE are a full disk; other errors are not", () => {
    const fsError = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    const levelError = new Error("Database failed to open", { cause: new Error("IO error: /data/log/000005.log: No space left on device") });
    expect(isNoSpaceError(fsError)).toBe(true);
    expect(isNoSpaceError(levelError)).toBe(true);
    expect(isNoSpaceError(noSpaceError("/data", fsError, "could not write"))).toBe(true);
    expect(isNoSpaceError(new Error("IO error: permission denied"))).toBe(false);
    expect(isNoSpaceError("No space left on device")).toBe(false);
  });

  test("noSpaceError says what is full, where, what it cost, and the innermost cause", () => {
    const levelError = new Error("Database failed to open", { cause: new Error("IO error: x.log: No space left on device") });
    expect(noSpaceError("/data", levelError, "the node cannot start").message).toBe(
      "no space left on device in /data: the node cannot start (Database failed to open: IO error: x.log: No space left on device)",
    );
  });
});
