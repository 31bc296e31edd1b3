/**
 * The nemesis: a seeded schedule of faults, one at a time, each held 1–5 s and followed by 1–5 s
 * of calm, then applied to a real cluster and healed. Which nodes a fault hits is drawn at plan
 * time from the seed; "the leader" can only be known when the fault starts.
 */
import { leaderOf, type ClusterControl } from "./control.js";
import { corruptLogTail, loseDisk } from "./disk-faults.js";
import { forgePeerTraffic } from "./forged-peer.js";
import { removeMember, reprovision } from "./membership-faults.js";
import { SeededRandom } from "./random.js";
import type { WhiteboxAnomaly } from "./whitebox.js";
import { KvError } from "../src/errors.js";
import { memberName } from "../src/server/identity.js";

export const FAULT_GROUPS = ["kill", "pause", "partition", "clock", "membership", "lost-disk", "corrupt-log-tail", "reprovision", "forged-peer"] as const;
export type FaultGroup = (typeof FAULT_GROUPS)[number];

export type FaultKind =
  | "kill-one" | "kill-leader" | "kill-minority" | "kill-all"
  | "pause-one" | "pause-leader"
  | "partition-leader" | "partition-split" | "partition-ring" | "partition-one-way" | "partition-delay"
  | "clock-offset"
  | "membership-readd"
  | "lost-disk-one" | "lost-disk-leader"
  | "corrupt-log-tail"
  | "reprovision"
  | "forged-peer";

const KINDS_BY_GROUP: Readonly<Record<FaultGroup, readonly FaultKind[]>> = {
  kill: ["kill-one", "kill-leader", "kill-minority", "kill-all"],
  pause: ["pause-one", "pause-leader"],
  partition: ["partition-leader", "partition-split", "partition-ring", "partition-one-way", "partition-delay"],
  clock: ["clock-offset"],
  membership: ["membership-readd"],
  "lost-disk": ["lost-disk-one", "lost-disk-leader"],
  "corrupt-log-tail": ["corrupt-log-tail"],
  reprovision: ["reprovision"],
  "forged-peer": ["forged-peer"],
};

export interface PlannedFault {
  readonly kind: FaultKind;
  /** Milliseconds from the start of the run. */
  readonly startMs: number;
  readonly durationMs: number;
  /** Nodes drawn at plan time, in an order that matters for the kind (see `applyFault`). */
  readonly nodes: readonly string[];
  /** clock-offset only: the shift of the node's wall clock. */
  readonly clockOffsetMs?: number;
  /** Partitions only: silently lose the traffic, or reset connections. */
  readonly linkMode?: "drop" | "refuse";
  /** partition-delay only: added to every node-to-node link, each way. */
  readonly linkDelayMs?: number;
}

export interface NemesisPlanOptions {
  readonly seed: number;
  readonly nodeIds: readonly string[];
  readonly groups: readonly FaultGroup[];
  /** Faults start no later than this (the final phase follows). */
  readonly durationMs: number;
  readonly minGapMs?: number;
  readonly maxGapMs?: number;
  readonly minFaultMs?: number;
  readonly maxFaultMs?: number;
  readonly maxClockOffsetMs?: number;
}

const DEFAULT_TIMING = { minGapMs: 1000, maxGapMs: 5000, minFaultMs: 1000, maxFaultMs: 5000, maxClockOffsetMs: 2000 };
/** Link delays span "slower than a heartbeat" to "about an election timeout" (50 ms ticks, 10 ticks). */
const MIN_LINK_DELAY_MS = 20;
const MAX_LINK_DELAY_MS = 400;

export function parseFaultGroups(text: string): FaultGroup[] {
  if (text === "none") return [];
  if (text === "all") return [...FAULT_GROUPS];
  const groups = text.split(",").map((part) => part.trim());
  for (const group of groups) {
    if (!(FAULT_GROUPS as readonly string[]).includes(group)) throw new KvError("INVALID", `unknown nemesis "${group}" (all, none, ${FAULT_GROUPS.join(", ")})`);
  }
  return groups as FaultGroup[];
}

/** Per group, the kinds a cluster of this size can run: a ring needs 5 nodes, the rest at least 3. */
function kindsByGroup(groups: readonly FaultGroup[], size: number): FaultKind[][] {
  return groups.map((group) => KINDS_BY_GROUP[group].filter((kind) => (kind === "partition-ring" ? size >= 5 : true)));
}

