/**
 * Raised when an internal invariant is broken. It is never caught by the product: a broken
 * invariant means the process state can no longer be trusted, so the process must stop
 * rather than serve or replicate wrong data.
 */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}
