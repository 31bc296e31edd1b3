import { decode, encode } from "../engine/codec.js";
import type { Fence } from "../engine/commands.js";
import { isDecimal } from "../engine/decimal.js";
import type { LockResult } from "../engine/locks.js";
import type { EntryWithMeta, ScanPage } from "../engine/queries.js";
import type { SessionStamp } from "../engine/sessions.js";
import type { Decimal, Value, ValueMap } from "../engine/value.js";
import { KvError } from "../errors.js";
import { COMMAND } from "../server/protocol/commands.js";
import type { ClientCommandName, Consistency } from "../server/protocol/operations.js";
import { decodeErrorPayload, STATUS } from "../server/protocol/status.js";

/**
 * Typed request builders: each produces exactly the payload that the server's parseOperation
 * expects (the wire contract is the table in src/server/protocol/operations.ts), together with
 * the decoder of its result. Values stay engine Values here (Int as bigint, Map as Map);
 * friendlier JS shapes are the client library's business.
 */
export interface OperationRequest<Result> {
  readonly name: ClientCommandName;
  readonly code: number;
  readonly payload: Uint8Array;
  /** The typed result of an answer; an ERROR or INVALID answer throws the server's KvError. */
  decodeResult(response: OperationResponse): Result;
}

export interface OperationResponse {
  readonly status: number;
  readonly payload: Uint8Array;
}

export interface CommonOptions {
  readonly namespace?: string;
  /** How long the server may take; at most 120,000 ms. */
  readonly timeoutMs?: number;
}

export interface WriteOptions extends CommonOptions {
  /** Exactly-once: the session of the client and this write's number in it. */
  readonly session?: SessionStamp;
}

export interface ReadOptions extends CommonOptions {
  readonly consistency?: Consistency;
}

export interface KeyInput extends ReadOptions {
  readonly key: string;
}
export interface KeysInput extends ReadOptions {
  readonly keys: readonly string[];
}
export interface PatternInput extends ReadOptions {
  readonly pattern?: string;
  readonly separator?: string;
}
export interface ScanInput extends ReadOptions {
  readonly cursor?: string;
  readonly match?: string;
  readonly count?: number;
  readonly separator?: string;
}
/** `ttl` is in seconds, fractions allowed. */
export interface SetInput extends WriteOptions {
  readonly key: string;
  readonly value: Value;
  readonly ttl?: number;
  readonly nx?: boolean;
  readonly xx?: boolean;
  readonly ifVersion?: number;
  readonly metadata?: ValueMap;
  readonly fence?: Fence;
}
export interface SetnxInput extends WriteOptions {
  readonly key: string;
  readonly value: Value;
  readonly ttl?: number;
}
export interface SetMetadataInput extends WriteOptions {
  readonly key: string;
  readonly metadata: ValueMap;
}
export interface DeleteInput extends WriteOptions {
  readonly keys: readonly string[];
}
export interface IncrInput extends WriteOptions {
  readonly key: string;
  /** Default 1. */
  readonly delta?: bigint;
}
export interface IncrFloatInput extends WriteOptions {
  readonly key: string;
  readonly delta: number;
}
export interface IncrDecimalInput extends WriteOptions {
  readonly key: string;
  readonly delta: Decimal;
}
export interface AppendInput extends WriteOptions {
  readonly key: string;
  readonly value: Value;
}
export interface CasInput extends WriteOptions {
  readonly key: string;
  readonly expected: Value;
  readonly newValue: Value;
  readonly ttl?: number;
}
export interface MgetInput extends KeysInput {
  readonly strict?: boolean;
}
export interface MsetInput extends WriteOptions {
  readonly entries: readonly (readonly [string, Value])[];
  readonly ttl?: number;
}
export interface DeletePatternInput extends WriteOptions {
  readonly pattern: string;
  readonly separator?: string;
}
export interface ExpireInput extends WriteOptions {
  readonly key: string;
  /** Seconds; zero or less deletes the key. */
  readonly ttl: number;
}
export interface PersistInput extends WriteOptions {
  readonly key: string;
}
export interface StorageSizeInput extends ReadOptions {
  readonly keys?: readonly string[];
}
export interface LockInput extends WriteOptions {
  readonly name: string;
  readonly owner: string;
  /** Seconds. */
  readonly ttl: number;
}
export interface UnlockInput extends WriteOptions {
  readonly name: string;
  readonly owner: string;
}
export interface MemberChangeInput extends CommonOptions {
  readonly id: string;
  /** Go ahead even if the change could leave no reachable quorum or promotes a learner that is behind. */
  readonly force?: boolean;
}
export interface MemberAddInput extends MemberChangeInput {
  readonly address: string;
}
export interface SnapshotReadInput extends CommonOptions {
  readonly offset: number;
  readonly maxBytes?: number;
}
export interface TransferLeaderInput extends CommonOptions {
  /** The member to hand leadership to; absent lets the leader choose. */
  readonly to?: string;
}

