import { KvError } from "../errors.js";
import { encode } from "./codec.js";
import { checkDecimal, isDecimal } from "./decimal.js";
import { DEFAULT_LIMITS, type EngineLimits } from "./limits.js";
import type { Value, ValueMap, ValueType } from "./value.js";

/**
 * C0 controls, DEL, C1 controls, and (with the `u` flag, where a well-formed surrogate pair is
 * one code point) lone surrogates, which cannot be encoded as UTF-8 and would come back changed.
 */
const FORBIDDEN_NAME_CHARACTER = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;
const LONE_SURROGATE = /\p{Cs}/u;
const RESERVED_PREFIX = "__";
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** The codec writes every Int as a full int64: a type byte and eight bytes. */
const INT_ENCODED_BYTES = 9;

/** Validates a user key (see SPEC §3) and returns it; KEY_INVALID otherwise. */
export function validateKey(key: unknown, limits: EngineLimits = DEFAULT_LIMITS): string {
  return validateName(key, "key", limits);
}

/**
 * Namespace, lock and owner names follow exactly the key rules; `what` names the argument in
 * the error message. An empty default namespace is the caller's business, not a name.
 */
export function validateName(name: unknown, what: string, limits: EngineLimits = DEFAULT_LIMITS): string {
  if (typeof name !== "string") throw new KvError("KEY_INVALID", `${what} must be a string, got ${describe(name)}`);
  if (name.length === 0) throw new KvError("KEY_INVALID", `${what} must not be empty`);
  if (codePointLength(name, limits.maxKeyLength) > limits.maxKeyLength) {
    throw new KvError("KEY_INVALID", `${what} is longer than ${limits.maxKeyLength} characters`);
  }
  if (FORBIDDEN_NAME_CHARACTER.test(name)) {
    throw new KvError("KEY_INVALID", `${what} contains a control character or a lone surrogate`);
  }
  if (name.startsWith(RESERVED_PREFIX)) {
    throw new KvError("KEY_INVALID", `${what} must not start with "${RESERVED_PREFIX}" (reserved for the system)`);
  }
  return name;
}

/** Code points in `text`, counting no further than `limit + 1` so a huge string costs little. */
function codePointLength(text: string, limit: number): number {
  // A code point takes one or two UTF-16 units, so these two bounds decide most cases at once.
  if (text.length <= limit) return text.length;
  if (text.length > 2 * limit) return limit + 1;
  let count = 0;
  for (const _codePoint of text) {
    count += 1;
    if (count > limit) break;
  }
  return count;
}

/**
 * Checks that `value` is exactly one of the engine's Value shapes and returns its canonical form
 * (decimals become ExactDecimal; everything else is returned as is). VALUE_INVALID for anything
 * else, TOO_LARGE when its encoded size exceeds `limits.maxValueBytes`.
 */
export function validateValue(value: unknown, limits: EngineLimits = DEFAULT_LIMITS): Value {
  const walk = new ValueWalk(limits);
  const canonical = walk.visit(value, 0);
  if (walk.minimumEncodedBytes > limits.maxValueBytes) throw tooLarge(walk.minimumEncodedBytes, limits);
  const size = valueSize(canonical);
  if (size > limits.maxValueBytes) throw tooLarge(size, limits);
  return canonical;
}

function tooLarge(size: number, limits: EngineLimits): KvError {
  return new KvError("TOO_LARGE", `value needs at least ${size} bytes; the limit is ${limits.maxValueBytes}`);
}

/**
 * One validation pass. Besides the shape it keeps a lower bound of the encoded size (every item
 * takes at least one byte, an Int nine, a string one per UTF-16 unit), so a value far over the
 * size limit, or a small graph of shared arrays that would expand enormously, is refused
 * before anything is encoded.
 */
class ValueWalk {
  minimumEncodedBytes = 0;
  private readonly ancestors = new Set<object>();

  constructor(private readonly limits: EngineLimits) {}

  visit(value: unknown, depth: number): Value {
    this.count(1);
    switch (typeof value) {
      case "boolean":
      case "number":
        return value;
      case "bigint":
        if (value < INT64_MIN || value > INT64_MAX) throw invalid(`Int ${value} is outside signed 64-bit`);
        this.count(INT_ENCODED_BYTES - 1);
        return value;
      case "string":
        return this.visitString(value);
      case "object":
        return value === null ? null : this.visitObject(value, depth);
      default:
        throw invalid(`${describe(value)} is not a storable value`);
    }
  }

  private visitString(text: string): string {
    this.count(text.length);
    if (LONE_SURROGATE.test(text)) throw invalid("string contains a lone surrogate (not valid UTF-8)");
    return text;
  }

  private visitObject(value: object, depth: number): Value {
    if (value instanceof Uint8Array) {
      this.count(value.byteLength);
      return value;
    }
    if (isDecimal(value)) return checkDecimal(value);
    if (Array.isArray(value)) return this.nested(value, depth, () => this.visitList(value, depth + 1));
    if (value instanceof Map) return this.nested(value, depth, () => this.visitMap(value, depth + 1));
    throw invalid(`${describe(value)} is not a storable value (maps must be Map instances)`);
  }

  /** Depth and cycle checks happen before descending, so recursion never exceeds maxDepth. */
  private nested<T extends Value>(container: object, depth: number, visitChildren: () => T): T {
    if (depth + 1 > this.limits.maxDepth) throw invalid(`value is nested deeper than ${this.limits.maxDepth} levels`);
    if (this.ancestors.has(container)) throw invalid("value contains a cycle");
    this.ancestors.add(container);
    const result = visitChildren();
    this.ancestors.delete(container);
    return result;
  }

  private visitList(list: readonly unknown[], depth: number): readonly Value[] {
    let copy: Value[] | undefined;
    for (let index = 0; index < list.length; index += 1) {
      const element = list[index];
      const canonical = this.visit(element, depth);
      if (copy === undefined && canonical !== element) copy = list.slice(0, index) as Value[];
      copy?.push(canonical);
    }
    return copy ?? (list as readonly Value[]);
  }

  private visitMap(map: ReadonlyMap<unknown, unknown>, depth: number): ValueMap {
    let changed = false;
    const entries: [string, Value][] = [];
    for (const [key, element] of map) {
      if (typeof key !== "string") throw invalid(`map key ${describe(key)} is not a string`);
      const canonical = this.visit(key, depth) as string;
      const canonicalElement = this.visit(element, depth);
      changed ||= canonicalElement !== element;
      entries.push([canonical, canonicalElement]);
    }
    return changed ? new Map(entries) : (map as ValueMap);
  }

  private count(bytes: number): void {
    this.minimumEncodedBytes += bytes;
    if (this.minimumEncodedBytes > this.limits.maxValueBytes) throw tooLarge(this.minimumEncodedBytes, this.limits);
  }
}

function invalid(message: string): KvError {
  return new KvError("VALUE_INVALID", message);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object without prototype";
  return typeof value;
}

/** Encoded (msgpack) byte length: the size counted against maxValueBytes and reported as `size`. */
export function valueSize(value: Value): number {
  return encode(value).byteLength;
}

export function typeOf(value: Value): ValueType {
  switch (typeof value) {
    case "boolean":
      return "bool";
    case "bigint":
      return "int";
    case "number":
      return "float";
    case "string":
      return "string";
    default:
      return typeOfObject(value);
  }
}

function typeOfObject(value: Value): ValueType {
  if (value === null) return "null";
  if (value instanceof Uint8Array) return "bytes";
  if (isDecimal(value)) return "decimal";
  if (Array.isArray(value)) return "list";
  return "map";
}
