import { describe, expect, test } from "vitest";
import { RetryBackoff } from "../../../src/server/storage/retry-backoff.js";

describe("RetryBackoff", () => {
  test("due until a failure; the pause doubles per failure up to the cap; a success resets it", () => {
    const backoff = new RetryBackoff({ firstDelayMs: 1000, maxDelayMs: 5000 });
    expect(backoff.isDue(0)).toBe(true);
    const delays = [0, 1, 2, 3, 4].map(() => backoff.failed(10_000));
    expect(delays).toEqual([1000, 2000, 4000, 5000, 5000]);
    expect(backoff.consecutiveFailures).toBe(5);
    expect(backoff.isDue(14_999)).toBe(false);
    expect(backoff.isDue(15_000)).toBe(true);
    backoff.succeeded();
    expect(backoff.isDue(0)).toBe(true);
    expect(backoff.failed(0)).toBe(1000);
  });

  test("thousands of failures stay at the cap (no overflow to Infinity or NaN)", () => {
    const backoff = new RetryBackoff({ firstDelayMs: 1, maxDelayMs: 60_000 });
    let delay = 0;
    for (let failure = 0; failure < 5000; failure++) delay = backoff.failed(0);
    expect(delay).toBe(60_000);
  });
});
