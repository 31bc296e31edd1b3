import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExactDecimal } from "../../../src/engine/decimal.js";
import { decodeCommand, encodeCommand, Engine, type Command, type LockResult, type Outcome, type Query, type SessionStamp } from "../../../src/engine/index.js";
import type { Value } from "../../../src/engine/value.js";
import { START_TIME_MS, type CommandInput, type QueryInput } from "./harness.js";
import { comparable, Model } from "./model.js";

const SESSION_TIMEOUT_MS = 10_000;
const MAX_RESULTS_PER_SESSION = 2;
const UNKNOWN_CLIENT = 424_242n;

const namespace = fc.constantFrom("", "", "t");
/** Few keys, so commands collide on them; separators and glob-relevant shapes included. */
const key = fc.constantFrom("a", "b", "ab", "a.b", "a:b", "b.a", ":a");
/** TTLs and clock steps share a grain of 500 ms so that reads land exactly on expiry boundaries. */
const ttlMs = fc.constantFrom(500, 1000, 1500);
const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.bigInt({ min: -5n, max: 5n }),
  fc.constantFrom(2n ** 63n - 1n, -(2n ** 63n)),
  fc.double(),
  fc.integer({ min: -3, max: 3 }),
  fc.tuple(fc.bigInt({ min: -(10n ** 6n), max: 10n ** 6n }), fc.integer({ min: 0, max: 4 })).map(([mantissa, scale]) => new ExactDecimal(`${mantissa}e-${scale}`)),
  fc.string({ maxLength: 3 }),
  fc.uint8Array({ maxLength: 3 }),
);
const value: fc.Arbitrary<Value> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  fc.array(scalar, { maxLength: 3 }),
  fc.dictionary(fc.constantFrom("x", "y"), scalar).map((object) => new Map(Object.entries(object))),
);
const pattern = fc.array(fc.constantFrom("a", "b", ".", ":", "*", "**", "?", "[ab]", "[!a]", "[a-b]", "{a,b}", "{a.,:}"), { minLength: 1, maxLength: 4 }).map((parts) => parts.join(""));
const separator = fc.constantFrom(undefined, ".", ":");
const lockName = fc.constantFrom("L1", "L2");
const owner = fc.constantFrom("o1", "o2");
/** Absent three times out of four: most writes use few options, so most of them succeed. */
const optional = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });

/** Drops undefined fields so commands satisfy exactOptionalPropertyTypes and encode cleanly. */
function compact<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, field]) => field !== undefined)) as T;
}

