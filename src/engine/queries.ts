import { KvError } from "../errors.js";
import { validateNamespace } from "./commands.js";
import { compileGlob, type GlobMatcher } from "./glob.js";
import { splitStoredKey, storedKeyOf } from "./hash.js";
import type { EngineLimits } from "./limits.js";
import { capture, fail, succeed, type Outcome } from "./outcome.js";
import { matchingEntries, matchingInShard, type Entry, type ShardedStore } from "./store.js";
import { validateKey } from "./validation.js";
import type { Value, ValueMap } from "./value.js";

/** Every read of SPEC §4 as plain data. Reads never change replicated state. */
export type Query = { readonly namespace: string } & (
  | { readonly type: "get" | "getWithMeta" | "getMetadata" | "exists" | "ttl"; readonly key: string }
  | { readonly type: "mget"; readonly keys: readonly string[]; readonly strict?: boolean }
  | { readonly type: "keys" | "count" | "getPattern"; readonly pattern: string; readonly separator?: string }
  | { readonly type: "scan"; readonly cursor?: string; readonly match?: string; readonly separator?: string; readonly count?: number }
  | { readonly type: "storageSize"; readonly keys?: readonly string[] }
  | { readonly type: "info" }
);

export type QueryType = Query["type"];
type QueryOf<T extends QueryType> = Extract<Query, { readonly type: T }>;

export interface EntryWithMeta {
  readonly value: Value;
  readonly version: number;
  readonly createVersion: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number | null;
  readonly size: number;
  readonly metadata: ValueMap | null;
}

export interface ScanPage {
  /** "0" when the iteration is complete. */
  readonly cursor: string;
  readonly keys: readonly string[];
}

export interface EngineInfo {
  /** Keys stored, including expired keys not purged yet (like Redis DBSIZE). */
  readonly keys: number;
  readonly memoryBytes: number;
  readonly shards: number;
  readonly locks: number;
  readonly sessions: number;
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  /** Commands applied by type since this engine was created or restored. */
  readonly commandCounts: Readonly<Record<string, number>>;
}

export interface QueryContext {
  readonly store: ShardedStore;
  readonly limits: EngineLimits;
  readonly now: number;
  readonly info: () => EngineInfo;
}

/** Keys per scan page when the caller gives no count (Redis's default). */
export const DEFAULT_SCAN_COUNT = 10;
export const MAX_KEYS_PER_QUERY = 100_000;

export function runQuery(query: Query, context: QueryContext): Outcome<unknown> {
  return capture(() => {
    validateNamespace(query.namespace, context.limits);
    return dispatch(query, context);
  });
}

function dispatch(query: Query, context: QueryContext): Outcome<unknown> {
  switch (query.type) {
    case "get":
      return succeed(readEntry(query, context)?.value ?? null);
    case "getWithMeta":
      return succeed(withMeta(readEntry(query, context)));
    case "getMetadata":
      return succeed(metadataOf(readEntry(query, context)));
    case "exists":
      return succeed(readEntry(query, context) !== undefined);
    case "ttl":
      return succeed(ttlSeconds(readEntry(query, context), context.now));
    case "mget":
      return readMany(query, context);
    case "keys":
      return succeed(matching(query, context).map(keyOf).sort());
    case "count":
      return succeed(matching(query, context).length);
    case "getPattern":
      return succeed(new Map(touched(matching(query, context), context.now).map((entry) => [keyOf(entry), entry.value] as const).sort(byKey)));
    case "scan":
      return scan(query, context);
    case "storageSize":
      return succeed(storageSize(query, context));
    case "info":
      return succeed(context.info());
    default:
      return fail("INVALID", `unknown query type ${String((query as { type: unknown }).type)}`);
  }
}

function readEntry(query: { readonly namespace: string; readonly key: string }, context: QueryContext): Entry | undefined {
  const entry = context.store.live(storedKeyOf(query.namespace, validateKey(query.key, context.limits)), context.now);
  if (entry !== undefined) entry.lastAccessedAt = context.now;
  return entry;
}

function touched(entries: Entry[], now: number): Entry[] {
  for (const entry of entries) entry.lastAccessedAt = now;
  return entries;
}

function withMeta(entry: Entry | undefined): EntryWithMeta | null {
  if (entry === undefined) return null;
  const { value, version, createVersion, createdAt, updatedAt, expiresAt, size, metadata } = entry;
  return { value, version, createVersion, createdAt, updatedAt, expiresAt, size, metadata };
}

