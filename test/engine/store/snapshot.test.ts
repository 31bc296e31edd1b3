import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvError } from "../../../src/errors.js";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { decodeCommand, encodeCommand, Engine, type Command, type Query } from "../../../src/engine/index.js";
import { command as commandArbitrary } from "./arbitraries.js";
import { collect, concatenated, Harness, replay, START_TIME_MS, type CommandInput } from "./harness.js";
import { comparable } from "./model.js";

const SHARD_COUNTS = [1, 16, 256] as const;
const BULK_KEYS = 1000;

interface LoggedCommand {
  readonly command: Command;
  readonly index: number;
  readonly now: number;
}

/** A replayable log: stamped writes from two sessions mixed with plain ones, time moving on. */
function buildLog(inputs: readonly CommandInput[], advances: readonly number[]): LoggedCommand[] {
  const log: LoggedCommand[] = [];
  let now = START_TIME_MS;
  const append = (command: Command): void => {
    log.push({ command: decodeCommand(encodeCommand(command)), index: log.length + 1, now });
  };
  append({ type: "registerSession", namespace: "" });
  append({ type: "registerSession", namespace: "t" });
  // Enough keys that buckets hold several, written out of key order.
  append({ type: "mset", namespace: "", entries: Array.from({ length: BULK_KEYS }, (_, index) => [`bulk${BULK_KEYS - index}`, BigInt(index)] as const) });
  const sequences = [0, 0];
  inputs.forEach((input, position) => {
    now += advances[position % advances.length] ?? 0;
    const client = position % 3;
    const command = { namespace: "", ...input } as Command;
    if (client === 2 || command.type === "registerSession") return append(command);
    const sequence = ++(sequences[client] as number);
    append({ ...command, session: { clientId: BigInt(client + 1), sequence, acknowledged: Math.max(0, sequence - 3) } });
  });
  return log;
}

function engineAfter(log: readonly LoggedCommand[], shardCount: number): Engine {
  const engine = new Engine({ shardCount });
  for (const { command, index, now } of log) engine.apply(command, { index, term: 2, now });
  return engine;
}

async function snapshotBytes(engine: Engine): Promise<Buffer> {
  return concatenated(await collect(engine.snapshot()));
}

/** Everything a client can see: every key of both namespaces with its metadata. */
function visibleState(engine: Engine): unknown {
  return ["", "t"].map((namespace) => {
    const keys = engine.read({ type: "keys", namespace, pattern: "**" }, engine.now);
    const names = (keys.ok ? keys.value : []) as string[];
    return names.map((key) => comparable(engine.read({ type: "getWithMeta", namespace, key } as Query, engine.now)));
  });
}

async function restoreCode(engine: Engine, chunks: readonly Uint8Array[]): Promise<string> {
  try {
    await engine.restore(replay(chunks));
    return "restored";
  } catch (error) {
    if (error instanceof KvError) return error.code;
    throw error;
  }
}

const logArbitrary = fc.tuple(fc.array(commandArbitrary, { minLength: 1, maxLength: 60 }), fc.array(fc.constantFrom(0, 250, 500, 1000), { minLength: 1, maxLength: 5 }));

