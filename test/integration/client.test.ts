import { rm } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import {
  Decimal,
  kv,
  KvBusyError,
  KvClient,
  KvConnectionError,
  KvFencedError,
  KvKeyError,
  KvNotFoundError,
  KvOverflowError,
  KvProtocolError,
  KvTimeoutError,
  KvTooLargeError,
  KvTypeError,
  KvUnavailableError,
  KvValueError,
  Lock,
  type JsValue,
} from "../../src/index.js";
import { pollUntil } from "../../src/util/processes.js";
import { startCluster, type Cluster } from "./harness.js";

const ELECTION_WAIT_MS = 15_000;
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

async function connectedCluster(options: Parameters<typeof KvClient.connect>[1] = {}): Promise<{ cluster: Cluster; client: KvClient }> {
  const cluster = await startCluster({ size: 3 });
  await cluster.waitForLeader(ELECTION_WAIT_MS, cluster.startedAt);
  const client = await KvClient.connect(`kv://${cluster.addresses.join(",")}`, options);
  return { cluster, client };
}

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

/** Every value type through set/get; returns how many keys it wrote in `exact`. */
async function checkValueTypes(exact: KvClient, bigints: KvClient): Promise<number> {
  const values: Record<string, JsValue> = {
    null: null,
    true: true,
    false: false,
    small: 42,
    negative: -7,
    float: 1.5,
    forcedFloat: kv.float(3),
    nan: Number.NaN,
    infinity: Number.POSITIVE_INFINITY,
    decimal: new Decimal("12345678901234567890.123456789"),
    string: "héllo ✓",
    bytes: new Uint8Array([0, 1, 254, 255]),
    nested: { list: [1, "two", [3n, { deep: null }]], map: new Map<string, JsValue>([["__proto__", 1]]) },
  };
  for (const [key, value] of Object.entries(values)) expect(await exact.set(key, value)).toBe(true);
  expect(await exact.get("null")).toBeNull();
  expect(await exact.get("true")).toBe(true);
  expect(await exact.get("small")).toBe(42);
  expect(await exact.get("float")).toBe(1.5);
  expect(await exact.get("forcedFloat")).toBe(3);
  expect(await exact.getWithMeta("forcedFloat").then((entry) => entry?.value)).toBe(3);
  expect(await exact.incrFloat("forcedFloat", 0.5)).toBe(3.5); // stored as Float, not Int
  expect(await exact.get("nan")).toBeNaN();
  expect(await exact.get("infinity")).toBe(Number.POSITIVE_INFINITY);
  expect(((await exact.get("decimal")) as Decimal).toString()).toBe("12345678901234567890.123456789");
  expect(await exact.get("string")).toBe("héllo ✓");
  expect(await exact.get("bytes")).toEqual(new Uint8Array([0, 1, 254, 255]));
  const nested = (await exact.get("nested")) as Record<string, JsValue>;
  expect(nested["list"]).toEqual([1, "two", [3, { deep: null }]]);
  const map = nested["map"] as Record<string, JsValue>;
  expect(Object.getPrototypeOf(map)).toBe(Object.prototype);
  expect(Object.keys(map)).toEqual(["__proto__"]);
  expect(map["__proto__"]).toBe(1);

  // i64 extremes are exact: bigint beyond 2^53 in "auto", always bigint in "bigint".
  expect(await exact.set("max", I64_MAX)).toBe(true);
  expect(await exact.set("min", I64_MIN)).toBe(true);
  expect(await exact.get("max")).toBe(I64_MAX);
  expect(await exact.get("min")).toBe(I64_MIN);
  expect(await bigints.get("small")).toBe(42n);
  expect(await bigints.incr("small", 0)).toBe(42n);
  expect(await exact.incr("max", 0n)).toBe(I64_MAX);
  expect(await exact.decr("min", -1)).toBe(I64_MIN + 1n);

  // Decimal arithmetic is exact.
  expect((await exact.incrDecimal("money", "0.1")).toString()).toBe("0.1");
  expect((await exact.incrDecimal("money", new Decimal("0.2"))).toString()).toBe("0.3");
  return Object.keys(values).length + 3; // and max, min, money
}

