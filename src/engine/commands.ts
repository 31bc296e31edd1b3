import { KvError } from "../errors.js";
import { decode, encode } from "./codec.js";
import { checkDecimal, isDecimal } from "./decimal.js";
import { DEFAULT_LIMITS, type EngineLimits } from "./limits.js";
import type { SessionStamp } from "./sessions.js";
import { validateKey, validateName, validateValue } from "./validation.js";
import type { Decimal, Value, ValueMap } from "./value.js";

/**
 * Every write of SPEC §4 as plain data: what the leader proposes, the Raft log stores and every
 * replica applies. `namespace` confines keys, patterns and lock names ("" is the default).
 */
interface CommandBase {
  readonly namespace: string;
  readonly session?: SessionStamp;
}

export interface Fence {
  readonly lock: string;
  readonly token: bigint;
}

export type Command = CommandBase &
  (
    | {
        readonly type: "set";
        readonly key: string;
        readonly value: Value;
        readonly ttlMs?: number;
        readonly nx?: boolean;
        readonly xx?: boolean;
        /** Write only if the key's version equals this (0 = absent). */
        readonly ifVersion?: number;
        readonly metadata?: ValueMap;
        readonly fence?: Fence;
      }
    | { readonly type: "setMetadata"; readonly key: string; readonly metadata: ValueMap }
    | { readonly type: "delete" | "mdelete"; readonly keys: readonly string[] }
    | { readonly type: "incr"; readonly key: string; readonly delta: bigint }
    | { readonly type: "incrFloat"; readonly key: string; readonly delta: number }
    | { readonly type: "incrDecimal"; readonly key: string; readonly delta: Decimal }
    | { readonly type: "append"; readonly key: string; readonly value: Value }
    | { readonly type: "cas"; readonly key: string; readonly expected: Value; readonly newValue: Value; readonly ttlMs?: number }
    | { readonly type: "mset"; readonly entries: readonly (readonly [string, Value])[]; readonly ttlMs?: number }
    | { readonly type: "deletePattern"; readonly pattern: string; readonly separator?: string }
    /** `ttlMs <= 0` deletes the key, as in Redis. */
    | { readonly type: "expire"; readonly key: string; readonly ttlMs: number }
    | { readonly type: "persist"; readonly key: string }
    | { readonly type: "lock" | "extend"; readonly name: string; readonly owner: string; readonly ttlMs: number }
    | { readonly type: "unlock"; readonly name: string; readonly owner: string }
    /** Active expiry, proposed by the leader: purge up to `limit` expired keys (and locks). */
    | { readonly type: "purgeExpired"; readonly limit: number }
    /** Eviction, decided by the leader: delete these keys on every replica. */
    | { readonly type: "evict"; readonly targets: readonly EvictionTarget[] }
    | { readonly type: "registerSession" }
  );

export interface EvictionTarget {
  readonly namespace: string;
  readonly key: string;
}

export type CommandType = Command["type"];
export type CommandOf<T extends CommandType> = Extract<Command, { readonly type: T }>;

/** Most keys (or entries) one command may carry; more is TOO_LARGE. */
export const MAX_KEYS_PER_COMMAND = 100_000;
/** Longest TTL accepted (100 years): keeps `now + ttlMs` an exact, finite number. */
export const MAX_TTL_MS = 100 * 365.25 * 24 * 60 * 60 * 1000;
/** Most expired keys one purge command may remove, so one apply step stays short. */
export const MAX_PURGE_PER_COMMAND = 100_000;

/**
 * Log/wire form: a compact tuple `[code, namespace, session | null, ...fields]`, optional
 * fields as nil. Codes are part of the log format and must never change.
 */
const COMMAND_CODES = {
  set: 1,
  setMetadata: 2,
  delete: 3,
  mdelete: 4,
  incr: 5,
  incrFloat: 6,
  incrDecimal: 7,
  append: 8,
  cas: 9,
  mset: 10,
  deletePattern: 11,
  expire: 12,
  persist: 13,
  lock: 14,
  unlock: 15,
  extend: 16,
  purgeExpired: 17,
  evict: 18,
  registerSession: 19,
} as const satisfies Record<CommandType, number>;