const command = fc.oneof(
  fc
    .record({ namespace, key, value, ttlMs: optional(ttlMs), nx: fc.boolean(), xx: fc.boolean(), ifVersion: optional(fc.nat(6)), metadata: optional(value.filter((v) => v instanceof Map)), fence: optional(fc.record({ lock: lockName, token: fc.bigInt({ min: 0n, max: 3n }) })) })
    .map(({ nx, xx, ...rest }) => compact({ type: "set" as const, ...rest, nx: nx && !xx ? true : undefined, xx: xx && !nx ? true : undefined })),
  fc.record({ namespace, key, metadata: fc.constant(new Map([["m", 1n]])) }).map((fields) => ({ type: "setMetadata" as const, ...fields })),
  fc.record({ namespace, keys: fc.array(key, { maxLength: 3 }) }).map((fields) => ({ type: "delete" as const, ...fields })),
  fc.record({ namespace, key, delta: fc.oneof(fc.bigInt({ min: -3n, max: 3n }), fc.constantFrom(2n ** 62n, -(2n ** 62n))) }).map((fields) => ({ type: "incr" as const, ...fields })),
  fc.record({ namespace, key, delta: fc.constantFrom(0.5, -1, 2) }).map((fields) => ({ type: "incrFloat" as const, ...fields })),
  fc.record({ namespace, key, delta: fc.constantFrom("0.1", "0.2", "-1.5").map((text) => new ExactDecimal(text)) }).map((fields) => ({ type: "incrDecimal" as const, ...fields })),
  fc.record({ namespace, key, value }).map((fields) => ({ type: "append" as const, ...fields })),
  fc.record({ namespace, key, expected: value, newValue: value, ttlMs: optional(ttlMs) }).map((fields) => compact({ type: "cas" as const, ...fields })),
  fc.record({ namespace, entries: fc.array(fc.tuple(key, value), { maxLength: 3 }), ttlMs: optional(ttlMs) }).map((fields) => compact({ type: "mset" as const, ...fields })),
  fc.record({ namespace, pattern, separator }).map((fields) => compact({ type: "deletePattern" as const, ...fields })),
  fc.record({ namespace, key, ttlMs: fc.constantFrom(-5, 0, 1, 1000, 2500) }).map((fields) => ({ type: "expire" as const, ...fields })),
  fc.record({ namespace, key }).map((fields) => ({ type: "persist" as const, ...fields })),
  { weight: 3, arbitrary: fc.record({ namespace, name: lockName, owner, ttlMs }).map((fields) => ({ type: "lock" as const, ...fields })) },
  { weight: 3, arbitrary: fc.record({ namespace, name: lockName, owner }).map((fields) => ({ type: "unlock" as const, ...fields })) },
  { weight: 3, arbitrary: fc.record({ namespace, name: lockName, owner, ttlMs }).map((fields) => ({ type: "extend" as const, ...fields })) },
  fc.record({ limit: fc.integer({ min: 1, max: 3 }) }).map((fields) => ({ type: "purgeExpired" as const, ...fields })),
  fc.array(fc.record({ namespace, key }), { maxLength: 2 }).map((targets) => ({ type: "evict" as const, targets })),
  fc.constant({ type: "registerSession" as const }),
  fc.record({ namespace, key, value }).map((fields) => ({ type: "set" as const, ...fields })),
  fc.record({ namespace, key, value, ttlMs }).map((fields) => ({ type: "set" as const, ...fields })),
);

const query = fc.oneof(
  fc.record({ namespace, key, type: fc.constantFrom("get", "getWithMeta", "getMetadata", "exists", "ttl" as const) }),
  fc.record({ namespace, keys: fc.array(key, { maxLength: 3 }), strict: fc.boolean() }).map((fields) => ({ type: "mget" as const, ...fields })),
  fc.record({ namespace, pattern, separator, type: fc.constantFrom("keys", "count", "getPattern" as const) }).map((fields) => compact(fields)),
  fc.record({ namespace, keys: optional(fc.array(key, { maxLength: 3 })) }).map((fields) => compact({ type: "storageSize" as const, ...fields })),
);

/** How a write uses a client session: which client, how far its acknowledgements lag, or a retry. */
// Client 2 is never registered: its writes meet an unknown session.
const sessionUse = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.record({ client: fc.constantFrom(0, 0, 1, 1, 2), lag: fc.nat(6), retry: fc.boolean() }) },
);

const step = fc.record({
  advanceMs: fc.oneof({ weight: 20, arbitrary: fc.constantFrom(0, 0, 0, 500, 500, 1000) }, { weight: 1, arbitrary: fc.constant(SESSION_TIMEOUT_MS) }),
  action: fc.oneof({ weight: 3, arbitrary: fc.record({ command, session: sessionUse }) }, { weight: 2, arbitrary: fc.record({ query }) }),
});

type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

interface Client {
  readonly clientId: bigint;
  sequence: number;
  readonly sent: Command[];
}

/** Runs the same steps against the engine and the model and compares every result. */
class Comparison {
  readonly engine: Engine;
  readonly model = new Model(SESSION_TIMEOUT_MS, MAX_RESULTS_PER_SESSION);
  private index = 0;
  private now = START_TIME_MS;
  private readonly clients: Client[] = [];
  private readonly tokens: bigint[] = [];

