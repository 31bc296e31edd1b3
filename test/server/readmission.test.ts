import { describe, expect, it } from "vitest";
import type { RaftStatus } from "../../src/raft/types.js";
import type { PeerAnnouncement } from "../../src/server/peer-auth.js";
import { nextReadmissionStep } from "../../src/server/readmission.js";

function status(voters: string[], learners: string[] = [], match: Record<string, number> = {}, commit = 100): RaftStatus {
  const addresses = Object.fromEntries([...voters, ...learners].map((id) => [id, `addr-of-${id}`]));
  const progress = Object.fromEntries(Object.entries(match).map(([id, value]) => [id, { match: value, next: value + 1, state: "replicate" as const }]));
  return { id: "n1", role: "leader", term: 3, leader: "n1", commit, applied: commit, lastIndex: commit, membership: { voters, learners, addresses }, progress };
}

function peer(name: string, memberId: string | null): PeerAnnouncement {
  return { name, memberId, incarnation: "1", cluster: "c", founders: null, address: `bind-of-${name}`, bootId: "b" };
}

describe("re-admission of a member that came back as a new incarnation", () => {
  it("adds the new incarnation as a learner at the old member's address", () => {
    const step = nextReadmissionStep(status(["n1", "n2", "n3"]), [peer("n2", "n2~1")], "n1", new Map());
    expect(step).toEqual({ kind: "addLearner", node: "n2~1", address: "addr-of-n2", replaces: "n2" });
  });

  it("then removes the old id, which no process speaks for", () => {
    const step = nextReadmissionStep(status(["n1", "n2", "n3"], ["n2~1"]), [peer("n2", "n2~1")], "n1", new Map());
    expect(step).toEqual({ kind: "removeReplaced", node: "n2", replacement: "n2~1" });
  });

  it("does not remove a member that is still connected (two processes with one name)", () => {
    const step = nextReadmissionStep(status(["n1", "n2", "n3"], ["n2~1"]), [peer("n2", "n2~1"), peer("n2", "n2")], "n1", new Map());
    expect(step).toBeNull();
  });

  it("promotes the learner only once it reached the commit index of when it was first seen", () => {
    const targets = new Map<string, number>();
    expect(nextReadmissionStep(status(["n1", "n3"], ["n2~1"], { "n2~1": 40 }, 100), [], "n1", targets)).toBeNull();
    expect(nextReadmissionStep(status(["n1", "n3"], ["n2~1"], { "n2~1": 100 }, 150), [], "n1", targets)).toEqual({ kind: "promote", node: "n2~1" });
  });

  it("leaves alone joiners whose name is no member's (an operator adds those) and nodes still discovering", () => {
    expect(nextReadmissionStep(status(["n1", "n2", "n3"]), [peer("n4", "n4~1"), peer("n5", null)], "n1", new Map())).toBeNull();
  });

  it("never replaces the leader itself", () => {
    expect(nextReadmissionStep(status(["n1", "n2", "n3"]), [peer("n1", "n1~1")], "n1", new Map())).toBeNull();
  });
});
