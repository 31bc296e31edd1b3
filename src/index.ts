/**
 * The package root: `import { KvClient, Lock, kv, Decimal } from "data-bridge-kv"`.
 */
export { KvClient } from "./client/client.js";
export type {
  CallOptions,
  DeletePatternOptions,
  EntryWithMeta,
  KvClientOptions,
  MgetOptions,
  PatternOptions,
  ReadOptions,
  ScanIteratorOptions,
  ScanOptions,
  SetOptions,
  SnapshotFileSlice,
  TtlOptions,
  WithLockOptions,
} from "./client/client.js";
export { Lock } from "./client/lock.js";
export type { LockAcquireOptions, LockWaitOptions } from "./client/lock.js";
export type { ClusterMemberStatus } from "./client/cluster-status.js";
export { kv, KvFloat } from "./client/values.js";
export type { IntMode, JsObject, JsValue } from "./client/values.js";
export { parseConnectionString } from "./client/connection-string.js";
export type { ConnectionTarget } from "./client/connection-string.js";
export { Decimal } from "./engine/value.js";
export { KvError, ERROR_CODES } from "./errors.js";
export type { ErrorCode, KvErrorDetails } from "./errors.js";
export {
  CLIENT_ERROR_CLASSES,
  KvBusyError,
  KvConnectionError,
  KvCorruptError,
  KvFencedError,
  KvInternalError,
  KvKeyError,
  KvNoSpaceError,
  KvNotFoundError,
  KvOverflowError,
  KvProtocolError,
  KvTimeoutError,
  KvTooLargeError,
  KvTypeError,
  KvUnavailableError,
  KvValueError,
} from "./client/errors.js";
