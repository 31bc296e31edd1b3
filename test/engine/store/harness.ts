import { expect } from "vitest";
import { decodeCommand, encodeCommand, Engine, type Command, type EngineOptions, type Outcome, type Query } from "../../../src/engine/index.js";
import type { Value } from "../../../src/engine/value.js";

/** Distributive Omit, so each member of a union keeps its own fields. */
type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type CommandInput = Without<Command, "namespace"> & { readonly namespace?: string };
export type QueryInput = Without<Query, "namespace"> & { readonly namespace?: string };

export const START_TIME_MS = 1_700_000_000_000;

/**
 * Drives an engine the way a replica does: every command goes through the log encoding, gets
 * the next index and a log time that the test moves forward explicitly.
 */
export class Harness {
  readonly engine: Engine;
  index = 0;
  now = START_TIME_MS;

  constructor(options: EngineOptions = {}) {
    this.engine = new Engine(options);
  }

  advance(milliseconds: number): this {
    this.now += milliseconds;
    return this;
  }

  apply(input: CommandInput): Outcome<unknown> {
    const command = decodeCommand(encodeCommand({ namespace: "", ...input } as Command));
    return this.engine.apply(command, { index: ++this.index, term: 1, now: this.now });
  }

  read(input: QueryInput): Outcome<unknown> {
    return this.engine.read({ namespace: "", ...input } as Query, this.now);
  }

  /** The value of a successful outcome (fails the test otherwise). */
  write(input: CommandInput): unknown {
    return valueOf(this.apply(input));
  }

  query(input: QueryInput): unknown {
    return valueOf(this.read(input));
  }

  get(key: string, namespace = ""): unknown {
    return this.query({ type: "get", key, namespace });
  }

  set(key: string, value: Value, options: Partial<Extract<Command, { type: "set" }>> = {}): unknown {
    return this.write({ type: "set", key, value, ...options });
  }
}

export function valueOf(outcome: Outcome<unknown>): unknown {
  if (!outcome.ok) expect.fail(`expected success, got ${outcome.error.code}: ${outcome.error.message}`);
  return outcome.value;
}

export function errorCodeOf(outcome: Outcome<unknown>): string {
  if (outcome.ok) expect.fail(`expected an error, got ${String(outcome.value)}`);
  return outcome.error.code;
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const collected: Uint8Array[] = [];
  for await (const chunk of chunks) collected.push(chunk);
  return collected;
}

export async function* replay(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

export function concatenated(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks);
}
