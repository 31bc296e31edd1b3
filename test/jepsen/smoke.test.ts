/**
 * CI smoke run of jepsen-lite: a real 3-node cluster, every workload, kill -9, partitions, lost
 * disks and forged peer traffic for 45 s. Any anomaly (or a check that cannot decide) fails the
 * test; the run's directory with report.html and the node logs is kept then, and its path printed.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ClusterControl } from "../../jepsen-lite/control.js";
import { pollUntil } from "../../src/util/processes.js";
import { findLeader } from "../../jepsen-lite/nemesis.js";
import { run, WORKLOAD_NAMES } from "../../jepsen-lite/runner.js";

const RUN_SECONDS = 45;
const SEED = 20_261_122;
const TEST_TIMEOUT_MS = 150_000;
const ELECTION_DEADLINE_MS = 15_000;

describe("jepsen-lite smoke", () => {
  it(
    "finds no anomaly under kill -9, partitions, lost disks and forged peer traffic, with every workload",
    async () => {
      const outDirectory = await mkdtemp(join(tmpdir(), "jepsen-lite-smoke-"));
      const result = await run({
        nodes: 3,
        timeSeconds: RUN_SECONDS,
        workloads: [...WORKLOAD_NAMES],
        nemesis: ["kill", "partition", "lost-disk", "forged-peer"],
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
      const kinds = result.nemesis.map((event) => event.kind);
      expect(kinds.some((kind) => kind.startsWith("lost-disk"))).toBe(true);
      expect(kinds).toContain("forged-peer");
      expect(result.checks.operations.ok).toBeGreaterThan(1000);
      const report = await readFile(join(outDirectory, "report.html"), "utf8");
      expect(report).toContain('<span class="valid">valid</span>');
      await rm(outDirectory, { recursive: true, force: true });
    },
    TEST_TIMEOUT_MS,
  );

  it("cluster control: the per-link proxies isolate the leader, the others elect a new one, healing reunites them", async () => {
    const directory = await mkdtemp(join(tmpdir(), "jepsen-lite-control-"));
    // What an earlier run left in the same directory is gone: a run starts from an empty cluster.
    await mkdir(join(directory, "n1"));
    await writeFile(join(directory, "n1", "left-by-an-earlier-run"), "stale");
    const control = await ClusterControl.create({ size: 3, directory, fsync: "always" });
    expect(existsSync(join(directory, "n1", "left-by-an-earlier-run"))).toBe(false);
    try {
      control.startAll();
      const started = await control.waitForRecovery(ELECTION_DEADLINE_MS);
      const first = await findLeader(control);
      if (started === null || first === null) throw new Error("no leader at start-up");
      const firstTerm = started.get(first)?.term ?? Infinity;
      const others = control.ids.filter((id) => id !== first);
      for (const other of others) {
        control.setLink(first, other, "drop");
        control.setLink(other, first, "drop");
      }
      const successor = await pollUntil(ELECTION_DEADLINE_MS, async () => {
        const statuses = await control.statuses();
        const leaders = others.filter((id) => statuses.get(id)?.role === "leader");
        return leaders.length === 1 && others.every((id) => statuses.get(id)?.leader === leaders[0]) ? (leaders[0] ?? null) : null;
      });
      expect(others).toContain(successor);
      control.healLinks();
      // Pre-vote keeps the returning node from deposing the new leader with a stale term.
      const healed = [...((await control.waitForRecovery(ELECTION_DEADLINE_MS))?.values() ?? [])];
      expect(healed.map((status) => status.leader)).toEqual([successor, successor, successor]);
      expect(healed.every((status) => status.term > firstTerm)).toBe(true);
      expect(control.crashes).toEqual([]);
    } finally {
      await control.stop();
      await rm(directory, { recursive: true, force: true });
    }
  }, TEST_TIMEOUT_MS);
});
