import { describe, expect, it } from "vitest";
import { checkAll } from "../../jepsen-lite/checkers/index.js";
import type { NemesisEvent } from "../../jepsen-lite/nemesis.js";
import { faultStatistics, renderReport, type ReportInput } from "../../jepsen-lite/report.js";
import { HistoryBuilder } from "./history-builder.js";

const MS = 1e6;

/** A write, then during a fault a read that sees a value nobody wrote and an increment in doubt. */
function syntheticHistory(): HistoryBuilder {
  return new HistoryBuilder()
    .at(0).invoke(0, "write", "register:0", 1n)
    .at(10).ok(0)
    .at(1000).invoke(1, "read", "register:0")
    .at(1040).ok(1, 7n)
    .at(1200).invoke(2, "write", "register:1", 3n)
    .at(2000).invoke(0, "cas", "register:1", [3n, 4n])
    .at(2005).fail(0, "MISMATCH")
    .at(4200).info(2);
}

const NEMESIS: NemesisEvent[] = [
  { kind: "kill-leader", nodes: ["n2"], startTime: 500 * MS, endTime: 1500 * MS, detail: "kill -9 n2" },
  { kind: "partition-split", nodes: ["n1", "n2", "n3"], startTime: 1900 * MS, endTime: 2500 * MS, detail: "drop n1->n2 n2->n1" },
];

function reportInput(history: ReturnType<HistoryBuilder["events"]>): ReportInput {
  const checks = checkAll(history, { workloads: ["register"] });
  return {
    valid: checks.valid === true, seed: 7, options: { nodes: 3 }, nemesis: NEMESIS, checks, ttl: null,
    whitebox: { anomalies: [] }, errors: [], crashes: [], recovered: true, faults: faultStatistics(history, NEMESIS),
  };
}

describe("faultStatistics", () => {
  it("counts the operations invoked inside each kind of fault, and those outside all", () => {
    const statistics = faultStatistics(syntheticHistory().events(), NEMESIS);
    expect(statistics.map((entry) => entry.kind)).toEqual(["none", "kill-leader", "partition-split"]);
    const [calm, kill, split] = statistics;
    expect(calm).toMatchObject({ windows: 0, attempted: 1, ok: 1, okRatio: 1, availability: 1, p50LatencyMs: 10, p99LatencyMs: 10 });
    expect(kill).toMatchObject({ windows: 1, attempted: 2, ok: 1, okRatio: 0.5, availability: 0.5, p99LatencyMs: 40 });
    // A cas refused by mismatch is an answer of a working cluster, not an outage.
    expect(split).toMatchObject({ windows: 1, attempted: 1, ok: 0, okRatio: 0, availability: 1, okPerSecond: 0, p99LatencyMs: null });
    // ok completions per second of window time: the read in the 1 s kill; the write in 2.6 s of calm.
    expect(kill?.okPerSecond).toBeCloseTo(1, 6);
    expect(calm?.okPerSecond).toBeCloseTo(1 / 2.6, 6);
  });
});

describe("renderReport", () => {
  const history = syntheticHistory().events();
  const html = renderReport(reportInput(history), history);

  it("is one self-contained page: inline SVG plots, no script, nothing fetched", () => {
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it("draws a nemesis band per fault in every plot, labelled with its kind", () => {
    expect(html.match(/class="nemesis-band"/g)).toHaveLength(3 * NEMESIS.length);
    expect(html).toContain(">kill-leader</text>");
    expect(html).toContain("kill -9 n2");
    expect(html).toContain("drop n1-&#62;n2 n2-&#62;n1");
  });

  it("names the verdict and lists the operations of the failing key", () => {
    expect(html).toContain('<span class="invalid">invalid</span>');
    const anomalies = html.slice(html.indexOf("<h2>Anomalies</h2>"), html.indexOf("<h2>Availability"));
    expect(anomalies).toContain("register:0");
    expect(anomalies).toContain("<td>p1</td><td>read</td>");
    expect(anomalies).toContain('{&#34;$bigint&#34;:&#34;7&#34;}');
  });

  it("tabulates availability per fault", () => {
    expect(html).toContain("<td>kill-leader</td><td>1</td><td>2</td><td>1</td><td>50.0 %</td><td>50.0 %</td>");
  });

  it("says so when nothing was found", () => {
    const clean = new HistoryBuilder().at(0).invoke(0, "write", "register:0", 1n).at(5).ok(0).events();
    expect(renderReport(reportInput(clean), clean)).toContain("<p>None found.</p>");
  });
});
