import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RaftError } from "../../../src/raft/types.js";
import { Cluster, command, seededRandom } from "./cluster.js";

const IDS = ["n1", "n2", "n3"] as const;

type Action =
  | { readonly kind: "tick" }
  | { readonly kind: "deliver"; readonly seed: number }
  | { readonly kind: "propose"; readonly value: number }
  | { readonly kind: "restart"; readonly node: number }
  | { readonly kind: "compact"; readonly node: number }
  | { readonly kind: "read"; readonly node: number }
  | { readonly kind: "isolate"; readonly node: number }
  | { readonly kind: "heal" };

const node = fc.nat({ max: IDS.length - 1 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("tick" as const) }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("deliver" as const), seed: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("propose" as const), value: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart" as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("read" as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("isolate" as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("heal" as const) }) },
);

/** Delivers the queued messages in a random order, losing one in five. */
function deliverShuffled(cluster: Cluster, seed: number): void {
  const random = seededRandom(seed);
  const batch = cluster.queue;
  cluster.queue = [];
  for (let position = batch.length - 1; position > 0; position--) {
    const other = Math.floor(random() * (position + 1));
    [batch[position], batch[other]] = [batch[other] as (typeof batch)[number], batch[position] as (typeof batch)[number]];
  }
  for (const message of batch) if (random() >= 0.2) cluster.deliver(message);
  cluster.processReadies();
}

function proposeEverywhere(cluster: Cluster, value: number): void {
  for (const id of IDS) {
    try {
      cluster.node(id).propose([command(`v${value}`)]);
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
    }
  }
}

function perform(cluster: Cluster, step: Action, restarts: { count: number }): void {
  const member = (index: number): string => IDS[index] ?? "n1";
  switch (step.kind) {
    case "tick":
      for (const id of IDS) cluster.node(id).tick();
      cluster.processReadies();
      return;
    case "deliver":
      return deliverShuffled(cluster, step.seed);
    case "propose":
      return proposeEverywhere(cluster, step.value);
    case "restart":
      // Whatever the node had not handed to storage is lost.
      return cluster.member(member(step.node)).restart(1000 + restarts.count++);
    case "compact":
      return cluster.member(member(step.node)).compact();
    case "read":
      return cluster.node(member(step.node)).readIndex(restarts.count);
    case "isolate":
      return cluster.isolate(member(step.node));
    case "heal":
      return cluster.heal();
  }
}

/** Election safety and state-machine safety, checked after every action. */
function checkSafety(cluster: Cluster, leaders: Map<number, string>): void {
  for (const id of IDS) {
    const status = cluster.node(id).status();
    if (status.role !== "leader") continue;
    expect(leaders.get(status.term) ?? id).toBe(id);
    leaders.set(status.term, id);
  }
  const applied = IDS.map((id) => cluster.member(id).applied);
  for (const a of applied) {
    for (const b of applied) {
      const shorter = Math.min(a.length, b.length);
      expect(a.slice(0, shorter)).toEqual(b.slice(0, shorter));
    }
  }
}

describe("random message loss, reordering, partitions and restarts", () => {
  it("never elects two leaders in a term, never applies diverging entries, and converges afterwards", () => {
    const committedDuringFaults: number[] = [];
    fc.assert(
      fc.property(fc.array(action, { minLength: 150, maxLength: 300 }), (actions) => {
        const cluster = Cluster.of([...IDS], { electionTimeoutTicks: 4, maxSnapshotChunkBytes: 8 });
        const leaders = new Map<number, string>();
        const restarts = { count: 0 };
        for (const step of actions) {
          perform(cluster, step, restarts);
          checkSafety(cluster, leaders);
        }
        committedDuringFaults.push(Math.max(...IDS.map((id) => cluster.member(id).applied.length)));
        cluster.heal();
        cluster.tick(60);
        const leader = cluster.leader();
        cluster.propose(leader, "final");
        cluster.tick(5);
        for (const id of IDS) expect(cluster.member(id).applied).toEqual(cluster.member(leader).applied);
      }),
      { numRuns: 40 },
    );
    // The faults must leave room for progress (about 70% of runs commit), or the test would prove nothing.
    expect(committedDuringFaults.filter((count) => count > 0).length).toBeGreaterThan(committedDuringFaults.length * 0.4);
  });
});
