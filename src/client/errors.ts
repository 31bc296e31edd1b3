import { KvError, type ErrorCode, type KvErrorDetails } from "../errors.js";

/**
 * The client's error classes: one per code, each a KvError with that code, so callers can use
 * `instanceof KvTypeError` or `error.code === "WRONG_TYPE"` alike. CLIENT_ERROR_CLASSES is the
 * one table from code to class.
 */
export class KvKeyError extends KvError {
  override name = "KvKeyError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("KEY_INVALID", message, details);
  }
}

export class KvValueError extends KvError {
  override name = "KvValueError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("VALUE_INVALID", message, details);
  }
}

export class KvTypeError extends KvError {
  override name = "KvTypeError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("WRONG_TYPE", message, details);
  }
}

export class KvOverflowError extends KvError {
  override name = "KvOverflowError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("OVERFLOW", message, details);
  }
}

/** A strict mget's missing keys are in `details.keys`. */
export class KvNotFoundError extends KvError {
  override name = "KvNotFoundError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("NOT_FOUND", message, details);
  }
}

export class KvTooLargeError extends KvError {
  override name = "KvTooLargeError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("TOO_LARGE", message, details);
  }
}

/** A fenced write whose token is not the lock's current token. */
export class KvFencedError extends KvError {
  override name = "KvFencedError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("FENCED", message, details);
  }
}

/** Too many requests in flight (client or server side); nothing was applied. */
export class KvBusyError extends KvError {
  override name = "KvBusyError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("BUSY", message, details);
  }
}

/** The deadline passed: for a write, the outcome is unknown (it may or may not have applied). */
export class KvTimeoutError extends KvError {
  override name = "KvTimeoutError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("TIMEOUT", message, details);
  }
}

/**
 * No leader or no quorum, or NOT_LEADER hints that kept redirecting: the code is UNAVAILABLE in
 * both cases, because to the caller they mean the same (nothing applied, try again later).
 */
export class KvUnavailableError extends KvError {
  override name = "KvUnavailableError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("UNAVAILABLE", message, details);
  }
}

export class KvConnectionError extends KvError {
  override name = "KvConnectionError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("CONNECTION", message, details);
  }
}

/** A malformed request or answer (INVALID): a bug on one side, or a bad pattern or cursor. */
export class KvProtocolError extends KvError {
  override name = "KvProtocolError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("INVALID", message, details);
  }
}

export class KvCorruptError extends KvError {
  override name = "KvCorruptError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("CORRUPT", message, details);
  }
}

/** The server's disk is (nearly) full: the write was refused, nothing applied. Not retried: space must be freed first. */
export class KvNoSpaceError extends KvError {
  override name = "KvNoSpaceError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("NO_SPACE", message, details);
  }
}

/** An unexpected fault on the server; the outcome of a write is unknown. */
export class KvInternalError extends KvError {
  override name = "KvInternalError";
  constructor(message: string, details: KvErrorDetails = {}) {
    super("INTERNAL", message, details);
  }
}

type ClientErrorClass = new (message: string, details?: KvErrorDetails) => KvError;

/** The one table from error code to client class. */
export const CLIENT_ERROR_CLASSES: Readonly<Record<ErrorCode, ClientErrorClass>> = Object.freeze({
  NOT_LEADER: KvUnavailableError,
  UNAVAILABLE: KvUnavailableError,
  TIMEOUT: KvTimeoutError,
  KEY_INVALID: KvKeyError,
  VALUE_INVALID: KvValueError,
  WRONG_TYPE: KvTypeError,
  OVERFLOW: KvOverflowError,
  NOT_FOUND: KvNotFoundError,
  TOO_LARGE: KvTooLargeError,
  FENCED: KvFencedError,
  BUSY: KvBusyError,
  INVALID: KvProtocolError,
  CORRUPT: KvCorruptError,
  NO_SPACE: KvNoSpaceError,
  CONNECTION: KvConnectionError,
  INTERNAL: KvInternalError,
});

/**
 * The client class for a KvError raised anywhere below (server answer, connection, validation).
 * An error that already is its class is returned as is; anything that is not a KvError (an
 * abort reason, a bug) is returned unchanged.
 */
export function toClientError(error: unknown): unknown {
  if (!(error instanceof KvError)) return error;
  const ErrorClass = CLIENT_ERROR_CLASSES[error.code];
  if (error.constructor === ErrorClass) return error;
  return new ErrorClass(error.message, error.details);
}
