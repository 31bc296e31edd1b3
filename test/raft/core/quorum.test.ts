import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { quorumValue, voteOutcome } from "../../../src/raft/quorum.js";

/** The definition itself: the largest value that more than half of the voters have reached. */
function naiveQuorumValue(values: readonly number[]): number {
  const reachedByMajority = values.filter((candidate) => values.filter((value) => value >= candidate).length * 2 > values.length);
  return Math.max(...reachedByMajority);
}

function naiveVoteOutcome(voters: readonly string[], votes: ReadonlyMap<string, boolean>): string {
  const granted = voters.filter((voter) => votes.get(voter) === true).length;
  const undecided = voters.filter((voter) => !votes.has(voter)).length;
  if (granted * 2 > voters.length) return "won";
  if ((granted + undecided) * 2 <= voters.length) return "lost";
  return "pending";
}

describe("quorum maths against a naive reference", () => {
  it("quorumValue is the largest value a majority has reached", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 9 }), (values) => {
        expect(quorumValue(values)).toBe(naiveQuorumValue(values));
      }),
      { numRuns: 500 },
    );
  });

  it("voteOutcome decides exactly when a majority granted or can no longer grant", () => {
    const voters = ["a", "b", "c", "d", "e", "f", "g"];
    const scenario = fc.record({
      size: fc.integer({ min: 1, max: voters.length }),
      votes: fc.array(fc.option(fc.boolean(), { nil: undefined }), { minLength: voters.length, maxLength: voters.length }),
      outsiders: fc.array(fc.boolean(), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(scenario, ({ size, votes, outsiders }) => {
        const members = voters.slice(0, size);
        const ballot = new Map<string, boolean>();
        members.forEach((voter, position) => {
          const vote = votes[position];
          if (vote !== undefined) ballot.set(voter, vote);
        });
        // Votes from non-voters (learners, removed nodes) must never count.
        outsiders.forEach((vote, position) => ballot.set(`outsider-${position}`, vote));
        expect(voteOutcome(members, ballot)).toBe(naiveVoteOutcome(members, ballot));
      }),
      { numRuns: 500 },
    );
  });
});