/** Metadata, versions, conditional writes, counters, append, cas, multi-key writes. */
async function checkWrites(client: KvClient): Promise<void> {
  // Metadata, versions, conditional writes.
  expect(await client.set("meta", "v", { metadata: { owner: "ops", level: 2 } })).toBe(true);
  const entry = await client.getWithMeta("meta");
  expect(entry).toMatchObject({ value: "v", metadata: { owner: "ops", level: 2 }, expiresAt: null });
  expect(entry?.version).toBeGreaterThan(0);
  expect(await client.setMetadata("meta", { owner: "dev" })).toBe(true);
  expect(await client.getMetadata("meta")).toEqual({ owner: "dev" });
  expect(await client.getMetadata("missing")).toBeNull();
  expect(await client.getWithMeta("missing")).toBeNull();
  expect(await client.set("meta", "w", { ifVersion: (entry?.version ?? 0) })).toBe(false);
  const current = await client.getWithMeta("meta");
  expect(await client.set("meta", "w", { ifVersion: current?.version ?? -1 })).toBe(true);
  expect(await client.set("meta", "x", { nx: true })).toBe(false);
  expect(await client.set("fresh", "x", { xx: true })).toBe(false);
  expect(await client.setnx("fresh", "x")).toBe(true);
  expect(await client.setnx("fresh", "y")).toBe(false);

  // Counters, append, cas.
  expect(await client.incr("counter")).toBe(1);
  expect(await client.incr("counter", 10)).toBe(11);
  expect(await client.decr("counter", 2)).toBe(9);
  expect(await client.append("text", "ab")).toBe(2);
  expect(await client.append("text", "cd")).toBe(4);
  expect(await client.get("text")).toBe("abcd");
  expect(await client.append("list", 1)).toBe(1);
  expect(await client.append("list", "two")).toBe(2);
  expect(await client.get("list")).toEqual([1, "two"]);
  expect(await client.cas("state", null, "PENDING")).toBe(true);
  expect(await client.cas("state", "STARTED", "DONE")).toBe(false);
  expect(await client.cas("state", "PENDING", "STARTED")).toBe(true);
  expect(await client.get("state")).toBe("STARTED");

  // Multi-key operations.
  expect(await client.mset({ "m.a": 1, "m.b": [true] })).toBe(true);
  expect(await client.mset([["m.c", "c"]])).toBe(true);
  expect(await client.mset(new Map<string, JsValue>([["m.d", null]]))).toBe(true);
  expect(await client.mget(["m.a", "m.b", "m.zzz"])).toEqual({ "m.a": 1, "m.b": [true] });
  const strict = await failure(client.mget(["m.a", "m.zzz"], { strict: true }));
  expect(strict).toBeInstanceOf(KvNotFoundError);
  expect((strict as KvNotFoundError).details.keys).toEqual(["m.zzz"]);
  expect(await client.exists("m.a")).toBe(true);
  expect(await client.delete("m.a", "m.nothing")).toBe(1);
  expect(await client.exists("m.a")).toBe(false);
  expect(await client.mdelete(["m.b", "m.c"])).toBe(2);
}

