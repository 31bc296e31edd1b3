import { assert } from "../util/assert.js";
import type { NodeId } from "./types.js";

/**
 * The largest value that a majority of `values` has reached: the commit index for match
 * indexes, the confirmed ReadIndex round for acknowledged rounds (Raft §5.3, §5.4.2).
 * Sorting descending, the majority-th value is reached by exactly a majority.
 */
export function quorumValue(values: readonly number[]): number {
  assert(values.length > 0, "a quorum needs at least one voter");
  const descending = [...values].sort((a, b) => b - a);
  const value = descending[Math.floor(values.length / 2)];
  assert(value !== undefined, "majority position is inside the list");
  return value;
}

export type VoteOutcome = "won" | "lost" | "pending";

/** Outcome of an election among `voters`; nodes that are not voters never count. */
export function voteOutcome(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  const majority = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let rejected = 0;
  for (const voter of voters) {
    const vote = votes.get(voter);
    if (vote === true) granted++;
    if (vote === false) rejected++;
  }
  if (granted >= majority) return "won";
  if (rejected > voters.length - majority) return "lost";
  return "pending";
}

/** True when a majority of `voters` satisfies `present` (an empty voter list has no quorum). */
export function hasQuorum(voters: readonly NodeId[], present: (id: NodeId) => boolean): boolean {
  return voters.length > 0 && voters.filter(present).length > voters.length / 2;
}
