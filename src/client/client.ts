import { validateNamespace } from "../engine/commands.js";
import { DEFAULT_LIMITS, type EngineLimits } from "../engine/limits.js";
import { validateKey, validateName } from "../engine/validation.js";
import { Decimal, type Value, type ValueMap } from "../engine/value.js";
import { ClientCore, type AttemptFields, type CallOptions, type CallSpec, type ClientSettings } from "./calls.js";
import { memberStatusOf, membershipOf, unreachableMember, type ClusterMemberStatus, type MembershipView } from "./cluster-status.js";
import { parseConnectionString } from "./connection-string.js";
import type { Route } from "./router.js";
import { KvProtocolError, KvValueError, toClientError } from "./errors.js";
import { Lock, type LockWaitOptions } from "./lock.js";
import { requests, type KeyInput, type OperationRequest } from "./requests.js";
import { fromEngineInt, fromEngineMap, fromEngineValue, numberToValue, toEngineMap, toEngineValue, type IntMode, type JsObject, type JsValue } from "./values.js";

export type { CallOptions } from "./calls.js";

export interface KvClientOptions {
  /** Int results: a number when it is a safe integer ("auto", the default), or always a bigint. */
  readonly ints?: IntMode;
  /** Deadline of each call, retries included (default 10,000 ms). */
  readonly timeoutMs?: number;
  /** Default consistency of reads (default "linearizable"). */
  readonly consistency?: "linearizable" | "serializable";
  /** Connections per node, each pipelined (default 2). */
  readonly connectionsPerNode?: number;
  /** Calls in flight across the client (default 1024); one more fails at once with KvBusyError. */
  readonly maxInFlight?: number;
  /** Aborts every call of the client. */
  readonly signal?: AbortSignal;
  /** The servers' limits when they are not the defaults (`--max-key-length`, `--max-value-bytes`). */
  readonly limits?: Partial<EngineLimits>;
}

export interface ReadOptions extends CallOptions {
  readonly consistency?: "linearizable" | "serializable";
}

export interface SetOptions extends CallOptions {
  /** Seconds, fractions allowed. */
  readonly ttl?: number;
  /** Only if the key is absent. */
  readonly nx?: boolean;
  /** Only if the key is present. */
  readonly xx?: boolean;
  /** Only if the key's version is this one (0: absent). */
  readonly ifVersion?: number;
  readonly metadata?: Record<string, JsValue> | Map<string, JsValue>;
  /** Rejected with KvFencedError unless `token` is the lock's current fencing token. */
  readonly fence?: { readonly lock: string; readonly token: bigint };
}

export interface TtlOptions extends CallOptions {
  /** Seconds, fractions allowed. */
  readonly ttl?: number;
}

export interface MgetOptions extends ReadOptions {
  /** Fail with KvNotFoundError (missing keys in `details.keys`) unless every key is found. */
  readonly strict?: boolean;
}

export interface PatternOptions extends ReadOptions {
  /** With a separator (e.g. "."), `*` and `?` stop at it and only `**` crosses it. */
  readonly separator?: string;
}

export interface DeletePatternOptions extends CallOptions {
  readonly separator?: string;
}

export interface ScanOptions extends PatternOptions {
  readonly match?: string;
  /** Keys per page, a hint. */
  readonly count?: number;
  /** "0" or absent starts; the answer's cursor continues; "0" back means done. */
  readonly cursor?: string;
}

export type ScanIteratorOptions = Omit<ScanOptions, "cursor">;

/**
 * Options of a membership change. `force` lets the leader go ahead with a change that could leave
 * the voters without a quorum among the members it hears from, or promote a learner that is
 * behind the commit index; without it such a change is refused at once (VALUE_INVALID).
 */
export interface MemberChangeOptions extends CallOptions {
  readonly force?: boolean;
}

export interface EntryWithMeta {
  readonly value: JsValue;
  readonly version: number;
  readonly createVersion: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number | null;
  readonly size: number;
  readonly metadata: JsObject | null;
}

