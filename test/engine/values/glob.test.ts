import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { compileGlob, type GlobOptions } from "../../../src/engine/glob.js";
import { MAX_GLOB_BRACE_DEPTH, MAX_GLOB_PATTERN_LENGTH } from "../../../src/engine/limits.js";
import { KvError } from "../../../src/errors.js";

const invalid = expect.objectContaining({ code: "INVALID" });

function options(separator: string | undefined): GlobOptions {
  return separator === undefined ? {} : { separator };
}

function matching(pattern: string, keys: readonly string[], globOptions: GlobOptions = {}): string[] {
  const matcher = compileGlob(pattern, globOptions);
  return keys.filter((key) => matcher.matches(key));
}

/**
 * The simple reference: a character-by-character translation of a brace-free pattern into a
 * backtracking RegExp (fine for the short patterns the property generates). Returns undefined
 * for a malformed pattern.
 */
function referenceRegExp(pattern: string, separator: string | undefined): RegExp | undefined {
  const characters = [...pattern];
  const literal = (character: string) => `\\u{${(character.codePointAt(0) as number).toString(16)}}`;
  const notSeparator = separator === undefined ? "." : `(?!${literal(separator)}).`;
  let source = "";
  for (let index = 0; index < characters.length; index += 1) {
    const character = characters[index] as string;
    if (character === "\\") {
      index += 1;
      if (index >= characters.length) return undefined;
      source += literal(characters[index] as string);
    } else if (character === "*") {
      let stars = 1;
      while (characters[index + 1] === "*") [index, stars] = [index + 1, stars + 1];
      source += stars > 1 ? ".*" : `(?:${notSeparator})*`;
    } else if (character === "?") {
      source += notSeparator;
    } else if (character === "[") {
      const parsed = referenceClass(characters, index + 1, literal);
      if (parsed === undefined) return undefined;
      index = parsed.end;
      source += separator === undefined ? parsed.source : `(?!${literal(separator)})${parsed.source}`;
    } else {
      source += literal(character);
    }
  }
  try {
    return new RegExp(`^${source}$`, "su");
  } catch {
    return undefined; // e.g. a reversed range
  }
}

function referenceClass(
  characters: readonly string[],
  start: number,
  literal: (character: string) => string,
): { source: string; end: number } | undefined {
  let index = start;
  const negated = characters[index] === "!" || characters[index] === "^";
  if (negated) index += 1;
  const readOne = (): string | undefined => {
    let character = characters[index];
    if (character === "\\") character = characters[++index];
    index += 1;
    return character;
  };
  let items = "";
  for (let first = true; first || characters[index] !== "]"; first = false) {
    if (index >= characters.length) return undefined;
    const low = readOne();
    if (low === undefined) return undefined;
    if (characters[index] === "-" && index + 1 < characters.length && characters[index + 1] !== "]") {
      index += 1;
      const high = readOne();
      if (high === undefined) return undefined;
      items += `${literal(low)}-${literal(high)}`;
    } else {
      items += literal(low);
    }
  }
  return { source: `[${negated ? "^" : ""}${items}]`, end: index };
}

