import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { RefusedMessage } from "../../src/raft/types.js";
import { Metrics } from "../../src/server/metrics.js";
import { RefusalReporter } from "../../src/server/refusal-reporter.js";

/** A reporter whose log lines are collected and whose clock the test moves. */
function reporterWithClock(): { reporter: RefusalReporter; metrics: Metrics; lines: Record<string, unknown>[]; clock: { nowMs: number } } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const clock = { nowMs: 10_000 };
  const metrics = new Metrics();
  const reporter = new RefusalReporter(metrics, pino({ level: "warn" }, sink), () => clock.nowMs);
  return { reporter, metrics, lines, clock };
}

const twoLeaders = (count = 1): RefusedMessage => ({ reason: "two_leaders", from: "n2", type: "heartbeat", term: 4, count });

describe("refused peer messages are logged at most once per reason per second and always counted", () => {
  it("logs the first refusal of a reason, then counts the rest until a second has passed", () => {
    const { reporter, metrics, lines, clock } = reporterWithClock();
    reporter.report([twoLeaders(), twoLeaders(), { reason: "match_beyond_log", from: "n3", type: "appendEntriesResponse", term: 4, count: 1 }]);
    reporter.report([twoLeaders(5)]);
    expect(lines.map((line) => line["reason"])).toEqual(["two_leaders", "match_beyond_log"]);
    expect(lines[0]).toMatchObject({ level: 40, from: "n2", type: "heartbeat", term: 4, count: 1, notLoggedBefore: 0 });
    clock.nowMs += 1000;
    reporter.report([twoLeaders()]);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ reason: "two_leaders", notLoggedBefore: 6 });
    const text = metrics.render();
    expect(text).toContain('kv_peer_messages_refused_total{reason="two_leaders"} 8\n');
    expect(text).toContain('kv_peer_messages_refused_total{reason="match_beyond_log"} 1\n');
    expect(text).toContain('kv_peer_messages_refused_total{reason="term_beyond_bound"} 0\n');
  });

  it("renders one family in the Prometheus text format: HELP and TYPE once, then a line per label value", () => {
    const { metrics } = reporterWithClock();
    const lines = metrics.render().trimEnd().split("\n");
    expect(lines.filter((line) => line.startsWith("# TYPE"))).toEqual(["# TYPE kv_peer_messages_refused_total counter"]);
    expect(lines.filter((line) => line.startsWith("# HELP"))).toHaveLength(1);
    const samples = lines.filter((line) => !line.startsWith("#"));
    for (const sample of samples) expect(sample).toMatch(/^kv_peer_messages_refused_total\{reason="[a-z_]+"\} 0$/);
    expect(samples).toHaveLength(9);
  });
});