const TYPE_BY_CODE = new Map<number, CommandType>(
  Object.entries(COMMAND_CODES).map(([type, code]) => [code, type as CommandType]),
);

export function encodeCommand(command: Command): Uint8Array {
  const session = command.session === undefined ? null : [command.session.clientId, command.session.sequence, command.session.acknowledged];
  return encode([COMMAND_CODES[command.type], command.namespace, session, ...commandFields(command)]);
}

function commandFields(command: Command): unknown[] {
  switch (command.type) {
    case "set":
      return [
        command.key,
        command.value,
        command.ttlMs ?? null,
        command.nx ?? false,
        command.xx ?? false,
        command.ifVersion ?? null,
        command.metadata ?? null,
        command.fence === undefined ? null : [command.fence.lock, command.fence.token],
      ];
    case "setMetadata":
      return [command.key, command.metadata];
    case "delete":
    case "mdelete":
      return [command.keys];
    case "incr":
    case "incrFloat":
    case "incrDecimal":
      return [command.key, command.delta];
    case "append":
      return [command.key, command.value];
    case "cas":
      return [command.key, command.expected, command.newValue, command.ttlMs ?? null];
    case "mset":
      return [command.entries, command.ttlMs ?? null];
    case "deletePattern":
      return [command.pattern, command.separator ?? null];
    case "expire":
      return [command.key, command.ttlMs];
    case "persist":
      return [command.key];
    case "lock":
    case "extend":
      return [command.name, command.owner, command.ttlMs];
    case "unlock":
      return [command.name, command.owner];
    case "purgeExpired":
      return [command.limit];
    case "evict":
      return [command.targets.map((target) => [target.namespace, target.key])];
    case "registerSession":
      return [];
  }
}

/**
 * Decodes and fully validates a command; this also guards the network edge. Malformed shape:
 * INVALID; bad key or name: KEY_INVALID; bad value: VALUE_INVALID or TOO_LARGE.
 */
export function decodeCommand(bytes: Uint8Array, limits: EngineLimits = DEFAULT_LIMITS): Command {
  const tuple = decode(bytes);
  if (!Array.isArray(tuple)) throw malformed("a command must be an array");
  const fields = new FieldReader(tuple, limits);
  const code = fields.safeInteger("command code");
  const type = TYPE_BY_CODE.get(code);
  if (type === undefined) throw malformed(`unknown command code ${code}`);
  const namespace = fields.namespace();
  const session = fields.optional(() => fields.session());
  const body = readCommandBody(type, fields);
  fields.end();
  return { ...body, namespace, ...(session === undefined ? {} : { session }) } as Command;
}

/** The type-specific part of a command (everything but namespace and session). */
type CommandBody = { readonly type: CommandType } & Record<string, unknown>;

function readCommandBody(type: CommandType, fields: FieldReader): CommandBody {
  switch (type) {
    case "set":
      return readSet(fields);
    case "setMetadata":
      return { type, key: fields.key(), metadata: fields.metadata() };
    case "delete":
    case "mdelete":
      return { type, keys: fields.list("keys", (item) => item.key()) };
    case "incr":
      return { type, key: fields.key(), delta: fields.int64("delta") };
    case "incrFloat":
      return { type, key: fields.key(), delta: fields.float("delta") };
    case "incrDecimal":
      return { type, key: fields.key(), delta: fields.decimal("delta") };
    case "append":
      return { type, key: fields.key(), value: fields.value() };
    case "cas":
      return defined({ type, key: fields.key(), expected: fields.value(), newValue: fields.value(), ttlMs: fields.optional(() => fields.ttlMs()) });
    case "mset":
      return defined({ type, entries: fields.list("entries", (item) => item.entry()), ttlMs: fields.optional(() => fields.ttlMs()) });
    case "deletePattern":
      // A bad pattern is refused at the edge (the server's request parser); one that reaches
      // the log anyway fails deterministically when applied.
      return defined({ type, pattern: fields.string("pattern"), separator: fields.optional(() => fields.string("separator")) });
    case "expire":
      return { type, key: fields.key(), ttlMs: fields.finite("ttlMs", -MAX_TTL_MS, MAX_TTL_MS) };
    case "persist":
      return { type, key: fields.key() };
    case "lock":
    case "extend":
      return { type, name: fields.name("lock name"), owner: fields.name("lock owner"), ttlMs: fields.ttlMs() };
    case "unlock":
      return { type, name: fields.name("lock name"), owner: fields.name("lock owner") };
    case "purgeExpired":
      return { type, limit: fields.count("limit", MAX_PURGE_PER_COMMAND) };
    case "evict":
      return { type, targets: fields.list("targets", (item) => item.evictionTarget()) };
    case "registerSession":
      return { type };
  }
}