/** A piece of a snapshot file as `snapshotRead` returns it. */
export interface SnapshotFileSlice {
  /** The file's name, e.g. `snapshot-<index>-<term>.snap`. */
  readonly name: string;
  /** The log index the snapshot covers. */
  readonly index: number;
  /** The whole file's size. */
  readonly sizeBytes: number;
  readonly data: Uint8Array;
}

export interface WithLockOptions extends LockWaitOptions {
  /** Extend the lock every ttl/3 while `fn` runs. */
  readonly autoExtend?: boolean;
}

const DEFAULT_SETTINGS = Object.freeze({
  ints: "auto" as IntMode,
  timeoutMs: 10_000,
  consistency: "linearizable" as const,
  connectionsPerNode: 2,
  // The server keeps at most 1024 unacknowledged results per session (engine/sessions.ts).
  maxInFlight: 1024,
});

/**
 * The cluster-aware client (SPEC §7). Every method validates and converts at the edge, then
 * sends through the shared core: writes and linearizable reads to the leader, retried safely
 * (exactly-once sessions) within the call's deadline. `namespace(name)` returns a view that
 * shares connections and session; closing any view closes the client.
 */
export class KvClient implements AsyncDisposable {
  private constructor(
    private readonly core: ClientCore,
    /** This view's namespace; "" is the default one. */
    readonly namespaceName: string,
  ) {}

  /** Connects to "kv://a:7001,b:7002/ns" (or "127.0.0.1:6380"): learns the members and the leader. */
  static async connect(connection: string, options: KvClientOptions = {}): Promise<KvClient> {
    const { target, settings } = mapErrors(() => ({ target: parseConnectionString(connection), settings: settingsOf(options) }));
    const core = new ClientCore(settings, target.seeds);
    const client = new KvClient(core, mapErrors(() => validateNamespace(target.namespace, settings.limits)));
    try {
      await client.refreshMembers();
    } catch (error) {
      core.close();
      throw error;
    }
    return client;
  }

  /** A view confined to namespace `name` (absolute, not nested; "" is the default namespace). */
  namespace(name: string): KvClient {
    return new KvClient(this.core, mapErrors(() => validateNamespace(name, this.limits)));
  }

  // ---- reads ----------------------------------------------------------------------------

  get(key: string, options: ReadOptions = {}): Promise<JsValue | null> {
    return this.read(options, this.keyed(key, requests.get), (value) => (value === null ? null : this.toJs(value)));
  }

  getWithMeta(key: string, options: ReadOptions = {}): Promise<EntryWithMeta | null> {
    return this.read(
      options,
      this.keyed(key, requests.getWithMeta),
      (entry) => (entry === null ? null : { ...entry, value: this.toJs(entry.value), metadata: entry.metadata === null ? null : fromEngineMap(entry.metadata, this.ints) }),
    );
  }

  getMetadata(key: string, options: ReadOptions = {}): Promise<JsObject | null> {
    return this.read(options, this.keyed(key, requests.getMetadata), (map) => (map === null ? null : fromEngineMap(map, this.ints)));
  }

  exists(key: string, options: ReadOptions = {}): Promise<boolean> {
    return this.read(options, this.keyed(key, requests.exists), same);
  }

  /** Remaining seconds; null when the key has no TTL; -1 when it is missing or expired. */
  ttl(key: string, options: ReadOptions = {}): Promise<number | null> {
    return this.read(options, this.keyed(key, requests.ttl), same);
  }

  /** The found keys and their values; `strict` fails with KvNotFoundError listing the missing. */
  mget(keys: readonly string[], options: MgetOptions = {}): Promise<JsObject> {
    const prepare = (): Builder<ValueMap> => {
      const input = { keys: this.keyList(keys), ...optional("strict", options.strict) };
      return (fields) => requests.mget({ ...fields, ...input });
    };
    return this.read(options, prepare, (map) => fromEngineMap(map, this.ints));
  }

  /** Matching keys, sorted. */
  keys(pattern = "*", options: PatternOptions = {}): Promise<string[]> {
    return this.read(options, () => (fields) => requests.keys({ ...fields, pattern, ...optional("separator", options.separator) }), same);
  }

