import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { requests, type OperationRequest } from "../../../src/client/requests.js";
import { encode } from "../../../src/engine/codec.js";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { MAX_PURGE_PER_COMMAND, type Command } from "../../../src/engine/commands.js";
import type { Query } from "../../../src/engine/queries.js";
import { validateValue } from "../../../src/engine/validation.js";
import { Decimal, type Value } from "../../../src/engine/value.js";
import { KvError } from "../../../src/errors.js";
import { COMMANDS, isPeerCommand } from "../../../src/server/protocol/commands.js";
import type { Operation } from "../../../src/server/protocol/operations.js";
import { representation, valueArbitrary, INT64_MAX, INT64_MIN } from "../../engine/values/arbitraries.js";
import { errorCodeOf, keyArbitrary, namespaceArbitrary, parse, parseRequest, sessionArbitrary, ttlSecondsArbitrary } from "./helpers.js";

const session = { clientId: 42n, sequence: 7, acknowledged: 5 };
const metadata = new Map<string, Value>([["owner", "billing"], ["tries", 3n]]);

/** A command or query whose namespace defaults to "" (distributed over the union). */
type WithDefaultNamespace<T> = T extends unknown ? Omit<T, "namespace"> & { readonly namespace?: string } : never;

function write(command: WithDefaultNamespace<Command>): Operation {
  return { kind: "write", command: { namespace: "", ...command } as Command };
}

function read(query: WithDefaultNamespace<Query>, consistency: "linearizable" | "serializable" = "linearizable"): Operation {
  return { kind: "read", query: { namespace: "", ...query } as Query, consistency };
}

