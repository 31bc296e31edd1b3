import { describe, expect, test } from "vitest";
import { ClientConnection } from "../../src/client/connection.js";
import { requests } from "../../src/client/requests.js";
import { valuesEqual } from "../../src/engine/equality.js";
import type { Value } from "../../src/engine/value.js";
import { isErrorCode, KvError } from "../../src/errors.js";
import { parseHostPort } from "../../src/server/peers.js";
import { commandByCode } from "../../src/server/protocol/commands.js";
import { encodeFrame, FRAME_HEADER_BYTES } from "../../src/server/protocol/frame.js";
import { STATUS } from "../../src/server/protocol/status.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster } from "./harness.js";
import { RawConnection, type RawOutcome } from "./raw-connection.js";
import { TestClient } from "./test-client.js";
import { expectAllPresent, WriteLoad } from "./workload.js";

const LEADER_WAIT_MS = 15_000;
const ANSWER_DEADLINE_MS = 5000;
const RANDOM_BLOBS = 20;
const MAX_BLOB_BYTES = 4096;

/** xorshift32: the random inputs are the same on every run, so a failure replays. */
function seededBytes(seed: number): (length: number) => Uint8Array {
  let state = seed >>> 0 || 1;
  return (length) => {
    const bytes = new Uint8Array(length);
    for (let index = 0; index < length; index++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      bytes[index] = state & 0xff;
    }
    return bytes;
  };
}

/** `depth` lists, one inside the other (only containers count toward the depth limit). */
function nested(depth: number): Value {
  let value: Value = 1n;
  for (let level = 0; level < depth; level++) value = [value];
  return value;
}

function firstUnusedCommandCode(): number {
  for (let code = 0x01; code < 0x80; code++) if (commandByCode(code) === undefined) return code;
  throw new Error("every client command code is taken");
}

/** Every answer the server gave before closing must be a failure with a known code. */
function expectOnlyTypedErrors(answers: readonly RawOutcome[]): void {
  for (const answer of answers) {
    expect(answer.kind).toBe("answer");
    if (answer.kind !== "answer") continue;
    expect([STATUS.ERROR, STATUS.INVALID]).toContain(answer.status);
    expect(isErrorCode(answer.error?.code)).toBe(true);
  }
}

async function rejection(promise: Promise<unknown>): Promise<KvError> {
  const error = await promise.then(
    () => null,
    (failure: unknown) => failure,
  );
  if (!(error instanceof KvError)) throw new Error(`expected a KvError, got ${String(error)}`);
  return error;
}

/**
 * A well-behaved client that keeps incrementing a counter and reading it back while bad input
 * arrives on other connections. Every answer must be exactly right.
 */
class Bystander {
  rounds = 0;
  readonly wrongAnswers: string[] = [];
  /** Any error the well-behaved client got: none is expected. */
  failure: unknown = null;
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly client: TestClient) {
    this.done = this.run().catch((error: unknown) => {
      this.failure = error;
    });
  }

  private async run(): Promise<void> {
    let expected = 0n;
    while (this.running) {
      const incremented = await this.client.call(requests.incr({ key: "bystander" }));
      expected += 1n;
      const read = await this.client.call(requests.get({ key: "bystander" }));
      if (incremented !== expected || read !== expected) this.wrongAnswers.push(`expected ${expected}, incr gave ${incremented}, get gave ${String(read)}`);
      this.rounds++;
    }
  }

  /** Proof that the node still serves: one more full round completes after this call. */
  async completesAnotherRound(): Promise<void> {
    const target = this.rounds + 1;
    const reached = await pollUntil(ANSWER_DEADLINE_MS, async () => (this.rounds >= target || this.failure !== null ? true : null));
    expect(this.failure).toBeNull();
    expect(reached, "the bystander client stalled").toBe(true);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
    this.client.close();
  }
}

const TYPED_VALUES = new Map<string, Value>([
  ["int", -(2n ** 63n)],
  ["text", "survives a restart"],
  ["bytes", new Uint8Array([0, 1, 254, 255])],
  ["nested", new Map<string, Value>([["list", [1n, 2.5, null, true]]])],
]);

/**
 * Writes filler keys (enough to cross `snapshotEntries`, whose snapshot is awaited), then typed
 * values that land in the log tail after it; stops the node with SIGTERM, starts it again and
 * reads everything back.
 */
async function expectDataSurvivesRestart(plan: { readonly snapshotEntries: number | null; readonly fillerWrites: number }): Promise<void> {
  const nodeOptions = plan.snapshotEntries === null ? [] : ["--snapshot-entries", String(plan.snapshotEntries)];
  const cluster = await startCluster({ size: 1, nodeOptions });
  const first = await cluster.waitForLeader(LEADER_WAIT_MS);
  const client = new TestClient([first.address]);
  const expected = new Map<string, Value>();
  for (let index = 0; index < plan.fillerWrites; index++) expected.set(`filler-${index}`, BigInt(index));
  expect(await Promise.all([...expected].map(([key, value]) => client.call(requests.set({ key, value }))))).not.toContain(false);
  if (plan.snapshotEntries !== null) {
    const threshold = plan.snapshotEntries;
    const snapshotted = await pollUntil(LEADER_WAIT_MS, async () => ((await cluster.status(first.id)).snapshotIndex >= threshold ? true : null));
    expect(snapshotted, `no snapshot at or past index ${threshold}`).toBe(true);
  }
  for (const [key, value] of TYPED_VALUES) {
    expect(await client.call(requests.set({ key, value }))).toBe(true);
    expected.set(key, value);
  }

  await cluster.kill(first.id, "SIGTERM");
  await cluster.restart(first.id);
  await cluster.waitForLeader(LEADER_WAIT_MS);
  for (const [key, value] of TYPED_VALUES) {
    const found = await client.call(requests.get({ key }));
    expect(found !== null && valuesEqual(found, value), `${key}: ${String(found)}`).toBe(true);
  }
  await expectAllPresent(client, expected);
  client.close();
}