  constructor(shardCount: number) {
    this.engine = new Engine({ shardCount, sessions: { sessionTimeoutMs: SESSION_TIMEOUT_MS, maxResultsPerSession: MAX_RESULTS_PER_SESSION } });
  }

  run(steps: readonly Step[]): void {
    this.clients.push(this.register(), this.register());
    for (const { advanceMs, action } of steps) {
      this.now += advanceMs;
      if ("query" in action) this.compareQuery({ namespace: "", ...(action.query as QueryInput) } as Query);
      else {
        const { command, client } = this.prepare(action.command, action.session);
        this.send(command, client);
      }
    }
    this.compareVisibleState();
  }

  private prepare(input: unknown, use: { client: number; lag: number; retry: boolean } | undefined): { command: Command; client?: number } {
    let command = { namespace: "", ...(input as CommandInput) } as Command;
    if (command.type === "set" && command.fence !== undefined && this.tokens.length > 0) {
      command = { ...command, fence: { ...command.fence, token: this.tokens[Number(command.fence.token) % this.tokens.length] as bigint } };
    }
    if (use === undefined || command.type === "registerSession") return { command };
    const client = this.clients[use.client];
    if (client === undefined) return { command: { ...command, session: { clientId: UNKNOWN_CLIENT, sequence: 1, acknowledged: 0 } } };
    const previous = client.sent[client.sent.length - 1 - use.lag];
    if (use.retry && previous !== undefined) return { command: previous, client: use.client };
    client.sequence++;
    const session: SessionStamp = { clientId: client.clientId, sequence: client.sequence, acknowledged: Math.max(0, client.sequence - 1 - use.lag) };
    const stamped = { ...command, session };
    client.sent.push(stamped);
    return { command: stamped, client: use.client };
  }

  /** Like a real client: a session found expired is replaced by a new one. */
  private send(command: Command, client: number | undefined): void {
    const outcome = this.compareCommand(command);
    if (client !== undefined && !outcome.ok && outcome.error.code === "NOT_FOUND") this.clients[client] = this.register();
  }

  private register(): Client {
    const outcome = this.compareCommand({ type: "registerSession", namespace: "" });
    if (!outcome.ok) throw new Error(`registration failed: ${outcome.error.code}`);
    return { clientId: outcome.value as bigint, sequence: 0, sent: [] };
  }

  private compareCommand(input: Command): Outcome<unknown> {
    const command = decodeCommand(encodeCommand(input));
    this.index++;
    const actual = this.engine.apply(command, { index: this.index, term: 1, now: this.now });
    const expected = this.model.apply(command, this.index, this.now);
    expect(comparable(actual), `${command.type} at index ${this.index}`).toEqual(comparable(expected));
    if (actual.ok && command.type === "lock" && (actual.value as LockResult).token !== null) this.tokens.push((actual.value as LockResult).token as bigint);
    return actual;
  }

  private compareQuery(query: Query): void {
    expect(comparable(this.engine.read(query, this.now)), query.type).toEqual(comparable(this.model.read(query, this.now)));
  }

  private compareVisibleState(): void {
    for (const space of ["", "t"]) {
      const keys = this.engine.read({ type: "keys", namespace: space, pattern: "**" }, this.now);
      expect(comparable(keys)).toEqual(comparable(this.model.read({ type: "keys", namespace: space, pattern: "**" }, this.now)));
      for (const key of (keys.ok ? keys.value : []) as string[]) this.compareQuery({ type: "getWithMeta", namespace: space, key });
    }
  }
}

describe("engine against the reference model", () => {
  it("random command and query sequences give identical results and state", () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 4, 256), fc.array(step, { minLength: 1, maxLength: 80 }), (shardCount, steps) => {
        new Comparison(shardCount).run(steps);
      }),
      { numRuns: 500 },
    );
  });
});
