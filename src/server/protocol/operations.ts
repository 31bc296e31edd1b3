import { encode } from "../../engine/codec.js";
import { decodeCommand, encodeCommand, MAX_PURGE_PER_COMMAND, validateNamespace, type Command, type CommandOf } from "../../engine/commands.js";
import type { EngineLimits } from "../../engine/limits.js";
import { fail, type Outcome } from "../../engine/outcome.js";
import type { Query } from "../../engine/queries.js";
import type { SessionStamp } from "../../engine/sessions.js";
import { validateKey } from "../../engine/validation.js";
import type { Value } from "../../engine/value.js";
import { KvError } from "../../errors.js";
import { compileGlob } from "../../engine/glob.js";
import type { ServerResponse } from "../connection.js";
import { commandByCode, isPeerCommand, type CommandName } from "./commands.js";
import { PayloadFields } from "./payload.js";
import { EMPTY_PAYLOAD, encodeErrorPayload, STATUS } from "./status.js";

/**
 * The operation layer: a client request payload becomes an engine Command (a write, through the
 * log) or Query (a read), or a node-level operation; an Outcome becomes a response.
 *
 * Wire contract (msgpack maps; `?` = optional, absent or nil; src/client/requests.ts builds them):
 *
 * | operation | payload fields | result (OK unless noted) |
 * |---|---|---|
 * | every request | timeoutMs? (integer ms, 1..120000), namespace? (string, default "") | |
 * | every write | session? { clientId: Int, sequence, acknowledged } | |
 * | every read | consistency? ("linearizable" default, or "serializable") | |
 * | get | key | value; NULL when missing |
 * | getWithMeta | key | map { value, version, createVersion, createdAt, updatedAt, expiresAt, size, metadata }; NULL when missing |
 * | getMetadata | key | map; NULL when missing |
 * | exists | key | bool |
 * | ttl | key | seconds (float), nil without TTL, -1 when missing |
 * | set | key, value, ttl?, nx?, xx?, ifVersion?, metadata? (map), fence? { lock, token } | bool |
 * | setnx | key, value, ttl? | bool |
 * | setMetadata | key, metadata (map) | bool |
 * | delete, mdelete | keys (list of strings) | count deleted |
 * | incr, decr | key, delta? (Int, default 1) | new Int |
 * | incrFloat | key, delta (Float) | new Float |
 * | incrDecimal | key, delta (Decimal) | new Decimal |
 * | append | key, value | new length |
 * | cas | key, expected, newValue, ttl? | bool |
 * | mget | keys, strict? | map of found keys; strict: ERROR NOT_FOUND with `keys` |
 * | mset | entries (list of [key, value]), ttl? | true |
 * | keys, count, getPattern | pattern? (default "*"), separator? | sorted keys / count / map |
 * | deletePattern | pattern, separator? | count deleted |
 * | scan | cursor? (string), match?, count?, separator? | map { cursor, keys } |
 * | expire | key, ttl (<= 0 deletes the key) | bool |
 * | persist | key | bool |
 * | storageSize | keys? | map { total } without keys, else map key -> bytes |
 * | deleteExpired | (none) | count purged |
 * | lock, extend | name, owner, ttl | lock: map { acquired, token }; extend: bool |
 * | unlock | name, owner | bool |
 * | registerSession | (none) | clientId (Int) |
 * | ping, info, clusterStatus, snapshotSave | (none) | defined by the node |
 * | memberAdd | id, address, force? (bool) | defined by the node |
 * | memberRemove | id, force? (bool) | defined by the node |
 * | memberPromote | id (a learner), force? (bool) | defined by the node |
 * | transferLeader | to? (node id) | defined by the node |
 * | snapshotRead | offset, maxBytes? | map { name, sizeBytes, index, data (bytes from offset) } of the newest snapshot file |
 *
 * TTLs travel in seconds (float allowed, SPEC §4) and become whole milliseconds, rounded up so
 * a TTL is never shorter than asked. A failed outcome is ERROR `{ code, message, keys? }`.
 *
 * Error codes: a request whose shape is wrong (not a map, a missing or mistyped field, an
 * unknown code) is INVALID, and the server closes the connection; a bad key or name is
 * KEY_INVALID, a bad value or option VALUE_INVALID or TOO_LARGE, and the connection stays open.
 * Keys, values and every command field are validated by the engine's own decodeCommand. Glob
 * patterns and scan cursors are checked where they are used, by the engine: a malformed one is
 * an ERROR response with code INVALID, and the connection stays open.
 */
