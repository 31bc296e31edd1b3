/**
 * The one source of truth for the engine's size limits. Every layer (engine, server, client)
 * reads them from here, so a limit is changed in one place.
 */
export interface EngineLimits {
  /** Longest key or name, counted in Unicode code points (an emoji counts as one). */
  readonly maxKeyLength: number;
  /** Largest value, measured as its encoded (msgpack) size. */
  readonly maxValueBytes: number;
  /** Deepest nesting of lists and maps; a scalar is depth 0, `[1n]` is depth 1. */
  readonly maxDepth: number;
}

export const DEFAULT_LIMITS: EngineLimits = Object.freeze({
  maxKeyLength: 256,
  maxValueBytes: 8 * 1024 * 1024,
  maxDepth: 64,
});

/** Largest request frame accepted on the wire; bigger frames are refused before decoding. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** rust_decimal limits: at most 28 fractional digits ... */
export const DECIMAL_MAX_SCALE = 28;
/** ... and a mantissa whose magnitude is below 2^96 (the bound is exclusive). */
export const DECIMAL_MAX_MANTISSA: bigint = 2n ** 96n;

/**
 * Glob patterns (keys, count, scan...). Matching costs O(key length × pattern length), so the
 * pattern length bounds the work per key; brace nesting is bounded so parsing stays shallow.
 */
export const MAX_GLOB_PATTERN_LENGTH = 1024;
export const MAX_GLOB_BRACE_DEPTH = 32;

/**
 * Deepest nesting of lists, maps and objects in any codec document (wire payload, log entry,
 * snapshot record). It leaves room above maxDepth for the envelopes that carry values, and it
 * keeps both encoding and decoding well inside the JS stack.
 */
export const MAX_ENCODED_DEPTH = 256;
