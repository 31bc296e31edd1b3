/**
 * Prints the markdown table of docs/BENCHMARKS.md "Cluster throughput and latency vs etcd" from
 * the `kv-bench --json` results that bench/compare-etcd.sh writes: `<dir>/<target>-<run>.json`.
 *
 *   node dist/bench/etcd/summarize.js <dir> <run>...
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

interface BenchJson {
  readonly summary: { readonly requestsPerSecond: number; readonly averageSeconds: number; readonly errors: number };
  readonly percentiles: readonly { readonly percentile: number; readonly seconds: number }[];
}

function load(directory: string, target: "kv" | "etcd", run: string): BenchJson {
  return JSON.parse(readFileSync(join(directory, `${target}-${run}.json`), "utf8")) as BenchJson;
}

function p99Ms(result: BenchJson): number {
  return (result.percentiles.find((entry) => entry.percentile === 99)?.seconds ?? Number.NaN) * 1000;
}

function row(run: string, ours: BenchJson, etcd: BenchJson): string {
  const cells = [
    run,
    ours.summary.requestsPerSecond.toFixed(0),
    etcd.summary.requestsPerSecond.toFixed(0),
    (ours.summary.requestsPerSecond / etcd.summary.requestsPerSecond).toFixed(2),
    (ours.summary.averageSeconds * 1000).toFixed(2),
    (etcd.summary.averageSeconds * 1000).toFixed(2),
    (ours.summary.averageSeconds / etcd.summary.averageSeconds).toFixed(2),
    p99Ms(ours).toFixed(2),
    p99Ms(etcd).toFixed(2),
    (p99Ms(ours) / p99Ms(etcd)).toFixed(2),
    `${ours.summary.errors} / ${etcd.summary.errors}`,
  ];
  return `| ${cells.join(" | ")} |`;
}

const [directory, ...runs] = process.argv.slice(2);
if (directory === undefined || runs.length === 0) {
  process.stderr.write("usage: summarize.js <dir> <run>...\n");
  process.exit(2);
}
const header = ["run", "ours req/s", "etcd req/s", "ratio", "ours avg ms", "etcd avg ms", "ratio", "ours p99 ms", "etcd p99 ms", "ratio", "errors (ours / etcd)"];
process.stdout.write(`| ${header.join(" | ")} |\n|${header.map(() => "---").join("|")}|\n`);
for (const run of runs) process.stdout.write(`${row(run, load(directory, "kv", run), load(directory, "etcd", run))}\n`);
