import { KvError, type ErrorCode } from "../errors.js";

/**
 * The result of applying a command or serving a query. User errors are values, not exceptions:
 * the state machine must give the same answer on every replica, and a thrown error would stop
 * the apply loop. Only broken invariants throw.
 */
export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: OutcomeError };

export interface OutcomeError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly keys?: readonly string[];
}

export function succeed<T>(value: T): Outcome<T> {
  return { ok: true, value };
}

export function fail(code: ErrorCode, message: string, keys?: readonly string[]): Outcome<never> {
  return { ok: false, error: keys === undefined ? { code, message } : { code, message, keys } };
}

/** Runs `body`; a KvError it throws (a validation or arithmetic error) becomes a failed outcome. */
export function capture<T>(body: () => Outcome<T>): Outcome<T> {
  try {
    return body();
  } catch (error) {
    if (error instanceof KvError) return fail(error.code, error.message, error.details.keys);
    throw error;
  }
}