/** Builder output and the operation the server must make of it; every client command appears. */
const CASES: readonly (readonly [string, OperationRequest<unknown>, Operation])[] = [
  ["get", requests.get({ key: "user:1" }), read({ type: "get", key: "user:1" })],
  ["get", requests.get({ key: "k", namespace: "tenant", consistency: "serializable" }), read({ type: "get", key: "k", namespace: "tenant" }, "serializable")],
  ["getWithMeta", requests.getWithMeta({ key: "k" }), read({ type: "getWithMeta", key: "k" })],
  ["getMetadata", requests.getMetadata({ key: "k" }), read({ type: "getMetadata", key: "k" })],
  ["exists", requests.exists({ key: "k" }), read({ type: "exists", key: "k" })],
  ["ttl", requests.ttl({ key: "k" }), read({ type: "ttl", key: "k" })],
  ["set", requests.set({ key: "k", value: "v" }), write({ type: "set", key: "k", value: "v" })],
  [
    "set",
    requests.set({ key: "k", value: 5n, ttl: 1.5, nx: true, ifVersion: 3, metadata, fence: { lock: "job", token: 9n }, session, namespace: "t" }),
    write({ type: "set", key: "k", value: 5n, ttlMs: 1500, nx: true, ifVersion: 3, metadata, fence: { lock: "job", token: 9n }, session, namespace: "t" }),
  ],
  ["set", requests.set({ key: "k", value: null, xx: true, ifVersion: 0 }), write({ type: "set", key: "k", value: null, xx: true, ifVersion: 0 })],
  ["setnx", requests.setnx({ key: "k", value: [1n, "a"] }), write({ type: "set", key: "k", value: [1n, "a"], nx: true })],
  ["setnx", requests.setnx({ key: "k", value: 1.5, ttl: 0.0001 }), write({ type: "set", key: "k", value: 1.5, nx: true, ttlMs: 1 })],
  ["setMetadata", requests.setMetadata({ key: "k", metadata }), write({ type: "setMetadata", key: "k", metadata })],
  ["delete", requests.delete({ keys: ["a", "b"] }), write({ type: "delete", keys: ["a", "b"] })],
  ["mdelete", requests.mdelete({ keys: ["a"], session }), write({ type: "mdelete", keys: ["a"], session })],
  ["incr", requests.incr({ key: "n" }), write({ type: "incr", key: "n", delta: 1n })],
  ["incr", requests.incr({ key: "n", delta: INT64_MIN }), write({ type: "incr", key: "n", delta: INT64_MIN })],
  ["decr", requests.decr({ key: "n" }), write({ type: "incr", key: "n", delta: -1n })],
  ["decr", requests.decr({ key: "n", delta: INT64_MAX }), write({ type: "incr", key: "n", delta: -INT64_MAX })],
  ["incrFloat", requests.incrFloat({ key: "f", delta: 0.25 }), write({ type: "incrFloat", key: "f", delta: 0.25 })],
  ["incrDecimal", requests.incrDecimal({ key: "d", delta: new Decimal("1.25") }), write({ type: "incrDecimal", key: "d", delta: new ExactDecimal("1.25") })],
  ["append", requests.append({ key: "s", value: "tail" }), write({ type: "append", key: "s", value: "tail" })],
  [
    "cas",
    requests.cas({ key: "state", expected: "PENDING", newValue: "STARTED", ttl: 2 }),
    write({ type: "cas", key: "state", expected: "PENDING", newValue: "STARTED", ttlMs: 2000 }),
  ],
  ["cas", requests.cas({ key: "state", expected: null, newValue: 1n }), write({ type: "cas", key: "state", expected: null, newValue: 1n })],
  ["mget", requests.mget({ keys: ["a", "b"] }), read({ type: "mget", keys: ["a", "b"] })],
  ["mget", requests.mget({ keys: ["a"], strict: true }), read({ type: "mget", keys: ["a"], strict: true })],
  [
    "mset",
    requests.mset({ entries: [["a", 1n], ["b", "x"]], ttl: 60 }),
    write({ type: "mset", entries: [["a", 1n], ["b", "x"]], ttlMs: 60_000 }),
  ],
  ["keys", requests.keys(), read({ type: "keys", pattern: "*" })],
  ["keys", requests.keys({ pattern: "app.*", separator: "." }), read({ type: "keys", pattern: "app.*", separator: "." })],
  ["count", requests.count({ pattern: "user:*" }), read({ type: "count", pattern: "user:*" })],
  ["getPattern", requests.getPattern(), read({ type: "getPattern", pattern: "*" })],
  ["deletePattern", requests.deletePattern({ pattern: "tmp:*" }), write({ type: "deletePattern", pattern: "tmp:*" })],
  ["scan", requests.scan(), read({ type: "scan" })],
  [
    "scan",
    requests.scan({ cursor: "12", match: "a.**", count: 50, separator: "." }),
    read({ type: "scan", cursor: "12", match: "a.**", count: 50, separator: "." }),
  ],
  ["expire", requests.expire({ key: "k", ttl: 10 }), write({ type: "expire", key: "k", ttlMs: 10_000 })],
  ["expire", requests.expire({ key: "k", ttl: 0 }), write({ type: "expire", key: "k", ttlMs: 0 })],
  ["expire", requests.expire({ key: "k", ttl: -3.5 }), write({ type: "expire", key: "k", ttlMs: 0 })],
  ["persist", requests.persist({ key: "k" }), write({ type: "persist", key: "k" })],
  ["storageSize", requests.storageSize(), read({ type: "storageSize" })],
  ["storageSize", requests.storageSize({ keys: ["a", "b"] }), read({ type: "storageSize", keys: ["a", "b"] })],
  ["deleteExpired", requests.deleteExpired(), write({ type: "purgeExpired", limit: MAX_PURGE_PER_COMMAND })],
  ["lock", requests.lock({ name: "job", owner: "worker-1", ttl: 30 }), write({ type: "lock", name: "job", owner: "worker-1", ttlMs: 30_000 })],
  ["extend", requests.extend({ name: "job", owner: "worker-1", ttl: 0.5 }), write({ type: "extend", name: "job", owner: "worker-1", ttlMs: 500 })],
  ["unlock", requests.unlock({ name: "job", owner: "worker-1" }), write({ type: "unlock", name: "job", owner: "worker-1" })],
  ["registerSession", requests.registerSession(), write({ type: "registerSession" })],
  ["ping", requests.ping(), { kind: "ping" }],
  ["info", requests.info(), { kind: "info" }],
  ["clusterStatus", requests.clusterStatus(), { kind: "clusterStatus" }],
  ["memberAdd", requests.memberAdd({ id: "n4", address: "127.0.0.1:6384" }), { kind: "memberAdd", id: "n4", address: "127.0.0.1:6384", force: false }],
  ["memberAdd", requests.memberAdd({ id: "n4", address: "127.0.0.1:6384", force: true }), { kind: "memberAdd", id: "n4", address: "127.0.0.1:6384", force: true }],
  ["memberRemove", requests.memberRemove({ id: "n4" }), { kind: "memberRemove", id: "n4", force: false }],
  ["memberRemove", requests.memberRemove({ id: "n4", force: true }), { kind: "memberRemove", id: "n4", force: true }],
  ["memberPromote", requests.memberPromote({ id: "n4" }), { kind: "memberPromote", id: "n4", force: false }],
  ["memberPromote", requests.memberPromote({ id: "n4", force: true }), { kind: "memberPromote", id: "n4", force: true }],
  ["transferLeader", requests.transferLeader(), { kind: "transferLeader", to: null }],
  ["transferLeader", requests.transferLeader({ to: "n2" }), { kind: "transferLeader", to: "n2" }],
  ["snapshotSave", requests.snapshotSave(), { kind: "snapshotSave" }],
  ["snapshotRead", requests.snapshotRead({ offset: 10 }), { kind: "snapshotRead", offset: 10, maxBytes: 4 * 1024 * 1024 }],
  ["snapshotRead", requests.snapshotRead({ offset: 0, maxBytes: 100 }), { kind: "snapshotRead", offset: 0, maxBytes: 100 }],
];

