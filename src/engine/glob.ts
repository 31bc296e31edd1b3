import { KvError } from "../errors.js";
import { MAX_GLOB_BRACE_DEPTH, MAX_GLOB_PATTERN_LENGTH } from "./limits.js";

/**
 * Glob patterns for keys(), count(), scan() and the *Pattern operations (SPEC §4).
 *
 *   *      any run of characters; with a separator, a run that does not contain it
 *   **     any run of characters, always crossing the separator
 *   ?      one character (code point), never the separator
 *   [abc] [a-z] [!a] [^a]   one character from / not from a set, never the separator
 *   {a,b}  alternatives; they may nest and contain any other syntax
 *   \x     the character x literally
 *
 * With a separator only a literal separator or `**` can match it, as in path globbing.
 * The pattern is compiled once into a Thompson NFA and keys are matched by stepping the set of
 * live states one code point at a time: O(key length × pattern length) with no backtracking,
 * whatever the pattern. Alternatives are states, not expanded strings, so `{a,b}{c,d}...`
 * grows linearly.
 */
export interface GlobOptions {
  /** A single character, e.g. "." for `app.config.db.host` or "/" or ":". */
  readonly separator?: string;
}

export interface GlobMatcher {
  matches(key: string): boolean;
  /** Every matching key starts with this; lets the store skip keys without matching. */
  readonly literalPrefix: string;
}

export function compileGlob(pattern: string, options: GlobOptions = {}): GlobMatcher {
  if (pattern.length > MAX_GLOB_PATTERN_LENGTH) {
    throw new KvError("INVALID", `pattern is longer than ${MAX_GLOB_PATTERN_LENGTH} characters`);
  }
  // Keys never hold lone surrogates; in a pattern one could match half of a surrogate pair.
  if (LONE_SURROGATE.test(pattern)) throw malformed("lone surrogate");
  const separator = separatorCodePoint(options.separator);
  return matcherFor(new GlobParser(pattern).parse(), separator);
}

const LONE_SURROGATE = /\p{Cs}/u;

function separatorCodePoint(separator: string | undefined): number | undefined {
  if (separator === undefined) return undefined;
  const codePoints = [...separator];
  if (codePoints.length !== 1) throw new KvError("INVALID", "separator must be exactly one character");
  return separator.codePointAt(0);
}

// ---- Syntax tree -------------------------------------------------------------------------

type GlobNode =
  | { readonly kind: "literal"; readonly codePoint: number }
  | { readonly kind: "run"; readonly crossesSeparator: boolean }
  | { readonly kind: "one" }
  | { readonly kind: "class"; readonly ranges: readonly CodePointRange[]; readonly negated: boolean }
  | { readonly kind: "alternatives"; readonly branches: readonly GlobSequence[] };

type GlobSequence = readonly GlobNode[];

interface CodePointRange {
  readonly first: number;
  readonly last: number;
}

function malformed(message: string): KvError {
  return new KvError("INVALID", `malformed glob pattern: ${message}`);
}

/** Recursive descent over code points; recursion only enters braces, bounded by MAX_GLOB_BRACE_DEPTH. */
class GlobParser {
  private readonly codePoints: readonly number[];
  private position = 0;

  constructor(pattern: string) {
    this.codePoints = Array.from(pattern, (character) => character.codePointAt(0) as number);
  }

  /** Outside braces `}` and `,` are ordinary characters, so the top level reads to the end. */
  parse(): GlobSequence {
    return this.parseSequence(0);
  }

  private peek(): number | undefined {
    return this.codePoints[this.position];
  }

  private next(): number {
    const codePoint = this.codePoints[this.position];
    if (codePoint === undefined) throw malformed("unexpected end");
    this.position += 1;
    return codePoint;
  }

  private parseSequence(braceDepth: number): GlobSequence {
    const nodes: GlobNode[] = [];
    for (let codePoint = this.peek(); codePoint !== undefined; codePoint = this.peek()) {
      if (braceDepth > 0 && (codePoint === COMMA || codePoint === CLOSE_BRACE)) break;
      nodes.push(this.parseNode(braceDepth));
    }
    return nodes;
  }

  private parseNode(braceDepth: number): GlobNode {
    const codePoint = this.next();
    switch (codePoint) {
      case STAR:
        return this.parseRun();
      case QUESTION:
        return { kind: "one" };
      case OPEN_BRACKET:
        return this.parseClass();
      case OPEN_BRACE:
        return this.parseAlternatives(braceDepth + 1);
      case BACKSLASH:
        return { kind: "literal", codePoint: this.escaped() };
      default:
        return { kind: "literal", codePoint };
    }
  }

  private escaped(): number {
    if (this.peek() === undefined) throw malformed("trailing backslash");
    return this.next();
  }