export type Operation =
  | { readonly kind: "write"; readonly command: Command }
  | { readonly kind: "read"; readonly query: Query; readonly consistency: Consistency }
  | { readonly kind: "ping" }
  | { readonly kind: "info" }
  | { readonly kind: "clusterStatus" }
  /** `force` skips the checks that the change keeps a reachable quorum and promotes a caught-up learner. */
  | { readonly kind: "memberAdd"; readonly id: string; readonly address: string; readonly force: boolean }
  | { readonly kind: "memberRemove"; readonly id: string; readonly force: boolean }
  | { readonly kind: "memberPromote"; readonly id: string; readonly force: boolean }
  | { readonly kind: "transferLeader"; readonly to: string | null }
  | { readonly kind: "snapshotSave" }
  | { readonly kind: "snapshotRead"; readonly offset: number; readonly maxBytes: number }
  /**
   * A well-formed request whose argument the engine refuses with INVALID (a malformed glob
   * pattern): answered ERROR on a connection that stays open, unlike a malformed request.
   */
  | { readonly kind: "rejected"; readonly error: KvError };

/** A parsed request: the operation and how long the caller will wait (absent: the server's default). */
export interface ParsedRequest {
  readonly operation: Operation;
  readonly timeoutMs?: number;
}

export type Consistency = "linearizable" | "serializable";

/** Commands a client may send; peer commands are served by the listener, never here. */
export type ClientCommandName = Exclude<CommandName, "handshake" | "handshakeProof" | "raftMessages">;

/** Bounds of a request's own timeout. */
export const MIN_REQUEST_TIMEOUT_MS = 1;
export const MAX_REQUEST_TIMEOUT_MS = 120_000;

/** Operations whose "nothing" answer (a missing key) is the NULL status rather than a value. */
const NULL_WHEN_ABSENT: ReadonlySet<string> = new Set<CommandName>(["get", "getWithMeta", "getMetadata"]);

const INT64_MIN = -(2n ** 63n);

export function parseOperation(code: number, payload: Uint8Array, limits: EngineLimits): ParsedRequest {
  const definition = isPeerCommand(code) ? undefined : commandByCode(code);
  if (definition === undefined) throw new KvError("INVALID", `unknown command code 0x${code.toString(16)}`);
  const request = new RequestFields(PayloadFields.decode(payload), limits);
  const operation = PARSERS[definition.name as ClientCommandName](request);
  const timeoutMs = request.timeoutMs();
  return timeoutMs === undefined ? { operation } : { operation, timeoutMs };
}

/** The response for the outcome of the operation named `operationName` (see COMMANDS). */
/** The failed outcome of a `rejected` operation, answered like any other refusal. */
export function rejection(error: KvError): Outcome<never> {
  return fail(error.code, error.message, error.details.keys);
}

export function renderOutcome(operationName: string, outcome: Outcome<unknown>): ServerResponse {
  if (!outcome.ok) {
    const { code, message, keys } = outcome.error;
    return { status: STATUS.ERROR, payload: encodeErrorPayload(new KvError(code, message, keys === undefined ? {} : { keys })) };
  }
  if (outcome.value === null && NULL_WHEN_ABSENT.has(operationName)) return { status: STATUS.NULL, payload: EMPTY_PAYLOAD };
  return { status: STATUS.OK, payload: encode(outcome.value) };
}

type Parser = (request: RequestFields) => Operation;