export type StorageSize = { readonly total: number } | ReadonlyMap<string, number>;

export const requests = {
  get: (input: KeyInput) => orNull("get", input, asValue),
  getWithMeta: (input: KeyInput) => orNull("getWithMeta", input, asEntryWithMeta),
  getMetadata: (input: KeyInput) => orNull("getMetadata", input, asValueMap),
  exists: (input: KeyInput) => build("exists", input, asBoolean),
  ttl: (input: KeyInput) => build("ttl", input, asTtlSeconds),
  set: (input: SetInput) => build("set", input, asBoolean),
  setnx: (input: SetnxInput) => build("setnx", input, asBoolean),
  setMetadata: (input: SetMetadataInput) => build("setMetadata", input, asBoolean),
  delete: (input: DeleteInput) => build("delete", input, asCount),
  mdelete: (input: DeleteInput) => build("mdelete", input, asCount),
  incr: (input: IncrInput) => build("incr", input, asInt),
  decr: (input: IncrInput) => build("decr", input, asInt),
  incrFloat: (input: IncrFloatInput) => build("incrFloat", input, asFloat),
  incrDecimal: (input: IncrDecimalInput) => build("incrDecimal", input, asDecimal),
  append: (input: AppendInput) => build("append", input, asCount),
  cas: (input: CasInput) => build("cas", input, asBoolean),
  mget: (input: MgetInput) => build("mget", input, asValueMap),
  mset: (input: MsetInput) => build("mset", input, asBoolean),
  keys: (input: PatternInput = {}) => build("keys", input, asStringList),
  count: (input: PatternInput = {}) => build("count", input, asCount),
  getPattern: (input: PatternInput = {}) => build("getPattern", input, asValueMap),
  deletePattern: (input: DeletePatternInput) => build("deletePattern", input, asCount),
  scan: (input: ScanInput = {}) => build("scan", input, asScanPage),
  expire: (input: ExpireInput) => build("expire", input, asBoolean),
  persist: (input: PersistInput) => build("persist", input, asBoolean),
  storageSize: (input: StorageSizeInput = {}): OperationRequest<StorageSize> =>
    build<StorageSize>("storageSize", input, input.keys === undefined ? asStorageTotal : asSizesByKey),
  deleteExpired: (input: WriteOptions = {}) => build("deleteExpired", input, asCount),
  lock: (input: LockInput) => build("lock", input, asLockResult),
  extend: (input: LockInput) => build("extend", input, asBoolean),
  unlock: (input: UnlockInput) => build("unlock", input, asBoolean),
  registerSession: (input: CommonOptions = {}) => build("registerSession", input, asInt),
  ping: (input: CommonOptions = {}) => build("ping", input, asValue),
  info: (input: CommonOptions = {}) => build("info", input, asValue),
  clusterStatus: (input: CommonOptions = {}) => build("clusterStatus", input, asValue),
  memberAdd: (input: MemberAddInput) => build("memberAdd", input, asValue),
  memberRemove: (input: MemberChangeInput) => build("memberRemove", input, asValue),
  memberPromote: (input: MemberChangeInput) => build("memberPromote", input, asValue),
  transferLeader: (input: TransferLeaderInput = {}) => build("transferLeader", input, asValue),
  snapshotSave: (input: CommonOptions = {}) => build("snapshotSave", input, asValue),
  snapshotRead: (input: SnapshotReadInput) => build("snapshotRead", input, asValue),
};

/**
 * The payload is the input itself: builder inputs use the wire's field names, so the wire
 * contract has one spelling. Absent options are left out rather than sent as nil.
 */
function build<Result>(name: ClientCommandName, input: object, decodeData: (data: unknown) => Result): OperationRequest<Result> {
  return request(name, input, (response) => {
    if (response.status === STATUS.NULL) throw malformed(name, "a NULL answer");
    return decodeData(decode(response.payload));
  });
}