  /** `*` then any further stars: two or more form `**`. */
  private parseRun(): GlobNode {
    let crossesSeparator = false;
    while (this.peek() === STAR) {
      this.position += 1;
      crossesSeparator = true;
    }
    return { kind: "run", crossesSeparator };
  }

  /** After `[`: optional `!`/`^`, then items; a `]` right at the start is a literal. */
  private parseClass(): GlobNode {
    const negated = this.peek() === EXCLAMATION || this.peek() === CARET;
    if (negated) this.position += 1;
    const ranges: CodePointRange[] = [];
    for (let first = true; first || this.peek() !== CLOSE_BRACKET; first = false) {
      if (this.peek() === undefined) throw malformed("unclosed [");
      ranges.push(this.parseClassItem());
    }
    this.position += 1;
    return { kind: "class", ranges, negated };
  }

  private parseClassItem(): CodePointRange {
    const first = this.classCharacter();
    const isRange = this.peek() === HYPHEN && this.codePoints[this.position + 1] !== CLOSE_BRACKET;
    if (!isRange || this.codePoints[this.position + 1] === undefined) return { first, last: first };
    this.position += 1;
    const last = this.classCharacter();
    if (last < first) throw malformed("character range is reversed");
    return { first, last };
  }

  private classCharacter(): number {
    const codePoint = this.next();
    return codePoint === BACKSLASH ? this.escaped() : codePoint;
  }

  /** After `{`: comma-separated sequences up to the matching `}`. */
  private parseAlternatives(braceDepth: number): GlobNode {
    if (braceDepth > MAX_GLOB_BRACE_DEPTH) throw malformed(`braces nested deeper than ${MAX_GLOB_BRACE_DEPTH}`);
    const branches: GlobSequence[] = [this.parseSequence(braceDepth)];
    for (;;) {
      const delimiter = this.peek();
      if (delimiter === undefined) throw malformed("unclosed {");
      this.position += 1;
      if (delimiter === CLOSE_BRACE) return { kind: "alternatives", branches };
      branches.push(this.parseSequence(braceDepth));
    }
  }
}

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;
const EXCLAMATION = 0x21;
const CARET = 0x5e;
const HYPHEN = 0x2d;

// ---- Matchers ------------------------------------------------------------------------------

/**
 * Leading literal nodes become `literalPrefix` and are checked with startsWith; the NFA only
 * runs on the rest. The two commonest shapes, an exact key and `prefix*`, skip the NFA.
 */
function matcherFor(sequence: GlobSequence, separator: number | undefined): GlobMatcher {
  let prefixNodes = 0;
  const prefixCodePoints: number[] = [];
  for (const node of sequence) {
    if (node.kind !== "literal") break;
    prefixCodePoints.push(node.codePoint);
    prefixNodes += 1;
  }
  const literalPrefix = String.fromCodePoint(...prefixCodePoints);
  const rest = sequence.slice(prefixNodes);
  if (rest.length === 0) return { literalPrefix, matches: (key) => key === literalPrefix };
  const only = rest.length === 1 ? rest[0] : undefined;
  if (only?.kind === "run" && (only.crossesSeparator || separator === undefined)) {
    return { literalPrefix, matches: (key) => key.startsWith(literalPrefix) };
  }
  return new NfaMatcher(literalPrefix, compileProgram(rest, separator));
}

// ---- NFA -----------------------------------------------------------------------------------

/** A `test` consumes one code point it accepts; `split` forks; `jump` moves; `match` accepts the key. */
const TEST = 0;
const SPLIT = 1;
const JUMP = 2;
const MATCH = 3;

/** One shape for every instruction keeps property access monomorphic in the hot loop. */
interface Instruction {
  readonly kind: number;
  readonly accepts: (codePoint: number) => boolean;
  next: number;
  alternative: number;
}

const ACCEPTS_NOTHING = (): boolean => false;
const ACCEPTS_ANY = (): boolean => true;

/** Emits a Thompson NFA; every fragment continues at the instruction emitted after it. */
class ProgramBuilder {
  readonly instructions: Instruction[] = [];

  constructor(private readonly separator: number | undefined) {}

  sequence(nodes: GlobSequence): void {
    for (const node of nodes) this.node(node);
  }

  private node(node: GlobNode): void {
    switch (node.kind) {
      case "literal":
        return this.test((codePoint) => codePoint === node.codePoint);
      case "one":
        return this.test(this.notSeparator(ACCEPTS_ANY));
      case "class":
        return this.test(this.notSeparator(classPredicate(node.ranges, node.negated)));
      case "run":
        return this.run(node.crossesSeparator ? ACCEPTS_ANY : this.notSeparator(ACCEPTS_ANY));
      case "alternatives":
        return this.alternatives(node.branches);
    }
  }

