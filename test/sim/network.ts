import type { Message, NodeId } from "../../src/raft/types.js";
import type { EventQueue } from "./clock.js";
import type { Random } from "./random.js";

/** How badly the simulated network behaves; every probability is per message. */
export interface NetworkFaults {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  /** Some messages are held back far longer, so that stale ones arrive after newer ones. */
  readonly longDelayProbability: number;
  readonly longDelayMs: number;
}

export const RELIABLE_NETWORK: NetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  minDelayMs: 1,
  maxDelayMs: 3,
  longDelayProbability: 0,
  longDelayMs: 0,
};

/** What a scripted scenario may do with one message before the network sees it. */
export type MessageFilter = (message: Message) => "deliver" | "drop";

export interface NetworkStatistics {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  /** Messages per type that reached their destination. */
  readonly deliveredByType: Map<Message["type"], number>;
}

/**
 * A seeded network between simulated nodes: each message gets a random delay (which reorders
 * them), may be dropped or duplicated, and is lost when its link is cut when it is sent or when
 * it would arrive. Links are directed, so a partition can be one-way.
 */
export class SimulatedNetwork {
  private faults: NetworkFaults = RELIABLE_NETWORK;
  private readonly blockedLinks = new Set<string>();
  private inFlightMessages = 0;
  private filter: MessageFilter | null = null;
  readonly statistics: NetworkStatistics = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    deliveredByType: new Map(),
  };

  constructor(
    private readonly queue: EventQueue,
    private readonly random: Random,
    private readonly deliver: (message: Message) => void,
    /** Like a full socket buffer: past this many messages in flight, new ones are dropped. */
    readonly maxInFlightMessages: number,
  ) {}

  setFaults(faults: NetworkFaults): void {
    this.faults = faults;
  }

  setFilter(filter: MessageFilter | null): void {
    this.filter = filter;
  }

  send(message: Message): void {
    this.statistics.sent++;
    if (this.filter?.(message) === "drop" || this.random.chance(this.faults.dropProbability)) {
      this.statistics.dropped++;
      return;
    }
    this.transmit(message);
    if (this.random.chance(this.faults.duplicateProbability)) {
      this.statistics.duplicated++;
      this.transmit(message);
    }
  }

  /** Cuts the link from `from` to `to` only: `to` still reaches `from`. */
  blockLink(from: NodeId, to: NodeId): void {
    this.blockedLinks.add(linkKey(from, to));
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blockedLinks.has(linkKey(from, to));
  }

  /** Symmetric partition: nodes talk only inside their own group. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (const group of groups) {
      for (const other of groups) {
        if (other === group) continue;
        for (const from of group) for (const to of other) this.blockLink(from, to);
      }
    }
  }

  /** Cuts `node` off from every node in `others`, both ways. */
  isolate(node: NodeId, others: readonly NodeId[]): void {
    this.partition([[node], others.filter((other) => other !== node)]);
  }

  heal(): void {
    this.blockedLinks.clear();
  }

  private transmit(message: Message): void {
    if (this.isBlocked(message.from, message.to) || this.inFlightMessages >= this.maxInFlightMessages) {
      this.statistics.dropped++;
      return;
    }
    // A real network hands the receiver a copy: sharing objects would hide aliasing bugs.
    const copy = structuredClone(message);
    this.inFlightMessages++;
    this.queue.after(this.delayMs(), () => {
      this.inFlightMessages--;
      if (this.isBlocked(copy.from, copy.to)) {
        this.statistics.dropped++;
        return;
      }
      this.statistics.delivered++;
      const byType = this.statistics.deliveredByType;
      byType.set(copy.type, (byType.get(copy.type) ?? 0) + 1);
      this.deliver(copy);
    });
  }

  private delayMs(): number {
    const { minDelayMs, maxDelayMs, longDelayProbability, longDelayMs } = this.faults;
    const base = this.random.integer(minDelayMs, maxDelayMs + 1);
    return this.random.chance(longDelayProbability) ? base + this.random.integer(0, longDelayMs + 1) : base;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}\u0000${to}`;
}
