import type { Value } from "../engine/value.js";

/** One member as `clusterStatus()` reports it: its own view, asked directly. */
export interface ClusterMemberStatus {
  readonly id: string;
  readonly address: string;
  /** A voter, or a learner still catching up. */
  readonly voter: boolean;
  /** It answered within the status timeout; when false every figure is null and `error` says why. */
  readonly reachable: boolean;
  readonly role: string | null;
  readonly term: number | null;
  /** Id of the leader this member follows. */
  readonly leader: string | null;
  readonly commit: number | null;
  readonly applied: number | null;
  readonly lastIndex: number | null;
  readonly error: string | null;
}

/** The membership part of a node's status: who the members are and where they listen. */
export interface MembershipView {
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly addresses: ReadonlyMap<string, string>;
  readonly leaderAddress: string | null;
}

/** Reads the membership out of a decoded status (a Map, as the codec decodes objects). */
export function membershipOf(status: Value): MembershipView {
  const membership = field(status, "membership");
  const addresses = field(membership, "addresses");
  const leaderAddress = field(status, "leaderAddress");
  return {
    voters: stringList(field(membership, "voters")),
    learners: stringList(field(membership, "learners")),
    addresses: addresses instanceof Map ? new Map([...addresses].filter((entry): entry is [string, string] => typeof entry[1] === "string")) : new Map(),
    leaderAddress: typeof leaderAddress === "string" ? leaderAddress : null,
  };
}

export function memberStatusOf(id: string, address: string, voter: boolean, status: Value): ClusterMemberStatus {
  return {
    id,
    address,
    voter,
    reachable: true,
    role: stringOrNull(field(status, "role")),
    term: numberOrNull(field(status, "term")),
    leader: stringOrNull(field(status, "leader")),
    commit: numberOrNull(field(status, "commit")),
    applied: numberOrNull(field(status, "applied")),
    lastIndex: numberOrNull(field(status, "lastIndex")),
    error: null,
  };
}

export function unreachableMember(id: string, address: string, voter: boolean, error: string): ClusterMemberStatus {
  return { id, address, voter, reachable: false, role: null, term: null, leader: null, commit: null, applied: null, lastIndex: null, error };
}

function field(data: unknown, name: string): unknown {
  return data instanceof Map ? (data as ReadonlyMap<unknown, unknown>).get(name) : undefined;
}

function stringList(data: unknown): string[] {
  return Array.isArray(data) ? data.filter((item): item is string => typeof item === "string") : [];
}

function stringOrNull(data: unknown): string | null {
  return typeof data === "string" ? data : null;
}

function numberOrNull(data: unknown): number | null {
  if (typeof data === "bigint") return Number(data);
  return typeof data === "number" ? data : null;
}
