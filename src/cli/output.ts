import type { EntryWithMeta } from "../client/client.js";
import type { JsValue } from "../client/values.js";
import { isDecimal } from "../engine/decimal.js";

/**
 * How `kv` prints: "plain" for people (strings raw, Int and Decimal as digits, bytes as hex,
 * lists and maps as JSON), "json" for scripts, "typed" for scripts that must tell the value
 * types apart ({"type":"int","value":"9223372036854775807"}).
 *
 * The CLI's client returns every Int as a bigint (ints: "bigint"), so a bigint is an Int and a
 * number is a Float, here and in every nested value.
 */
export type OutputMode = "plain" | "json" | "typed";

/** A value as `--typed` prints it: the type tag and a JSON-safe rendering. */
export type TypedJson =
  | { readonly type: "null" }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "int" | "decimal" | "string" | "bytes"; readonly value: string }
  | { readonly type: "float"; readonly value: number | "NaN" | "Infinity" | "-Infinity" }
  | { readonly type: "list"; readonly value: readonly TypedJson[] }
  | { readonly type: "map"; readonly value: Readonly<Record<string, TypedJson>> };

/** What `kv get` prints for a missing key in plain mode, like redis-cli. */
export const PLAIN_NIL = "(nil)";

export function renderValue(value: JsValue | null, mode: OutputMode): string {
  if (mode === "typed") return JSON.stringify(toTyped(value));
  if (mode === "json") return toJsonText(value);
  return plainValue(value);
}

/** mget, getpattern: `key<TAB>value` lines in plain mode, an object otherwise. */
export function renderValues(values: Readonly<Record<string, JsValue>>, mode: OutputMode): string {
  const entries = Object.entries(values);
  if (mode === "plain") return entries.map(([key, value]) => `${key}\t${plainValue(value)}`).join("\n");
  if (mode === "json") return toJsonText(values);
  return JSON.stringify(Object.fromEntries(entries.map(([key, value]) => [key, toTyped(value)])));
}

/** getmeta: one `field: value` line per field in plain mode. */
export function renderEntryWithMeta(entry: EntryWithMeta | null, mode: OutputMode): string {
  if (entry === null) return mode === "plain" ? PLAIN_NIL : "null";
  if (mode === "plain") return Object.entries(entry).map(([field, value]) => `${field}: ${field === "value" ? plainValue(value as JsValue) : toJsonText(value)}`).join("\n");
  if (mode === "json") return toJsonText(entry);
  const { value, metadata, ...rest } = entry;
  return JSON.stringify({ ...rest, value: toTyped(value), metadata: metadata === null ? null : toTyped(metadata) });
}

/**
 * Results that are not stored values (counts, booleans, key lists, info): plain mode prints
 * scalars as they are and lists one item a line; every mode falls back to JSON.
 */
export function renderData(data: unknown, mode: OutputMode): string {
  if (mode !== "plain") return toJsonText(data);
  if (Array.isArray(data) && data.every((item) => typeof item === "string")) return data.join("\n");
  if (typeof data === "object" && data !== null && !isDecimal(data) && !(data instanceof Uint8Array)) return toJsonText(data, 2);
  // A count or a TTL in seconds, not a stored Float: no ".0" marker.
  if (typeof data === "number") return String(data);
  return plainValue(data as JsValue);
}

function plainValue(value: JsValue | null): string {
  if (value === null) return PLAIN_NIL;
  if (typeof value === "string") return value;
  if (typeof value === "number") return plainFloat(value);
  if (typeof value === "bigint" || typeof value === "boolean") return String(value);
  if (value instanceof Uint8Array) return hexOf(value);
  if (isDecimal(value)) return value.toFixed();
  return toJsonText(value);
}

/** An integral Float keeps a ".0", so `3.0` (Float) never reads as `3` (Int). */
function plainFloat(value: number): string {
  const text = String(value);
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function toTyped(value: JsValue | null): TypedJson {
  if (value === null) return { type: "null" };
  switch (typeof value) {
    case "boolean":
      return { type: "bool", value };
    case "bigint":
      return { type: "int", value: String(value) };
    case "number":
      return { type: "float", value: Number.isFinite(value) ? value : (String(value) as "NaN" | "Infinity" | "-Infinity") };
    case "string":
      return { type: "string", value };
  }
  if (value instanceof Uint8Array) return { type: "bytes", value: hexOf(value) };
  if (isDecimal(value)) return { type: "decimal", value: value.toFixed() };
  if (Array.isArray(value)) return { type: "list", value: value.map(toTyped) };
  const entries = value instanceof Map ? [...value] : Object.entries(value);
  return { type: "map", value: Object.fromEntries(entries.map(([key, element]) => [key, toTyped(element as JsValue)])) };
}

/**
 * JSON text for any result, exact where JSON.stringify is not: a bigint is written as its
 * digits (never rounded), a Decimal as a string of its digits, bytes as a hex string, and a
 * non-finite Float as the string "NaN" / "Infinity" / "-Infinity".
 */
export function toJsonText(data: unknown, indent = 0): string {
  const bigints = new BigintMarks();
  const text = JSON.stringify(
    data,
    function replacer(this: unknown, key: string, raw: unknown) {
      const holder = this as Record<string, unknown>;
      const value = key === "" ? raw : (holder[key] ?? raw); // before toJSON (Decimal has one)
      if (typeof value === "bigint") return bigints.mark(String(value));
      if (typeof value === "number" && !Number.isFinite(value)) return String(value);
      if (value instanceof Uint8Array) return hexOf(value);
      if (isDecimal(value)) return value.toFixed();
      if (value instanceof Map) return Object.fromEntries(value);
      return value;
    },
    indent,
  );
  return text === undefined ? "null" : bigints.unmark(text);
}

/**
 * JSON.stringify cannot write an unquoted number it did not make, so a bigint is first a
 * placeholder string, then its digits. The random tag keeps a stored string that happens to
 * look like a placeholder from being replaced.
 */
class BigintMarks {
  private readonly tag = `bigint-${Math.random().toString(36).slice(2)}-`;
  private readonly digits: string[] = [];

  mark(digits: string): string {
    this.digits.push(digits);
    return `${this.tag}${this.digits.length - 1}`;
  }

  unmark(text: string): string {
    if (this.digits.length === 0) return text;
    return text.replace(new RegExp(`"${this.tag}(\\d+)"`, "g"), (placeholder, index: string) => this.digits[Number(index)] ?? placeholder);
  }
}
