/**
 * A deliberately simple reference model of the engine: one flat Map, naive loops, globs
 * translated to RegExp. No sharding, no expiry queue, no copy-on-write, no codec: if the
 * engine and this model ever disagree, one of them has a bug.
 */
import { KvError } from "../../../src/errors.js";
import type { Command, CommandOf, Query, SessionStamp } from "../../../src/engine/index.js";
import type { Outcome } from "../../../src/engine/outcome.js";
import { addDecimals, ExactDecimal, isDecimal } from "../../../src/engine/decimal.js";
import { valueSize } from "../../../src/engine/validation.js";
import { DEFAULT_LIMITS } from "../../../src/engine/limits.js";
import { equalityKey } from "../values/arbitraries.js";
import type { Decimal, Value, ValueMap } from "../../../src/engine/value.js";

interface ModelEntry {
  value: Value;
  version: number;
  createVersion: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  metadata: ValueMap | null;
}

interface ModelSession {
  lastActiveAt: number;
  acknowledged: number;
  results: Map<number, Outcome<unknown>>;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const ok = (value: unknown): Outcome<unknown> => ({ ok: true, value });
const err = (code: KvError["code"], keys?: string[]): Outcome<unknown> =>
  ({ ok: false, error: keys === undefined ? { code, message: "" } : { code, message: "", keys } }) as Outcome<unknown>;

export class Model {
  readonly entries = new Map<string, ModelEntry>();
  readonly locks = new Map<string, { owner: string; token: bigint; expiresAt: number }>();
  readonly sessions = new Map<bigint, ModelSession>();
  now = 0;
  private index = 0;

  constructor(
    private readonly sessionTimeoutMs: number,
    private readonly maxResultsPerSession: number,
  ) {}

  apply(command: Command, index: number, now: number): Outcome<unknown> {
    this.now = Math.max(this.now, now);
    this.index = index;
    for (const [id, session] of this.sessions) if (session.lastActiveAt + this.sessionTimeoutMs <= this.now) this.sessions.delete(id);
    const run = (): Outcome<unknown> => {
      try {
        return this.execute(command);
      } catch (error) {
        if (error instanceof KvError) return err(error.code);
        throw error;
      }
    };
    if (command.session === undefined || command.type === "registerSession") return run();
    return this.once(command.session, run);
  }

  private once(stamp: SessionStamp, run: () => Outcome<unknown>): Outcome<unknown> {
    const session = this.sessions.get(stamp.clientId);
    if (session === undefined) return err("NOT_FOUND");
    const recorded = session.results.get(stamp.sequence);
    if (recorded !== undefined) {
      session.lastActiveAt = this.now;
      return recorded;
    }
    if (stamp.sequence <= session.acknowledged) return err("INVALID");
    if (stamp.acknowledged > session.acknowledged) {
      session.acknowledged = stamp.acknowledged;
      for (const sequence of [...session.results.keys()]) if (sequence <= stamp.acknowledged) session.results.delete(sequence);
    }
    session.lastActiveAt = this.now;
    if (session.results.size >= this.maxResultsPerSession) return err("BUSY");
    const outcome = run();
    session.results.set(stamp.sequence, outcome);
    return outcome;
  }

  private id(namespace: string, key: string): string {
    return `${namespace}\u0000${key}`;
  }

  private live(namespace: string, key: string): ModelEntry | undefined {
    const entry = this.entries.get(this.id(namespace, key));
    return entry !== undefined && (entry.expiresAt === null || entry.expiresAt > this.now) ? entry : undefined;
  }

  private put(namespace: string, key: string, value: Value, expiresAt: number | null, metadata: ValueMap | null): void {
    const current = this.live(namespace, key);
    this.entries.set(this.id(namespace, key), {
      value,
      version: this.index,
      createVersion: current?.createVersion ?? this.index,
      createdAt: current?.createdAt ?? this.now,
      updatedAt: this.now,
      expiresAt,
      metadata,
    });
  }

