import type { Logger } from "pino";
import type { Membership, MembershipChange, NodeId, RaftStatus } from "../raft/types.js";
import { INCARNATION_SEPARATOR, memberName } from "./identity.js";
import type { PeerAnnouncement } from "./peer-auth.js";
import type { PeerDirectory } from "./peer-directory.js";

/** What the leader's re-admission needs of its node. */
export interface ReadmissionHost {
  status(): RaftStatus;
  changeMembership(change: MembershipChange, timeoutMs: number): Promise<Membership>;
}

/** One step of a re-admission, decided from the membership alone so that any leader can resume it. */
export type ReadmissionStep =
  | { readonly kind: "addLearner"; readonly node: NodeId; readonly address: string; readonly replaces: NodeId }
  | { readonly kind: "removeReplaced"; readonly node: NodeId; readonly replacement: NodeId }
  | { readonly kind: "promote"; readonly node: NodeId };

/** Each membership change of a re-admission gets this long to commit; a later round retries. */
const STEP_TIMEOUT_MS = 10_000;

/**
 * The leader re-admits a member that came back as a new incarnation (it lost its disk, or was
 * re-provisioned): the new incarnation joins as a learner, the old id (which no process speaks
 * for any more: its votes and acknowledgements are gone) is removed, and the learner is promoted
 * once caught up. Every step is one membership change of its own (one voter at a time), and
 * the next step is read from the membership, so a new leader resumes where an old one stopped.
 */
export class Readmission {
  private running = false;
  /** Commit index a learner must reach before promotion, fixed when it was first seen. */
  private readonly catchUpTargets = new Map<NodeId, number>();

  constructor(
    private readonly host: ReadmissionHost,
    private readonly directory: PeerDirectory,
    private readonly selfId: NodeId,
    private readonly logger: Logger,
  ) {}

  /** Called periodically; does at most one step at a time. */
  poll(): void {
    const status = this.host.status();
    if (this.running || status.role !== "leader") return;
    const step = nextReadmissionStep(status, this.directory.reachablePeers(Date.now()), this.selfId, this.catchUpTargets);
    if (step === null) return;
    this.running = true;
    this.logger.info({ step }, "re-admitting a member that came back as a new incarnation");
    this.host
      .changeMembership(changeOf(step), STEP_TIMEOUT_MS)
      .catch((error: unknown) => this.logger.info({ step, reason: (error as Error).message }, "re-admission step not done; will retry"))
      .finally(() => {
        this.running = false;
      });
  }
}

function changeOf(step: ReadmissionStep): MembershipChange {
  switch (step.kind) {
    case "addLearner":
      return { type: "addLearner", node: step.node, address: step.address };
    case "removeReplaced":
      return { type: "remove", node: step.node };
    case "promote":
      return { type: "promote", node: step.node };
  }
}

/**
 * The next step, if any: a reachable incarnation (connected, or sighted by a refused dial)
 * named like a current member but not yet one is added as a learner; a member whose name a
 * learner now carries is removed, unless it is still reachable (two live processes with one
 * name is a mistake to report, not to act on); a learner that is a new incarnation and has
 * caught up is promoted.
 */
export function nextReadmissionStep(
  status: RaftStatus,
  reachable: readonly PeerAnnouncement[],
  selfId: NodeId,
  catchUpTargets: Map<NodeId, number>,
): ReadmissionStep | null {
  const { voters, learners, addresses } = status.membership;
  const members = [...voters, ...learners];
  const reachableIds = new Set(reachable.map((peer) => peer.memberId));
  for (const learner of learners) {
    if (!learner.includes(INCARNATION_SEPARATOR)) continue;
    const replaced = members.find((member) => member !== learner && memberName(member) === memberName(learner));
    if (replaced !== undefined && replaced !== selfId && !reachableIds.has(replaced)) return { kind: "removeReplaced", node: replaced, replacement: learner };
    if (replaced !== undefined) continue;
    const target = catchUpTargets.get(learner) ?? status.commit;
    catchUpTargets.set(learner, target);
    if ((status.progress[learner]?.match ?? 0) >= target) return { kind: "promote", node: learner };
  }
  for (const peer of reachable) {
    const id = peer.memberId;
    if (id === null || members.includes(id) || !id.includes(INCARNATION_SEPARATOR)) continue;
    const replaced = members.find((member) => memberName(member) === peer.name);
    if (replaced === undefined || replaced === selfId) continue;
    return { kind: "addLearner", node: id, address: addresses[replaced] ?? peer.address, replaces: replaced };
  }
  return null;
}
