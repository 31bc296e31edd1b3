import fc from "fast-check";
import { expect } from "vitest";
import type { OperationRequest } from "../../../src/client/requests.js";
import { DEFAULT_LIMITS, type EngineLimits } from "../../../src/engine/limits.js";
import type { SessionStamp } from "../../../src/engine/sessions.js";
import { KvError, type ErrorCode } from "../../../src/errors.js";
import { parseOperation, type Operation, type ParsedRequest } from "../../../src/server/protocol/operations.js";

/** Parses what a builder produced, as the server does. */
export function parseRequest(request: OperationRequest<unknown>, limits: EngineLimits = DEFAULT_LIMITS): ParsedRequest {
  return parseOperation(request.code, request.payload, limits);
}

/** The operation alone. */
export function parse(request: OperationRequest<unknown>, limits: EngineLimits = DEFAULT_LIMITS): Operation {
  return parseRequest(request, limits).operation;
}

/** The KvError code `body` throws; fails the test when it throws nothing or something else. */
export function errorCodeOf(body: () => unknown): ErrorCode {
  try {
    body();
  } catch (error) {
    expect(error).toBeInstanceOf(KvError);
    return (error as KvError).code;
  }
  throw new Error("expected a KvError, nothing was thrown");
}

/**
 * Valid keys and names by the rules of SPEC §3, written independently of the validator:
 * printable characters (astral ones included), 1 to 40 long, never starting with "__".
 */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
export const keyArbitrary: fc.Arbitrary<string> = fc
  .string({ unit: "binary", minLength: 1, maxLength: 40 })
  .filter((key) => !CONTROL_CHARACTER.test(key) && !key.startsWith("__"));

export const namespaceArbitrary: fc.Arbitrary<string> = fc.oneof(fc.constant(""), keyArbitrary);

export const sessionArbitrary: fc.Arbitrary<SessionStamp> = fc
  .record({
    clientId: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }),
    sequence: fc.integer({ min: 1, max: 1_000_000 }),
    acknowledgedShare: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ clientId, sequence, acknowledgedShare }) => ({ clientId, sequence, acknowledged: Math.floor((sequence - 1) * acknowledgedShare) }));

/** TTL in seconds: from sub-millisecond to ten years, fractions included. */
export const ttlSecondsArbitrary: fc.Arbitrary<number> = fc.oneof(
  fc.double({ min: 1e-6, max: 10, noNaN: true }),
  fc.double({ min: 10, max: 10 * 365 * 24 * 3600, noNaN: true }),
  fc.integer({ min: 1, max: 1_000_000 }),
);

/** A value `depth` lists deep around a scalar. */
export function nested(depth: number): unknown {
  let value: unknown = 1n;
  for (let level = 0; level < depth; level++) value = [value];
  return value;
}
