/**
 * Seeded pseudo-random numbers for the simulator: xoshiro128** seeded through splitmix32.
 *
 * Everything random in a simulated run (network faults, workload, election jitter) draws from
 * one of these, so a run is a pure function of its seed and replays exactly. `Math.random` is
 * never used: one call to it would make a failing seed unreplayable.
 */
export class Random {
  private state0: number;
  private state1: number;
  private state2: number;
  private state3: number;

  constructor(seed: number) {
    // splitmix32 spreads nearby seeds (1, 2, 3...) over the whole state space.
    let mixer = seed >>> 0;
    const nextMixed = (): number => {
      mixer = (mixer + 0x9e3779b9) >>> 0;
      let value = mixer;
      value = Math.imul(value ^ (value >>> 16), 0x85ebca6b);
      value = Math.imul(value ^ (value >>> 13), 0xc2b2ae35);
      return (value ^ (value >>> 16)) >>> 0;
    };
    this.state0 = nextMixed();
    this.state1 = nextMixed();
    this.state2 = nextMixed();
    this.state3 = nextMixed();
    // An all-zero state would only ever produce zeros.
    if ((this.state0 | this.state1 | this.state2 | this.state3) === 0) this.state0 = 1;
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.state1, 5), 7), 9) >>> 0;
    const shifted = this.state1 << 9;
    this.state2 ^= this.state0;
    this.state3 ^= this.state1;
    this.state1 ^= this.state2;
    this.state0 ^= this.state3;
    this.state2 ^= shifted;
    this.state3 = rotateLeft(this.state3, 11);
    return result;
  }

  /** A number in [0, 1). */
  next(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** An integer in [minInclusive, maxExclusive). */
  integer(minInclusive: number, maxExclusive: number): number {
    if (maxExclusive <= minInclusive) throw new RangeError(`empty range [${minInclusive}, ${maxExclusive})`);
    return minInclusive + Math.floor(this.next() * (maxExclusive - minInclusive));
  }

  /** True with the given probability. */
  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.integer(0, items.length)];
    if (item === undefined) throw new RangeError("pick from an empty list");
    return item;
  }

  /** A Fisher-Yates shuffled copy. */
  shuffled<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let index = copy.length - 1; index > 0; index--) {
      const other = this.integer(0, index + 1);
      [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
    }
    return copy;
  }

  /**
   * An independent generator seeded from this one. Each node gets its own, so that adding a
   * workload step does not shift every node's election jitter (runs stay comparable).
   */
  fork(): Random {
    return new Random(this.nextUint32());
  }
}

function rotateLeft(value: number, bits: number): number {
  return ((value << bits) | (value >>> (32 - bits))) >>> 0;
}
