/**
 * The one table of error codes. Every layer (engine, server, wire protocol, client) speaks in
 * these codes; nothing branches on message strings.
 */
export const ERROR_CODES = [
  "NOT_LEADER", // this node is not the leader; `leader` carries a hint when known
  "UNAVAILABLE", // no leader / no quorum right now; safe to retry
  "TIMEOUT", // the outcome of a write is unknown
  "KEY_INVALID",
  "VALUE_INVALID",
  "WRONG_TYPE",
  "OVERFLOW",
  "NOT_FOUND",
  "TOO_LARGE",
  "FENCED",
  "BUSY",
  "INVALID", // malformed request: unknown command, bad payload shape
  "CORRUPT", // a snapshot or log record failed its checksum
  "NO_SPACE", // the node's disk is (nearly) full: the write was refused before it was logged; retry once space is freed
  "CONNECTION", // client side: the connection failed or closed
  "INTERNAL", // an unexpected fault on the server; the outcome of a write is unknown
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}

export interface KvErrorDetails {
  /** Address of the current leader, with NOT_LEADER when known. */
  readonly leader?: string;
  /** Keys concerned, e.g. the missing keys of a strict mget. */
  readonly keys?: readonly string[];
}

export class KvError extends Error {
  override name = "KvError";
  readonly code: ErrorCode;
  readonly details: KvErrorDetails;

  constructor(code: ErrorCode, message: string, details: KvErrorDetails = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}
