import { KvValueError } from "../client/errors.js";
import { kv, type JsValue } from "../client/values.js";
import { DEFAULT_LIMITS } from "../engine/limits.js";

/**
 * JSON text -> a value, keeping integers exact: JSON.parse turns 9223372036854775807 into a
 * rounded double, so numbers are read here by hand. An integer literal becomes Int (bigint); a
 * literal with a fraction or exponent becomes Float, even when integral (`1.0`). Objects become
 * Maps, so a key such as "__proto__" is an ordinary key.
 */
export function parseExactJson(text: string): JsValue {
  const parser = new JsonParser(text);
  const value = parser.value(0);
  parser.end();
  return value;
}

const NUMBER_PATTERN = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const STRING_PATTERN = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const WHITESPACE_PATTERN = /[ \t\n\r]*/y;
const LITERALS: readonly (readonly [string, JsValue])[] = [
  ["true", true],
  ["false", false],
  ["null", null],
];

class JsonParser {
  private position = 0;

  constructor(private readonly text: string) {}

  value(depth: number): JsValue {
    // The engine refuses values nested deeper anyway; the bound keeps recursion shallow.
    if (depth > DEFAULT_LIMITS.maxDepth) throw this.error(`nested deeper than ${DEFAULT_LIMITS.maxDepth} levels`);
    this.skipWhitespace();
    const next = this.text[this.position];
    if (next === "{") return this.object(depth);
    if (next === "[") return this.array(depth);
    if (next === '"') return this.string();
    for (const [word, literal] of LITERALS) {
      if (this.text.startsWith(word, this.position)) {
        this.position += word.length;
        return literal;
      }
    }
    return this.number();
  }

  end(): void {
    this.skipWhitespace();
    if (this.position !== this.text.length) throw this.error("unexpected text after the value");
  }

  private object(depth: number): Map<string, JsValue> {
    const result = new Map<string, JsValue>();
    this.position += 1;
    if (this.consume("}")) return result;
    do {
      this.skipWhitespace();
      const key = this.string();
      this.expect(":");
      result.set(key, this.value(depth + 1));
    } while (this.consume(","));
    this.expect("}");
    return result;
  }

  private array(depth: number): JsValue[] {
    const result: JsValue[] = [];
    this.position += 1;
    if (this.consume("]")) return result;
    do result.push(this.value(depth + 1));
    while (this.consume(","));
    this.expect("]");
    return result;
  }

  private string(): string {
    const literal = this.match(STRING_PATTERN, "a string");
    return JSON.parse(literal) as string;
  }

  private number(): JsValue {
    NUMBER_PATTERN.lastIndex = this.position;
    const found = NUMBER_PATTERN.exec(this.text);
    if (found === null) throw this.error("a value expected");
    this.position += found[0].length;
    const isInteger = found[1] === undefined && found[2] === undefined;
    return isInteger ? BigInt(found[0]) : kv.float(Number(found[0]));
  }

  private match(pattern: RegExp, what: string): string {
    pattern.lastIndex = this.position;
    const found = pattern.exec(this.text);
    if (found === null) throw this.error(`${what} expected`);
    this.position += found[0].length;
    return found[0];
  }

  private consume(character: string): boolean {
    this.skipWhitespace();
    if (this.text[this.position] !== character) return false;
    this.position += 1;
    return true;
  }

  private expect(character: string): void {
    if (!this.consume(character)) throw this.error(`"${character}" expected`);
  }

  private skipWhitespace(): void {
    WHITESPACE_PATTERN.lastIndex = this.position;
    WHITESPACE_PATTERN.exec(this.text);
    this.position = WHITESPACE_PATTERN.lastIndex;
  }

  private error(reason: string): KvValueError {
    return new KvValueError(`invalid JSON at character ${this.position}: ${reason}`);
  }
}