describe("snapshots", () => {
  it("are byte-identical across replicas and shard counts, and restore -> snapshot is identical", async () => {
    await fc.assert(
      fc.asyncProperty(logArbitrary, async ([inputs, advances]) => {
        const log = buildLog(inputs as CommandInput[], advances);
        const images = await Promise.all(SHARD_COUNTS.map((shardCount) => snapshotBytes(engineAfter(log, shardCount))));
        for (const image of images) expect(image.equals(images[0] as Buffer)).toBe(true);
        const original = engineAfter(log, 16);
        const restored = new Engine({ shardCount: 4 });
        await restored.restore(replay(await collect(original.snapshot())));
        expect((await snapshotBytes(restored)).equals(images[0] as Buffer)).toBe(true);
        expect(visibleState(restored)).toEqual(visibleState(original));
        expect([restored.appliedIndex, restored.appliedTerm, restored.now]).toEqual([original.appliedIndex, original.appliedTerm, original.now]);
      }),
      { numRuns: 25 },
    );
  });

  it("a replica restored mid-log and then applying the rest ends identical to one that applied it all", async () => {
    await fc.assert(
      fc.asyncProperty(logArbitrary, fc.double({ min: 0, max: 1, noNaN: true }), async ([inputs, advances], splitFraction) => {
        const log = buildLog(inputs as CommandInput[], advances);
        const split = Math.floor(splitFraction * log.length);
        const whole = new Engine({ shardCount: 16 });
        const wholeResults = log.map(({ command, index, now }) => whole.apply(command, { index, term: 2, now }));
        const replica = new Engine({ shardCount: 2 });
        await replica.restore(replay(await collect(engineAfter(log.slice(0, split), 256).snapshot())));
        const replicaResults = log.slice(split).map(({ command, index, now }) => replica.apply(command, { index, term: 2, now }));
        expect(replicaResults.map(comparable)).toEqual(wholeResults.slice(split).map(comparable));
        expect((await snapshotBytes(replica)).equals(await snapshotBytes(whole))).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it("freeze the state when snapshot() is called while the engine keeps applying", async () => {
    const h = new Harness({ shardCount: 8 });
    for (let index = 0; index < 5000; index++) h.set(`key${index}`, BigInt(index));
    h.write({ type: "lock", name: "L", owner: "a", ttlMs: 60_000 });
    const clientId = h.write({ type: "registerSession" }) as bigint;
    h.write({ type: "incr", key: "c", delta: 1n, session: { clientId, sequence: 1, acknowledged: 0 } });
    const before = await snapshotBytes(h.engine);

    const stream = h.engine.snapshot()[Symbol.asyncIterator]();
    const chunks: Uint8Array[] = [];
    let write = 0;
    for (let next = await stream.next(); next.done !== true; next = await stream.next()) {
      chunks.push(next.value);
      // Change every kind of state between chunks: keys in every shard, locks, sessions.
      for (let burst = 0; burst < 200; burst++, write++) h.set(`key${write % 6000}`, "changed", { ttlMs: 1 });
      h.write({ type: "unlock", name: "L", owner: "a" });
      h.write({ type: "incr", key: "c", delta: 1n, session: { clientId, sequence: 2 + write, acknowledged: 1 + write } });
      h.write({ type: "registerSession" });
    }
    expect(chunks.length).toBeGreaterThan(3);
    expect(concatenated(chunks).equals(before)).toBe(true);
  });

  it("recorded session results round-trip exactly, so a retry after restore gets the same answer", async () => {
    const h = new Harness();
    const clientId = h.write({ type: "registerSession" }) as bigint;
    const stamped = (sequence: number, input: CommandInput): CommandInput => ({ ...input, session: { clientId, sequence, acknowledged: 0 } }) as CommandInput;
    const commands = [
      stamped(1, { type: "lock", name: "L", owner: "a", ttlMs: 60_000 }),
      stamped(2, { type: "incrDecimal", key: "d", delta: new ExactDecimal("0.1") }),
      stamped(3, { type: "append", key: "d", value: "x" }),
      stamped(4, { type: "delete", keys: ["nothing"] }),
      stamped(5, { type: "lock", name: "L", owner: "b", ttlMs: 60_000 }),
    ];
    const first = commands.map((command) => h.apply(command));
    expect(first[2]).toMatchObject({ ok: false, error: { code: "WRONG_TYPE" } });
    const restored = new Harness();
    restored.index = h.index;
    restored.now = h.now;
    await restored.engine.restore(replay(await collect(h.engine.snapshot())));
    const replayed = commands.map((command) => restored.apply(command));
    expect(replayed.map(comparable)).toEqual(first.map(comparable));
    expect(replayed[0]).toEqual({ ok: true, value: { acquired: true, token: 2n } });
    expect(restored.get("d")).toEqual(h.get("d"));
  });

  it("detects a flipped byte in any chunk, truncation and reordering as CORRUPT and keeps the old state", async () => {
    const source = new Harness({ shardCount: 4 });
    for (let index = 0; index < 3000; index++) source.set(`k${index}`, `value ${index}`);
    source.write({ type: "lock", name: "L", owner: "a", ttlMs: 1000 });
    source.write({ type: "registerSession" });
    const chunks = await collect(source.engine.snapshot());
    expect(chunks.length).toBeGreaterThanOrEqual(5);

    const target = new Harness();
    target.set("kept", 1n);
    for (const [chunkIndex, chunk] of chunks.entries()) {
      for (const position of [0, 3, 4, chunk.length >> 1, chunk.length - 1]) {
        const damaged = chunks.map((original) => original.slice());
        const flipped = damaged[chunkIndex] as Uint8Array;
        flipped[position] = (flipped[position] as number) ^ 0x20;
        await expectCorrupt(target, damaged);
      }
    }
    await expectCorrupt(target, chunks.slice(0, -1));
    await expectCorrupt(target, [chunks[0] as Uint8Array, chunks[2] as Uint8Array, chunks[1] as Uint8Array, ...chunks.slice(3)]);
    await expectCorrupt(target, [...chunks, chunks[0] as Uint8Array]);
    await expectCorrupt(target, chunks.slice(1));
    expect(target.get("kept")).toBe(1n);
    expect(await restoreCode(target.engine, chunks)).toBe("restored");
    expect(target.get("k7")).toBe("value 7");
  });

  it("a snapshot and a restore of 1M keys finish and yield to the event loop often", async () => {
    const engine = new Engine();
    const keysPerCommand = 10_000;
    for (let batch = 0; batch < 100; batch++) {
      const entries = Array.from({ length: keysPerCommand }, (_, offset) => [`key:${batch * keysPerCommand + offset}`, BigInt(offset)] as const);
      engine.apply({ type: "mset", namespace: "", entries }, { index: batch + 1, term: 1, now: START_TIME_MS });
    }
    const snapshotTurns = await countTurns(async () => collect(engine.snapshot()));
    const chunks = snapshotTurns.result;
    const restored = new Engine({ shardCount: 64 });
    const restoreTurns = await countTurns(async () => restored.restore(replay(chunks)));
    expect(restored.info().keys).toBe(1_000_000);
    expect(restored.read({ type: "get", namespace: "", key: "key:999999" }, START_TIME_MS)).toEqual({ ok: true, value: 9999n });
    // Loose bounds on a shared, loaded machine: many turns, and no single step near a second of
    // CPU (wall-clock gaps would also count time the process was descheduled).
    for (const turns of [snapshotTurns, restoreTurns]) {
      expect(turns.count).toBeGreaterThan(100);
      expect(turns.longestGapCpuMs).toBeLessThan(1000);
    }
  }, 120_000);
});

async function expectCorrupt(target: Harness, chunks: readonly Uint8Array[]): Promise<void> {
  expect(await restoreCode(target.engine, chunks)).toBe("CORRUPT");
}

function cpuMilliseconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Runs `body` while counting event-loop turns and the most CPU time spent between two of them. */
async function countTurns<T>(body: () => Promise<T>): Promise<{ result: T; count: number; longestGapCpuMs: number }> {
  let count = 0;
  let longestGapCpuMs = 0;
  let last = cpuMilliseconds();
  let running = true;
  const tick = (): void => {
    const now = cpuMilliseconds();
    longestGapCpuMs = Math.max(longestGapCpuMs, now - last);
    last = now;
    count++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const result = await body();
  running = false;
  return { result, count, longestGapCpuMs };
}
