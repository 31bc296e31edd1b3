import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeCommand, encodeCommand, Engine, type Command, type LockResult, type Outcome, type Query, type SessionStamp } from "../../../src/engine/index.js";
import { START_TIME_MS, type CommandInput, type QueryInput } from "./harness.js";
import { command, query } from "./arbitraries.js";
import { comparable, Model } from "./model.js";

const SESSION_TIMEOUT_MS = 10_000;
const MAX_RESULTS_PER_SESSION = 2;
const UNKNOWN_CLIENT = 424_242n;

/**
 * How a write uses a client session: which client, how far its acknowledgements lag, or a
 * retry. Client 2 is never registered: its writes meet an unknown session.
 */
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
