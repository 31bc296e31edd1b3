import type { Membership, NodeId, RefusalReason } from "../../src/raft/types.js";
import { SafetyViolation } from "./checker.js";
import { DEFAULT_CLUSTER_CONFIG, SimulatedCluster, type ClusterConfig, type SimulatedNode } from "./cluster.js";
import { ForgedTraffic } from "./forged-traffic.js";
import { RELIABLE_NETWORK, type NetworkFaults } from "./network.js";
import { Random } from "./random.js";

/** What one seed chose: cluster size, network quality, how long the faults last. */
export interface RunProfile {
  readonly voters: 3 | 5;
  readonly faults: NetworkFaults;
  readonly faultPhaseMs: number;
  readonly crashDuringReadyProbability: number;
  /** Crashes per workload step; some seeds are much harsher than others. */
  readonly crashProbability: number;
  /**
   * Chance that a newly elected leader crashes within a few ms, before its no-op spreads: the
   * situation of Figure 8, where entries of earlier terms sit on a majority uncommitted.
   */
  readonly newLeaderCrashProbability: number;
  /** How soon after its election such a leader crashes, at most (so its messages may or may not have arrived). */
  readonly newLeaderCrashDelayMs: number;
  /** See ClusterConfig.crashAtLeaderMilestoneProbability. */
  readonly crashAtLeaderMilestoneProbability: number;
  /** Down to one entry per message, so that old-term entries travel apart from the new leader's no-op (Figure 8). */
  readonly maxEntriesBytesPerMessage: number;
  /** See ClusterConfig: from a disk that is done at once to one slower than the network, one write at a time or many. */
  readonly maxWriteDelayMs: number;
  readonly maxWritesInFlight: number;
}

export interface RunReport {
  readonly seed: number;
  readonly profile: RunProfile;
  readonly simulatedMs: number;
  readonly acknowledgedWrites: number;
  readonly servedReads: number;
  readonly failedReads: number;
  readonly crashes: number;
  readonly leadersElected: number;
  readonly snapshotsInstalled: number;
  readonly membershipChanges: number;
  readonly peakWritesInFlight: number;
  readonly writesLostInCrashes: number;
  readonly messagesDelivered: number;
  /** With forged traffic: messages forged, by the refusal each one is owed. */
  readonly forgedMessages: ReadonlyMap<RefusalReason, number>;
  /** Messages the cores refused, by reason (0 in a run without forged traffic). */
  readonly refusedMessages: ReadonlyMap<RefusalReason, number>;
}

export interface RunOptions {
  /** A byzantine-ish peer forges detectably wrong messages at this rate per workload step. */
  readonly forgeryProbability?: number;
}

/** Workload and fault rates, per workload step. */
const WORKLOAD_STEP_MS = 5;
const KEYS = ["a", "b", "c", "d", "e"];
const WRITE_PROBABILITY = 0.5;
const READ_PROBABILITY = 0.3;
/** Leaders are the interesting victims: half of the crashes hit the current leader. */
const LEADER_CRASH_SHARE = 0.5;
const PARTITION_PROBABILITY = 0.003;
const ONE_WAY_LINK_PROBABILITY = 0.003;
const HEAL_PROBABILITY = 0.004;
const MEMBERSHIP_CHANGE_PROBABILITY = 0.004;
const TRANSFER_PROBABILITY = 0.002;
const CAMPAIGN_PROBABILITY = 0.001;
const MIN_DOWNTIME_MS = 20;
const MAX_DOWNTIME_MS = 1_500;
const MIN_VOTERS = 3;

/**
 * After every fault heals, a leader must be elected and commit a write within this much simulated
 * time (30 base election timeouts of 100 ms), and every member must catch up within as much again.
 */
const LIVENESS_BOUND_MS = 3_000;

function chooseProfile(random: Random): RunProfile {
  return {
    voters: random.chance(0.5) ? 3 : 5,
    faults: {
      dropProbability: random.pick([0, 0.01, 0.05, 0.15]),
      duplicateProbability: random.pick([0, 0.02, 0.1]),
      minDelayMs: 1,
      maxDelayMs: random.pick([2, 5, 15, 40]),
      longDelayProbability: random.pick([0, 0.01, 0.05]),
      longDelayMs: 300,
    },
    faultPhaseMs: random.integer(1_000, 4_000),
    crashDuringReadyProbability: random.pick([0, 0.0005, 0.002]),
    crashProbability: random.pick([0.002, 0.004, 0.01]),
    newLeaderCrashProbability: random.pick([0, 0.2, 0.5]),
    newLeaderCrashDelayMs: random.pick([5, 20, 60]),
    crashAtLeaderMilestoneProbability: random.pick([0, 0.1, 0.3]),
    maxEntriesBytesPerMessage: random.pick([1, 100, 1_024]),
    maxWriteDelayMs: random.pick([0, 1, 4, 20]),
    maxWritesInFlight: random.pick([1, 4, 16]),
  };
}