const PARSERS: Readonly<Record<ClientCommandName, Parser>> = {
  get: (request) => request.keyQuery("get"),
  getWithMeta: (request) => request.keyQuery("getWithMeta"),
  getMetadata: (request) => request.keyQuery("getMetadata"),
  exists: (request) => request.keyQuery("exists"),
  ttl: (request) => request.keyQuery("ttl"),
  set: parseSet,
  setnx: (request) => request.write({ type: "set", key: request.key(), value: request.value("value"), nx: true, ttlMs: request.ttlMs() }),
  setMetadata: (request) => request.write({ type: "setMetadata", key: request.key(), metadata: request.value("metadata") as Map<string, Value> }),
  delete: (request) => request.write({ type: "delete", keys: request.fields.stringList("keys") }),
  mdelete: (request) => request.write({ type: "mdelete", keys: request.fields.stringList("keys") }),
  incr: (request) => parseIncrement(request, false),
  decr: (request) => parseIncrement(request, true),
  incrFloat: (request) => request.write({ type: "incrFloat", key: request.key(), delta: request.value("delta") as number }),
  incrDecimal: (request) => request.write({ type: "incrDecimal", key: request.key(), delta: request.value("delta") as CommandOf<"incrDecimal">["delta"] }),
  append: (request) => request.write({ type: "append", key: request.key(), value: request.value("value") }),
  cas: (request) =>
    request.write({ type: "cas", key: request.key(), expected: request.value("expected"), newValue: request.value("newValue"), ttlMs: request.ttlMs() }),
  mset: (request) => request.write({ type: "mset", entries: request.entries(), ttlMs: request.ttlMs() }),
  mget: (request) => request.read({ type: "mget", keys: request.keys("keys"), ...optional("strict", request.fields.optionalBoolean("strict")) }),
  keys: (request) => request.patternQuery("keys"),
  count: (request) => request.patternQuery("count"),
  getPattern: (request) => request.patternQuery("getPattern"),
  deletePattern: parseDeletePattern,
  scan: parseScan,
  expire: (request) => request.write({ type: "expire", key: request.key(), ttlMs: expireMilliseconds(request.fields.number("ttl")) }),
  persist: (request) => request.write({ type: "persist", key: request.key() }),
  storageSize: (request) => request.read({ type: "storageSize", ...optional("keys", request.fields.has("keys") ? request.keys("keys") : undefined) }),
  deleteExpired: (request) => request.write({ type: "purgeExpired", limit: MAX_PURGE_PER_COMMAND }),
  lock: (request) => request.write({ type: "lock", name: request.fields.string("name"), owner: request.fields.string("owner"), ttlMs: request.requiredTtlMs() }),
  extend: (request) => request.write({ type: "extend", name: request.fields.string("name"), owner: request.fields.string("owner"), ttlMs: request.requiredTtlMs() }),
  unlock: (request) => request.write({ type: "unlock", name: request.fields.string("name"), owner: request.fields.string("owner") }),
  registerSession: (request) => request.write({ type: "registerSession" }),
  ping: () => ({ kind: "ping" }),
  info: () => ({ kind: "info" }),
  clusterStatus: () => ({ kind: "clusterStatus" }),
  memberAdd: (request) => ({ kind: "memberAdd", id: request.nonEmpty("id"), address: request.nonEmpty("address"), force: request.force() }),
  memberRemove: (request) => ({ kind: "memberRemove", id: request.nonEmpty("id"), force: request.force() }),
  memberPromote: (request) => ({ kind: "memberPromote", id: request.nonEmpty("id"), force: request.force() }),
  transferLeader: (request) => ({ kind: "transferLeader", to: request.fields.has("to") ? request.nonEmpty("to") : null }),
  snapshotSave: () => ({ kind: "snapshotSave" }),
  snapshotRead: (request) => ({ kind: "snapshotRead", offset: request.fields.integer("offset"), maxBytes: snapshotReadBytes(request.fields.optionalInteger("maxBytes")) }),
};

/** Bytes one snapshotRead returns at most: a frame stays far below the 64 MiB limit. */
export const MAX_SNAPSHOT_READ_BYTES = 4 * 1024 * 1024;

function snapshotReadBytes(maxBytes: number | undefined): number {
  if (maxBytes === undefined) return MAX_SNAPSHOT_READ_BYTES;
  if (maxBytes < 1) throw new KvError("INVALID", "maxBytes must be positive");
  return Math.min(maxBytes, MAX_SNAPSHOT_READ_BYTES);
}

