/**
 * CI smoke run of jepsen-lite: a real 3-node cluster, every workload, kill -9 and partitions for
 * 45 s. Any anomaly (or a check that cannot decide) fails the test; the run's directory with
 * report.html and the node logs is kept then, and its path printed.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run, WORKLOAD_NAMES } from "../../jepsen-lite/runner.js";

const RUN_SECONDS = 45;
const SEED = 20_261_122;
const TEST_TIMEOUT_MS = 150_000;

describe("jepsen-lite smoke", () => {
  it(
    "finds no anomaly under kill -9 and partitions, with every workload",
    async () => {
      const outDirectory = await mkdtemp(join(tmpdir(), "jepsen-lite-smoke-"));
      const result = await run({
        nodes: 3,
        timeSeconds: RUN_SECONDS,
        workloads: [...WORKLOAD_NAMES],
        nemesis: ["kill", "partition"],
        seed: SEED,
        outDirectory,
        consistency: "linearizable",
        fsync: "always",
        clientsPerWorkload: 3,
        operationTimeoutMs: 3000,
      });
      if (result.valid !== true) process.stderr.write(`jepsen-lite smoke run kept in ${outDirectory}\n`);
      expect({ valid: result.valid, errors: result.errors, crashes: result.crashes, whitebox: result.whitebox.anomalies }).toEqual({ valid: true, errors: [], crashes: [], whitebox: [] });
      expect(result.recovered).toBe(true);
      expect(result.nemesis.length).toBeGreaterThanOrEqual(4);
      expect(result.checks.operations.ok).toBeGreaterThan(1000);
      const report = await readFile(join(outDirectory, "report.html"), "utf8");
      expect(report).toContain('<span class="valid">valid</span>');
      await rm(outDirectory, { recursive: true, force: true });
    },
    TEST_TIMEOUT_MS,
  );
});