  private remove(namespace: string, key: string): number {
    const live = this.live(namespace, key) !== undefined;
    this.entries.delete(this.id(namespace, key));
    return live ? 1 : 0;
  }

  private ttl(ttlMs: number | undefined): number | null {
    return ttlMs === undefined ? null : this.now + ttlMs;
  }

  private execute(command: Command): Outcome<unknown> {
    const ns = command.namespace;
    switch (command.type) {
      case "set":
        return this.set(command);
      case "setMetadata": {
        const current = this.live(ns, command.key);
        if (current === undefined) return ok(false);
        this.put(ns, command.key, current.value, current.expiresAt, command.metadata);
        return ok(true);
      }
      case "delete":
      case "mdelete":
        return ok(command.keys.reduce((count, key) => count + this.remove(ns, key), 0));
      case "incr":
        return this.number(command, (v) => typeof v === "bigint", 0n, (v) => {
          const sum = (v as bigint) + command.delta;
          if (sum < INT64_MIN || sum > INT64_MAX) throw new KvError("OVERFLOW", "");
          return sum;
        });
      case "incrFloat":
        return this.number(command, (v) => typeof v === "number", 0, (v) => (v as number) + command.delta);
      case "incrDecimal":
        return this.number(command, isDecimal, new ExactDecimal(0), (v) => addDecimals(v as Decimal, command.delta));
      case "append":
        return this.append(command);
      case "cas": {
        const current = this.live(ns, command.key);
        const matches = command.expected === null ? current === undefined || current.value === null : current !== undefined && equalityKey(current.value) === equalityKey(command.expected);
        if (!matches) return ok(false);
        this.put(ns, command.key, command.newValue, this.ttl(command.ttlMs), current?.metadata ?? null);
        return ok(true);
      }
      case "mset":
        for (const [key, value] of command.entries) this.put(ns, key, value, this.ttl(command.ttlMs), this.live(ns, key)?.metadata ?? null);
        return ok(true);
      case "deletePattern": {
        const victims = this.matching(ns, command.pattern, command.separator);
        for (const key of victims) this.remove(ns, key);
        return ok(victims.length);
      }
      case "expire": {
        const current = this.live(ns, command.key);
        if (current === undefined) return ok(false);
        if (command.ttlMs <= 0) this.remove(ns, command.key);
        else this.put(ns, command.key, current.value, this.now + command.ttlMs, current.metadata);
        return ok(true);
      }
      case "persist": {
        const current = this.live(ns, command.key);
        if (current === undefined || current.expiresAt === null) return ok(false);
        this.put(ns, command.key, current.value, null, current.metadata);
        return ok(true);
      }
      default:
        return this.executeSystem(command);
    }
  }

  private executeSystem(command: Command): Outcome<unknown> {
    switch (command.type) {
      case "lock": {
        const id = this.id(command.namespace, command.name);
        const held = this.heldLock(id);
        if (held !== undefined && held.owner !== command.owner) return ok({ acquired: false, token: null });
        const token = held?.token ?? BigInt(this.index);
        this.locks.set(id, { owner: command.owner, token, expiresAt: this.now + command.ttlMs });
        return ok({ acquired: true, token });
      }
      case "unlock": {
        const id = this.id(command.namespace, command.name);
        if (this.heldLock(id)?.owner !== command.owner) return ok(false);
        this.locks.delete(id);
        return ok(true);
      }
      case "extend": {
        const id = this.id(command.namespace, command.name);
        const held = this.heldLock(id);
        if (held?.owner !== command.owner) return ok(false);
        held.expiresAt = this.now + command.ttlMs;
        return ok(true);
      }
      case "purgeExpired": {
        const expired = [...this.entries]
          .filter(([, entry]) => entry.expiresAt !== null && entry.expiresAt <= this.now)
          .sort(([leftId, left], [rightId, right]) => (left.expiresAt as number) - (right.expiresAt as number) || (leftId < rightId ? -1 : 1))
          .slice(0, command.limit);
        for (const [id] of expired) this.entries.delete(id);
        return ok(expired.length);
      }
      case "evict":
        return ok(command.targets.reduce((count, target) => count + this.remove(target.namespace, target.key), 0));
      case "registerSession":
        this.sessions.set(BigInt(this.index), { lastActiveAt: this.now, acknowledged: 0, results: new Map() });
        return ok(BigInt(this.index));
      default:
        throw new Error(`model does not know ${command.type}`);
    }
  }

