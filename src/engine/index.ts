/** The engine's public API: the replicated state machine and its command and query data. */
export { Engine, DEFAULT_SHARD_COUNT, MAX_EVICTION_SAMPLE } from "./engine.js";
export type { ApplyContext, EngineOptions, EvictionCandidate } from "./engine.js";
export { decodeCommand, encodeCommand, validateNamespace, MAX_KEYS_PER_COMMAND, MAX_PURGE_PER_COMMAND, MAX_TTL_MS } from "./commands.js";
export type { Command, CommandOf, CommandType, EvictionTarget, Fence } from "./commands.js";
export { DEFAULT_SCAN_COUNT, MAX_KEYS_PER_QUERY } from "./queries.js";
export type { EngineInfo, EntryWithMeta, Query, QueryType, ScanPage } from "./queries.js";
export { DEFAULT_SESSION_LIMITS } from "./sessions.js";
export type { SessionLimits, SessionStamp } from "./sessions.js";
export type { LockResult } from "./locks.js";
export type { Outcome, OutcomeError } from "./outcome.js";
export { SNAPSHOT_FORMAT_VERSION } from "./snapshot.js";
export { DEFAULT_LIMITS } from "./limits.js";
export type { EngineLimits } from "./limits.js";
export type { Value, ValueMap, ValueType } from "./value.js";