function parseSet(request: RequestFields): Operation {
  const { fields } = request;
  const fence = fields.optionalFieldsOf("fence");
  return request.write({
    type: "set",
    key: request.key(),
    value: request.value("value"),
    ttlMs: request.ttlMs(),
    nx: fields.optionalBoolean("nx"),
    xx: fields.optionalBoolean("xx"),
    ifVersion: fields.optionalInteger("ifVersion"),
    metadata: fields.has("metadata") ? (request.value("metadata") as Map<string, Value>) : undefined,
    fence: fence === undefined ? undefined : { lock: fence.string("lock"), token: fence.bigint("token") },
  });
}

/** decr is incr of the negated delta; only i64 min has no negation within signed 64-bit. */
function parseIncrement(request: RequestFields, negate: boolean): Operation {
  const delta = request.fields.has("delta") ? request.value("delta") : 1n;
  const operation = request.write({ type: "incr", key: request.key(), delta: delta as bigint });
  if (!negate) return operation;
  const command = operation.command as CommandOf<"incr">;
  if (command.delta === INT64_MIN) throw new KvError("OVERFLOW", `decr by ${command.delta} is outside signed 64-bit`);
  return { kind: "write", command: { ...command, delta: -command.delta } };
}

/**
 * A malformed pattern is refused here, before it reaches the log, as an answer on a connection
 * that stays open: the request itself is well formed.
 */
function parseDeletePattern(request: RequestFields): Operation {
  const pattern = request.fields.string("pattern");
  const separator = request.fields.optionalString("separator");
  try {
    compileGlob(pattern, separator === undefined ? {} : { separator });
  } catch (error) {
    if (error instanceof KvError) return { kind: "rejected", error };
    throw error;
  }
  return request.write({ type: "deletePattern", pattern, separator });
}

function parseScan(request: RequestFields): Operation {
  const { fields } = request;
  return request.read({
    type: "scan",
    ...optional("cursor", fields.optionalString("cursor")),
    ...optional("match", fields.optionalString("match")),
    ...optional("count", fields.optionalInteger("count")),
    ...request.separator(),
  });
}

/** Whole milliseconds of a positive TTL in seconds. */
function ttlMilliseconds(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds <= 0) throw new KvError("VALUE_INVALID", `ttl must be a positive number of seconds, got ${seconds}`);
  return millisecondsOf(seconds);
}

/** expire: as in Redis, a TTL of zero or less deletes the key (sent as 0). */
function expireMilliseconds(seconds: number): number {
  if (!Number.isFinite(seconds)) throw new KvError("VALUE_INVALID", `ttl must be a finite number of seconds, got ${seconds}`);
  return seconds <= 0 ? 0 : millisecondsOf(seconds);
}

/**
 * Rounded up, so a TTL is never shorter than asked. A decimal such as 1.1 s is not exact in
 * binary (1.1 * 1000 = 1100.0000000000002), so the product is first read at the 15 significant
 * digits a double holds reliably: 1.1 s is 1100 ms, not 1101.
 */
function millisecondsOf(seconds: number): number {
  return Math.ceil(Number((seconds * 1000).toPrecision(15)));
}

/** `{ [name]: value }`, or nothing when the value is absent (exactOptionalPropertyTypes). */
function optional<Name extends string, T>(name: Name, value: T | undefined): { readonly [K in Name]?: T } {
  return (value === undefined ? {} : { [name]: value }) as { readonly [K in Name]?: T };
}

/**
 * A Command without the common fields, as a parser builds it: an optional field may be
 * undefined, which encodeCommand writes as nil (absent). Building plain literals keeps the hot
 * write path free of conditional spreads.
 */
type CommandBody = Command extends infer Each ? (Each extends Command ? Draft<Omit<Each, "namespace" | "session">> : never) : never;
type OptionalKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];
type Draft<T> = Omit<T, OptionalKeys<T>> & { readonly [K in OptionalKeys<T>]?: T[K] | undefined };
type QueryBody = Query extends infer Each ? (Each extends Query ? Omit<Each, "namespace"> : never) : never;