function nodesFor(kind: FaultKind, random: SeededRandom, nodeIds: readonly string[]): string[] {
  const shuffled = random.sample(nodeIds, nodeIds.length);
  const minority = Math.floor((nodeIds.length - 1) / 2);
  switch (kind) {
    case "kill-minority":
      return shuffled.slice(0, Math.max(1, minority));
    case "partition-split": // the first `minority` nodes form the minority side
    case "partition-leader": // the first is isolated when no leader is known
    case "partition-ring":
    case "partition-one-way":
    case "partition-delay":
    case "kill-all":
    case "forged-peer": // every node is a target
      return shuffled;
    default:
      return shuffled.slice(0, 1);
  }
}

/**
 * The same options always give the same plan. Groups are drawn in rounds (every chosen group
 * once per round, in a seeded order) and a kind of the group at random, so a run with nine
 * groups meets each of them within its first nine faults rather than when chance allows.
 */
export function planNemesis(options: NemesisPlanOptions): PlannedFault[] {
  const timing = { ...DEFAULT_TIMING, ...withoutUndefined(options) };
  const groups = kindsByGroup(options.groups, options.nodeIds.length);
  const random = new SeededRandom(options.seed);
  const plan: PlannedFault[] = [];
  if (groups.length === 0) return plan;
  let round: FaultKind[][] = [];
  let startMs = random.integer(timing.minGapMs, timing.maxGapMs);
  while (startMs < options.durationMs) {
    if (round.length === 0) round = random.sample(groups, groups.length);
    const kind = random.pick(round.shift() ?? []);
    const durationMs = Math.min(random.integer(timing.minFaultMs, timing.maxFaultMs), options.durationMs - startMs);
    const nodes = nodesFor(kind, random, options.nodeIds);
    const offset = kind === "clock-offset" ? random.integer(-timing.maxClockOffsetMs, timing.maxClockOffsetMs) : undefined;
    const linkMode = kind.startsWith("partition") && kind !== "partition-delay" ? random.pick(["drop", "refuse"] as const) : undefined;
    const delay = kind === "partition-delay" ? random.integer(MIN_LINK_DELAY_MS, MAX_LINK_DELAY_MS) : undefined;
    plan.push({
      kind, startMs, durationMs, nodes,
      ...(offset === undefined ? {} : { clockOffsetMs: offset }),
      ...(linkMode === undefined ? {} : { linkMode }),
      ...(delay === undefined ? {} : { linkDelayMs: delay }),
    });
    startMs += durationMs + random.integer(timing.minGapMs, timing.maxGapMs);
  }
  return plan;
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

/** A fault as it happened, for the report. Times are nanoseconds on the history's clock. */
export interface NemesisEvent {
  readonly kind: FaultKind;
  readonly nodes: readonly string[];
  readonly startTime: number;
  endTime: number;
  readonly detail: string;
}

/** The directed links to cut for a partition: node -> the peers it must not reach. */
export function partitionLinks(kind: FaultKind, nodes: readonly string[], leader: string | null): Array<readonly [string, string]> {
  const cut: Array<readonly [string, string]> = [];
  const both = (left: string, right: string): void => void cut.push([left, right], [right, left]);
  const isolated = leader ?? nodes[0] ?? "";
  switch (kind) {
    case "partition-leader":
      for (const other of nodes.length > 0 ? allOf(nodes, isolated) : []) both(isolated, other);
      return cut;
    case "partition-split": {
      const minority = nodes.slice(0, Math.floor((nodes.length - 1) / 2) || 1);
      const majority = nodes.filter((node) => !minority.includes(node));
      for (const left of minority) for (const right of majority) both(left, right);
      return cut;
    }
    case "partition-ring":
      // Each node keeps only its two ring neighbours: every node sees a different majority.
      nodes.forEach((left, index) => {
        nodes.forEach((right, other) => {
          const distance = Math.min(Math.abs(index - other), nodes.length - Math.abs(index - other));
          if (distance > 1) cut.push([left, right]);
        });
      });
      return cut;
    case "partition-one-way":
      // The leader still hears everyone but nobody hears it.
      for (const other of allOf(nodes, isolated)) cut.push([isolated, other]);
      return cut;
    default:
      throw new KvError("INVALID", `${kind} is not a partition`);
  }
}

function allOf(nodes: readonly string[], except: string): string[] {
  return nodes.filter((node) => node !== except);
}

/** The name of the current leader as the nodes report it (highest term), or null. */
export async function findLeader(control: ClusterControl): Promise<string | null> {
  const leader = leaderOf(await control.statuses());
  return leader === undefined ? null : memberName(leader.id);
}

/** What a fault hit, in words for the report, and how to heal it. */
export interface AppliedFault {
  readonly nodes: string[];
  readonly detail: string;
  readonly heal: () => Promise<void>;
}

/** What a fault works with: the cluster, and where to report what the product did wrong under it. */
export interface FaultContext {
  readonly control: ClusterControl;
  readonly reportAnomaly: (anomaly: WhiteboxAnomaly) => void;
}

const KINDS_NEEDING_LEADER: ReadonlySet<FaultKind> = new Set<FaultKind>(["partition-one-way", "membership-readd", "reprovision"]);

/** Starts a fault; returns what it hit and how to heal it. */
export async function applyFault(context: FaultContext, fault: PlannedFault): Promise<AppliedFault> {
  const control = context.control;
  const needsLeader = fault.kind.endsWith("leader") || KINDS_NEEDING_LEADER.has(fault.kind);
  const leader = needsLeader ? await findLeader(control) : null;
  const single = leader ?? fault.nodes[0] ?? "";
  const follower = fault.nodes.find((node) => node !== leader) ?? single;
  switch (fault.kind) {
    case "kill-one":
    case "kill-leader":
    case "kill-minority":
    case "kill-all": {
      const nodes = fault.kind === "kill-leader" || fault.kind === "kill-one" ? [single] : [...fault.nodes];
      await Promise.all(nodes.map((node) => control.kill(node)));
      return { nodes, detail: `kill -9 ${nodes.join(",")}`, heal: async () => nodes.forEach((node) => control.start(node)) };
    }
    case "pause-one":
    case "pause-leader":
      control.pause(single);
      return { nodes: [single], detail: `SIGSTOP ${single}`, heal: async () => control.resume(single) };
    case "membership-readd":
      return removeMember(control, follower);
    case "lost-disk-one":
    case "lost-disk-leader":
      return loseDisk(control, single);
    case "corrupt-log-tail":
      return corruptLogTail(context, single);
    case "reprovision":
      return reprovision(context, follower);
    case "forged-peer":
      return forgePeerTraffic(context);
    case "clock-offset": {
      const offset = fault.clockOffsetMs ?? 0;
      await control.restart(single, offset);
      return { nodes: [single], detail: `restart ${single} with clock offset ${offset} ms`, heal: () => control.restart(single, 0) };
    }
    case "partition-delay": {
      const delayMs = fault.linkDelayMs ?? 0;
      for (const from of fault.nodes) for (const to of allOf(fault.nodes, from)) control.delayLink(from, to, delayMs);
      return { nodes: [...fault.nodes], detail: `delay every link by ${delayMs} ms`, heal: async () => control.healLinks() };
    }
    default: {
      const ordered = leader === null ? [...fault.nodes] : [leader, ...allOf(fault.nodes, leader)];
      const links = partitionLinks(fault.kind, ordered, leader);
      const mode = fault.linkMode ?? "drop";
      for (const [from, to] of links) control.setLink(from, to, mode);
      const detail = `${mode} ${links.map(([from, to]) => `${from}->${to}`).join(" ")}`;
      return { nodes: ordered, detail, heal: async () => control.healLinks() };
    }
  }
}

export interface NemesisRunOptions extends FaultContext {
  readonly plan: readonly PlannedFault[];
  /** Nanoseconds on the history's clock. */
  readonly now: () => number;
  readonly shouldStop: () => boolean;
  readonly onError: (message: string) => void;
}

/** Runs the plan in real time; every fault is healed before the next starts and before returning. */
export async function runNemesis(options: NemesisRunOptions): Promise<NemesisEvent[]> {
  const events: NemesisEvent[] = [];
  const startNs = options.now();
  for (const fault of options.plan) {
    if (!(await sleepUntil(startNs + fault.startMs * 1e6, options))) break;
    let applied: AppliedFault;
    try {
      applied = await applyFault(options, fault);
    } catch (error) {
      options.onError(`${fault.kind}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const event: NemesisEvent = { kind: fault.kind, nodes: applied.nodes, startTime: options.now(), endTime: 0, detail: applied.detail };
    events.push(event);
    await sleepUntil(startNs + (fault.startMs + fault.durationMs) * 1e6, options);
    await applied.heal().catch((error: unknown) => options.onError(`healing ${fault.kind}: ${error instanceof Error ? error.message : String(error)}`));
    event.endTime = options.now();
  }
  return events;
}

/** Sleeps in short steps until `targetNs`; false when told to stop first. */
async function sleepUntil(targetNs: number, options: NemesisRunOptions): Promise<boolean> {
  const stepMs = 100;
  while (options.now() < targetNs) {
    if (options.shouldStop()) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(stepMs, (targetNs - options.now()) / 1e6)));
  }
  return true;
}
