import { describe, expect, test } from "vitest";
import type { ClusterMemberStatus } from "../../src/client/cluster-status.js";
import { formatMemberTable, memberRows } from "../../src/cli/cluster-table.js";

function member(id: string, fields: Partial<ClusterMemberStatus>): ClusterMemberStatus {
  return { id, address: `127.0.0.1:70${id.slice(1)}`, voter: true, reachable: true, role: "follower", term: 3, leader: "n1", commit: 10, applied: 10, lastIndex: 10, error: null, ...fields };
}

describe("kv cluster status table", () => {
  test("lag is the leader's last index minus each member's; unknown for an unreachable member", () => {
    const rows = memberRows([
      member("n1", { role: "leader", lastIndex: 120 }),
      member("n2", { lastIndex: 117 }),
      member("n3", { reachable: false, role: null, term: null, commit: null, applied: null, lastIndex: null, error: "refused" }),
    ]);
    expect(rows.map((row) => [row.id, row.role, row.lag, row.reachable])).toEqual([
      ["n1", "leader", 0, true],
      ["n2", "follower", 3, true],
      ["n3", "unknown", null, false],
    ]);
  });

  test("a deposed leader in an older term does not count as the leader", () => {
    const rows = memberRows([member("n1", { role: "leader", term: 2, lastIndex: 50 }), member("n2", { role: "leader", term: 3, lastIndex: 40 }), member("n3", { lastIndex: 38 })]);
    expect(rows.map((row) => row.lag)).toEqual([0, 0, 2]);
  });

  test("without a leader, lag is unknown everywhere", () => {
    expect(memberRows([member("n1", {}), member("n2", {})]).map((row) => row.lag)).toEqual([null, null]);
  });

  test("aligned columns with a header, '-' for unknown figures", () => {
    const text = formatMemberTable(memberRows([member("n1", { role: "leader", lastIndex: 9 }), member("n2", { reachable: false, role: null, term: null, commit: null, applied: null, lastIndex: null })]));
    expect(text.split("\n")).toEqual([
      "ID  ADDRESS        ROLE     TERM  COMMIT  APPLIED  LAST INDEX  LAG  REACHABLE",
      "n1  127.0.0.1:701  leader   3     10      10       9           0    yes",
      "n2  127.0.0.1:702  unknown  -     -       -        -           -    no",
    ]);
  });
});
