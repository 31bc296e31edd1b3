import { assert } from "../util/assert.js";

/** The percentiles of the latency distribution, as etcd's benchmark prints them. */
export const PERCENTILES = [10, 25, 50, 75, 90, 95, 99, 99.9] as const;
/** Bars of the histogram; etcd uses 10 equal-width buckets between fastest and slowest. */
export const HISTOGRAM_BUCKETS = 10;
/** Characters of the longest bar. */
const BAR_WIDTH = 40;
const BAR = "\u220e";

export interface LatencySummary {
  readonly requests: number;
  readonly errors: number;
  readonly totalSeconds: number;
  readonly slowestSeconds: number;
  readonly fastestSeconds: number;
  readonly averageSeconds: number;
  readonly stddevSeconds: number;
  readonly requestsPerSecond: number;
}

export interface HistogramBucket {
  /** Latencies in (previous mark, mark]; the first mark is the fastest latency. */
  readonly upToSeconds: number;
  readonly count: number;
}

export interface LatencyReport {
  readonly summary: LatencySummary;
  readonly histogram: readonly HistogramBucket[];
  readonly percentiles: readonly { readonly percentile: number; readonly seconds: number }[];
  readonly maxSeconds: number;
}

/**
 * The report of one run: `latenciesSeconds` of the successful requests (any order; sorted in
 * place), `errors` failed requests, and the wall time of the whole run.
 */
export function buildReport(latenciesSeconds: Float64Array, errors: number, totalSeconds: number): LatencyReport {
  const sorted = latenciesSeconds.sort();
  const count = sorted.length;
  const fastest = count === 0 ? 0 : (sorted[0] ?? 0);
  const slowest = count === 0 ? 0 : (sorted[count - 1] ?? 0);
  const { mean, stddev } = meanAndStddev(sorted);
  return {
    summary: {
      requests: count,
      errors,
      totalSeconds,
      slowestSeconds: slowest,
      fastestSeconds: fastest,
      averageSeconds: mean,
      stddevSeconds: stddev,
      requestsPerSecond: totalSeconds > 0 ? count / totalSeconds : 0,
    },
    histogram: histogramOf(sorted, HISTOGRAM_BUCKETS),
    percentiles: PERCENTILES.map((percentile) => ({ percentile, seconds: percentileOf(sorted, percentile) })),
    maxSeconds: slowest,
  };
}

/**
 * Nearest rank: the smallest latency with at least `percentile`% of all latencies at or
 * below it. `sorted` is ascending; 0 for no latencies.
 */
export function percentileOf(sorted: Float64Array, percentile: number): number {
  assert(percentile > 0 && percentile <= 100, `percentile ${percentile} outside (0, 100]`);
  if (sorted.length === 0) return 0;
  // Rounded first: 99.9 * 1000 / 100 is 999.0000000000001 in floating point, rank 999 in fact.
  const rank = Math.ceil(Number(((percentile * sorted.length) / 100).toFixed(9)));
  return sorted[Math.max(rank, 1) - 1] ?? 0;
}

/** Equal-width buckets from fastest to slowest, like etcd's report; counts sum to the total. */
export function histogramOf(sorted: Float64Array, bucketCount: number): HistogramBucket[] {
  if (sorted.length === 0) return [];
  const fastest = sorted[0] ?? 0;
  const width = ((sorted[sorted.length - 1] ?? 0) - fastest) / bucketCount;
  const marks = Array.from({ length: bucketCount + 1 }, (_, index) => (index === bucketCount ? (sorted[sorted.length - 1] ?? 0) : fastest + width * index));
  const counts = new Array<number>(marks.length).fill(0);
  let bucket = 0;
  for (const latency of sorted) {
    while (bucket < marks.length - 1 && latency > (marks[bucket] ?? 0)) bucket += 1;
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  return marks.map((upToSeconds, index) => ({ upToSeconds, count: counts[index] ?? 0 }));
}

function meanAndStddev(values: Float64Array): { mean: number; stddev: number } {
  if (values.length === 0) return { mean: 0, stddev: 0 };
  let sum = 0;
  for (const value of values) sum += value;
  const mean = sum / values.length;
  let squares = 0;
  for (const value of values) squares += (value - mean) ** 2;
  return { mean, stddev: Math.sqrt(squares / values.length) };
}

/** The report as etcd's benchmark prints it: Summary, histogram with bars, distribution. */
export function formatReport(report: LatencyReport): string {
  const { summary } = report;
  const seconds = (value: number): string => `${value.toFixed(4)} secs.`;
  const lines = [
    "Summary:",
    `  Total:\t${seconds(summary.totalSeconds)}`,
    `  Slowest:\t${seconds(summary.slowestSeconds)}`,
    `  Fastest:\t${seconds(summary.fastestSeconds)}`,
    `  Average:\t${seconds(summary.averageSeconds)}`,
    `  Stddev:\t${seconds(summary.stddevSeconds)}`,
    `  Requests/sec:\t${summary.requestsPerSecond.toFixed(4)}`,
    ...(summary.errors > 0 ? [`  Errors:\t${summary.errors}`] : []),
    "",
    "Response time histogram:",
    ...formatHistogram(report.histogram),
    "",
    "Latency distribution:",
    ...report.percentiles.map(({ percentile, seconds: value }) => `  ${percentile}% in ${seconds(value)}`),
    `  max in ${seconds(report.maxSeconds)}`,
  ];
  return lines.join("\n");
}

function formatHistogram(histogram: readonly HistogramBucket[]): string[] {
  const largest = Math.max(0, ...histogram.map((bucket) => bucket.count));
  return histogram.map(({ upToSeconds, count }) => `  ${upToSeconds.toFixed(4)} [${count}]\t|${BAR.repeat(largest === 0 ? 0 : Math.floor((count * BAR_WIDTH) / largest))}`);
}