describe("a single node", () => {
  test("bad input gets INVALID, a typed error or a closed connection while another client keeps getting correct answers", async () => {
    const cluster = await startCluster({ size: 1 });
    const { address } = await cluster.waitForLeader(LEADER_WAIT_MS);
    const bystander = new Bystander(new TestClient([address]));
    await bystander.completesAnotherRound();

    // Random bytes: whatever they declare, the server answers with a typed error or hangs up.
    const randomBytes = seededBytes(0x5eed);
    for (let blob = 0; blob < RANDOM_BLOBS; blob++) {
      const raw = await RawConnection.open(address);
      const [length = 1] = randomBytes(2);
      raw.write(randomBytes(1 + ((length * 16) % MAX_BLOB_BYTES)));
      raw.end();
      expectOnlyTypedErrors(await raw.closedWithin(ANSWER_DEADLINE_MS));
    }
    await bystander.completesAnotherRound();

    // A truncated frame never gets an answer; the connection ends when the client does.
    const set = requests.set({ key: "truncated", value: "never stored" });
    const truncated = await RawConnection.open(address);
    truncated.write(encodeFrame(set.code, 1, set.payload).subarray(0, FRAME_HEADER_BYTES + set.payload.length - 3));
    truncated.end();
    expect(await truncated.closedWithin(ANSWER_DEADLINE_MS)).toEqual([]);
    await bystander.completesAnotherRound();

    // A 2 GiB length prefix: refused by its request id before anything is allocated, then closed.
    const huge = await RawConnection.open(address);
    const header = new DataView(new ArrayBuffer(FRAME_HEADER_BYTES));
    header.setUint8(0, set.code);
    header.setUint32(1, 77);
    header.setUint32(5, 2 ** 31);
    huge.write(new Uint8Array(header.buffer));
    huge.write(new Uint8Array(1024));
    const hugeAnswer = await huge.next(ANSWER_DEADLINE_MS);
    expect(hugeAnswer).toMatchObject({ kind: "answer", status: STATUS.INVALID, requestId: 77 });
    expect(hugeAnswer.kind === "answer" ? hugeAnswer.error?.code : null).toBe("TOO_LARGE");
    expect(await huge.closedWithin(ANSWER_DEADLINE_MS)).toEqual([]);
    await bystander.completesAnotherRound();

    // An unknown command code: INVALID, then closed.
    const unknown = await RawConnection.open(address);
    unknown.write(encodeFrame(firstUnusedCommandCode(), 9, requests.ping().payload));
    const unknownAnswer = await unknown.next(ANSWER_DEADLINE_MS);
    expect(unknownAnswer).toMatchObject({ kind: "answer", status: STATUS.INVALID, requestId: 9 });
    expect(unknownAnswer.kind === "answer" ? unknownAnswer.error?.code : null).toBe("INVALID");
    expect(await unknown.closedWithin(ANSWER_DEADLINE_MS)).toEqual([]);
    await bystander.completesAnotherRound();

    // A 65-deep value and a 300-character key are typed errors; the connection stays usable.
    const { host, port } = parseHostPort(address);
    const connection = await ClientConnection.connect(host, port);
    const deep = requests.set({ key: "deep", value: nested(65) });
    expect((await rejection(connection.request(deep.code, deep.payload))).code).toBe("VALUE_INVALID");
    const longKey = requests.set({ key: "k".repeat(300), value: 1n });
    expect((await rejection(connection.request(longKey.code, longKey.payload))).code).toBe("KEY_INVALID");
    const ping = requests.ping();
    expect(ping.decodeResult(await connection.request(ping.code, ping.payload))).toBe("PONG");
    connection.close();

    await bystander.completesAnotherRound();
    await bystander.stop();
    expect(bystander.failure).toBeNull();
    expect(bystander.wrongAnswers).toEqual([]);
    expect(bystander.rounds).toBeGreaterThan(6);
  });

  test("64 concurrent writers share fsyncs: kv_wal_average_batch_size > 1", async () => {
    const cluster = await startCluster({ size: 1, fsync: "always" });
    const leader = await cluster.waitForLeader(LEADER_WAIT_MS);
    const client = new TestClient([leader.address]);
    const started = Date.now();
    const load = new WriteLoad(client, { writers: 64, writesPerWriter: 50, keyPrefix: "batch-", writeDeadlineMs: 20_000 });
    await load.finished();
    const elapsedMs = Date.now() - started;
    expect(load.unexpectedErrors).toEqual([]);
    expect(load.acknowledged.size).toBe(64 * 50);
    const metrics = await cluster.metrics(leader.id);
    const batchSize = metrics.get("kv_wal_average_batch_size") ?? 0;
    console.info(
      `figure: ${load.acknowledged.size} writes by 64 writers in ${elapsedMs} ms (${Math.round((load.acknowledged.size * 1000) / elapsedMs)}/s), ` +
        `kv_wal_average_batch_size ${batchSize.toFixed(2)}, fsyncs ${String(metrics.get("kv_wal_syncs_total"))}`,
    );
    expect(batchSize).toBeGreaterThan(1);
    client.close();
  });

  test("restart: written, SIGTERM, started again, the data is there", async () => {
    await expectDataSurvivesRestart({ snapshotEntries: null, fillerWrites: 0 });
  });

  test("restart after a snapshot: recovery is the newest snapshot plus the log tail", async () => {
    await expectDataSurvivesRestart({ snapshotEntries: 100, fillerWrites: 150 });
  });
});