  count(pattern = "*", options: PatternOptions = {}): Promise<number> {
    return this.read(options, () => (fields) => requests.count({ ...fields, pattern, ...optional("separator", options.separator) }), same);
  }

  getPattern(pattern: string, options: PatternOptions = {}): Promise<JsObject> {
    return this.read(options, () => (fields) => requests.getPattern({ ...fields, pattern, ...optional("separator", options.separator) }), (map) => fromEngineMap(map, this.ints));
  }

  scan(options: ScanOptions = {}): Promise<{ cursor: string; keys: string[] }> {
    const { match, count, cursor, separator } = options;
    return this.read(
      options,
      () => (fields) => requests.scan({ ...fields, ...optional("match", match), ...optional("count", count), ...optional("cursor", cursor), ...optional("separator", separator) }),
      (page) => ({ cursor: page.cursor, keys: [...page.keys] }),
    );
  }

  /** Every matching key, page by page (each page one scan call). */
  async *scanIterator(options: ScanIteratorOptions = {}): AsyncIterableIterator<string> {
    let cursor = "0";
    do {
      const page = await this.scan({ ...options, cursor });
      yield* page.keys;
      cursor = page.cursor;
    } while (cursor !== "0");
  }

  storageSize(...keys: string[]): Promise<{ total: number } | Record<string, number>> {
    return this.read(
      {},
      () => {
        const input = optional("keys", keys.length === 0 ? undefined : this.keyList(keys));
        return (fields) => requests.storageSize({ ...fields, ...input });
      },
      (sizes) => (sizes instanceof Map ? plainNumbers(sizes) : { total: (sizes as { readonly total: number }).total }),
    );
  }

  // ---- writes ---------------------------------------------------------------------------

