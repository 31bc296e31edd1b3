import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Message } from "../../src/raft/types.js";
import { EventQueue, EventQueueFullError, SimulatedClock } from "./clock.js";
import { SimulatedNetwork, RELIABLE_NETWORK, type NetworkFaults } from "./network.js";
import { Random } from "./random.js";
import { RegisterMachine, decodeWrite, encodeWrite } from "./register-machine.js";

const MEMBERSHIP = { voters: ["n1", "n2", "n3"], learners: [], addresses: {} };

function heartbeat(from: string, to: string, commit = 0): Message {
  return { type: "heartbeat", from, to, term: 1, commit, readRound: 0 };
}

describe("Random", () => {
  it("replays the same sequence for the same seed and diverges for another", () => {
    const draw = (seed: number): number[] => {
      const random = new Random(seed);
      return Array.from({ length: 50 }, () => random.nextUint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });

  it("draws integers inside the range, covering all of it", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: -50, max: 50 }), fc.integer({ min: 1, max: 20 }), (seed, low, width) => {
        const random = new Random(seed);
        const seen = new Set<number>();
        for (let draw = 0; draw < 400; draw++) {
          const value = random.integer(low, low + width);
          expect(value).toBeGreaterThanOrEqual(low);
          expect(value).toBeLessThan(low + width);
          seen.add(value);
        }
        expect(seen.size).toBe(width);
      }),
      { numRuns: 50 },
    );
  });

  it("is roughly uniform (each of 10 buckets within 20% of its share over 100 000 draws)", () => {
    const random = new Random(7);
    const buckets = new Array<number>(10).fill(0);
    for (let draw = 0; draw < 100_000; draw++) buckets[Math.floor(random.next() * 10)]! += 1;
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(2_000);
  });

  it("shuffles into a permutation and forks deterministic independent streams", () => {
    const random = new Random(3);
    expect(random.shuffled([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
    const left = new Random(9).fork();
    const right = new Random(9).fork();
    expect(left.nextUint32()).toBe(right.nextUint32());
    expect(() => random.integer(3, 3)).toThrow(RangeError);
    expect(() => random.pick([])).toThrow(RangeError);
  });
});

describe("EventQueue", () => {
  it("runs events in time order, ties in insertion order, and moves the clock", () => {
    const clock = new SimulatedClock();
    const queue = new EventQueue(clock, 100);
    const log: string[] = [];
    queue.schedule(20, () => log.push(`b@${clock.nowMs}`));
    queue.schedule(10, () => log.push(`a@${clock.nowMs}`));
    queue.schedule(20, () => log.push(`c@${clock.nowMs}`));
    queue.schedule(10, () => queue.after(5, () => log.push(`d@${clock.nowMs}`)));
    queue.runUntil(18);
    expect(log).toEqual(["a@10", "d@15"]);
    expect(clock.nowMs).toBe(18);
    queue.runUntil(100);
    expect(log).toEqual(["a@10", "d@15", "b@20", "c@20"]);
    expect(queue.size).toBe(0);
  });

  it("orders any schedule like a stable sort by time", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 60 }), (times) => {
        const clock = new SimulatedClock();
        const queue = new EventQueue(clock, 1_000);
        const order: number[] = [];
        times.forEach((time, position) => queue.schedule(time, () => order.push(position)));
        queue.runUntil(1_000);
        const expected = times.map((time, position) => ({ time, position })).sort((a, b) => a.time - b.time || a.position - b.position);
        expect(order).toEqual(expected.map(({ position }) => position));
      }),
      { numRuns: 100 },
    );
  });

  it("refuses events past its bound and never moves the clock backwards", () => {
    const clock = new SimulatedClock();
    const queue = new EventQueue(clock, 2);
    queue.schedule(1, () => undefined);
    queue.schedule(2, () => undefined);
    expect(() => queue.schedule(3, () => undefined)).toThrow(EventQueueFullError);
    clock.advanceTo(5);
    expect(() => clock.advanceTo(4)).toThrow(RangeError);
  });
});