/** The key's metadata (empty when it has none), or null when the key is missing. */
function metadataOf(entry: Entry | undefined): ValueMap | null {
  if (entry === undefined) return null;
  return entry.metadata ?? new Map();
}

/** Remaining seconds, null without TTL, -1 when missing or expired. */
function ttlSeconds(entry: Entry | undefined, now: number): number | null {
  if (entry === undefined) return -1;
  return entry.expiresAt === null ? null : (entry.expiresAt - now) / 1000;
}

function readMany(query: QueryOf<"mget">, context: QueryContext): Outcome<ReadonlyMap<string, Value>> {
  checkKeyList(query.keys);
  const found = new Map<string, Value>();
  const missing: string[] = [];
  for (const key of query.keys) {
    const entry = readEntry({ namespace: query.namespace, key }, context);
    if (entry === undefined) missing.push(key);
    else found.set(key, entry.value);
  }
  if (query.strict === true && missing.length > 0) return fail("NOT_FOUND", `keys not found: ${missing.join(", ")}`, missing);
  return succeed(found);
}

function matcherOf(pattern: string, separator: string | undefined): GlobMatcher {
  if (typeof pattern !== "string") throw new KvError("INVALID", "pattern must be a string");
  return compileGlob(pattern, separator === undefined ? {} : { separator });
}

function matching(query: QueryOf<"keys" | "count" | "getPattern">, context: QueryContext): Entry[] {
  const matcher = matcherOf(query.pattern, query.separator);
  return [...matchingEntries(context.store, query.namespace, matcher, context.now)];
}

function keyOf(entry: Entry): string {
  return splitStoredKey(entry.storedKey).key;
}

function byKey(left: readonly [string, unknown], right: readonly [string, unknown]): number {
  return left[0] < right[0] ? -1 : left[0] > right[0] ? 1 : 0;
}

/**
 * Shard-granular cursor: a page holds whole shards until it has at least `count` keys (a
 * hint, as in Redis). A key present for the whole iteration lives in one shard, which is
 * visited exactly once, so it is returned.
 */
function scan(query: QueryOf<"scan">, context: QueryContext): Outcome<ScanPage> {
  const start = parseCursor(query.cursor ?? "0", context.store.shardCount);
  const count = query.count ?? DEFAULT_SCAN_COUNT;
  checkCount(count, 1);
  const matcher = matcherOf(query.match ?? "*", query.separator);
  const keys: string[] = [];
  let shard = start;
  while (shard < context.store.shardCount && (keys.length < count || shard === start)) {
    for (const entry of matchingInShard(context.store.shardEntries(shard), query.namespace, matcher, context.now)) keys.push(keyOf(entry));
    shard++;
  }
  return succeed({ cursor: shard >= context.store.shardCount ? "0" : String(shard), keys: keys.sort() });
}

function parseCursor(cursor: string, shardCount: number): number {
  const shard = /^(0|[1-9][0-9]{0,5})$/.test(cursor) ? Number(cursor) : NaN;
  if (!(shard < shardCount)) throw new KvError("INVALID", `scan cursor "${cursor}" is not valid here`);
  return shard;
}

function storageSize(query: QueryOf<"storageSize">, context: QueryContext): { readonly total: number } | ReadonlyMap<string, number> {
  if (query.keys === undefined) {
    let total = 0;
    for (const entry of matchingEntries(context.store, query.namespace, EVERYTHING, context.now)) total += entry.size;
    return { total };
  }
  checkKeyList(query.keys);
  const sizes = new Map<string, number>();
  for (const key of query.keys) {
    const entry = context.store.live(storedKeyOf(query.namespace, validateKey(key, context.limits)), context.now);
    if (entry !== undefined) sizes.set(key, entry.size);
  }
  return sizes;
}

const EVERYTHING: GlobMatcher = { matches: () => true, literalPrefix: "" };

function checkKeyList(keys: unknown): void {
  if (!Array.isArray(keys)) throw new KvError("INVALID", "keys must be an array");
  checkCount(keys.length);
}

function checkCount(count: number, minimum = 0): void {
  if (!Number.isSafeInteger(count) || count < minimum || count > MAX_KEYS_PER_QUERY) {
    const code = count > MAX_KEYS_PER_QUERY ? "TOO_LARGE" : "INVALID";
    throw new KvError(code, `between ${minimum} and ${MAX_KEYS_PER_QUERY} keys per query, got ${count}`);
  }
}