  /** true if written (nx, xx and ifVersion may decline). */
  set(key: string, value: JsValue, options: SetOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = {
        key: this.key(key),
        value: this.value(value),
        ...optional("ttl", options.ttl),
        ...optional("nx", options.nx),
        ...optional("xx", options.xx),
        ...optional("ifVersion", options.ifVersion),
        ...optional("metadata", options.metadata === undefined ? undefined : toEngineMap(options.metadata, this.limits)),
        ...optional("fence", options.fence === undefined ? undefined : { lock: options.fence.lock, token: options.fence.token }),
      };
      return (fields) => requests.set({ ...fields, ...input });
    });
  }

  setnx(key: string, value: JsValue, options: TtlOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = { key: this.key(key), value: this.value(value), ...optional("ttl", options.ttl) };
      return (fields) => requests.setnx({ ...fields, ...input });
    });
  }

  setMetadata(key: string, metadata: Record<string, JsValue> | Map<string, JsValue>, options: CallOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = { key: this.key(key), metadata: toEngineMap(metadata, this.limits) };
      return (fields) => requests.setMetadata({ ...fields, ...input });
    });
  }

  /** Number of keys deleted. */
  delete(...keys: string[]): Promise<number> {
    return this.write({}, () => {
      const input = { keys: this.keyList(keys) };
      return (fields) => requests.delete({ ...fields, ...input });
    });
  }

  mdelete(keys: readonly string[], options: CallOptions = {}): Promise<number> {
    return this.write(options, () => {
      const input = { keys: this.keyList(keys) };
      return (fields) => requests.mdelete({ ...fields, ...input });
    });
  }

  /** Int arithmetic; an absent key counts as 0. */
  incr(key: string, delta: number | bigint = 1n, options: CallOptions = {}): Promise<number | bigint> {
    return this.increment("incr", key, delta, options);
  }

  decr(key: string, delta: number | bigint = 1n, options: CallOptions = {}): Promise<number | bigint> {
    return this.increment("decr", key, delta, options);
  }

  incrFloat(key: string, delta: number, options: CallOptions = {}): Promise<number> {
    return this.write(options, () => {
      if (typeof delta !== "number") throw new KvValueError(`incrFloat delta must be a number, got ${typeof delta}`);
      const input = { key: this.key(key), delta };
      return (fields) => requests.incrFloat({ ...fields, ...input });
    });
  }

  /** Exact decimal arithmetic; `delta` may be a decimal string such as "0.1". */
  incrDecimal(key: string, delta: Decimal | string, options: CallOptions = {}): Promise<Decimal> {
    return this.write(options, () => {
      const input = { key: this.key(key), delta: this.value(typeof delta === "string" ? decimalOf(delta) : delta) as Decimal };
      return (fields) => requests.incrDecimal({ ...fields, ...input });
    });
  }

  /** String + string, Bytes + bytes, List + value; returns the new length. */
  append(key: string, value: JsValue, options: CallOptions = {}): Promise<number> {
    return this.write(options, () => {
      const input = { key: this.key(key), value: this.value(value) };
      return (fields) => requests.append({ ...fields, ...input });
    });
  }

  /** Writes `newValue` only if the current value deep-equals `expected` (null: key absent). */
  cas(key: string, expected: JsValue | null, newValue: JsValue, options: TtlOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = { key: this.key(key), expected: this.value(expected), newValue: this.value(newValue), ...optional("ttl", options.ttl) };
      return (fields) => requests.cas({ ...fields, ...input });
    });
  }

  /** All entries in one atomic log entry. */
  async mset(entries: Record<string, JsValue> | Map<string, JsValue> | [string, JsValue][], options: TtlOptions = {}): Promise<true> {
    await this.write(options, () => {
      const input = { entries: this.entryList(entries), ...optional("ttl", options.ttl) };
      return (fields) => requests.mset({ ...fields, ...input });
    });
    return true;
  }

  deletePattern(pattern: string, options: DeletePatternOptions = {}): Promise<number> {
    return this.write(options, () => (fields) => requests.deletePattern({ ...fields, pattern, ...optional("separator", options.separator) }));
  }

  /** true if the key existed; zero or less seconds deletes it. */
  expire(key: string, seconds: number, options: CallOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = { key: this.key(key), ttl: seconds };
      return (fields) => requests.expire({ ...fields, ...input });
    });
  }

  /** true if a TTL was removed. */
  persist(key: string, options: CallOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = { key: this.key(key) };
      return (fields) => requests.persist({ ...fields, ...input });
    });
  }

  /** Purges expired keys now; returns how many. */
  deleteExpired(options: CallOptions = {}): Promise<number> {
    return this.write(options, () => (fields) => requests.deleteExpired(fields));
  }

  // ---- locks ----------------------------------------------------------------------------

  /** `token` is the fencing token: strictly increasing per lock over the cluster's life. */
  lock(name: string, owner: string, ttl: number, options: CallOptions = {}): Promise<{ acquired: boolean; token: bigint | null }> {
    return this.write(options, () => {
      const input = this.lockInput(name, owner);
      return (fields) => requests.lock({ ...fields, ...input, ttl });
    }).then((result) => ({ acquired: result.acquired, token: result.token }));
  }

  unlock(name: string, owner: string, options: CallOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = this.lockInput(name, owner);
      return (fields) => requests.unlock({ ...fields, ...input });
    });
  }

  extend(name: string, owner: string, ttl: number, options: CallOptions = {}): Promise<boolean> {
    return this.write(options, () => {
      const input = this.lockInput(name, owner);
      return (fields) => requests.extend({ ...fields, ...input, ttl });
    });
  }

  /** Runs `fn` holding the lock and always releases it, also when `fn` throws. */
  async withLock<T>(name: string, owner: string, ttl: number, fn: (lock: Lock) => Promise<T>, options: WithLockOptions = {}): Promise<T> {
    const lock = await Lock.acquire(this, name, owner, { ...options, ttl });
    let result: T;
    try {
      result = await fn(lock);
    } catch (error) {
      // fn's own error is the one to report; an unreleased lock expires after its TTL anyway.
      await lock.release().catch(() => undefined);
      throw error;
    }
    await lock.release();
    return result;
  }

  // ---- node and cluster -----------------------------------------------------------------

  ping(options: CallOptions = {}): Promise<string> {
    return this.core.call(() => this.admin((fields) => requests.ping(fields)), options).then(String);
  }

  /** The leader's info: role, term, leader, indexes, keys, memory, shards, counters. */
  info(options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.core.call(() => this.admin((fields) => requests.info(fields)), options).then((info) => this.toRecord(info));
  }

  /**
   * Every member's own view (role, term, leader, indexes), asked directly; the unreachable ones
   * say so. The per-member requests count as this one call against `maxInFlight`.
   */
  async clusterStatus(options: CallOptions = {}): Promise<ClusterMemberStatus[]> {
    const membership = await this.refreshMembers(options);
    const members = [...membership.addresses].map(([id, address]) => ({ id, address, voter: membership.voters.includes(id) }));
    return Promise.all(
      members.map(({ id, address, voter }) =>
        this.core
          .execute({ ...this.admin((fields) => requests.clusterStatus(fields)), route: "any", node: address }, { timeoutMs: MEMBER_STATUS_TIMEOUT_MS, ...signalOf(options) })
          .then(
            (status) => memberStatusOf(id, address, voter, status),
            (error: unknown) => unreachableMember(id, address, voter, error instanceof Error ? error.message : String(error)),
          ),
      ),
    );
  }

  /** Adds a member as a learner, waits for it to catch up, then promotes it. */
  async addMember(id: string, address: string, options: MemberChangeOptions = {}): Promise<unknown> {
    return this.changeMembership((fields) => requests.memberAdd({ ...fields, id, address, ...optional("force", options.force) }), options);
  }

  async removeMember(id: string, options: MemberChangeOptions = {}): Promise<unknown> {
    return this.changeMembership((fields) => requests.memberRemove({ ...fields, id, ...optional("force", options.force) }), options);
  }

  /** Makes learner `id` a voter; the leader refuses while it is behind the commit index, unless forced. */
  async promoteMember(id: string, options: MemberChangeOptions = {}): Promise<unknown> {
    return this.changeMembership((fields) => requests.memberPromote({ ...fields, id, ...optional("force", options.force) }), options);
  }

  /** One membership change at the leader, sent once (repeating one after an unknown outcome is not harmless). */
  private async changeMembership(build: (fields: AttemptFields) => OperationRequest<unknown>, options: MemberChangeOptions): Promise<unknown> {
    const callOptions: CallOptions = { ...optional("timeoutMs", options.timeoutMs), ...signalOf(options) };
    const result = await this.core.call(() => this.admin(build, ONCE), callOptions);
    await this.refreshMembers(callOptions).catch(() => undefined);
    return this.toJsData(result);
  }

  /** Hands leadership to `to` (a member id), or to the most up-to-date voter. */
  async transferLeader(to?: string, options: CallOptions = {}): Promise<{ leader: string | null }> {
    const result = await this.core.call(() => this.admin((fields) => requests.transferLeader({ ...fields, ...optional("to", to) }), ONCE), options);
    this.core.router.setLeader(null);
    const leader = result instanceof Map ? result.get("leader") : undefined;
    return { leader: typeof leader === "string" ? leader : null };
  }

  /** Makes the leader write a snapshot now; resolves with the log index it covers. */
  async snapshotSave(options: CallOptions = {}): Promise<{ index: number }> {
    const result = await this.core.call(() => this.admin((fields) => requests.snapshotSave(fields), { wholeDeadline: true }), options);
    const index = result instanceof Map ? result.get("index") : undefined;
    return { index: typeof index === "number" ? index : Number(index) };
  }

  /**
   * A piece of the leader's newest snapshot file (bytes [offset, offset + maxBytes) of the
   * whole file, header included), for `kv snapshot save`. `name` changes when a newer snapshot
   * replaces it, so a download that sees another name must start over.
   */
  async snapshotRead(offset: number, maxBytes?: number, options: CallOptions = {}): Promise<SnapshotFileSlice> {
    const result = await this.core.call(() => this.admin((fields) => requests.snapshotRead({ ...fields, offset, ...optional("maxBytes", maxBytes) })), options);
    return snapshotSliceOf(result);
  }

  get isClosed(): boolean {
    return this.core.isClosed;
  }

  /** Closes every connection of the client (all its namespace views). */
  async close(): Promise<void> {
    this.core.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- plumbing -------------------------------------------------------------------------

  /** Asks the leader (or any member) for the membership and learns members and leader. */
  private async refreshMembers(options: CallOptions = {}): Promise<MembershipView> {
    const status = await this.core.call(() => this.admin((fields) => requests.clusterStatus(fields)), options);
    const membership = membershipOf(status);
    this.core.router.learnMembers([...membership.addresses.values()]);
    if (membership.leaderAddress !== null) this.core.router.setLeader(membership.leaderAddress);
    return membership;
  }

  /** `prepare` validates and converts once, then returns the builder used by every attempt. */
  private read<Raw, Result>(options: ReadOptions, prepare: () => Builder<Raw>, convert: (raw: Raw) => Result): Promise<Result> {
    const consistency = options.consistency ?? this.core.settings.consistency;
    const spec = (): CallSpec<Raw> => {
      const build = prepare();
      return {
        route: consistency === "serializable" ? "any" : "leader",
        write: false,
        stamped: false,
        idempotent: true,
        build: (fields) => build({ ...this.common(fields), ...(consistency === "linearizable" ? {} : { consistency }) }),
      };
    };
    return this.core.call(spec, options).then(convert);
  }

  /** A read of one key: the key is validated once, before anything is sent. */
  private keyed<Raw>(key: string, builder: (input: KeyInput) => OperationRequest<Raw>): () => Builder<Raw> {
    return () => {
      const input = { key: this.key(key) };
      return (fields) => builder({ ...fields, ...input });
    };
  }

  /** `prepare` validates and converts once, then returns the builder used by every attempt. */
  private write<Raw>(options: CallOptions, prepare: () => Builder<Raw>): Promise<Raw> {
    const spec = (): CallSpec<Raw> => {
      const build = prepare();
      return { route: "leader", write: true, stamped: true, idempotent: true, build: (fields) => build(this.common(fields)) };
    };
    return this.core.call(spec, options);
  }

  private increment(name: "incr" | "decr", key: string, delta: number | bigint, options: CallOptions): Promise<number | bigint> {
    return this.write(options, () => {
      const input = { key: this.key(key), delta: intDelta(delta) };
      return (fields) => requests[name]({ ...fields, ...input });
    }).then((value) => fromEngineInt(value, this.ints));
  }

  private admin<Raw>(build: (fields: AttemptFields) => OperationRequest<Raw>, flags: AdminFlags = {}): CallSpec<Raw> {
    return { route: flags.route ?? "preferLeader", write: flags.write ?? false, stamped: false, idempotent: flags.idempotent ?? true, ...optional("wholeDeadline", flags.wholeDeadline), build };
  }

  private common(fields: AttemptFields): RequestCommon {
    return this.namespaceName === "" ? fields : { ...fields, namespace: this.namespaceName };
  }

  private lockInput(name: string, owner: string): { readonly name: string; readonly owner: string } {
    return { name: validateName(name, "lock name", this.limits), owner: validateName(owner, "lock owner", this.limits) };
  }

  private key(key: string): string {
    return validateKey(key, this.limits);
  }

  private keyList(keys: readonly string[]): string[] {
    return keys.map((key) => this.key(key));
  }

  private value(value: unknown): Value {
    return toEngineValue(value, this.limits);
  }

  private entryList(entries: Record<string, JsValue> | Map<string, JsValue> | [string, JsValue][]): [string, Value][] {
    const pairs = Array.isArray(entries) ? entries : entries instanceof Map ? [...entries] : Object.entries(entries);
    return pairs.map(([key, value]) => [this.key(key), this.value(value)]);
  }

  private toJs(value: Value): JsValue {
    return fromEngineValue(value, this.ints);
  }

  /** Node-defined answers (info, membership) as plain JS data. */
  private toJsData(data: unknown): unknown {
    return fromEngineValue(data as Value, this.ints);
  }

  private toRecord(data: unknown): Record<string, unknown> {
    const converted = this.toJsData(data);
    return typeof converted === "object" && converted !== null && !Array.isArray(converted) ? (converted as Record<string, unknown>) : { value: converted };
  }

  /** The default deadline of a call, in ms. */
  get timeoutMs(): number {
    return this.core.settings.timeoutMs;
  }

  private get ints(): IntMode {
    return this.core.settings.ints;
  }

  private get limits(): EngineLimits {
    return this.core.settings.limits;
  }
}

