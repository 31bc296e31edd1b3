/**
 * `npm run sim -- --seeds 10000 [--start 1] [--keep-going]`: runs that many simulated seeds and
 * prints what they covered. `SEED=123 npm run sim [-- --trace]` replays one seed exactly.
 * Exit status 1 at the first violation (or, with --keep-going, after all seeds if any failed);
 * the failing seed's trace is written to .sim-failures/.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runSeed, type RunReport } from "./workload.js";

const FAILURE_TRACE_LINES = 300;
const FAILURE_DIRECTORY = ".sim-failures";

interface Totals {
  seeds: number;
  simulatedMs: number;
  acknowledgedWrites: number;
  servedReads: number;
  failedReads: number;
  messagesDelivered: number;
  leadersElected: number;
  crashes: number;
  snapshotsInstalled: number;
  membershipChanges: number;
  peakWritesInFlight: number;
  writesLostInCrashes: number;
  failedSeeds: number[];
}

function main(): void {
  const { values } = parseArgs({
    options: {
      seeds: { type: "string", default: "100" },
      start: { type: "string", default: "1" },
      trace: { type: "boolean", default: false },
      "keep-going": { type: "boolean", default: false },
    },
  });
  const single = process.env["SEED"];
  const first = single === undefined ? Number(values.start) : Number(single);
  const count = single === undefined ? Number(values.seeds) : 1;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || count < 1) {
    throw new RangeError("--seeds, --start and SEED must be integers");
  }
  const totals: Totals = { seeds: 0, simulatedMs: 0, acknowledgedWrites: 0, servedReads: 0, failedReads: 0, messagesDelivered: 0, leadersElected: 0, crashes: 0, snapshotsInstalled: 0, membershipChanges: 0, peakWritesInFlight: 0, writesLostInCrashes: 0, failedSeeds: [] };
  const startedMs = performance.now();
  for (let seed = first; seed < first + count; seed++) {
    const passed = runOne(seed, totals, values.trace);
    if (!passed && !values["keep-going"]) break;
  }
  printTotals(totals, first, (performance.now() - startedMs) / 1000);
  process.exitCode = totals.failedSeeds.length === 0 ? 0 : 1;
}

function runOne(seed: number, totals: Totals, printTrace: boolean): boolean {
  const recentTrace: string[] = [];
  const onTrace = (line: string): void => {
    if (printTrace) console.log(line);
    recentTrace.push(line);
    if (recentTrace.length > FAILURE_TRACE_LINES) recentTrace.shift();
  };
  totals.seeds++;
  try {
    add(totals, runSeed(seed, onTrace));
    return true;
  } catch (error) {
    totals.failedSeeds.push(seed);
    const description = error instanceof Error ? (error.stack ?? error.message) : String(error);
    mkdirSync(FAILURE_DIRECTORY, { recursive: true });
    const path = `${FAILURE_DIRECTORY}/seed-${seed}.log`;
    writeFileSync(path, `${recentTrace.join("\n")}\n\n${description}\n`);
    console.log(`VIOLATION seed=${seed}: ${description}`);
    console.log(`  last events in ${path}; replay: SEED=${seed} npm run sim -- --trace`);
    return false;
  }
}

function add(totals: Totals, report: RunReport): void {
  totals.simulatedMs += report.simulatedMs;
  totals.acknowledgedWrites += report.acknowledgedWrites;
  totals.servedReads += report.servedReads;
  totals.failedReads += report.failedReads;
  totals.messagesDelivered += report.messagesDelivered;
  totals.leadersElected += report.leadersElected;
  totals.crashes += report.crashes;
  totals.snapshotsInstalled += report.snapshotsInstalled;
  totals.membershipChanges += report.membershipChanges;
  totals.peakWritesInFlight = Math.max(totals.peakWritesInFlight, report.peakWritesInFlight);
  totals.writesLostInCrashes += report.writesLostInCrashes;
}

function printTotals(totals: Totals, first: number, wallSeconds: number): void {
  console.log(`seeds run: ${totals.seeds} (${first}..${first + totals.seeds - 1})`);
  console.log(`simulated time: ${(totals.simulatedMs / 1000).toFixed(1)} s (${(totals.simulatedMs / 1000 / 3600).toFixed(2)} h)`);
  console.log(`acknowledged writes: ${totals.acknowledgedWrites}, linearizable reads served: ${totals.servedReads} (failed or timed out: ${totals.failedReads})`);
  console.log(`messages delivered: ${totals.messagesDelivered}`);
  console.log(`leaders elected: ${totals.leadersElected}, crashes: ${totals.crashes}, snapshots installed: ${totals.snapshotsInstalled}, membership changes: ${totals.membershipChanges}`);
  console.log(`log writes: at most ${totals.peakWritesInFlight} in flight on one node, ${totals.writesLostInCrashes} lost in crashes`);
  console.log(`violations: ${totals.failedSeeds.length}${totals.failedSeeds.length > 0 ? ` (seeds ${totals.failedSeeds.join(", ")})` : ""}`);
  console.log(`wall time: ${wallSeconds.toFixed(1)} s`);
}

main();
