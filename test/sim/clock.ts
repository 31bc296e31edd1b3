/**
 * Simulated time: a clock in milliseconds and a queue of future events. Nothing in a simulated
 * run reads the wall clock; time advances only by popping the next event.
 */

export class SimulatedClock {
  private currentMs = 0;

  get nowMs(): number {
    return this.currentMs;
  }

  advanceTo(timeMs: number): void {
    if (timeMs < this.currentMs) throw new RangeError(`time cannot go backwards: ${timeMs} < ${this.currentMs}`);
    this.currentMs = timeMs;
  }
}

interface ScheduledEvent {
  readonly atMs: number;
  /** Insertion order breaks ties, so equal times always run in the same order. */
  readonly sequence: number;
  readonly run: () => void;
}

export class EventQueueFullError extends Error {
  override readonly name = "EventQueueFullError";
}

/** A binary min-heap of events ordered by (time, insertion order). */
export class EventQueue {
  private readonly heap: ScheduledEvent[] = [];
  private nextSequence = 0;

  constructor(
    readonly clock: SimulatedClock,
    /** A run that piles up more events than this has a runaway loop; fail rather than swap. */
    readonly maxPendingEvents: number,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** Schedules `run` at `atMs` (never in the past). */
  schedule(atMs: number, run: () => void): void {
    if (this.heap.length >= this.maxPendingEvents) {
      throw new EventQueueFullError(`more than ${this.maxPendingEvents} pending events`);
    }
    const event = { atMs: Math.max(atMs, this.clock.nowMs), sequence: this.nextSequence++, run };
    this.heap.push(event);
    this.siftUp(this.heap.length - 1);
  }

  after(delayMs: number, run: () => void): void {
    this.schedule(this.clock.nowMs + delayMs, run);
  }

  /** Runs every event due up to and including `endMs`, then leaves the clock at `endMs`. */
  runUntil(endMs: number): void {
    for (;;) {
      const next = this.heap[0];
      if (next === undefined || next.atMs > endMs) break;
      this.popFirst();
      this.clock.advanceTo(next.atMs);
      next.run();
    }
    this.clock.advanceTo(Math.max(endMs, this.clock.nowMs));
  }

  private popFirst(): void {
    const last = this.heap.pop();
    if (last === undefined || this.heap.length === 0) return;
    this.heap[0] = last;
    this.siftDown(0);
  }

  private before(left: ScheduledEvent, right: ScheduledEvent): boolean {
    return left.atMs < right.atMs || (left.atMs === right.atMs && left.sequence < right.sequence);
  }

  private siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(this.at(index), this.at(parent))) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < this.heap.length && this.before(this.at(left), this.at(smallest))) smallest = left;
      if (right < this.heap.length && this.before(this.at(right), this.at(smallest))) smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }

  private at(index: number): ScheduledEvent {
    const event = this.heap[index];
    if (event === undefined) throw new RangeError(`no event at heap slot ${index}`);
    return event;
  }

  private swap(first: number, second: number): void {
    const event = this.at(first);
    this.heap[first] = this.at(second);
    this.heap[second] = event;
  }
}
