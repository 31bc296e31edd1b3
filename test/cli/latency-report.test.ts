import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { buildReport, formatReport, HISTOGRAM_BUCKETS, histogramOf, PERCENTILES, percentileOf } from "../../src/cli/latency-report.js";

/** Reference: the smallest latency with at least p% of all latencies at or below it, by counting. */
function naivePercentile(values: readonly number[], percentile: number): number {
  const candidates = [...values].sort((a, b) => a - b);
  for (const candidate of candidates) {
    const atOrBelow = values.filter((value) => value <= candidate).length;
    if (atOrBelow * 100 >= percentile * values.length - 1e-9) return candidate;
  }
  return candidates.at(-1) ?? 0;
}

const latencies = fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 1, maxLength: 300 });

describe("latency distribution", () => {
  test("percentiles agree with counting over a naive sort", () => {
    fc.assert(
      fc.property(latencies, fc.constantFrom(...PERCENTILES, 1, 33.3, 100), (values, percentile) => {
        const sorted = Float64Array.from(values).sort();
        expect(percentileOf(sorted, percentile)).toBe(naivePercentile(values, percentile));
      }),
      { numRuns: 400 },
    );
  });

  test("99.9% of 1000 latencies is the 999th, not the 1000th (no floating-point rounding up)", () => {
    const sorted = Float64Array.from({ length: 1000 }, (_, index) => index + 1);
    expect(percentileOf(sorted, 99.9)).toBe(999);
    expect(percentileOf(sorted, 10)).toBe(100);
    expect(percentileOf(sorted, 100)).toBe(1000);
  });

  test("histogram: buckets from fastest to slowest, every latency counted once in its own bucket", () => {
    fc.assert(
      fc.property(latencies, (values) => {
        const sorted = Float64Array.from(values).sort();
        const histogram = histogramOf(sorted, HISTOGRAM_BUCKETS);
        expect(histogram).toHaveLength(HISTOGRAM_BUCKETS + 1);
        expect(histogram.reduce((sum, bucket) => sum + bucket.count, 0)).toBe(values.length);
        expect(histogram[0]?.upToSeconds).toBe(sorted[0]);
        expect(histogram.at(-1)?.upToSeconds).toBe(sorted.at(-1));
        // Reference: bucket i holds the latencies in (mark i-1, mark i].
        histogram.forEach((bucket, index) => {
          const lower = index === 0 ? -Infinity : (histogram[index - 1]?.upToSeconds ?? -Infinity);
          expect(bucket.count).toBe(values.filter((value) => value > lower && value <= bucket.upToSeconds).length);
        });
      }),
      { numRuns: 300 },
    );
  });

  test("summary: fastest, slowest, mean and population stddev as computed naively", () => {
    fc.assert(
      fc.property(latencies, fc.integer({ min: 0, max: 5 }), (values, errors) => {
        const report = buildReport(Float64Array.from(values), errors, 2);
        const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
        const stddev = Math.sqrt(values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / values.length);
        expect(report.summary.fastestSeconds).toBe(Math.min(...values));
        expect(report.summary.slowestSeconds).toBe(Math.max(...values));
        expect(report.maxSeconds).toBe(Math.max(...values));
        expect(report.summary.averageSeconds).toBeCloseTo(mean, 9);
        expect(report.summary.stddevSeconds).toBeCloseTo(stddev, 9);
        expect(report.summary.requestsPerSecond).toBe(values.length / 2);
        expect(report.summary.errors).toBe(errors);
      }),
      { numRuns: 200 },
    );
  });

  test("an empty run reports zeros instead of failing", () => {
    const report = buildReport(new Float64Array(0), 3, 1);
    expect(report.summary).toMatchObject({ requests: 0, errors: 3, averageSeconds: 0, requestsPerSecond: 0 });
    expect(report.histogram).toEqual([]);
  });

  test("printed like etcd's benchmark: summary, bars scaled to the largest bucket, distribution", () => {
    const report = buildReport(Float64Array.from([0.001, 0.002, 0.002, 0.002, 0.01]), 0, 0.5);
    const text = formatReport(report);
    expect(text).toContain("Summary:\n  Total:\t0.5000 secs.\n  Slowest:\t0.0100 secs.\n  Fastest:\t0.0010 secs.");
    expect(text).toContain("  Requests/sec:\t10.0000");
    expect(text).toContain(`  0.0028 [3]\t|${"\u220e".repeat(40)}`);
    expect(text).toContain(`  0.0010 [1]\t|${"\u220e".repeat(13)}`);
    expect(text).toContain("  50% in 0.0020 secs.");
    expect(text).toContain("  99.9% in 0.0100 secs.\n  max in 0.0100 secs.");
  });
});