describe("parseOperation of builder output", () => {
  test.each(CASES.map(([name, request, expected], index) => ({ name, request, expected, index })))(
    "$name #$index",
    ({ name, request, expected }) => {
      expect(request.name).toBe(name);
      expect(parse(request)).toEqual(expected);
    },
  );

  test("every client command of the table is covered, and no peer command is a client operation", () => {
    const clientNames = COMMANDS.filter((command) => !isPeerCommand(command.code)).map((command) => command.name);
    expect(new Set(CASES.map(([name]) => name))).toEqual(new Set(clientNames));
    for (const peer of COMMANDS.filter((command) => isPeerCommand(command.code))) {
      expect(errorCodeOf(() => parse({ ...requests.ping(), code: peer.code }))).toBe("INVALID");
    }
  });

  test("timeoutMs travels beside the operation", () => {
    expect(parseRequest(requests.get({ key: "k", timeoutMs: 250 }))).toEqual({ operation: read({ type: "get", key: "k" }), timeoutMs: 250 });
    expect(parseRequest(requests.ping({ timeoutMs: 120_000 }))).toEqual({ operation: { kind: "ping" }, timeoutMs: 120_000 });
    expect(parseRequest(requests.ping({ timeoutMs: 1 })).timeoutMs).toBe(1);
    expect(parseRequest(requests.ping())).toEqual({ operation: { kind: "ping" } });
  });

  test("TTL seconds become whole milliseconds rounded up, and decimal seconds are not inflated", () => {
    const ttlMsOf = (ttl: number): unknown => (parse(requests.set({ key: "k", value: 1n, ttl })) as { command: { ttlMs?: number } }).command.ttlMs;
    expect(ttlMsOf(1.1)).toBe(1100);
    expect(ttlMsOf(0.0015)).toBe(2);
    expect(ttlMsOf(1e-9)).toBe(1);
    expect(ttlMsOf(2.0001)).toBe(2001);
    expect(ttlMsOf(86_400)).toBe(86_400_000);
  });
});