/**
 * One fully deterministic run: a cluster under client traffic and random faults, then every
 * fault healed, then liveness and convergence asserted. Throws SafetyViolation (or whatever the
 * core throws) at the first problem; the same seed replays it exactly.
 */
export function runSeed(seed: number, onTrace: ((line: string) => void) | null = null, options: RunOptions = {}): RunReport {
  const random = new Random(seed);
  const profile = chooseProfile(random);
  const cluster = createCluster(random, profile, onTrace);
  cluster.network.setFaults(profile.faults);
  const forgery = options.forgeryProbability === undefined ? null : { traffic: new ForgedTraffic(cluster, new Random(seed ^ FORGERY_SEED_MASK)), probability: options.forgeryProbability };
  cluster.refusalsAllowed = forgery !== null;
  const workload = new RandomWorkload(cluster, random.fork(), profile, forgery);
  workload.scheduleSteps(profile.faultPhaseMs);
  cluster.runFor(profile.faultPhaseMs);
  healEverything(cluster);
  assertLiveness(cluster);
  assertConvergence(cluster);
  return report(seed, profile, cluster, forgery?.traffic ?? null);
}

/** The forger draws from its own generator, so that the rest of a seed's run stays the same with it. */
const FORGERY_SEED_MASK = 0x5eed_f06e;

function createCluster(random: Random, profile: RunProfile, onTrace: ((line: string) => void) | null): SimulatedCluster {
  const ids = Array.from({ length: profile.voters }, (_, index) => `n${index + 1}`);
  const membership: Membership = { voters: ids, learners: [], addresses: Object.fromEntries(ids.map((id) => [id, `sim://${id}`])) };
  const config: ClusterConfig = {
    ...DEFAULT_CLUSTER_CONFIG,
    crashDuringReadyProbability: profile.crashDuringReadyProbability,
    crashAtLeaderMilestoneProbability: profile.crashAtLeaderMilestoneProbability,
    maxEntriesBytesPerMessage: profile.maxEntriesBytesPerMessage,
    maxWriteDelayMs: profile.maxWriteDelayMs,
    maxWritesInFlight: profile.maxWritesInFlight,
  };
  return new SimulatedCluster(config, random.fork(), membership, ids.map((id) => ({ id })), onTrace);
}

/** Restarts every crashed node that was not removed and makes the network reliable. */
function healEverything(cluster: SimulatedCluster): void {
  cluster.trace("heal: network reliable, every node restarted");
  cluster.network.heal();
  cluster.network.setFaults(RELIABLE_NETWORK);
  cluster.crashDuringReadyProbability = 0;
  cluster.crashAtLeaderMilestoneProbability = 0;
  for (const node of cluster.nodes.values()) cluster.restart(node.id);
}

/** A leader is elected and commits a new write within the bound. */
function assertLiveness(cluster: SimulatedCluster): void {
  let probe: { readonly node: SimulatedNode; readonly term: number; readonly operationId: number } | null = null;
  const committed = cluster.runUntil(() => {
    if (probe !== null && cluster.isAcknowledged(probe.operationId)) return true;
    if (probe === null || probe.node.role !== "leader" || probe.node.term !== probe.term) {
      // No probe yet, or its leader lost leadership (outcome unknown): ask the current leader.
      const leader = cluster.leader();
      const operationId = leader === undefined ? null : cluster.write(leader.id, "liveness");
      probe = leader === undefined || operationId === null ? null : { node: leader, term: leader.term, operationId };
    }
    return false;
  }, LIVENESS_BOUND_MS);
  if (!committed) {
    throw new SafetyViolation("liveness", `no leader committed a write within ${LIVENESS_BOUND_MS} ms after every fault healed; ${describeNodes(cluster)}`);
  }
}

