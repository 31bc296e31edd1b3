import { RaftError } from "./types.js";
import type { Membership, MembershipChange, NodeId } from "./types.js";

export function isVoter(membership: Membership, id: NodeId): boolean {
  return membership.voters.includes(id);
}

export function isMember(membership: Membership, id: NodeId): boolean {
  return membership.voters.includes(id) || membership.learners.includes(id);
}

/** Every member except `self`: the peers a leader replicates to. */
export function peersOf(membership: Membership, self: NodeId): NodeId[] {
  return [...membership.voters, ...membership.learners].filter((id) => id !== self);
}

function invalid(message: string): RaftError {
  return new RaftError("INVALID_MEMBERSHIP_CHANGE", message);
}

function without<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  const copy = { ...record };
  delete copy[key];
  return copy;
}

/**
 * The configuration after one single-server change (dissertation §4.1): a new node enters as
 * a learner, only a learner is promoted, and the last voter cannot leave.
 */
export function changeMembership(membership: Membership, change: MembershipChange): Membership {
  const { voters, learners, addresses } = membership;
  switch (change.type) {
    case "addLearner":
      if (isMember(membership, change.node)) throw invalid(`${change.node} is already a member`);
      return { voters, learners: [...learners, change.node], addresses: { ...addresses, [change.node]: change.address } };
    case "promote":
      if (!learners.includes(change.node)) throw invalid(`${change.node} is not a learner`);
      return { voters: [...voters, change.node], learners: learners.filter((id) => id !== change.node), addresses };
    case "remove":
      if (!isMember(membership, change.node)) throw invalid(`${change.node} is not a member`);
      if (voters.length === 1 && voters[0] === change.node) throw invalid("the last voter cannot be removed");
      return {
        voters: voters.filter((id) => id !== change.node),
        learners: learners.filter((id) => id !== change.node),
        addresses: without(addresses, change.node),
      };
  }
}