  private heldLock(id: string): { owner: string; token: bigint; expiresAt: number } | undefined {
    const lock = this.locks.get(id);
    return lock !== undefined && lock.expiresAt > this.now ? lock : undefined;
  }

  private set(command: CommandOf<"set">): Outcome<unknown> {
    const ns = command.namespace;
    if (command.fence !== undefined && this.heldLock(this.id(ns, command.fence.lock))?.token !== command.fence.token) return err("FENCED");
    const current = this.live(ns, command.key);
    if (command.nx === true && current !== undefined) return ok(false);
    if (command.xx === true && current === undefined) return ok(false);
    if (command.ifVersion !== undefined && (current?.version ?? 0) !== command.ifVersion) return ok(false);
    this.put(ns, command.key, command.value, this.ttl(command.ttlMs), command.metadata ?? current?.metadata ?? null);
    return ok(true);
  }

  private number(command: { namespace: string; key: string }, is: (value: Value) => boolean, zero: Value, add: (value: Value) => Value): Outcome<unknown> {
    const current = this.live(command.namespace, command.key);
    if (current !== undefined && !is(current.value)) return err("WRONG_TYPE");
    const result = add(current?.value ?? zero);
    this.put(command.namespace, command.key, result, current?.expiresAt ?? null, current?.metadata ?? null);
    return ok(result);
  }

  private append(command: CommandOf<"append">): Outcome<unknown> {
    const current = this.live(command.namespace, command.key);
    const existing = current?.value;
    const addition = command.value;
    let value: Value;
    let length: number;
    if (typeof existing === "string" || (existing === undefined && typeof addition === "string")) {
      if (typeof addition !== "string") return err("WRONG_TYPE");
      value = (existing ?? "") + addition;
      length = [...value].length;
    } else if (existing instanceof Uint8Array || (existing === undefined && addition instanceof Uint8Array)) {
      if (!(addition instanceof Uint8Array)) return err("WRONG_TYPE");
      value = new Uint8Array([...(existing ?? []), ...addition]);
      length = value.length;
    } else if (existing === undefined || Array.isArray(existing)) {
      value = [...((existing ?? []) as Value[]), addition];
      length = value.length;
    } else {
      return err("WRONG_TYPE");
    }
    if (valueSize(value) > DEFAULT_LIMITS.maxValueBytes) return err("TOO_LARGE");
    this.put(command.namespace, command.key, value, current?.expiresAt ?? null, current?.metadata ?? null);
    return ok(length);
  }

  private matching(namespace: string, pattern: string, separator: string | undefined): string[] {
    const regex = globToRegExp(pattern, separator);
    const keys: string[] = [];
    for (const id of this.entries.keys()) {
      const at = id.indexOf("\u0000");
      const key = id.slice(at + 1);
      if (id.slice(0, at) === namespace && this.live(namespace, key) !== undefined && regex.test(key)) keys.push(key);
    }
    return keys.sort();
  }

  read(query: Query, now: number): Outcome<unknown> {
    const at = Math.max(this.now, now);
    const saved = this.now;
    this.now = at;
    try {
      return this.query(query);
    } finally {
      this.now = saved;
    }
  }

