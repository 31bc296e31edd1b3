import { parseHostPort } from "../server/peers.js";
import { ClientConnection } from "./connection.js";
import { KvConnectionError } from "./errors.js";

/**
 * "leader": only the leader can serve it (writes, linearizable reads), so an answer proves
 * leadership. "preferLeader": any node can (info, status), the leader's view is preferred.
 * "any": round-robin over the members that are up (serializable reads).
 */
export type Route = "leader" | "preferLeader" | "any";

export interface RouterSettings {
  readonly connectionsPerNode: number;
  /** Per connection; the client's own bound is checked before a request gets here. */
  readonly maxInFlight: number;
}

/** A node that failed is skipped for this long, doubling per failure up to the maximum. */
const FIRST_DOWN_MS = 100;
const MAX_DOWN_MS = 5000;
/** Longest wait for a TCP connect; a stopped node must not hold a call for its whole deadline. */
const MAX_CONNECT_TIMEOUT_MS = 2000;

interface Member {
  readonly address: string;
  readonly slots: (Promise<ClientConnection> | null)[];
  nextSlot: number;
  /** Until then the node is skipped when choosing a target; after it, the next call probes it. */
  downUntil: number;
  failures: number;
}

/**
 * Where requests go: the known members, the leader, and a small pool of pipelined connections
 * per member. Writes and linearizable reads go to the leader (or, while it is unknown, to any
 * member, whose NOT_LEADER answer names it); serializable reads go round-robin over members
 * that are up. A member that fails is marked down for a while and probed again by a later call.
 */
export class Router {
  private readonly members = new Map<string, Member>();
  private leaderAddress: string | null = null;
  private nextMember = 0;
  private closed = false;

  constructor(
    private readonly seeds: readonly string[],
    private readonly settings: RouterSettings,
  ) {
    for (const seed of seeds) this.add(seed);
  }

  get leader(): string | null {
    return this.leaderAddress;
  }

  get addresses(): string[] {
    return [...this.members.keys()];
  }

  /** The node for the next attempt of a call routed `route`. */
  pick(route: Route, now = Date.now()): string {
    const leader = this.leaderAddress;
    if (route !== "any" && leader !== null && this.isUp(leader, now)) return leader;
    const members = [...this.members.values()];
    const up = members.filter((member) => member.downUntil <= now);
    const candidates = up.length > 0 ? up : members.sort((left, right) => left.downUntil - right.downUntil).slice(0, 1);
    const chosen = candidates[this.nextMember++ % candidates.length];
    if (chosen === undefined) throw new KvConnectionError("no known cluster member");
    return chosen.address;
  }

  /** A NOT_LEADER hint or a status answer named the leader (null: no leader right now). */
  setLeader(address: string | null): void {
    if (address !== null) this.add(address);
    this.leaderAddress = address;
  }

  /**
   * The members as the cluster reports them. Seeds stay known even when not listed, so a client
   * can always start over from what it was given.
   */
  learnMembers(addresses: readonly string[]): void {
    for (const address of addresses) this.add(address);
    for (const [address, member] of this.members) {
      if (addresses.includes(address) || this.seeds.includes(address)) continue;
      this.closeMember(member);
      this.members.delete(address);
      if (this.leaderAddress === address) this.leaderAddress = null;
    }
  }

  /** The node answered: it is up. */
  markUp(address: string): void {
    const member = this.members.get(address);
    if (member === undefined) return;
    member.failures = 0;
    member.downUntil = 0;
  }

  /** The node failed to connect or to answer: skip it for a while, and forget it as leader. */
  markDown(address: string, now = Date.now()): void {
    const member = this.members.get(address);
    if (member === undefined) return;
    member.downUntil = now + Math.min(MAX_DOWN_MS, FIRST_DOWN_MS * 2 ** member.failures);
    member.failures = Math.min(member.failures + 1, 16);
    if (this.leaderAddress === address) this.leaderAddress = null;
  }

  /** An open connection to `address`, from its pool (round-robin), connecting when needed. */
  async connection(address: string, timeoutMs: number): Promise<ClientConnection> {
    if (this.closed) throw new KvConnectionError("the client is closed");
    const member = this.members.get(address) ?? this.add(address);
    const slot = member.nextSlot;
    member.nextSlot = (slot + 1) % member.slots.length;
    const existing = member.slots[slot];
    if (existing !== null && existing !== undefined) {
      const connection = await existing.catch(() => null);
      if (connection?.isOpen === true) return connection;
      if (member.slots[slot] === existing) member.slots[slot] = null;
    }
    return this.connect(member, slot, timeoutMs);
  }

  close(): void {
    this.closed = true;
    for (const member of this.members.values()) this.closeMember(member);
  }

  private connect(member: Member, slot: number, timeoutMs: number): Promise<ClientConnection> {
    const { host, port } = parseHostPort(member.address);
    const connectTimeoutMs = Math.max(1, Math.min(timeoutMs, MAX_CONNECT_TIMEOUT_MS));
    const connecting = ClientConnection.connect(host, port, { maxInFlight: this.settings.maxInFlight, connectTimeoutMs });
    member.slots[slot] = connecting;
    connecting.then(
      (connection) => {
        if (this.closed) connection.close();
      },
      () => {
        if (member.slots[slot] === connecting) member.slots[slot] = null;
      },
    );
    return connecting;
  }

  private isUp(address: string, now: number): boolean {
    return (this.members.get(address)?.downUntil ?? 0) <= now;
  }

  private add(address: string): Member {
    const known = this.members.get(address);
    if (known !== undefined) return known;
    const member: Member = { address, slots: new Array<null>(this.settings.connectionsPerNode).fill(null), nextSlot: 0, downUntil: 0, failures: 0 };
    this.members.set(address, member);
    return member;
  }

  private closeMember(member: Member): void {
    for (const slot of member.slots) slot?.then((connection) => connection.close(), () => undefined);
    member.slots.fill(null);
  }
}