describe("parseOperation properties", () => {
  test("set keeps key, value and options; TTL is never shorter than asked and less than 1 ms longer", () => {
    const options = fc.record(
      {
        ttl: ttlSecondsArbitrary,
        flag: fc.constantFrom("nx", "xx"),
        ifVersion: fc.nat(),
        metadata: fc.array(fc.tuple(keyArbitrary, valueArbitrary), { maxLength: 3 }).map((entries) => new Map(entries)),
        fence: fc.record({ lock: keyArbitrary, token: fc.bigInt({ min: INT64_MIN, max: INT64_MAX }) }),
        session: sessionArbitrary,
        namespace: namespaceArbitrary,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(keyArbitrary, valueArbitrary, options, (key, value, { flag, ...rest }) => {
        const operation = parse(requests.set({ key, value, ...rest, ...(flag === undefined ? {} : { [flag]: true }) }));
        expect(operation.kind).toBe("write");
        const command = (operation as { command: Command }).command;
        expect(command).toMatchObject({ type: "set", key, namespace: rest.namespace ?? "" });
        if (command.type !== "set") throw new Error("not a set");
        expect(representation(command.value)).toBe(representation(validateValue(value)));
        expect(command.session).toEqual(rest.session);
        expect(command.fence).toEqual(rest.fence);
        expect(command.ifVersion).toBe(rest.ifVersion);
        expect(command.nx).toBe(flag === "nx" ? true : undefined);
        expect(command.xx).toBe(flag === "xx" ? true : undefined);
        expect(command.metadata === undefined ? undefined : representation(command.metadata)).toBe(
          rest.metadata === undefined ? undefined : representation(validateValue(rest.metadata)),
        );
        if (rest.ttl === undefined) expect(command.ttlMs).toBeUndefined();
        else expectTtl(command.ttlMs, rest.ttl);
      }),
      { numRuns: 200 },
    );
  });

  test("every operation carries its key, namespace, session (writes), consistency (reads) and timeout", () => {
    const common = fc.record({
      key: keyArbitrary,
      value: valueArbitrary,
      namespace: namespaceArbitrary,
      session: sessionArbitrary,
      consistency: fc.constantFrom("linearizable" as const, "serializable" as const),
      ttl: ttlSecondsArbitrary,
      timeoutMs: fc.integer({ min: 1, max: 120_000 }),
    });
    fc.assert(
      fc.property(common, ({ key, value, namespace, session, consistency, ttl, timeoutMs }) => {
        const reads = [
          requests.get({ key, namespace, consistency, timeoutMs }),
          requests.getWithMeta({ key, namespace, consistency, timeoutMs }),
          requests.getMetadata({ key, namespace, consistency, timeoutMs }),
          requests.exists({ key, namespace, consistency, timeoutMs }),
          requests.ttl({ key, namespace, consistency, timeoutMs }),
          requests.mget({ keys: [key], namespace, consistency, timeoutMs }),
          requests.keys({ pattern: key, namespace, consistency, timeoutMs }),
          requests.count({ pattern: key, namespace, consistency, timeoutMs }),
          requests.getPattern({ pattern: key, namespace, consistency, timeoutMs }),
          requests.scan({ match: key, namespace, consistency, timeoutMs }),
          requests.storageSize({ keys: [key], namespace, consistency, timeoutMs }),
        ];
        for (const request of reads) {
          const parsed = parseRequest(request);
          expect(parsed.timeoutMs).toBe(timeoutMs);
          expect(parsed.operation).toMatchObject({ kind: "read", consistency, query: { namespace } });
          expect([request.name, subjectOf((parsed.operation as { query: Query }).query)]).toEqual([request.name, key]);
        }
        const keyed = { key, namespace, session, timeoutMs };
        const writes = [
          requests.set({ ...keyed, value, ttl }),
          requests.setnx({ ...keyed, value, ttl }),
          requests.setMetadata({ ...keyed, metadata: new Map([["m", value]]) }),
          requests.incr(keyed),
          requests.decr(keyed),
          requests.incrFloat({ ...keyed, delta: 1.5 }),
          requests.incrDecimal({ ...keyed, delta: new Decimal("0.1") }),
          requests.append({ ...keyed, value }),
          requests.cas({ ...keyed, expected: value, newValue: value, ttl }),
          requests.expire({ ...keyed, ttl }),
          requests.persist(keyed),
          requests.delete({ keys: [key], namespace, session, timeoutMs }),
          requests.mdelete({ keys: [key], namespace, session, timeoutMs }),
          requests.mset({ entries: [[key, value]], namespace, session, timeoutMs }),
          requests.deletePattern({ pattern: key, namespace, session, timeoutMs }),
          requests.lock({ name: key, owner: key, ttl, namespace, session, timeoutMs }),
          requests.extend({ name: key, owner: key, ttl, namespace, session, timeoutMs }),
          requests.unlock({ name: key, owner: key, namespace, session, timeoutMs }),
          requests.deleteExpired({ namespace, session, timeoutMs }),
        ];
        for (const request of writes) {
          const parsed = parseRequest(request);
          expect(parsed.timeoutMs).toBe(timeoutMs);
          expect(parsed.operation).toMatchObject({ kind: "write", command: { namespace, session } });
          const command = (parsed.operation as { command: Command }).command;
          if (command.type !== "purgeExpired") expect([request.name, subjectOf(command)]).toEqual([request.name, key]);
        }
      }),
      { numRuns: 60 },
    );
  });

  test("key lists, entries and patterns arrive unchanged", () => {
    fc.assert(
      fc.property(fc.array(keyArbitrary, { maxLength: 8 }), fc.array(valueArbitrary, { maxLength: 8 }), namespaceArbitrary, (keys, values, namespace) => {
        expect(parse(requests.mget({ keys, namespace }))).toEqual(read({ type: "mget", keys, namespace }));
        expect(parse(requests.delete({ keys, namespace }))).toEqual(write({ type: "delete", keys, namespace }));
        const entries = keys.slice(0, values.length).map((key, index): [string, Value] => [key, values[index] as Value]);
        const mset = (parse(requests.mset({ entries, namespace })) as { command: Command }).command;
        if (mset.type !== "mset") throw new Error("not an mset");
        expect(mset.entries.map(([key, value]) => [key, representation(value)])).toEqual(
          entries.map(([key, value]) => [key, representation(validateValue(value))]),
        );
      }),
      { numRuns: 100 },
    );
  });

  test("incr keeps and decr negates any Int delta; decr of the i64 minimum is OVERFLOW", () => {
    fc.assert(
      fc.property(keyArbitrary, fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), (key, delta) => {
        expect(parse(requests.incr({ key, delta }))).toEqual(write({ type: "incr", key, delta }));
        if (delta === INT64_MIN) expect(errorCodeOf(() => parse(requests.decr({ key, delta })))).toBe("OVERFLOW");
        else expect(parse(requests.decr({ key, delta }))).toEqual(write({ type: "incr", key, delta: -delta }));
      }),
      { numRuns: 200 },
    );
    expect(errorCodeOf(() => parse(requests.decr({ key: "n", delta: INT64_MIN })))).toBe("OVERFLOW");
  });

  test("locks and scans keep their fields", () => {
    fc.assert(
      fc.property(keyArbitrary, keyArbitrary, ttlSecondsArbitrary, fc.nat({ max: 1000 }), fc.option(fc.constantFrom(".", ":", "/"), { nil: undefined }), (name, owner, ttl, count, separator) => {
        const lock = (parse(requests.lock({ name, owner, ttl })) as { command: Command }).command;
        expect(lock).toMatchObject({ type: "lock", name, owner });
        expectTtl((lock as { ttlMs: number }).ttlMs, ttl);
        const scan = { cursor: String(count), match: `${name}*`, count: count + 1, ...(separator === undefined ? {} : { separator }) };
        expect(parse(requests.scan(scan))).toEqual(read({ type: "scan", ...scan }));
      }),
      { numRuns: 100 },
    );
  });

  test("any map under any client code is either an operation or a KvError, never another exception", () => {
    const clientCodes = COMMANDS.filter((command) => !isPeerCommand(command.code)).map((command) => command.code);
    const field = fc.constantFrom("key", "keys", "value", "ttl", "delta", "entries", "namespace", "session", "pattern", "name", "owner", "nx", "timeoutMs");
    fc.assert(
      fc.property(fc.constantFrom(...clientCodes), fc.array(fc.tuple(field, valueArbitrary), { maxLength: 6 }), (code, fields) => {
        try {
          const operation = parse({ ...requests.ping(), code, payload: encode(new Map(fields)) });
          expect(["write", "read", "ping", "info", "clusterStatus", "memberAdd", "memberRemove", "memberPromote", "transferLeader", "snapshotSave", "snapshotRead", "rejected"]).toContain(operation.kind);
        } catch (error) {
          expect(error).toBeInstanceOf(KvError);
          expect((error as KvError).code).toMatch(/^(INVALID|KEY_INVALID|VALUE_INVALID|TOO_LARGE|OVERFLOW)$/);
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** The key, name or pattern a command or query is about (the first one for lists). */
function subjectOf(data: Command | Query): unknown {
  const fields = data as unknown as Readonly<Record<string, unknown>>;
  const list = (fields["keys"] ?? fields["entries"]) as readonly unknown[] | undefined;
  const first = list?.[0];
  return fields["key"] ?? fields["name"] ?? fields["pattern"] ?? fields["match"] ?? (Array.isArray(first) ? first[0] : first);
}

function expectTtl(ttlMs: number | undefined, seconds: number): void {
  const asked = seconds * 1000;
  expect(Number.isInteger(ttlMs)).toBe(true);
  // Never shorter than asked, up to the double rounding of the seconds-to-milliseconds product.
  expect(ttlMs as number).toBeGreaterThanOrEqual(asked * (1 - 1e-14));
  expect(ttlMs as number).toBeLessThan(asked + 1);
}