/** Each node's view, for the report of a liveness failure. */
function describeNodes(cluster: SimulatedCluster): string {
  const views = [...cluster.nodes.values()].map((node) => {
    if (!node.up) return `${node.id}: ${node.removed ? "removed" : "down"}`;
    const status = node.status();
    const voters = status.membership.voters.join(",");
    const learners = status.membership.learners.join(",");
    return `${node.id}: ${status.role} term ${status.term} leader ${String(status.leader)} commit ${status.commit} applied ${node.machine.appliedIndex} last ${status.lastIndex} voters [${voters}] learners [${learners}]`;
  });
  return `nodes: ${views.join("; ")}`;
}

/** Every member catches up with the leader, holds the same state, and lost no acknowledged write. */
function assertConvergence(cluster: SimulatedCluster): void {
  // The leader may still change here (say it applies its own removal), so each check asks the current one.
  const converged = cluster.runUntil(() => {
    const leader = cluster.leader();
    if (leader === undefined) return false;
    const { commit, membership } = leader.status();
    return membersOf(cluster, membership).every((node) => node.up && node.machine.appliedIndex >= commit);
  }, LIVENESS_BOUND_MS);
  if (!converged) {
    throw new SafetyViolation("liveness", `members did not all apply the leader's commit index within ${LIVENESS_BOUND_MS} ms; ${describeNodes(cluster)}`);
  }
  cluster.checkLogMatching();
  const leader = cluster.leader();
  const members = leader === undefined ? [] : membersOf(cluster, leader.status().membership);
  for (const node of members) cluster.history.checkNoWriteLost(node.id, (key) => node.machine.read(key));
  checkEqualStates(members);
}

/** Replicas that applied the same prefix hold byte-identical states. */
function checkEqualStates(nodes: readonly SimulatedNode[]): void {
  const reference = nodes[0];
  if (reference === undefined) return;
  const expected = Buffer.from(reference.machine.snapshotData());
  for (const node of nodes) {
    if (node.machine.appliedIndex !== reference.machine.appliedIndex) continue;
    if (!expected.equals(node.machine.snapshotData())) {
      throw new SafetyViolation("state-machine safety", `${node.id} and ${reference.id} applied up to ${reference.machine.appliedIndex} but hold different states`);
    }
  }
}

function membersOf(cluster: SimulatedCluster, membership: Membership): SimulatedNode[] {
  return [...membership.voters, ...membership.learners].map((id) => cluster.node(id));
}

function report(seed: number, profile: RunProfile, cluster: SimulatedCluster, forgery: ForgedTraffic | null): RunReport {
  return {
    seed,
    profile,
    simulatedMs: cluster.clock.nowMs,
    acknowledgedWrites: cluster.history.acknowledgedWrites,
    servedReads: cluster.history.servedReads,
    failedReads: cluster.history.failedReads,
    crashes: cluster.statistics.crashes,
    leadersElected: cluster.statistics.leadersElected,
    snapshotsInstalled: cluster.statistics.snapshotsInstalled,
    membershipChanges: cluster.statistics.membershipChanges,
    peakWritesInFlight: cluster.statistics.peakWritesInFlight,
    writesLostInCrashes: cluster.statistics.writesLostInCrashes,
    messagesDelivered: cluster.network.statistics.delivered,
    forgedMessages: new Map(forgery?.expected ?? []),
    refusedMessages: new Map(cluster.statistics.refusals),
  };
}

/** Clients and the nemesis: each step may write, read, crash, partition, heal or reconfigure. */
class RandomWorkload {
  private nextNodeNumber: number;
  private lastLeaderTerm = 0;

  constructor(
    private readonly cluster: SimulatedCluster,
    private readonly random: Random,
    private readonly profile: RunProfile,
    private readonly forgery: { readonly traffic: ForgedTraffic; readonly probability: number } | null,
  ) {
    this.nextNodeNumber = profile.voters + 1;
  }

  scheduleSteps(durationMs: number): void {
    const endMs = this.cluster.clock.nowMs + durationMs;
    const step = (): void => {
      if (this.cluster.clock.nowMs >= endMs) return;
      this.step();
      this.cluster.queue.after(WORKLOAD_STEP_MS, step);
    };
    this.cluster.queue.after(WORKLOAD_STEP_MS, step);
  }