/** Patterns, scan, counts, sizes (confined to the namespace) and TTL bookkeeping. */
async function checkPatternsAndTtl(client: KvClient, exact: KvClient, exactKeyCount: number): Promise<void> {
  // Patterns, scan, counts, sizes; confined to the namespace.
  await client.mset({ "app.db.host": "h", "app.db.port": 5432, "app.name": "n" });
  expect(await client.keys("app.*")).toEqual(["app.db.host", "app.db.port", "app.name"]);
  expect(await client.keys("app.*", { separator: "." })).toEqual(["app.name"]);
  expect(await client.keys("app.**", { separator: "." })).toEqual(["app.db.host", "app.db.port", "app.name"]);
  expect(await client.count("app.*")).toBe(3);
  expect(await client.getPattern("app.db.*")).toEqual({ "app.db.host": "h", "app.db.port": 5432 });
  const scanned: string[] = [];
  for await (const key of client.scanIterator({ match: "app.*", count: 1 })) scanned.push(key);
  expect(scanned.sort()).toEqual(["app.db.host", "app.db.port", "app.name"]);
  const page = await client.scan({ match: "app.*", count: 100 });
  expect(page.keys.sort()).toEqual(["app.db.host", "app.db.port", "app.name"]);
  const sizes = (await client.storageSize("app.name", "app.db.host")) as Record<string, number>;
  expect(Object.keys(sizes).sort()).toEqual(["app.db.host", "app.name"]);
  expect(sizes["app.name"]).toBeGreaterThan(0);
  expect(((await client.storageSize()) as { total: number }).total).toBeGreaterThan(0);
  expect(await exact.keys("app.*")).toEqual([]);
  expect(await exact.count()).toBe(exactKeyCount);
  expect(await client.deletePattern("app.db.*")).toBe(2);
  expect(await client.keys("app.*")).toEqual(["app.name"]);

  // TTL bookkeeping.
  expect(await client.ttl("app.name")).toBeNull();
  expect(await client.ttl("nothing")).toBe(-1);
  expect(await client.expire("app.name", 100)).toBe(true);
  const remaining = await client.ttl("app.name");
  expect(remaining).toBeGreaterThan(90);
  expect(remaining).toBeLessThanOrEqual(100);
  expect(await client.persist("app.name")).toBe(true);
  expect(await client.ttl("app.name")).toBeNull();
  expect(await client.deleteExpired()).toBeGreaterThanOrEqual(0);
}