  private notSeparator(accepts: (codePoint: number) => boolean): (codePoint: number) => boolean {
    const separator = this.separator;
    if (separator === undefined) return accepts;
    return (codePoint) => codePoint !== separator && accepts(codePoint);
  }

  private test(accepts: (codePoint: number) => boolean): void {
    this.emit(TEST, accepts, this.instructions.length + 1);
  }

  /** loop: split(body, exit); body: test -> loop; exit: whatever comes next. */
  private run(accepts: (codePoint: number) => boolean): void {
    const loop = this.instructions.length;
    this.emit(SPLIT, ACCEPTS_NOTHING, loop + 1, loop + 2);
    this.emit(TEST, accepts, loop);
  }

  /** split(branch 1, split(branch 2, ... branch n)); every branch but the last jumps to the end. */
  private alternatives(branches: readonly GlobSequence[]): void {
    const jumpsToEnd: Instruction[] = [];
    branches.forEach((branch, index) => {
      if (index === branches.length - 1) return this.sequence(branch);
      const split = this.emit(SPLIT, ACCEPTS_NOTHING, this.instructions.length + 1);
      this.sequence(branch);
      jumpsToEnd.push(this.emit(JUMP, ACCEPTS_NOTHING, 0));
      split.alternative = this.instructions.length;
    });
    for (const jump of jumpsToEnd) jump.next = this.instructions.length;
  }

  emit(kind: number, accepts: (codePoint: number) => boolean, next: number, alternative = next): Instruction {
    const instruction: Instruction = { kind, accepts, next, alternative };
    this.instructions.push(instruction);
    return instruction;
  }
}

function classPredicate(ranges: readonly CodePointRange[], negated: boolean): (codePoint: number) => boolean {
  return (codePoint) => ranges.some((range) => codePoint >= range.first && codePoint <= range.last) !== negated;
}

function compileProgram(sequence: GlobSequence, separator: number | undefined): readonly Instruction[] {
  const builder = new ProgramBuilder(separator);
  builder.sequence(sequence);
  builder.emit(MATCH, ACCEPTS_NOTHING, 0);
  return builder.instructions;
}

/**
 * Pike-style simulation over preallocated buffers: the live consuming states after each code
 * point, deduplicated with generation marks. No allocation per key or per character.
 */
class NfaMatcher implements GlobMatcher {
  private current: Int32Array;
  private following: Int32Array;
  /** Each state is expanded once per generation and pushes at most two successors. */
  private readonly pending: Int32Array;
  private readonly marks: Uint32Array;
  private generation = 0;

  constructor(
    readonly literalPrefix: string,
    private readonly program: readonly Instruction[],
  ) {
    this.current = new Int32Array(program.length);
    this.following = new Int32Array(program.length);
    this.pending = new Int32Array(2 * program.length + 1);
    this.marks = new Uint32Array(program.length);
  }

  matches(key: string): boolean {
    if (!key.startsWith(this.literalPrefix)) return false;
    this.nextGeneration();
    let size = this.addClosure(0, this.current, 0);
    for (let index = this.literalPrefix.length; index < key.length && size > 0; ) {
      const codePoint = key.codePointAt(index) as number;
      index += codePoint > 0xffff ? 2 : 1;
      size = this.step(codePoint, size);
    }
    for (let position = 0; position < size; position += 1) {
      if ((this.program[this.current[position] as number] as Instruction).kind === MATCH) return true;
    }
    return false;
  }

  /** Advances every live state over `codePoint`; returns the number of states now live. */
  private step(codePoint: number, size: number): number {
    this.nextGeneration();
    let nextSize = 0;
    for (let position = 0; position < size; position += 1) {
      const instruction = this.program[this.current[position] as number] as Instruction;
      if (instruction.kind === TEST && instruction.accepts(codePoint)) {
        nextSize = this.addClosure(instruction.next, this.following, nextSize);
      }
    }
    const previous = this.current;
    this.current = this.following;
    this.following = previous;
    return nextSize;
  }

  /** Appends to `list` the consuming and match states reachable from `start` without input. */
  private addClosure(start: number, list: Int32Array, size: number): number {
    const pending = this.pending;
    let top = 0;
    pending[top++] = start;
    while (top > 0) {
      const state = pending[--top] as number;
      if (this.marks[state] === this.generation) continue;
      this.marks[state] = this.generation;
      const instruction = this.program[state] as Instruction;
      if (instruction.kind === SPLIT) {
        pending[top++] = instruction.alternative;
        pending[top++] = instruction.next;
      } else if (instruction.kind === JUMP) {
        pending[top++] = instruction.next;
      } else {
        list[size++] = state;
      }
    }
    return size;
  }

  private nextGeneration(): void {
    this.generation += 1;
    if (this.generation === 0xffffffff) {
      this.marks.fill(0);
      this.generation = 1;
    }
  }
}