type RequestCommon = AttemptFields & { readonly namespace?: string; readonly consistency?: "serializable" };

/** Builds the request of one attempt from its per-attempt fields. */
type Builder<Raw> = (fields: RequestCommon) => OperationRequest<Raw>;

interface AdminFlags {
  /** Default "preferLeader": any node can answer. */
  readonly route?: Route;
  readonly write?: boolean;
  readonly idempotent?: boolean;
  readonly wholeDeadline?: boolean;
}

/** Membership changes and leadership transfer: repeating one after an unknown outcome is not harmless. */
const ONCE: AdminFlags = { route: "leader", write: true, idempotent: false, wholeDeadline: true };

/** How long `clusterStatus()` waits for each member. */
const MEMBER_STATUS_TIMEOUT_MS = 2000;

function settingsOf(options: KvClientOptions): ClientSettings {
  const settings = { ...DEFAULT_SETTINGS, ...withoutUndefined(options) };
  for (const [name, bound] of [["timeoutMs", 1], ["connectionsPerNode", 1], ["maxInFlight", 1]] as const) {
    if (!Number.isSafeInteger(settings[name]) || settings[name] < bound) throw new KvValueError(`${name} must be an integer of at least ${bound}, got ${settings[name]}`);
  }
  return {
    ints: settings.ints,
    timeoutMs: settings.timeoutMs,
    consistency: settings.consistency,
    connectionsPerNode: settings.connectionsPerNode,
    maxInFlight: settings.maxInFlight,
    limits: { ...DEFAULT_LIMITS, ...withoutUndefined(options.limits ?? {}) },
    signal: options.signal,
  };
}

