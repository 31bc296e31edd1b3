import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { progressBar, runRequests } from "../../src/cli/bench/runner.js";

describe("kv-bench runner", () => {
  test("sends exactly `total` requests, each sequence once, never more than `clients` at a time", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 4 }), async (total, clients, failEvery) => {
        const seen: number[] = [];
        let inFlight = 0;
        let maxInFlight = 0;
        const requesters = new Set<number>();
        const result = await runRequests({
          total,
          clients,
          request: async (requester, sequence) => {
            requesters.add(requester);
            seen.push(sequence);
            inFlight += 1;
            maxInFlight = Math.max(maxInFlight, inFlight);
            await new Promise((resolve) => setImmediate(resolve));
            inFlight -= 1;
            if (failEvery > 0 && sequence % (failEvery + 1) === 0) throw new Error("refused");
          },
        });
        const failures = failEvery === 0 ? 0 : Array.from({ length: total }, (_, sequence) => sequence).filter((sequence) => sequence % (failEvery + 1) === 0).length;
        expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, sequence) => sequence));
        expect(maxInFlight).toBeLessThanOrEqual(clients);
        expect([...requesters].every((requester) => requester >= 0 && requester < clients)).toBe(true);
        expect(result.errors).toBe(failures);
        expect(result.latenciesSeconds.length).toBe(total - failures);
        expect(result.errorSamples).toEqual(failures > 0 ? ["refused"] : []);
        expect(result.latenciesSeconds.every((latency) => latency >= 0)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  test("progress bar", () => {
    expect(progressBar(0, 100, 10)).toBe("[          ]   0% 0/100");
    expect(progressBar(45, 100, 10)).toBe("[===>      ]  45% 45/100");
    expect(progressBar(100, 100, 10)).toBe("[==========] 100% 100/100");
  });
});