describe("compileGlob against a RegExp reference", () => {
  // Single characters reach every corner of the syntax (malformed patterns included); whole
  // tokens make well-formed classes and separators common enough to matter.
  const patternCharacter = fc.constantFrom("a", "b", ".", "*", "?", "[", "]", "!", "^", "-", "\\", ",", "}", "😀");
  const patternToken = fc.constantFrom("a", ".", "-", "*", "**", "?", "[ab]", "[!a]", "[^.]", "[a-c]", "[--a]", "[]-]", "\\*", "\\.");
  const keyCharacter = fc.constantFrom("a", "b", ".", "-", "!", "]", "^", "😀", "*");
  const patternArbitrary = fc
    .array(fc.oneof(patternCharacter, patternToken), { maxLength: 8 })
    .map((parts) => parts.join(""));
  const keyArbitrary = fc.array(keyCharacter, { maxLength: 8 }).map((parts) => parts.join(""));
  const separatorArbitrary = fc.constantFrom(undefined, ".", "-");

  test("property: same verdict on every key, INVALID exactly where the reference cannot translate", () => {
    fc.assert(
      fc.property(patternArbitrary, fc.array(keyArbitrary, { maxLength: 12 }), separatorArbitrary, (pattern, keys, separator) => {
        const reference = referenceRegExp(pattern, separator);
        if (reference === undefined) {
          expect(() => compileGlob(pattern, options(separator))).toThrow(invalid);
          return;
        }
        const matcher = compileGlob(pattern, options(separator));
        for (const key of keys) {
          const matched = matcher.matches(key);
          expect(matched, `${pattern} ~ ${key}`).toBe(reference.test(key));
          if (matched) expect(key.startsWith(matcher.literalPrefix)).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test("property: {p,q} matches exactly what p or q matches", () => {
    const simple = fc.array(fc.constantFrom("a", "b", "*", "?", "."), { maxLength: 4 }).map((parts) => parts.join(""));
    fc.assert(
      fc.property(simple, simple, simple, simple, fc.array(keyArbitrary, { maxLength: 8 }), (prefix, p, q, suffix, keys) => {
        const combined = compileGlob(`${prefix}{${p},${q}}${suffix}`);
        const left = compileGlob(prefix + p + suffix);
        const right = compileGlob(prefix + q + suffix);
        for (const key of keys) expect(combined.matches(key)).toBe(left.matches(key) || right.matches(key));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("compileGlob syntax", () => {
  test("* ? and ** without a separator", () => {
    const keys = ["", "a", "ab", "a.b", "abc", "b"];
    expect(matching("*", keys)).toEqual(keys);
    expect(matching("a*", keys)).toEqual(["a", "ab", "a.b", "abc"]);
    expect(matching("a?", keys)).toEqual(["ab"]);
    expect(matching("a**", keys)).toEqual(["a", "ab", "a.b", "abc"]);
    expect(matching("*b", keys)).toEqual(["ab", "a.b", "b"]);
  });

  test("? matches one code point, an emoji included", () => {
    expect(matching("a?b", ["a😀b", "a😀😀b", "ab"])).toEqual(["a😀b"]);
    expect(matching("[😀-😂]", ["😀", "😁", "😂", "😃"])).toEqual(["😀", "😁", "😂"]);
  });

  test("character classes", () => {
    const keys = ["a", "b", "c", "d", "-", "]", "!", "^"];
    expect(matching("[abc]", keys)).toEqual(["a", "b", "c"]);
    expect(matching("[a-c]", keys)).toEqual(["a", "b", "c"]);
    expect(matching("[!a-c]", keys)).toEqual(["d", "-", "]", "!", "^"]);
    expect(matching("[^a-c]", keys)).toEqual(["d", "-", "]", "!", "^"]);
    expect(matching("[]a]", keys)).toEqual(["a", "]"]);
    expect(matching("[a-]", keys)).toEqual(["a", "-"]);
    expect(matching("[\\]]", keys)).toEqual(["]"]);
    expect(matching("[a\\-c]", keys)).toEqual(["a", "c", "-"]);
    expect(matching("[!]]", keys)).toEqual(["a", "b", "c", "d", "-", "!", "^"]);
  });

  test("alternatives, nested and with other syntax inside", () => {
    const keys = ["a", "b", "c", "ab", "ac", "abd", "xay", "xby", "x.y", "xy"];
    expect(matching("{a,b}", keys)).toEqual(["a", "b"]);
    expect(matching("a{b,c}", keys)).toEqual(["ab", "ac"]);
    expect(matching("a{b{,d},c}", keys)).toEqual(["ab", "ac", "abd"]);
    expect(matching("x{a,b,?}y", keys)).toEqual(["xay", "xby", "x.y"]);
    expect(matching("x{}y", keys)).toEqual(["xy"]);
    expect(matching("{a*,c}", keys)).toEqual(["a", "c", "ab", "ac", "abd"]);
    expect(matching("{[ab],x*}", keys)).toEqual(["a", "b", "xay", "xby", "x.y", "xy"]);
    expect(matching("user:{1,2}:{name,email}", ["user:1:name", "user:2:email", "user:3:name"])).toEqual(["user:1:name", "user:2:email"]);
  });

  test("outside braces , and } are ordinary characters", () => {
    expect(matching("a,b}", ["a,b}", "a", "b"])).toEqual(["a,b}"]);
    expect(matching("{a,b}}", ["a}", "b}", "a"])).toEqual(["a}", "b}"]);
  });

  test("backslash escapes the next character", () => {
    const keys = ["*", "a", "?", "[a]", "{a,b}", "\\", "a*b"];
    expect(matching("\\*", keys)).toEqual(["*"]);
    expect(matching("\\?", keys)).toEqual(["?"]);
    expect(matching("\\[a]", keys)).toEqual(["[a]"]);
    expect(matching("\\{a,b}", keys)).toEqual(["{a,b}"]);
    expect(matching("\\\\", keys)).toEqual(["\\"]);
    expect(matching("a\\*b", keys)).toEqual(["a*b"]);
    expect(matching("{\\,,a}", [",", "a", "\\"])).toEqual([",", "a"]);
  });

  test("with a separator, * and ? stop at it and ** crosses it", () => {
    const keys = ["app.x", "app.x.y", "app.", "app", "app.config.db.host", "apps.x"];
    const dotted = { separator: "." };
    expect(matching("app.*", keys, dotted)).toEqual(["app.x", "app."]);
    expect(matching("app.**", keys, dotted)).toEqual(["app.x", "app.x.y", "app.", "app.config.db.host"]);
    expect(matching("app.*.*.host", keys, dotted)).toEqual(["app.config.db.host"]);
    expect(matching("app.**.host", keys, dotted)).toEqual(["app.config.db.host"]);
    expect(matching("app?x", keys, dotted)).toEqual([]);
    expect(matching("app[!a]x", keys, dotted)).toEqual([]);
    expect(matching("app[.]x", keys, dotted)).toEqual([]);
    expect(matching("app{.,s.}x", keys, dotted)).toEqual(["app.x", "apps.x"]);
    expect(matching("*", keys, dotted)).toEqual(["app"]);
    expect(matching("**", keys, dotted)).toEqual(keys);
    expect(matching("app?x", keys)).toEqual(["app.x"]);
  });

  test("a separator must be one character", () => {
    expect(() => compileGlob("*", { separator: "" })).toThrow(invalid);
    expect(() => compileGlob("*", { separator: "::" })).toThrow(invalid);
    expect(compileGlob("a*", { separator: "😀" }).matches("ab😀")).toBe(false);
  });

  test.each(["[abc", "[", "[!", "[]", "[!]", "[a-", "{a,b", "{", "a{b{c}", "abc\\", "[a\\", "[z-a]", "\ud83d*"])(
    "malformed pattern %j is INVALID",
    (pattern) => {
      expect(() => compileGlob(pattern)).toThrow(invalid);
      expect(() => compileGlob(pattern)).toThrow(KvError);
    },
  );

  test("pattern length and brace nesting are bounded", () => {
    expect(compileGlob("a".repeat(MAX_GLOB_PATTERN_LENGTH)).matches("a".repeat(MAX_GLOB_PATTERN_LENGTH))).toBe(true);
    expect(() => compileGlob("a".repeat(MAX_GLOB_PATTERN_LENGTH + 1))).toThrow(invalid);
    const nested = (depth: number) => "{".repeat(depth) + "a" + "}".repeat(depth);
    expect(compileGlob(nested(MAX_GLOB_BRACE_DEPTH)).matches("a")).toBe(true);
    expect(() => compileGlob(nested(MAX_GLOB_BRACE_DEPTH + 1))).toThrow(invalid);
  });

  test("literalPrefix is the literal text before the first wildcard", () => {
    expect(compileGlob("user:*").literalPrefix).toBe("user:");
    expect(compileGlob("user:{a,b}").literalPrefix).toBe("user:");
    expect(compileGlob("a\\*b*").literalPrefix).toBe("a*b");
    expect(compileGlob("*abc").literalPrefix).toBe("");
    expect(compileGlob("exact").literalPrefix).toBe("exact");
    expect(matching("exact", ["exact", "exactly", "exac", ""])).toEqual(["exact"]);
    expect(matching("user:*", ["user:", "user:1:name", "use", "users"])).toEqual(["user:", "user:1:name"]);
    expect(compileGlob("ab?").literalPrefix).toBe("ab");
    expect(compileGlob("ab[c]").literalPrefix).toBe("ab");
  });
});

describe("compileGlob cost", () => {
  test(
    "pathological patterns finish (no backtracking)",
    () => {
      const aaa = "a".repeat(10_000);
      expect(compileGlob("*a*a*a*a*a*a*a*a*b").matches(aaa)).toBe(false);
      expect(compileGlob("*a*a*a*a*a*a*a*a*a").matches(aaa)).toBe(true);
      expect(compileGlob("**a**a**a**a**a**a**b", { separator: "." }).matches(aaa)).toBe(false);
      const alternatives = "{a,aa,aaa}".repeat(40);
      expect(compileGlob(`${alternatives}b`).matches(aaa)).toBe(false);
      expect(compileGlob(`{${"{a,".repeat(30)}b${"}".repeat(30)},c}*`).matches(aaa)).toBe(true);
    },
    20_000,
  );
});