/** Runs `fn`, turning any KvError it throws into its client class. */
function mapErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toClientError(error);
  }
}

function withoutUndefined<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, field]) => field !== undefined)) as Partial<T>;
}

/** `{ [name]: value }`, or nothing when the value is absent (exactOptionalPropertyTypes). */
function optional<Name extends string, T>(name: Name, value: T | undefined): { readonly [K in Name]?: T } {
  return (value === undefined ? {} : { [name]: value }) as { readonly [K in Name]?: T };
}

function signalOf(options: CallOptions): { readonly signal?: AbortSignal } {
  return optional("signal", options.signal);
}

function same<T>(value: T): T {
  return value;
}

function intDelta(delta: number | bigint): bigint {
  const value = typeof delta === "number" ? numberToValue(delta) : delta;
  if (typeof value !== "bigint") throw new KvValueError(`delta must be an integer, got ${String(delta)}`);
  return value;
}

function decimalOf(text: string): Decimal {
  try {
    return new Decimal(text);
  } catch {
    throw new KvValueError(`"${text}" is not a decimal number`);
  }
}

/** A snapshotRead answer, shape-checked: it comes from another process. */
function snapshotSliceOf(result: unknown): SnapshotFileSlice {
  const fields = result instanceof Map ? (result as ReadonlyMap<string, unknown>) : new Map<string, unknown>();
  const name = fields.get("name");
  const index = fields.get("index");
  const sizeBytes = fields.get("sizeBytes");
  const data = fields.get("data");
  if (typeof name !== "string" || typeof index !== "number" || typeof sizeBytes !== "number" || !(data instanceof Uint8Array)) {
    throw new KvProtocolError("malformed snapshotRead result");
  }
  return { name, index, sizeBytes, data };
}

function plainNumbers(sizes: ReadonlyMap<string, number>): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [key, size] of sizes) Object.defineProperty(result, key, { value: size, enumerable: true, writable: true, configurable: true });
  return result;
}