function readSet(fields: FieldReader): CommandBody {
  const set = defined({
    type: "set" as const,
    key: fields.key(),
    value: fields.value(),
    ttlMs: fields.optional(() => fields.ttlMs()),
    nx: fields.boolean("nx") || undefined,
    xx: fields.boolean("xx") || undefined,
    ifVersion: fields.optional(() => fields.count("ifVersion", Number.MAX_SAFE_INTEGER, 0)),
    metadata: fields.optional(() => fields.metadata()),
    fence: fields.optional(() => fields.fence()),
  });
  if (set.nx === true && set.xx === true) throw malformed("set: nx and xx are mutually exclusive");
  return set;
}

/**
 * A copy without the undefined properties, so optional fields are absent
 * (exactOptionalPropertyTypes). Copying rather than `delete` keeps the object in V8's fast mode.
 */
function defined<T extends Record<string, unknown>>(object: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  const copy: Record<string, unknown> = {};
  for (const key in object) if (object[key] !== undefined) copy[key] = object[key];
  return copy as { [K in keyof T]: Exclude<T[K], undefined> };
}

/**
 * Decoded bytes are Buffer views into the decoded message; stored as they are, a 10-byte value
 * would keep a whole log entry alive. Copies them into their own Uint8Array (containers are
 * rebuilt only when something inside changed).
 */
function detachBytes(value: Value): Value {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) {
    const list = value as readonly Value[];
    const detached = list.map(detachBytes);
    return detached.some((element, index) => element !== list[index]) ? detached : list;
  }
  if (value instanceof Map) {
    let changed = false;
    const entries = [...value].map(([key, element]): [string, Value] => {
      const detachedElement = detachBytes(element);
      changed ||= detachedElement !== element;
      return [key, detachedElement];
    });
    return changed ? new Map(entries) : value;
  }
  return value;
}

/** A namespace follows the key rules, except that "" is the default namespace. */
export function validateNamespace(namespace: unknown, limits: EngineLimits = DEFAULT_LIMITS): string {
  return namespace === "" ? "" : validateName(namespace, "namespace", limits);
}

function malformed(message: string): KvError {
  return new KvError("INVALID", `malformed command: ${message}`);
}

/** Reads the positional fields of a decoded tuple, validating each as it goes. */
class FieldReader {
  private position = 0;

  constructor(
    private readonly fields: readonly unknown[],
    private readonly limits: EngineLimits,
  ) {}

  end(): void {
    if (this.position !== this.fields.length) throw malformed(`expected ${this.position} fields, got ${this.fields.length}`);
  }

  optional<T>(read: () => T): T | undefined {
    if (this.fields[this.position] !== null) return read();
    this.position++;
    return undefined;
  }

  key(): string {
    return validateKey(this.next("key"), this.limits);
  }

  name(what: string): string {
    return validateName(this.next(what), what, this.limits);
  }

  namespace(): string {
    return validateNamespace(this.next("namespace"), this.limits);
  }

  value(): Value {
    const value = this.next("value");
    if (value === undefined) throw new KvError("VALUE_INVALID", "undefined is not a storable value");
    return detachBytes(validateValue(value, this.limits));
  }

  metadata(): ValueMap {
    const metadata = this.value();
    if (!(metadata instanceof Map)) throw new KvError("VALUE_INVALID", "metadata must be a map");
    return metadata;
  }

  entry(): readonly [string, Value] {
    const pair = this.next("entry");
    if (!Array.isArray(pair) || pair.length !== 2) throw malformed("an mset entry must be a [key, value] pair");
    const reader = new FieldReader(pair, this.limits);
    return [reader.key(), reader.value()];
  }