/** An operation whose "nothing" answer is the NULL status. */
function orNull<Result>(name: ClientCommandName, input: object, decodeData: (data: unknown) => Result): OperationRequest<Result | null> {
  return request(name, input, (response) => (response.status === STATUS.NULL ? null : decodeData(decode(response.payload))));
}

function request<Result>(name: ClientCommandName, input: object, decodeResult: (response: OperationResponse) => Result): OperationRequest<Result> {
  const fields = Object.fromEntries(Object.entries(input).filter(([, field]) => field !== undefined));
  return { name, code: COMMAND[name], payload: encode(fields), decodeResult: (response) => decodeResult(checkedResponse(response)) };
}

/** ERROR and INVALID answers become the server's KvError; any other unknown status is INVALID. */
function checkedResponse(response: OperationResponse): OperationResponse {
  if (response.status === STATUS.ERROR || response.status === STATUS.INVALID) throw decodeErrorPayload(response.payload);
  if (response.status !== STATUS.OK && response.status !== STATUS.NULL) throw new KvError("INVALID", `unknown response status ${response.status}`);
  return response;
}

function malformed(what: string, got: string): KvError {
  return new KvError("INVALID", `malformed ${what} result: got ${got}`);
}

// ---- result shapes --------------------------------------------------------------------------
// Responses come from another process, so each shape is checked; a wrong one is INVALID.

/**
 * A stored value, taken as the codec decoded it. Besides Value shapes the codec can only yield
 * `undefined` or a map with non-string keys, which no server writes; checking every value
 * again would cost a full walk of each answer.
 */
export function asValue(data: unknown): Value {
  return data as Value;
}

export function asBoolean(data: unknown): boolean {
  if (typeof data !== "boolean") throw malformed("boolean", typeof data);
  return data;
}

/** Counts and lengths: non-negative safe integers. */
export function asCount(data: unknown): number {
  if (typeof data !== "number" || !Number.isSafeInteger(data) || data < 0) throw malformed("count", String(data));
  return data;
}

export function asInt(data: unknown): bigint {
  if (typeof data !== "bigint") throw malformed("Int", typeof data);
  return data;
}

export function asFloat(data: unknown): number {
  if (typeof data !== "number") throw malformed("Float", typeof data);
  return data;
}

export function asDecimal(data: unknown): Decimal {
  if (!isDecimal(data)) throw malformed("Decimal", typeof data);
  return data;
}

/** ttl: remaining seconds, null for no TTL, -1 for a missing key. */
export function asTtlSeconds(data: unknown): number | null {
  return data === null ? null : asFloat(data);
}

export function asValueMap(data: unknown): ValueMap {
  if (!(data instanceof Map)) throw malformed("map", typeof data);
  return data as ValueMap;
}

export function asStringList(data: unknown): string[] {
  if (!Array.isArray(data) || !data.every((item) => typeof item === "string")) throw malformed("key list", typeof data);
  return data as string[];
}

export function asEntryWithMeta(data: unknown): EntryWithMeta {
  const fields = asValueMap(data);
  const metadata = fields.get("metadata") ?? null;
  const expiresAt = fields.get("expiresAt") ?? null;
  return {
    value: fields.get("value") ?? null,
    version: asCount(fields.get("version")),
    createVersion: asCount(fields.get("createVersion")),
    createdAt: asFloat(fields.get("createdAt")),
    updatedAt: asFloat(fields.get("updatedAt")),
    expiresAt: expiresAt === null ? null : asFloat(expiresAt),
    size: asCount(fields.get("size")),
    metadata: metadata === null ? null : asValueMap(metadata),
  };
}

export function asLockResult(data: unknown): LockResult {
  const fields = asValueMap(data);
  const token = fields.get("token") ?? null;
  return { acquired: asBoolean(fields.get("acquired")), token: token === null ? null : asInt(token) };
}

export function asScanPage(data: unknown): ScanPage {
  const fields = asValueMap(data);
  const cursor = fields.get("cursor");
  if (typeof cursor !== "string") throw malformed("scan cursor", typeof cursor);
  return { cursor, keys: asStringList(fields.get("keys")) };
}

/** storageSize without keys: `{ total }`. */
export function asStorageTotal(data: unknown): { readonly total: number } {
  return { total: asCount(asValueMap(data).get("total")) };
}

/** storageSize with keys: bytes of each key found. */
export function asSizesByKey(data: unknown): ReadonlyMap<string, number> {
  const sizes = asValueMap(data);
  for (const size of sizes.values()) asCount(size);
  return sizes as ReadonlyMap<string, number>;
}
