import type { ClusterMemberStatus } from "../client/cluster-status.js";

/** One row of `kv cluster status`; lag is the leader's last index minus the member's. */
export interface MemberRow {
  readonly id: string;
  readonly address: string;
  readonly role: string;
  readonly term: number | null;
  readonly commit: number | null;
  readonly applied: number | null;
  readonly lastIndex: number | null;
  readonly lag: number | null;
  readonly reachable: boolean;
}

const COLUMNS: readonly { readonly title: string; readonly cell: (row: MemberRow) => string }[] = [
  { title: "ID", cell: (row) => row.id },
  { title: "ADDRESS", cell: (row) => row.address },
  { title: "ROLE", cell: (row) => row.role },
  { title: "TERM", cell: (row) => figure(row.term) },
  { title: "COMMIT", cell: (row) => figure(row.commit) },
  { title: "APPLIED", cell: (row) => figure(row.applied) },
  { title: "LAST INDEX", cell: (row) => figure(row.lastIndex) },
  { title: "LAG", cell: (row) => figure(row.lag) },
  { title: "REACHABLE", cell: (row) => (row.reachable ? "yes" : "no") },
];

/**
 * The members as rows. The leader is the reachable member that says it leads in the highest
 * term (a deposed leader that has not heard of the new term yet may still say so). Without a
 * leader, lag is unknown.
 */
export function memberRows(members: readonly ClusterMemberStatus[]): MemberRow[] {
  const leader = members
    .filter((member) => member.reachable && member.role === "leader")
    .sort((left, right) => (right.term ?? 0) - (left.term ?? 0))[0];
  const leaderLastIndex = leader?.lastIndex ?? null;
  return members.map((member) => ({
    id: member.id,
    address: member.address,
    role: member.role ?? (member.voter ? "unknown" : "learner"),
    term: member.term,
    commit: member.commit,
    applied: member.applied,
    lastIndex: member.lastIndex,
    lag: leaderLastIndex === null || member.lastIndex === null ? null : Math.max(0, leaderLastIndex - member.lastIndex),
    reachable: member.reachable,
  }));
}

/** An aligned text table, columns padded to their widest cell. */
export function formatMemberTable(rows: readonly MemberRow[]): string {
  const cells = [COLUMNS.map((column) => column.title), ...rows.map((row) => COLUMNS.map((column) => column.cell(row)))];
  const widths = COLUMNS.map((_, index) => Math.max(...cells.map((line) => (line[index] ?? "").length)));
  return cells.map((line) => line.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join("  ").trimEnd()).join("\n");
}

function figure(value: number | null): string {
  return value === null ? "-" : String(value);
}