describe("KvClient against a 3-node cluster", () => {
  test("every operation with every value type, namespaces and serializable reads", async () => {
    const { cluster, client } = await connectedCluster();
    const exact = client.namespace("exact");
    const bigints = await KvClient.connect(`kv://${cluster.addresses.join(",")}/exact`, { ints: "bigint" });

    const exactKeyCount = await checkValueTypes(exact, bigints);
    await checkWrites(client);
    await checkPatternsAndTtl(client, exact, exactKeyCount);

    // Serializable reads may be served by any member; after the write is everywhere they agree.
    await cluster.waitForQuiescence(15_000);
    for (let round = 0; round < 3; round++) expect(await client.get("state", { consistency: "serializable" })).toBe("STARTED");

    // A call aborted by its signal rejects with the signal's reason; a bad deadline is refused.
    const aborted = new AbortController();
    aborted.abort(new Error("caller gave up"));
    expect(((await failure(client.get("state", { signal: aborted.signal }))) as Error).message).toBe("caller gave up");
    expect(await failure(client.get("state", { timeoutMs: Number.NaN }))).toBeInstanceOf(KvValueError);

    // Node and cluster operations.
    expect(await client.ping()).toBe("PONG");
    const info = await client.info();
    expect(info["role"]).toBe("leader");
    const members = await client.clusterStatus();
    expect(members.map((member) => member.id).sort()).toEqual(["n1", "n2", "n3"]);
    expect(members.every((member) => member.reachable && member.voter)).toBe(true);
    expect(members.filter((member) => member.role === "leader")).toHaveLength(1);
    expect((await client.snapshotSave()).index).toBeGreaterThan(0);

    await bigints.close();
    await client.close();
  });

  test("short TTLs expire, locks fence, Lock disposes, withLock releases on throw", async () => {
    const { client } = await connectedCluster();

    expect(await client.set("session", "s", { ttl: 0.3 })).toBe(true);
    expect(await client.get("session")).toBe("s");
    const expired = await pollUntil(10_000, async () => ((await client.get("session")) === null ? true : null));
    expect(expired).toBe(true);
    expect(await client.exists("session")).toBe(false);

    const first = await client.lock("job", "worker-1", 30);
    expect(first.acquired).toBe(true);
    expect(await client.lock("job", "worker-2", 30)).toEqual({ acquired: false, token: null });
    expect(await client.extend("job", "worker-1", 30)).toBe(true);
    expect(await client.extend("job", "worker-2", 30)).toBe(false);
    expect(await client.set("result", "r1", { fence: { lock: "job", token: first.token ?? -1n } })).toBe(true);
    expect(await client.unlock("job", "worker-2")).toBe(false);
    expect(await client.unlock("job", "worker-1")).toBe(true);
    const second = await client.lock("job", "worker-2", 30);
    expect(second.acquired).toBe(true);
    expect(second.token).toBeGreaterThan(first.token ?? 0n);
    expect(await failure(client.set("result", "stale", { fence: { lock: "job", token: first.token ?? -1n } }))).toBeInstanceOf(KvFencedError);
    expect(await client.get("result")).toBe("r1");

    // Held by worker-2: without waiting, BUSY at once; waiting, acquired once worker-2 lets go.
    expect(await failure(Lock.acquire(client, "job", "worker-3", { ttl: 30 }))).toBeInstanceOf(KvBusyError);
    const releaseSoon = new Promise((resolve) => setTimeout(resolve, 200)).then(() => client.unlock("job", "worker-2"));
    const waited = await Lock.acquire(client, "job", "worker-3", { ttl: 30, wait: { timeoutMs: 10_000 } });
    expect(await releaseSoon).toBe(true);
    expect(waited.token).toBeGreaterThan(second.token ?? 0n);
    expect(await waited.release()).toBe(true);
    expect(await waited.release()).toBe(false);

    {
      await using held = await Lock.acquire(client, "scoped", "owner", { ttl: 30 });
      expect(await client.lock("scoped", "other", 30)).toEqual({ acquired: false, token: null });
      expect(held.token).toBeGreaterThan(0n);
    }
    expect((await client.lock("scoped", "other", 30)).acquired).toBe(true);

    const thrown = await failure(
      client.withLock("guarded", "owner", 30, async (lock) => {
        expect(await client.set("guarded-result", 1, { fence: { lock: lock.name, token: lock.token } })).toBe(true);
        throw new Error("job failed");
      }),
    );
    expect((thrown as Error).message).toBe("job failed");
    expect((await client.lock("guarded", "someone-else", 30)).acquired).toBe(true);

    // autoExtend keeps a short lock alive well past its TTL while held.
    const extended = await Lock.acquire(client, "short", "owner", { ttl: 1, autoExtend: true });
    const deadline = Date.now() + 2500;
    while (Date.now() < deadline) {
      expect((await client.lock("short", "other", 30)).acquired).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await extended.release()).toBe(true);
    await client.close();
  });

  test("1,000 sequential incrs through two kill -9s of the leader end at exactly 1,000", async () => {
    const { cluster, client } = await connectedCluster();
    const target = 1000;
    let done = 0;
    const incrs = (async () => {
      for (let index = 0; index < target; index++) {
        await client.incr("failover-counter");
        done += 1;
      }
    })();
    for (let kill = 0; kill < 2; kill++) {
      const progress = done + 150;
      expect(await pollUntil(30_000, async () => (done >= progress ? true : null))).toBe(true);
      const leader = await cluster.waitForLeader(ELECTION_WAIT_MS);
      await cluster.kill(leader.id, "SIGKILL");
      await cluster.waitForLeader(ELECTION_WAIT_MS);
      await cluster.restart(leader.id);
    }
    await incrs;
    expect(await client.get("failover-counter")).toBe(target);
    await client.close();
  });

  test("20 pipelined writers through a kill -9 of the leader: every incr applied exactly once", async () => {
    const { cluster, client } = await connectedCluster();
    const writers = 20;
    const incrsPerWriter = 50;
    let done = 0;
    const work = Array.from({ length: writers }, async () => {
      for (let index = 0; index < incrsPerWriter; index++) {
        await client.incr("shared-counter");
        done += 1;
      }
    });
    expect(await pollUntil(30_000, async () => (done >= 300 ? true : null))).toBe(true);
    const leader = await cluster.waitForLeader(ELECTION_WAIT_MS);
    await cluster.kill(leader.id, "SIGKILL");
    await Promise.all(work);
    expect(await client.get("shared-counter")).toBe(writers * incrsPerWriter);
    await client.close();
  });

  test("a session the cluster no longer knows is registered again and the write goes through", async () => {
    const { cluster, client } = await connectedCluster();
    expect(await client.incr("before")).toBe(1);
    // A cluster rebuilt from empty disks on the same addresses has forgotten every session.
    for (const node of cluster.nodes) await cluster.kill(node.id, "SIGKILL");
    await Promise.all(cluster.nodes.map((node) => rm(node.dataDirectory, { recursive: true, force: true })));
    for (const node of cluster.nodes) cluster.start(node.id);
    await cluster.waitForLeader(ELECTION_WAIT_MS);
    expect(await client.incr("after")).toBe(1);
    expect(await client.incr("after")).toBe(2);
    expect(await client.get("before")).toBeNull();
    await client.close();
  });

  test("each error code reaches the caller as its class", async () => {
    const { cluster, client } = await connectedCluster();
    const expectClass = async (promise: Promise<unknown>, errorClass: abstract new (...args: never[]) => Error, code: string): Promise<void> => {
      const error = await failure(promise);
      expect(error).toBeInstanceOf(errorClass);
      expect((error as { code: string }).code).toBe(code);
    };
    await expectClass(client.get("__reserved"), KvKeyError, "KEY_INVALID");
    await expectClass(client.set("k", undefined as unknown as JsValue), KvValueError, "VALUE_INVALID");
    await expectClass(client.set("k", I64_MAX + 1n), KvValueError, "VALUE_INVALID");
    await client.set("text", "abc");
    await expectClass(client.incr("text"), KvTypeError, "WRONG_TYPE");
    await client.set("flag", true);
    await expectClass(client.incr("flag"), KvTypeError, "WRONG_TYPE");
    await client.set("max", I64_MAX);
    await expectClass(client.incr("max"), KvOverflowError, "OVERFLOW");
    await expectClass(client.mget(["absent"], { strict: true }), KvNotFoundError, "NOT_FOUND");
    await expectClass(client.set("big", "x".repeat(9 * 1024 * 1024)), KvTooLargeError, "TOO_LARGE");
    const tooMany = Array.from({ length: 100_001 }, (_, index) => `k${index}`);
    await expectClass(client.mget(tooMany), KvTooLargeError, "TOO_LARGE");
    await expectClass(client.scan({ cursor: "not-a-cursor" }), KvProtocolError, "INVALID");
    await client.lock("fence", "a", 30);
    await expectClass(client.set("fenced", 1, { fence: { lock: "fence", token: 999_999n } }), KvFencedError, "FENCED");

    const narrow = await KvClient.connect(cluster.addresses.join(","), { maxInFlight: 1 });
    const first = narrow.get("text");
    await expectClass(narrow.get("text"), KvBusyError, "BUSY");
    expect(await first).toBe("abc");
    await narrow.close();

    await expectClass(KvClient.connect("127.0.0.1:1", { timeoutMs: 500 }), KvConnectionError, "CONNECTION");

    // Every node stopped: the write is sent and never answered, so its outcome is unknown.
    for (const id of cluster.liveIds()) await cluster.kill(id, "SIGSTOP");
    await expectClass(client.set("stopped", 1, { timeoutMs: 600 }), KvTimeoutError, "TIMEOUT");
    for (const node of cluster.nodes) await cluster.kill(node.id, "SIGCONT");
    await cluster.waitForLeader(ELECTION_WAIT_MS);

    // Two of three gone: no quorum, the survivor refuses until the deadline.
    const leader = await cluster.waitForLeader(ELECTION_WAIT_MS);
    const others = cluster.nodes.filter((node) => node.id !== leader.id);
    for (const node of others) await cluster.kill(node.id, "SIGKILL");
    const steppedDown = await pollUntil(15_000, async () => ((await cluster.status(leader.id)).role === "leader" ? null : true));
    expect(steppedDown).toBe(true);
    await expectClass(client.set("no-quorum", 1, { timeoutMs: 3000 }), KvUnavailableError, "UNAVAILABLE");
    await client.close();
  });
});