  private query(query: Query): Outcome<unknown> {
    const ns = query.namespace;
    switch (query.type) {
      case "get":
        return ok(this.live(ns, query.key)?.value ?? null);
      case "exists":
        return ok(this.live(ns, query.key) !== undefined);
      case "getWithMeta": {
        const entry = this.live(ns, query.key);
        return ok(entry === undefined ? null : { ...entry, size: valueSize(entry.value) });
      }
      case "getMetadata": {
        const entry = this.live(ns, query.key);
        return ok(entry === undefined ? null : (entry.metadata ?? new Map()));
      }
      case "ttl": {
        const entry = this.live(ns, query.key);
        return ok(entry === undefined ? -1 : entry.expiresAt === null ? null : (entry.expiresAt - this.now) / 1000);
      }
      case "mget": {
        const found = new Map<string, Value>();
        const missing = query.keys.filter((key) => this.live(ns, key) === undefined);
        for (const key of query.keys) if (this.live(ns, key) !== undefined) found.set(key, (this.live(ns, key) as ModelEntry).value);
        return query.strict === true && missing.length > 0 ? err("NOT_FOUND", missing) : ok(found);
      }
      case "keys":
        return ok(this.matching(ns, query.pattern, query.separator));
      case "count":
        return ok(this.matching(ns, query.pattern, query.separator).length);
      case "getPattern":
        return ok(new Map(this.matching(ns, query.pattern, query.separator).map((key) => [key, (this.live(ns, key) as ModelEntry).value])));
      case "storageSize": {
        if (query.keys === undefined) {
          return ok({ total: this.matching(ns, "*", undefined).reduce((sum, key) => sum + valueSize((this.live(ns, key) as ModelEntry).value), 0) });
        }
        const sizes = new Map<string, number>();
        for (const key of query.keys) {
          const entry = this.live(ns, key);
          if (entry !== undefined) sizes.set(key, valueSize(entry.value));
        }
        return ok(sizes);
      }
      default:
        throw new Error(`model does not serve ${query.type}`);
    }
  }
}

/** Naive glob to RegExp translation (SPEC §4 syntax), for the patterns the tests generate. */
export function globToRegExp(pattern: string, separator: string | undefined): RegExp {
  const escape = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
  const notSeparator = separator === undefined ? "." : `[^${escape(separator)}]`;
  let source = "";
  let braces = 0;
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] as string;
    if (char === "\\") source += escape(pattern[++index] ?? "");
    else if (char === "*" && pattern[index + 1] === "*") {
      while (pattern[index + 1] === "*") index++;
      source += ".*";
    } else if (char === "*") source += `${notSeparator}*`;
    else if (char === "?") source += notSeparator;
    else if (char === "[") {
      const end = pattern.indexOf("]", index + 2);
      let body = pattern.slice(index + 1, end);
      const negated = body.startsWith("!") || body.startsWith("^");
      if (negated) body = body.slice(1);
      const separatorClass = separator === undefined ? "" : escape(separator);
      source += negated ? `[^${body}${separatorClass}]` : separator === undefined ? `[${body}]` : `(?!${separatorClass})[${body}]`;
      index = end;
    } else if (char === "{") {
      braces++;
      source += "(?:";
    } else if (char === "}" && braces > 0) {
      braces--;
      source += ")";
    } else if (char === "," && braces > 0) source += "|";
    else source += escape(char);
  }
  return new RegExp(`^${source}$`, "su");
}

/** A plain structure for toEqual: Decimals, bytes and Maps compared by content; messages dropped. */
export function comparable(value: unknown): unknown {
  if (value === null || value === undefined || typeof value !== "object") return typeof value === "number" && value === 0 ? 0 : value;
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (isDecimal(value)) return { decimal: value.toString() };
  if (Array.isArray(value)) return value.map(comparable);
  if (value instanceof Map) return { map: [...value].map(([key, element]) => [key, comparable(element)]).sort(([a], [b]) => (String(a) < String(b) ? -1 : 1)) };
  const object = value as Record<string, unknown>;
  if ("ok" in object && object.ok === false) {
    const error = object.error as { code: string; keys?: string[] };
    return { ok: false, code: error.code, keys: error.keys };
  }
  return Object.fromEntries(Object.entries(object).filter(([key]) => key !== "lastAccessedAt").map(([key, element]) => [key, comparable(element)]));
}