  private step(): void {
    const random = this.random;
    if (random.chance(WRITE_PROBABILITY)) this.withTarget((node) => this.cluster.write(node.id, random.pick(KEYS)));
    if (random.chance(READ_PROBABILITY)) this.withTarget((node) => this.cluster.read(node.id, random.pick(KEYS)));
    if (random.chance(this.profile.crashProbability)) this.crashSomeone();
    this.maybeCrashNewLeader();
    if (random.chance(PARTITION_PROBABILITY)) this.partition();
    if (random.chance(ONE_WAY_LINK_PROBABILITY)) this.cutOneWay();
    if (random.chance(HEAL_PROBABILITY)) this.heal();
    if (random.chance(MEMBERSHIP_CHANGE_PROBABILITY)) this.changeMembership();
    if (random.chance(TRANSFER_PROBABILITY)) this.transfer();
    if (random.chance(CAMPAIGN_PROBABILITY)) this.withTarget((node) => this.cluster.campaign(node.id), false);
    if (this.forgery !== null && random.chance(this.forgery.probability)) this.forgery.traffic.inject();
  }

  /**
   * Clients mostly talk to a node that believes it leads (a stale leader cut off in a minority as
   * well as the real one, as clients with an old leader hint do), sometimes to any node.
   */
  private withTarget(act: (node: SimulatedNode) => void, preferLeader = true): void {
    const upNodes = this.cluster.upNodes();
    const leaders = upNodes.filter((node) => node.role === "leader");
    const candidates = preferLeader && leaders.length > 0 && this.random.chance(0.7) ? leaders : upNodes;
    if (candidates.length > 0) act(this.random.pick(candidates));
  }

  private crashSomeone(): void {
    const upNodes = this.cluster.upNodes();
    const leader = this.cluster.leader();
    if (upNodes.length === 0) return;
    this.crashAndRestartLater(leader !== undefined && this.random.chance(LEADER_CRASH_SHARE) ? leader : this.random.pick(upNodes));
  }

  private maybeCrashNewLeader(): void {
    const leader = this.cluster.leader();
    if (leader === undefined || leader.term === this.lastLeaderTerm) return;
    this.lastLeaderTerm = leader.term;
    if (!this.random.chance(this.profile.newLeaderCrashProbability)) return;
    this.cluster.queue.after(this.random.integer(0, this.profile.newLeaderCrashDelayMs + 1), () => this.crashAndRestartLater(leader));
  }

  private crashAndRestartLater(victim: SimulatedNode): void {
    this.cluster.crash(victim.id);
    const downtimeMs = this.random.integer(MIN_DOWNTIME_MS, MAX_DOWNTIME_MS);
    this.cluster.queue.after(downtimeMs, () => this.cluster.restart(victim.id));
  }

  private partition(): void {
    const ids = this.random.shuffled([...this.cluster.nodes.keys()]);
    const cut = this.random.integer(1, ids.length);
    this.cluster.network.partition([ids.slice(0, cut), ids.slice(cut)]);
    this.cluster.trace(`partition [${ids.slice(0, cut).join(",")}] | [${ids.slice(cut).join(",")}]`);
  }

  private cutOneWay(): void {
    const ids = [...this.cluster.nodes.keys()];
    const from = this.random.pick(ids);
    const to = this.random.pick(ids.filter((id) => id !== from));
    this.cluster.network.blockLink(from, to);
    this.cluster.trace(`one-way cut ${from} -> ${to}`);
  }

  private heal(): void {
    this.cluster.network.heal();
    this.cluster.trace("network healed");
  }

  /** One single-server change at the leader: promote a learner, add a learner, or remove a voter (maybe the leader itself). */
  private changeMembership(): void {
    const leader = this.cluster.leader();
    if (leader === undefined) return;
    const { membership } = leader.status();
    const learner = membership.learners[0];
    if (learner !== undefined) {
      this.cluster.proposeMembershipChange(leader.id, { type: "promote", node: learner });
    } else if (membership.voters.length > MIN_VOTERS && this.random.chance(0.5)) {
      this.cluster.proposeMembershipChange(leader.id, { type: "remove", node: this.random.pick(membership.voters) });
    } else {
      this.addLearner(leader);
    }
  }

  private addLearner(leader: SimulatedNode): void {
    const id: NodeId = `n${this.nextNodeNumber}`;
    const change = { type: "addLearner", node: id, address: `sim://${id}` } as const;
    if (!this.cluster.proposeMembershipChange(leader.id, change)) return;
    this.nextNodeNumber++;
    // A joining server starts with an empty disk and knows no configuration: the leader brings it up to date.
    this.cluster.addNode(id, { membership: { voters: [], learners: [], addresses: {} } });
    this.cluster.restart(id);
  }

  private transfer(): void {
    const leader = this.cluster.leader();
    if (leader === undefined) return;
    const others = leader.status().membership.voters.filter((id) => id !== leader.id);
    if (others.length > 0) this.cluster.transferLeadership(leader.id, this.random.pick(others));
  }
}