  evictionTarget(): EvictionTarget {
    const pair = this.next("target");
    if (!Array.isArray(pair) || pair.length !== 2) throw malformed("an eviction target must be a [namespace, key] pair");
    const reader = new FieldReader(pair, this.limits);
    return { namespace: reader.namespace(), key: reader.key() };
  }

  fence(): Fence {
    const pair = this.next("fence");
    if (!Array.isArray(pair) || pair.length !== 2) throw malformed("fence must be a [lock, token] pair");
    const reader = new FieldReader(pair, this.limits);
    return { lock: reader.name("lock name"), token: reader.int64("fence token") };
  }

  session(): SessionStamp {
    const stamp = this.next("session");
    if (!Array.isArray(stamp) || stamp.length !== 3) throw malformed("session must be [clientId, sequence, acknowledged]");
    const reader = new FieldReader(stamp, this.limits);
    const clientId = reader.int64("session clientId");
    const sequence = reader.count("session sequence", Number.MAX_SAFE_INTEGER);
    const acknowledged = reader.count("session acknowledged", sequence - 1, 0);
    return { clientId, sequence, acknowledged };
  }

  list<T>(what: string, readItem: (item: FieldReader) => T): T[] {
    const items = this.next(what);
    if (!Array.isArray(items)) throw malformed(`${what} must be an array`);
    if (items.length > MAX_KEYS_PER_COMMAND) {
      throw new KvError("TOO_LARGE", `${what}: ${items.length} items; at most ${MAX_KEYS_PER_COMMAND} per command`);
    }
    const reader = new FieldReader(items, this.limits);
    return items.map(() => readItem(reader));
  }

  string(what: string): string {
    const text = this.next(what);
    if (typeof text !== "string") throw malformed(`${what} must be a string`);
    return text;
  }

  boolean(what: string): boolean {
    const flag = this.next(what);
    if (typeof flag !== "boolean") throw malformed(`${what} must be a boolean`);
    return flag;
  }

  safeInteger(what: string): number {
    const number = this.next(what);
    if (typeof number !== "number" || !Number.isSafeInteger(number)) throw malformed(`${what} must be an integer`);
    return number;
  }

  /** An integer in [minimum, maximum]. */
  count(what: string, maximum: number, minimum = 1): number {
    const number = this.safeInteger(what);
    if (number < minimum || number > maximum) {
      throw new KvError("VALUE_INVALID", `${what} must be between ${minimum} and ${maximum}, got ${number}`);
    }
    return number;
  }

  finite(what: string, minimum: number, maximum: number): number {
    const number = this.next(what);
    if (typeof number !== "number" || !Number.isFinite(number)) throw malformed(`${what} must be a finite number`);
    if (number < minimum || number > maximum) throw new KvError("VALUE_INVALID", `${what} ${number} is out of range`);
    return number;
  }

  ttlMs(): number {
    const ttlMs = this.finite("ttlMs", -MAX_TTL_MS, MAX_TTL_MS);
    if (ttlMs <= 0) throw new KvError("VALUE_INVALID", `ttlMs must be positive, got ${ttlMs}`);
    return ttlMs;
  }

  float(what: string): number {
    const number = this.next(what);
    if (typeof number !== "number") throw new KvError("VALUE_INVALID", `${what} must be a Float`);
    return number;
  }

  /** An Int; a safe-integer number is accepted too, since other msgpack writers use small ints. */
  int64(what: string): bigint {
    const number = this.next(what);
    if (typeof number === "number" && Number.isSafeInteger(number)) return BigInt(number);
    if (typeof number !== "bigint") throw new KvError("VALUE_INVALID", `${what} must be an Int`);
    return validateValue(number, this.limits) as bigint;
  }

  decimal(what: string): Decimal {
    const number = this.next(what);
    if (!isDecimal(number)) throw new KvError("VALUE_INVALID", `${what} must be a Decimal`);
    return checkDecimal(number);
  }

  private next(what: string): unknown {
    if (this.position >= this.fields.length) throw malformed(`missing ${what}`);
    return this.fields[this.position++];
  }
}