/** A payload with its limits: the common fields and the typed readers the parsers share. */
class RequestFields {
  constructor(
    readonly fields: PayloadFields,
    private readonly limits: EngineLimits,
  ) {}

  /**
   * Completes a write with the common fields and validates it with the engine's own decoder,
   * the one validation of every command field (keys, values, names, ranges, list sizes).
   * Fields typed `Value` here are unchecked until then.
   */
  write(body: CommandBody): Extract<Operation, { readonly kind: "write" }> {
    const candidate = { ...body, namespace: this.namespace(), session: this.session() } as Command;
    return { kind: "write", command: decodeCommand(encodeCommand(candidate), this.limits) };
  }

  read(body: QueryBody): Operation {
    const query = { ...body, namespace: validateNamespace(this.namespace(), this.limits) } as Query;
    return { kind: "read", query, consistency: this.consistency() };
  }

  keyQuery(type: "get" | "getWithMeta" | "getMetadata" | "exists" | "ttl"): Operation {
    return this.read({ type, key: validateKey(this.key(), this.limits) });
  }

  patternQuery(type: "keys" | "count" | "getPattern"): Operation {
    return this.read({ type, pattern: this.fields.optionalString("pattern") ?? "*", ...this.separator() });
  }

  key(): string {
    return this.fields.string("key");
  }

  /** Keys of a read, validated here so a bad key fails before any read index is taken. */
  keys(name: string): string[] {
    return this.fields.stringList(name).map((key) => validateKey(key, this.limits));
  }

  /** A stored value, handed to the engine as it came: `value: nil` is the Null value. */
  value(name: string): Value {
    return this.fields.requiredValue(name) as Value;
  }

  entries(): (readonly [string, Value])[] {
    const entries = this.fields.requiredValue("entries");
    if (!Array.isArray(entries)) throw new KvError("INVALID", `field "entries" must be a list of [key, value] pairs`);
    for (const entry of entries) {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string") {
        throw new KvError("INVALID", `field "entries" must hold [key, value] pairs with string keys`);
      }
    }
    return entries as (readonly [string, Value])[];
  }

  /** The optional `ttl` seconds as milliseconds. */
  ttlMs(): number | undefined {
    return this.fields.has("ttl") ? this.requiredTtlMs() : undefined;
  }

  requiredTtlMs(): number {
    return ttlMilliseconds(this.fields.number("ttl"));
  }

  separator(): { readonly separator?: string } {
    return optional("separator", this.fields.optionalString("separator"));
  }

  nonEmpty(name: string): string {
    const text = this.fields.string(name);
    if (text.length === 0) throw new KvError("VALUE_INVALID", `${name} must not be empty`);
    return text;
  }

  /** A membership change's `force` flag (absent: false). */
  force(): boolean {
    return this.fields.optionalBoolean("force") === true;
  }

  timeoutMs(): number | undefined {
    const timeoutMs = this.fields.optionalInteger("timeoutMs");
    if (timeoutMs !== undefined && (timeoutMs < MIN_REQUEST_TIMEOUT_MS || timeoutMs > MAX_REQUEST_TIMEOUT_MS)) {
      throw new KvError("VALUE_INVALID", `timeoutMs must be between ${MIN_REQUEST_TIMEOUT_MS} and ${MAX_REQUEST_TIMEOUT_MS}, got ${timeoutMs}`);
    }
    return timeoutMs;
  }

  private namespace(): string {
    return this.fields.optionalString("namespace") ?? "";
  }

  private session(): SessionStamp | undefined {
    const session = this.fields.optionalFieldsOf("session");
    if (session === undefined) return undefined;
    return { clientId: session.bigint("clientId"), sequence: session.integer("sequence"), acknowledged: session.integer("acknowledged") };
  }

  private consistency(): Consistency {
    const consistency = this.fields.optionalString("consistency") ?? "linearizable";
    if (consistency !== "linearizable" && consistency !== "serializable") {
      throw new KvError("INVALID", `consistency must be "linearizable" or "serializable", got "${consistency}"`);
    }
    return consistency;
  }
}
