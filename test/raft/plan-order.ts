import type { ReadyPlan, ReadyStep } from "../../src/raft/ready-plan.js";

export class PlanOrderViolation extends Error {
  override readonly name = "PlanOrderViolation";
}

interface Progress {
  readonly number: number;
  readonly steps: ReadyStep[];
}

/**
 * The order ready-plan.ts prescribes, checked on what a driver reports: the node (through
 * `onReadyStep`) and the simulator both report to this one checker, so a driver whose order
 * drifts from the plan fails here. Per plan: sendNow, write (if any), apply, advance; its write
 * lands ("durable") after it was issued; sendWhenDurable only once every write of this plan and
 * of earlier ones landed; an exclusive plan writes only once every earlier write landed, and
 * the next plan starts only after it landed.
 */
export class PlanOrderChecker {
  private readonly plans = new Map<ReadyPlan, Progress>();
  private current: ReadyPlan | null = null;
  private nextNumber = 1;
  /** Plans whose write is issued and has not landed, by number. */
  private readonly pendingWrites = new Set<number>();
  private exclusivePending: number | null = null;
  stepsChecked = 0;
  /** Most writes issued and not yet landed at once. */
  peakWritesInFlight = 0;

  step(step: ReadyStep, plan: ReadyPlan): void {
    this.stepsChecked++;
    const progress = step === "sendNow" ? this.begin(plan) : this.progressOf(plan, step);
    if (step !== "sendNow") this.check(step, plan, progress);
    progress.steps.push(step);
    if (step === "advance") this.current = null;
    if (this.finished(plan, progress)) this.plans.delete(plan);
  }

  private begin(plan: ReadyPlan): Progress {
    if (this.current !== null) this.fail(`a plan started before plan ${this.plans.get(this.current)?.number} advanced`);
    if (this.exclusivePending !== null) this.fail(`a plan started before exclusive plan ${this.exclusivePending} landed`);
    const progress: Progress = { number: this.nextNumber++, steps: [] };
    this.plans.set(plan, progress);
    this.current = plan;
    return progress;
  }

  private progressOf(plan: ReadyPlan, step: ReadyStep): Progress {
    const progress = this.plans.get(plan);
    if (progress === undefined) return this.fail(`"${step}" of a plan that never started or already finished`);
    return progress;
  }

  private check(step: ReadyStep, plan: ReadyPlan, progress: Progress): void {
    const done = new Set(progress.steps);
    if (done.has(step)) this.fail(`plan ${progress.number} did "${step}" twice`);
    switch (step) {
      case "write":
        if (plan.write === null) this.fail(`plan ${progress.number} has no write`);
        this.expectDone(done, progress, step, ["sendNow"], ["apply", "advance"]);
        if (plan.exclusive && this.pendingWrites.size > 0) this.fail(`exclusive plan ${progress.number} wrote while earlier writes were in flight`);
        this.pendingWrites.add(progress.number);
        this.peakWritesInFlight = Math.max(this.peakWritesInFlight, this.pendingWrites.size);
        if (plan.exclusive) this.exclusivePending = progress.number;
        return;
      case "apply":
        this.expectDone(done, progress, step, plan.write === null ? ["sendNow"] : ["sendNow", "write"], ["advance"]);
        return;
      case "advance":
        this.expectDone(done, progress, step, ["apply"], []);
        return;
      case "durable":
        this.expectDone(done, progress, step, ["write"], []);
        if ([...this.pendingWrites].some((number) => number < progress.number)) this.fail(`plan ${progress.number}'s write landed before an earlier one`);
        this.pendingWrites.delete(progress.number);
        if (this.exclusivePending === progress.number) this.exclusivePending = null;
        return;
      case "sendWhenDurable":
        if (plan.sendWhenDurable.length === 0) this.fail(`plan ${progress.number} has nothing to send when durable`);
        if ([...this.pendingWrites].some((number) => number <= progress.number)) this.fail(`plan ${progress.number} sent what waits for durability before its writes landed`);
        return;
      case "sendNow":
        return;
    }
  }

  private expectDone(done: ReadonlySet<ReadyStep>, progress: Progress, step: ReadyStep, before: readonly ReadyStep[], after: readonly ReadyStep[]): void {
    for (const earlier of before) if (!done.has(earlier)) this.fail(`plan ${progress.number} did "${step}" before "${earlier}"`);
    for (const later of after) if (done.has(later)) this.fail(`plan ${progress.number} did "${step}" after "${later}"`);
  }

  /** Every step the plan has is done: it can be forgotten. */
  private finished(plan: ReadyPlan, progress: Progress): boolean {
    const done = new Set(progress.steps);
    if (!done.has("advance")) return false;
    if (plan.write !== null && !done.has("durable")) return false;
    return plan.sendWhenDurable.length === 0 || done.has("sendWhenDurable");
  }

  private fail(message: string): never {
    throw new PlanOrderViolation(message);
  }
}
