/**
 * When to try a failed background task again: exponential backoff from `firstDelayMs`,
 * doubling up to `maxDelayMs`, reset by a success. Without it a task that fails at once (a
 * snapshot on a full disk) would be retried on every tick.
 */
export interface RetryBackoffOptions {
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

export class RetryBackoff {
  private failures = 0;
  private notBeforeMs = 0;

  constructor(private readonly options: RetryBackoffOptions) {}

  /** True unless a failure asked for a pause that has not passed yet. */
  isDue(nowMs: number): boolean {
    return nowMs >= this.notBeforeMs;
  }

  /** Records a failure; returns the pause before the next try. */
  failed(nowMs: number): number {
    const delayMs = Math.min(this.options.maxDelayMs, this.options.firstDelayMs * 2 ** Math.min(this.failures, MAX_DOUBLINGS));
    this.failures++;
    this.notBeforeMs = nowMs + delayMs;
    return delayMs;
  }

  succeeded(): void {
    this.failures = 0;
    this.notBeforeMs = 0;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}

/** Far past any sane maxDelayMs / firstDelayMs ratio; keeps 2 ** n finite. */
const MAX_DOUBLINGS = 30;
