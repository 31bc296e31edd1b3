import { KvError } from "../errors.js";
import { InvariantViolation } from "../util/assert.js";
import type { Command, CommandOf } from "./commands.js";
import { addDecimals, ExactDecimal, isDecimal } from "./decimal.js";
import { valuesEqual } from "./equality.js";
import { compileGlob } from "./glob.js";
import { bucketOf, storedKeyOf } from "./hash.js";
import type { EngineLimits } from "./limits.js";
import type { LockResult, LockTable } from "./locks.js";
import { capture, fail, succeed, type Outcome } from "./outcome.js";
import type { SessionTable } from "./sessions.js";
import { isLive, matchingEntries, type Entry, type ShardedStore } from "./store.js";
import { typeOf, validateValue, valueSize } from "./validation.js";
import type { Decimal, Value } from "./value.js";

/** The replicated state: everything a snapshot holds. */
export interface EngineState {
  readonly store: ShardedStore;
  readonly locks: LockTable;
  readonly sessions: SessionTable;
}

export interface WriteContext {
  readonly state: EngineState;
  readonly limits: EngineLimits;
  /** Log index of the command: the version of what it writes. */
  readonly index: number;
  /** Log time of the command. */
  readonly now: number;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Applies one validated command. Deterministic: depends only on the state and the context. */
export function executeCommand(command: Command, context: WriteContext): Outcome<unknown> {
  return capture(() => dispatch(command, context));
}

function dispatch(command: Command, context: WriteContext): Outcome<unknown> {
  switch (command.type) {
    case "set":
      return applySet(command, context);
    case "setMetadata":
      return applySetMetadata(command, context);
    case "delete":
    case "mdelete":
      return succeed(deleteKeys(command.keys.map((key) => storedKeyOf(command.namespace, key)), context));
    case "incr":
      return applyIncr(command, context);
    case "incrFloat":
      return applyIncrFloat(command, context);
    case "incrDecimal":
      return applyIncrDecimal(command, context);
    case "append":
      return applyAppend(command, context);
    case "cas":
      return applyCas(command, context);
    case "mset":
      return applyMset(command, context);
    case "deletePattern":
      return applyDeletePattern(command, context);
    case "expire":
      return applyExpire(command, context);
    case "persist":
      return applyPersist(command, context);
    default:
      return dispatchSystem(command, context);
  }
}

function dispatchSystem(command: Command, context: WriteContext): Outcome<unknown> {
  const { state, now, index } = context;
  switch (command.type) {
    case "lock":
      return succeed<LockResult>(state.locks.acquire(lockId(command), command.owner, command.ttlMs, index, now));
    case "unlock":
      return succeed(state.locks.unlock(lockId(command), command.owner, now));
    case "extend":
      return succeed(state.locks.extend(lockId(command), command.owner, command.ttlMs, now));
    case "purgeExpired":
      state.locks.purgeExpired(now, command.limit);
      return succeed(state.store.purgeExpired(now, command.limit));
    case "evict":
      return succeed(deleteKeys(command.targets.map((target) => storedKeyOf(target.namespace, target.key)), context));
    case "registerSession":
      return state.sessions.register(index, now);
    default:
      throw new InvariantViolation(`command type ${command.type} has no handler`);
  }
}

function lockId(command: { readonly namespace: string; readonly name: string }): string {
  return storedKeyOf(command.namespace, command.name);
}

function expiresAtAfter(ttlMs: number | undefined, now: number): number | null {
  return ttlMs === undefined ? null : now + ttlMs;
}

/** Writes a value as a new entry, keeping the creation fields while the key lives. */
function write(storedKey: string, current: Entry | undefined, change: Pick<Entry, "value" | "expiresAt" | "metadata">, context: WriteContext): void {
  context.state.store.put({
    storedKey,
    bucket: current?.bucket ?? bucketOf(storedKey),
    value: change.value,
    version: context.index,
    createVersion: current?.createVersion ?? context.index,
    createdAt: current?.createdAt ?? context.now,
    updatedAt: context.now,
    expiresAt: change.expiresAt,
    size: current?.value === change.value ? current.size : valueSize(change.value),
    metadata: change.metadata,
    lastAccessedAt: context.now,
  });
}

/** Reads a key for a write: an expired key counts as absent. */
function liveEntry(namespace: string, key: string, context: WriteContext): { storedKey: string; current: Entry | undefined } {
  const storedKey = storedKeyOf(namespace, key);
  return { storedKey, current: context.state.store.live(storedKey, context.now) };
}

function applySet(command: CommandOf<"set">, context: WriteContext): Outcome<boolean> {
  const fence = command.fence;
  if (fence !== undefined && !context.state.locks.isHeldWithToken(storedKeyOf(command.namespace, fence.lock), fence.token, context.now)) {
    return fail("FENCED", `token ${fence.token} is not the current token of lock "${fence.lock}"`);
  }
  const { storedKey, current } = liveEntry(command.namespace, command.key, context);
  if (command.nx === true && current !== undefined) return succeed(false);
  if (command.xx === true && current === undefined) return succeed(false);
  if (command.ifVersion !== undefined && (current?.version ?? 0) !== command.ifVersion) return succeed(false);
  const metadata = command.metadata ?? current?.metadata ?? null;
  write(storedKey, current, { value: command.value, expiresAt: expiresAtAfter(command.ttlMs, context.now), metadata }, context);
  return succeed(true);
}

function applySetMetadata(command: CommandOf<"setMetadata">, context: WriteContext): Outcome<boolean> {
  const { storedKey, current } = liveEntry(command.namespace, command.key, context);
  if (current === undefined) return succeed(false);
  write(storedKey, current, { ...current, metadata: command.metadata }, context);
  return succeed(true);
}

/** Deletes stored keys (an expired one is removed too, but only live ones are counted). */
function deleteKeys(storedKeys: readonly string[], context: WriteContext): number {
  let deleted = 0;
  for (const storedKey of storedKeys) {
    const removed = context.state.store.remove(storedKey);
    if (removed !== undefined && isLive(removed, context.now)) deleted++;
  }
  return deleted;
}

/** Read-modify-write of a number in place: the key keeps its TTL and metadata. */
function updateNumber<T extends Value>(
  command: { readonly namespace: string; readonly key: string },
  context: WriteContext,
  read: (value: Value) => T | undefined,
  absent: T,
  combine: (current: T) => T,
): Outcome<T> {
  const { storedKey, current } = liveEntry(command.namespace, command.key, context);
  const value = current === undefined ? absent : read(current.value);
  if (value === undefined) {
    return fail("WRONG_TYPE", `key "${command.key}" holds ${typeOf((current as Entry).value)}, not ${typeOf(absent)}`);
  }
  const result = combine(value);
  write(storedKey, current, { value: result, expiresAt: current?.expiresAt ?? null, metadata: current?.metadata ?? null }, context);
  return succeed(result);
}

function applyIncr(command: CommandOf<"incr">, context: WriteContext): Outcome<bigint> {
  return updateNumber(command, context, (value) => (typeof value === "bigint" ? value : undefined), 0n, (current) => {
    const sum = current + command.delta;
    if (sum < INT64_MIN || sum > INT64_MAX) {
      throw new KvError("OVERFLOW", `${current} + ${command.delta} is outside signed 64-bit`);
    }
    return sum;
  });
}

function applyIncrFloat(command: CommandOf<"incrFloat">, context: WriteContext): Outcome<number> {
  return updateNumber(command, context, (value) => (typeof value === "number" ? value : undefined), 0, (current) => current + command.delta);
}

function applyIncrDecimal(command: CommandOf<"incrDecimal">, context: WriteContext): Outcome<Decimal> {
  const read = (value: Value): Decimal | undefined => (isDecimal(value) ? value : undefined);
  return updateNumber(command, context, read, new ExactDecimal(0), (current) => addDecimals(current, command.delta));
}

function applyAppend(command: CommandOf<"append">, context: WriteContext): Outcome<number> {
  const { storedKey, current } = liveEntry(command.namespace, command.key, context);
  const appended = appendValue(current?.value, command.value, command.key, context.limits);
  const size = valueSize(appended.value);
  if (size > context.limits.maxValueBytes) {
    return fail("TOO_LARGE", `appending would make "${command.key}" ${size} bytes; the limit is ${context.limits.maxValueBytes}`);
  }
  write(storedKey, current, { value: appended.value, expiresAt: current?.expiresAt ?? null, metadata: current?.metadata ?? null }, context);
  return succeed(appended.length);
}

/**
 * String + string (length in characters), Bytes + bytes (length in bytes), List + any value
 * (length in elements). An absent key starts from the addition itself, or from a one-element
 * list when the addition is neither a string nor bytes.
 */
function appendValue(existing: Value | undefined, addition: Value, key: string, limits: EngineLimits): { value: Value; length: number } {
  if (typeof existing === "string" || (existing === undefined && typeof addition === "string")) {
    if (typeof addition !== "string") throw wrongType(key, "string", addition);
    const value = (existing ?? "") + addition;
    return { value, length: codePointCount(value) };
  }
  if (existing instanceof Uint8Array || (existing === undefined && addition instanceof Uint8Array)) {
    if (!(addition instanceof Uint8Array)) throw wrongType(key, "bytes", addition);
    const value = concatBytes(existing ?? new Uint8Array(0), addition);
    return { value, length: value.byteLength };
  }
  if (Array.isArray(existing) || existing === undefined) {
    // Wrapping checks that the element still fits the depth limit once inside the list.
    const [element] = validateValue([addition], limits) as readonly Value[];
    const value = [...((existing ?? []) as readonly Value[]), element as Value];
    return { value, length: value.length };
  }
  throw new KvError("WRONG_TYPE", `cannot append to key "${key}" holding ${typeOf(existing)}`);
}

function wrongType(key: string, held: string, addition: Value): KvError {
  return new KvError("WRONG_TYPE", `cannot append ${typeOf(addition)} to key "${key}" holding ${held}`);
}

function concatBytes(left: Uint8Array, right: Uint8Array): Uint8Array {
  const joined = new Uint8Array(left.byteLength + right.byteLength);
  joined.set(left, 0);
  joined.set(right, left.byteLength);
  return joined;
}

function codePointCount(text: string): number {
  let count = 0;
  for (const _codePoint of text) count++;
  return count;
}

function applyCas(command: CommandOf<"cas">, context: WriteContext): Outcome<boolean> {
  const { storedKey, current } = liveEntry(command.namespace, command.key, context);
  // `expected` null matches what get() shows as null: an absent key or a Null value.
  const matches =
    command.expected === null
      ? current === undefined || current.value === null
      : current !== undefined && valuesEqual(current.value, command.expected);
  if (!matches) return succeed(false);
  const change = { value: command.newValue, expiresAt: expiresAtAfter(command.ttlMs, context.now), metadata: current?.metadata ?? null };
  write(storedKey, current, change, context);
  return succeed(true);
}

function applyMset(command: CommandOf<"mset">, context: WriteContext): Outcome<boolean> {
  const expiresAt = expiresAtAfter(command.ttlMs, context.now);
  for (const [key, value] of command.entries) {
    const { storedKey, current } = liveEntry(command.namespace, key, context);
    write(storedKey, current, { value, expiresAt, metadata: current?.metadata ?? null }, context);
  }
  return succeed(true);
}

function applyDeletePattern(command: CommandOf<"deletePattern">, context: WriteContext): Outcome<number> {
  const matcher = compileGlob(command.pattern, command.separator === undefined ? {} : { separator: command.separator });
  const victims = [...matchingEntries(context.state.store, command.namespace, matcher, context.now)];
  for (const entry of victims) context.state.store.remove(entry.storedKey);
  return succeed(victims.length);
}

function applyExpire(command: CommandOf<"expire">, context: WriteContext): Outcome<boolean> {
  const { storedKey, current } = liveEntry(command.namespace, command.key, context);
  if (current === undefined) return succeed(false);
  if (command.ttlMs <= 0) {
    context.state.store.remove(storedKey);
    return succeed(true);
  }
  write(storedKey, current, { ...current, expiresAt: context.now + command.ttlMs }, context);
  return succeed(true);
}

function applyPersist(command: CommandOf<"persist">, context: WriteContext): Outcome<boolean> {
  const { storedKey, current } = liveEntry(command.namespace, command.key, context);
  if (current?.expiresAt === null || current === undefined) return succeed(false);
  write(storedKey, current, { ...current, expiresAt: null }, context);
  return succeed(true);
}
