import { isDecimal } from "../engine/decimal.js";
import { DEFAULT_LIMITS, type EngineLimits } from "../engine/limits.js";
import { validateValue } from "../engine/validation.js";
import type { Decimal, Value } from "../engine/value.js";
import { KvValueError, toClientError } from "./errors.js";

/**
 * A number stored as Float even when it is integral: `kv.float(3)`. A plain integral number
 * would be stored as Int.
 */
export class KvFloat {
  constructor(readonly value: number) {}
}

export const kv = Object.freeze({
  /** Forces Float for an integral number (`kv.float(3)` is Float 3.0, `3` is Int 3). */
  float(value: number): KvFloat {
    if (typeof value !== "number") throw new KvValueError(`kv.float expects a number, got ${typeof value}`);
    return new KvFloat(value);
  },
});

/** What the client accepts and returns as a value (SPEC §3). */
export type JsValue =
  | null
  | boolean
  | number
  | bigint
  | Decimal
  | string
  | Uint8Array
  | KvFloat
  | JsValue[]
  | { [key: string]: JsValue }
  | Map<string, JsValue>;

/** A Map value as the client returns it: a plain object. */
export type JsObject = { [key: string]: JsValue };

/** "auto": an Int comes back as a number when it is a safe integer, else as a bigint. */
export type IntMode = "auto" | "bigint";

/**
 * JS -> engine Value, at the edge, then checked by the engine's own validateValue (shape, Int
 * range, Decimal limits, depth, size), so client and server apply the same rules.
 *
 * A safe-integer number is Int; any other number (fractions, NaN, ±Infinity, -0, integers past
 * 2^53) is Float. `undefined`, functions, symbols and class instances other than the value
 * types are KvValueError; a value over the size limit is KvTooLargeError.
 */
export function toEngineValue(value: unknown, limits: EngineLimits = DEFAULT_LIMITS): Value {
  try {
    return validateValue(new ToEngine(limits.maxDepth).convert(value, 0), limits);
  } catch (error) {
    throw toClientError(error);
  }
}

/** A map of values (metadata), as a Map with string keys. */
export function toEngineMap(map: unknown, limits: EngineLimits = DEFAULT_LIMITS): ReadonlyMap<string, Value> {
  const converted = toEngineValue(map, limits);
  if (!(converted instanceof Map)) throw new KvValueError("metadata must be a plain object or a Map");
  return converted as ReadonlyMap<string, Value>;
}

/** A JS number as the engine types it: Int for safe integers (but -0), Float otherwise. */
export function numberToValue(value: number): bigint | number {
  return Number.isSafeInteger(value) && !Object.is(value, -0) ? BigInt(value) : value;
}

/** One conversion pass; `ancestors` refuses cycles, the depth bound keeps recursion shallow. */
class ToEngine {
  private readonly ancestors = new Set<object>();

  constructor(private readonly maxDepth: number) {}

  convert(value: unknown, depth: number): unknown {
    switch (typeof value) {
      case "number":
        return numberToValue(value);
      case "object":
        return value === null ? null : this.convertObject(value, depth);
      case "undefined":
        throw new KvValueError("undefined is not a storable value (use null)");
      default:
        return value; // boolean, bigint and string pass; the rest fails validateValue
    }
  }

  private convertObject(value: object, depth: number): unknown {
    if (value instanceof KvFloat) return value.value;
    if (value instanceof Uint8Array || isDecimal(value)) return value;
    if (Array.isArray(value)) return this.nested(value, depth, () => value.map((element) => this.convert(element, depth + 1)));
    if (value instanceof Map) return this.nested(value, depth, () => this.convertEntries(value.entries(), depth + 1));
    if (isPlainObject(value)) return this.nested(value, depth, () => this.convertEntries(Object.entries(value), depth + 1));
    throw new KvValueError(`${value.constructor?.name ?? "object"} is not a storable value`);
  }

  private convertEntries(entries: Iterable<[unknown, unknown]>, depth: number): Map<unknown, unknown> {
    const converted = new Map<unknown, unknown>();
    for (const [key, element] of entries) converted.set(key, this.convert(element, depth));
    return converted;
  }

  private nested<T>(container: object, depth: number, convertChildren: () => T): T {
    if (depth + 1 > this.maxDepth) throw new KvValueError(`value is nested deeper than ${this.maxDepth} levels`);
    if (this.ancestors.has(container)) throw new KvValueError("value contains a cycle");
    this.ancestors.add(container);
    try {
      return convertChildren();
    } finally {
      this.ancestors.delete(container);
    }
  }
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Engine Value -> JS. Int becomes a number when safe (mode "auto") or stays a bigint; Map
 * becomes a plain object. Keys are defined with Object.defineProperty, so a key such as
 * "__proto__" is an ordinary own property and never changes the object's prototype.
 */
export function fromEngineValue(value: Value, ints: IntMode): JsValue {
  switch (typeof value) {
    case "bigint":
      return fromEngineInt(value, ints);
    case "object":
      return value === null ? null : fromEngineObject(value, ints);
    default:
      return value;
  }
}

function fromEngineObject(value: Exclude<Value, null | boolean | bigint | number | string>, ints: IntMode): JsValue {
  if (value instanceof Uint8Array) return plainBytes(value);
  if (isDecimal(value)) return value;
  if (Array.isArray(value)) return value.map((element: Value) => fromEngineValue(element, ints));
  return fromEngineMap(value as ReadonlyMap<string, Value>, ints);
}

/** The codec decodes Bytes as Buffer; callers get a plain Uint8Array view of the same memory. */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A Map of values as a plain object (see fromEngineValue for "__proto__"). */
export function fromEngineMap(map: ReadonlyMap<string, Value>, ints: IntMode): JsObject {
  const result: JsObject = {};
  for (const [key, element] of map) {
    Object.defineProperty(result, key, { value: fromEngineValue(element, ints), enumerable: true, writable: true, configurable: true });
  }
  return result;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function isSafeInt(value: bigint): boolean {
  return value >= -MAX_SAFE && value <= MAX_SAFE;
}

/** An Int result (incr, decr) in the caller's mode. */
export function fromEngineInt(value: bigint, ints: IntMode): number | bigint {
  return ints === "auto" && isSafeInt(value) ? Number(value) : value;
}