describe("SimulatedNetwork", () => {
  function setUp(faults: NetworkFaults, maxInFlightMessages = 1_000) {
    const clock = new SimulatedClock();
    const queue = new EventQueue(clock, 10_000);
    const received: { message: Message; atMs: number }[] = [];
    const network = new SimulatedNetwork(queue, new Random(1), (message) => received.push({ message, atMs: clock.nowMs }), maxInFlightMessages);
    network.setFaults(faults);
    return { queue, network, received };
  }

  it("delivers every message of a reliable network within the delay bounds, as a copy", () => {
    const { queue, network, received } = setUp({ ...RELIABLE_NETWORK, minDelayMs: 2, maxDelayMs: 6 });
    const sent = heartbeat("n1", "n2");
    for (let count = 0; count < 100; count++) network.send(sent);
    queue.runUntil(1_000);
    expect(received).toHaveLength(100);
    for (const { message, atMs } of received) {
      expect(atMs).toBeGreaterThanOrEqual(2);
      expect(atMs).toBeLessThanOrEqual(6);
      expect(message).toEqual(sent);
      expect(message).not.toBe(sent);
    }
    expect(network.statistics.deliveredByType.get("heartbeat")).toBe(100);
  });

  it("reorders messages with random delays", () => {
    const { queue, network, received } = setUp({ ...RELIABLE_NETWORK, minDelayMs: 1, maxDelayMs: 30 });
    for (let commit = 0; commit < 50; commit++) network.send(heartbeat("n1", "n2", commit));
    queue.runUntil(1_000);
    const commits = received.map(({ message }) => (message.type === "heartbeat" ? message.commit : -1));
    expect(commits).toHaveLength(50);
    expect(commits).not.toEqual([...commits].sort((a, b) => a - b));
  });

  it("drops and duplicates with the configured probabilities", () => {
    const lossy = setUp({ ...RELIABLE_NETWORK, dropProbability: 1 });
    lossy.network.send(heartbeat("n1", "n2"));
    lossy.queue.runUntil(100);
    expect(lossy.received).toHaveLength(0);
    const doubling = setUp({ ...RELIABLE_NETWORK, duplicateProbability: 1 });
    doubling.network.send(heartbeat("n1", "n2"));
    doubling.queue.runUntil(100);
    expect(doubling.received).toHaveLength(2);
  });

  it("cuts links one way, partitions both ways, and loses messages in flight when a link is cut", () => {
    const { queue, network, received } = setUp({ ...RELIABLE_NETWORK, minDelayMs: 10, maxDelayMs: 10 });
    network.blockLink("n1", "n2");
    network.send(heartbeat("n1", "n2"));
    network.send(heartbeat("n2", "n1"));
    queue.runUntil(20);
    expect(received.map(({ message }) => message.from)).toEqual(["n2"]);
    network.heal();
    network.send(heartbeat("n1", "n3"));
    queue.runUntil(25);
    network.partition([["n1"], ["n2", "n3"]]);
    queue.runUntil(100);
    expect(received).toHaveLength(1);
    expect(network.isBlocked("n3", "n1")).toBe(true);
    expect(network.isBlocked("n2", "n3")).toBe(false);
  });

  it("drops messages past its in-flight bound, and lets a filter drop chosen messages", () => {
    const { queue, network, received } = setUp(RELIABLE_NETWORK, 3);
    network.setFilter((message) => (message.to === "n3" ? "drop" : "deliver"));
    for (let count = 0; count < 5; count++) network.send(heartbeat("n1", "n2"));
    network.send(heartbeat("n1", "n3"));
    queue.runUntil(100);
    expect(received).toHaveLength(3);
    expect(network.statistics.dropped).toBe(3);
  });
});

describe("RegisterMachine", () => {
  it("applies writes, and restores from its snapshot to the same state", () => {
    const machine = RegisterMachine.empty(MEMBERSHIP);
    machine.apply({ index: 1, term: 1, kind: "noop" });
    machine.apply({ index: 2, term: 1, kind: "command", data: encodeWrite({ key: "x", operationId: 7 }) });
    machine.apply({ index: 3, term: 2, kind: "command", data: encodeWrite({ key: "y", operationId: 8 }) });
    machine.apply({ index: 4, term: 2, kind: "command", data: encodeWrite({ key: "x", operationId: 9 }) });
    expect(machine.read("x")).toEqual({ operationId: 9, index: 4 });
    const restored = RegisterMachine.restore(machine.snapshotData(), 4, MEMBERSHIP);
    expect(restored.appliedIndex).toBe(4);
    expect(restored.keys()).toEqual(["x", "y"]);
    expect(restored.read("y")).toEqual({ operationId: 8, index: 3 });
    expect(restored.snapshotData()).toEqual(machine.snapshotData());
    expect(decodeWrite(encodeWrite({ key: "k", operationId: 1 }))).toEqual({ key: "k", operationId: 1 });
  });
});
