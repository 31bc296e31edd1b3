import { KvError } from "../../errors.js";
import { decode } from "../../engine/codec.js";

/**
 * Typed, field-by-field reading of structural payloads (`{ key, value, ttl? }` and the like).
 *
 * The codec decodes every msgpack map as a `Map`, which is right for Values but means a request
 * payload cannot be trusted as a plain object: each field is read through here and checked for
 * its type, and a missing or mistyped field is an INVALID request. Values inside a payload
 * (`value("value")`) are returned untouched for the engine to validate.
 */
export class PayloadFields {
  private readonly fields: ReadonlyMap<unknown, unknown>;

  private constructor(fields: ReadonlyMap<unknown, unknown>) {
    this.fields = fields;
  }

  /** Decodes a payload that must be a map. */
  static decode(payload: Uint8Array): PayloadFields {
    return PayloadFields.of(decode(payload), "payload");
  }

  /** Wraps an already decoded map, e.g. a nested structure. */
  static of(decoded: unknown, what: string): PayloadFields {
    if (!(decoded instanceof Map)) throw new KvError("INVALID", `${what} must be a map`);
    return new PayloadFields(decoded);
  }

  /** A structural field is absent when missing or nil: senders may write `ttl: null`. */
  has(name: string): boolean {
    return this.structural(name) !== undefined;
  }

  /** The raw field, undefined when absent. */
  value(name: string): unknown {
    return this.fields.get(name);
  }

  /** The raw field, which must be present (null counts as present: it is a Value). */
  requiredValue(name: string): unknown {
    if (!this.fields.has(name)) throw missing(name);
    return this.fields.get(name);
  }

  string(name: string): string {
    return this.required(name, this.optionalString(name));
  }

  optionalString(name: string): string | undefined {
    const field = this.structural(name);
    if (field === undefined || typeof field === "string") return field;
    throw mistyped(name, "a string");
  }

  boolean(name: string): boolean {
    return this.required(name, this.optionalBoolean(name));
  }

  optionalBoolean(name: string): boolean | undefined {
    const field = this.structural(name);
    if (field === undefined || typeof field === "boolean") return field;
    throw mistyped(name, "a boolean");
  }

  /** Any finite or non-finite number; a msgpack int64 arrives as bigint and is accepted. */
  number(name: string): number {
    return this.required(name, this.optionalNumber(name));
  }

  optionalNumber(name: string): number | undefined {
    const field = this.structural(name);
    if (field === undefined || typeof field === "number") return field;
    if (typeof field === "bigint") return Number(field);
    throw mistyped(name, "a number");
  }

  /** A safe integer (counts, indexes, cursors); msgpack may carry it as number or bigint. */
  integer(name: string): number {
    return this.required(name, this.optionalInteger(name));
  }

  optionalInteger(name: string): number | undefined {
    const field = this.structural(name);
    if (field === undefined) return undefined;
    const integer = typeof field === "bigint" ? Number(field) : field;
    if (typeof integer === "number" && Number.isSafeInteger(integer)) return integer;
    throw mistyped(name, "a safe integer");
  }

  /** A signed 64-bit integer such as a fencing token, always as bigint. */
  bigint(name: string): bigint {
    return this.required(name, this.optionalBigint(name));
  }

  optionalBigint(name: string): bigint | undefined {
    const field = this.structural(name);
    if (field === undefined || typeof field === "bigint") return field;
    if (typeof field === "number" && Number.isSafeInteger(field)) return BigInt(field);
    throw mistyped(name, "an integer");
  }

  bytes(name: string): Uint8Array {
    const field = this.structural(name);
    if (field instanceof Uint8Array) return field;
    throw field === undefined ? missing(name) : mistyped(name, "bytes");
  }

  stringList(name: string): string[] {
    return this.required(name, this.optionalStringList(name));
  }

  optionalStringList(name: string): string[] | undefined {
    const field = this.structural(name);
    if (field === undefined) return undefined;
    if (Array.isArray(field) && field.every((item) => typeof item === "string")) return field as string[];
    throw mistyped(name, "a list of strings");
  }

  /** A nested structure, read field by field in turn. */
  fieldsOf(name: string): PayloadFields {
    const field = this.structural(name);
    if (field === undefined) throw missing(name);
    return PayloadFields.of(field, `field "${name}"`);
  }

  optionalFieldsOf(name: string): PayloadFields | undefined {
    return this.has(name) ? this.fieldsOf(name) : undefined;
  }

  private structural(name: string): unknown {
    return this.fields.get(name) ?? undefined;
  }

  private required<T>(name: string, field: T | undefined): T {
    if (field === undefined) throw missing(name);
    return field;
  }
}

function missing(name: string): KvError {
  return new KvError("INVALID", `field "${name}" is missing`);
}

function mistyped(name: string, expected: string): KvError {
  return new KvError("INVALID", `field "${name}" must be ${expected}`);
}
