import { Command } from "commander";
import type { JsValue } from "../client/values.js";
import type { CommandContext } from "./context.js";
import { KvValueError } from "../client/errors.js";
import { parseDecimal, parseFloatText, parseInteger, parseTypedValue, INPUT_TYPE_FLAGS, type InputType } from "./typed-input.js";
import { renderEntryWithMeta, renderValue, renderValues } from "./output.js";
import { usageError } from "./run.js";
import { nonNegativeInteger, positiveInteger, seconds } from "./arguments.js";

/** Parsed options of a command: type flags by their camel-case names, and the typed ones below. */
type Flags = Readonly<Record<string, unknown>>;
type TtlFlags = Flags & { readonly ttl?: number };
type SetFlags = TtlFlags & { readonly nx?: boolean; readonly xx?: boolean; readonly ifVersion?: number; readonly metadata?: string; readonly fence?: string };

/** The key-value commands of `kv`: every operation of SPEC §4 that is not cluster or snapshot. */
export function addDataCommands(program: Command, context: CommandContext): void {
  addReadCommands(program, context);
  addWriteCommands(program, context);
  addPatternCommands(program, context);
  addTtlCommands(program, context);
  addLockCommands(program, context);
  program.command("ping").description("ask the cluster for PONG").action(() => context.run(async (client) => context.render(await client.ping())));
  program.command("info").description("the leader's role, term, indexes, keys, memory, counters").action(() => context.run(async (client) => context.render(await client.info())));
}

function addReadCommands(program: Command, context: CommandContext): void {
  program.command("get <key>").description("the value of a key").action((key: string) => context.run(async (client) => renderValue(await client.get(key), context.mode)));
  program.command("getmeta <key>").description("value, versions, times, TTL, size and metadata of a key").action((key: string) => context.run(async (client) => renderEntryWithMeta(await client.getWithMeta(key), context.mode)));
  program.command("exists <key>").description("whether a key exists").action((key: string) => context.run(async (client) => context.render(await client.exists(key))));
  program
    .command("mget <keys...>")
    .description("the values of the keys found")
    .option("--strict", "fail with NOT_FOUND unless every key is found")
    .action((keys: string[], flags: { strict?: boolean }) => context.run(async (client) => renderValues(await client.mget(keys, { strict: flags.strict === true }), context.mode)));
  program
    .command("size [keys...]")
    .description("stored bytes: the total, or per key")
    .action((keys: string[]) => context.run(async (client) => context.render(await client.storageSize(...keys))));
  program.command("getmetadata <key>").description("the user metadata map of a key").action((key: string) => context.run(async (client) => renderValue(await client.getMetadata(key), context.mode)));
}

function addWriteCommands(program: Command, context: CommandContext): void {
  withTypeFlags(program.command("set <key> [value]").description("write a value (a string unless a type flag says otherwise)"))
    .option("--ttl <seconds>", "expire after this many seconds (fractions allowed)", seconds)
    .option("--nx", "only if the key is absent")
    .option("--xx", "only if the key is present")
    .option("--if-version <version>", "only if the key's version is this one (0: absent)", nonNegativeInteger)
    .option("--metadata <json>", "user metadata: a JSON object")
    .option("--fence <lock:token>", "refused with FENCED unless token is the lock's current fencing token")
    .action(function (this: Command, key: string, text: string | undefined, flags: SetFlags) {
      const value = typedValue(this, text, flags);
      const options = {
        ...defined("ttl", flags.ttl),
        ...defined("nx", flags.nx),
        ...defined("xx", flags.xx),
        ...defined("ifVersion", flags.ifVersion),
        ...defined("metadata", flags.metadata === undefined ? undefined : metadataOf(flags.metadata)),
        ...defined("fence", flags.fence === undefined ? undefined : fenceOf(this, flags.fence)),
      };
      return context.run(async (client) => context.render(await client.set(key, value, options)));
    });
  program.command("setmetadata <key> <json>").description("replace the user metadata map of an existing key").action((key: string, json: string) => {
    const metadata = metadataOf(json);
    return context.run(async (client) => context.render(await client.setMetadata(key, metadata)));
  });
  program.command("del <keys...>").description("delete keys; prints how many existed").action((keys: string[]) => context.run(async (client) => context.render(await client.delete(...keys))));
  addArithmeticCommands(program, context);
  addAppendCasMset(program, context);
}

function addAppendCasMset(program: Command, context: CommandContext): void {
  withTypeFlags(program.command("append <key> [value]").description("append to a string, bytes or list; prints the new length")).action(function (this: Command, key: string, text: string | undefined, flags: Flags) {
    const value = typedValue(this, text, flags);
    return context.run(async (client) => context.render(await client.append(key, value)));
  });
  withTypeFlags(program.command("cas <key> [values...]").description("write <new> only if the value equals <expected>: cas key expected new (or cas key --absent new)"))
    .option("--absent", "expect the key to be absent (then only <new> is given)")
    .option("--ttl <seconds>", "expire after this many seconds", seconds)
    .action(function (this: Command, key: string, texts: string[], flags: TtlFlags) {
      const { expected, newValue } = casValues(this, texts, flags);
      return context.run(async (client) => context.render(await client.cas(key, expected, newValue, defined("ttl", flags.ttl))));
    });
  withTypeFlags(program.command("mset <pairs...>").description("write key=value pairs in one atomic entry (type flags apply to every value)"))
    .option("--ttl <seconds>", "expire after this many seconds", seconds)
    .action(function (this: Command, pairs: string[], flags: TtlFlags) {
      const entries = pairs.map((pair) => splitPair(this, pair)).map(([key, text]): [string, JsValue] => [key, typedValue(this, text, flags)]);
      return context.run(async (client) => context.render(await client.mset(entries, defined("ttl", flags.ttl))));
    });
}

function addArithmeticCommands(program: Command, context: CommandContext): void {
  for (const name of ["incr", "decr"] as const) {
    program
      .command(`${name} <key> [delta]`)
      .description(`${name === "incr" ? "add" : "subtract"} an integer (default 1); prints the new value`)
      .action((key: string, delta: string | undefined) => {
        const amount = delta === undefined ? 1n : parseInteger(delta);
        return context.run(async (client) => context.render(await client[name](key, amount)));
      });
  }
  program.command("incrfloat <key> <delta>").description("add to a float").action((key: string, delta: string) => {
    const amount = parseFloatText(delta);
    return context.run(async (client) => renderValue(await client.incrFloat(key, amount), context.mode));
  });
  program.command("incrdecimal <key> <delta>").description("add to a decimal, exactly").action((key: string, delta: string) => {
    const amount = parseDecimal(delta);
    return context.run(async (client) => renderValue(await client.incrDecimal(key, amount), context.mode));
  });
}

function addPatternCommands(program: Command, context: CommandContext): void {
  const separatorOption = ["--separator <char>", "hierarchical keys: * and ? stop at it, ** crosses it"] as const;
  program
    .command("keys [pattern]")
    .description("matching keys, sorted")
    .option(...separatorOption)
    .action((pattern: string | undefined, flags: { separator?: string }) => context.run(async (client) => context.render(await client.keys(pattern ?? "*", defined("separator", flags.separator)))));
  program
    .command("scan")
    .description("one page of keys; pass the printed cursor to continue (0 = done)")
    .option("--match <pattern>", "glob pattern")
    .option("--count <keys>", "keys per page (a hint)", positiveInteger)
    .option("--cursor <cursor>", "where to continue", "0")
    .option(...separatorOption)
    .action((flags: { match?: string; count?: number; cursor: string; separator?: string }) =>
      context.run(async (client) => scanOutput(await client.scan({ cursor: flags.cursor, ...defined("match", flags.match), ...defined("count", flags.count), ...defined("separator", flags.separator) }), context)),
    );
  program
    .command("count [pattern]")
    .description("number of live keys matching")
    .option(...separatorOption)
    .action((pattern: string | undefined, flags: { separator?: string }) => context.run(async (client) => context.render(await client.count(pattern ?? "*", defined("separator", flags.separator)))));
  program
    .command("getpattern <pattern>")
    .description("keys and values matching")
    .option(...separatorOption)
    .action((pattern: string, flags: { separator?: string }) => context.run(async (client) => renderValues(await client.getPattern(pattern, defined("separator", flags.separator)), context.mode)));
  program
    .command("delpattern <pattern>")
    .description("delete the matching keys in one atomic entry; prints how many")
    .option(...separatorOption)
    .action((pattern: string, flags: { separator?: string }) => context.run(async (client) => context.render(await client.deletePattern(pattern, defined("separator", flags.separator)))));
}

/** Plain mode: the cursor first, then the keys, as redis-cli prints SCAN. */
function scanOutput(page: { cursor: string; keys: string[] }, context: CommandContext): string {
  return context.mode === "plain" ? [page.cursor, ...page.keys].join("\n") : context.render(page);
}

function addTtlCommands(program: Command, context: CommandContext): void {
  program.command("ttl <key>").description("remaining seconds; null without TTL; -1 when missing").action((key: string) => context.run(async (client) => context.render(await client.ttl(key))));
  program
    .command("expire")
    .description("set a TTL; prints whether the key existed")
    .argument("<key>")
    .argument("<seconds>", "", seconds)
    .action((key: string, ttl: number) => context.run(async (client) => context.render(await client.expire(key, ttl))));
  program.command("persist <key>").description("remove the TTL; prints whether one was removed").action((key: string) => context.run(async (client) => context.render(await client.persist(key))));
  program.command("delete-expired").description("purge expired keys now; prints how many").action(() => context.run(async (client) => context.render(await client.deleteExpired())));
}

function addLockCommands(program: Command, context: CommandContext): void {
  program
    .command("lock")
    .description("take a lock for ttl seconds; prints acquired and the fencing token")
    .argument("<name>")
    .argument("<owner>")
    .argument("<ttl>", "seconds", seconds)
    .action((name: string, owner: string, ttl: number) => context.run(async (client) => lockOutput(await client.lock(name, owner, ttl), context)));
  program.command("unlock <name> <owner>").description("release a lock held by owner").action((name: string, owner: string) => context.run(async (client) => context.render(await client.unlock(name, owner))));
  program
    .command("extend")
    .description("extend a lock held by owner")
    .argument("<name>")
    .argument("<owner>")
    .argument("<ttl>", "seconds", seconds)
    .action((name: string, owner: string, ttl: number) => context.run(async (client) => context.render(await client.extend(name, owner, ttl))));
}

/** Plain mode: `acquired <token>` or `not acquired`. */
function lockOutput(result: { acquired: boolean; token: bigint | null }, context: CommandContext): string {
  if (context.mode !== "plain") return context.render(result);
  return result.acquired ? `acquired ${String(result.token)}` : "not acquired";
}

function withTypeFlags(command: Command): Command {
  for (const { flag, help } of INPUT_TYPE_FLAGS) command.option(flag, help);
  return command;
}

/** The one type flag given (string when none); two at once is a usage error. */
export function inputTypeOf(flags: Flags): InputType | "conflict" {
  const chosen = INPUT_TYPE_FLAGS.filter(({ flag }) => flags[camelCase(flag)] === true).map(({ type }) => type);
  if (chosen.length > 1) return "conflict";
  return chosen[0] ?? "string";
}

function typedValue(command: Command, text: string | undefined, flags: Flags): JsValue {
  const type = inputTypeOf(flags);
  if (type === "conflict") usageError(command, "give at most one type flag");
  if (text === undefined && type !== "null") usageError(command, "missing value argument");
  return parseTypedValue(text, type);
}

function casValues(command: Command, texts: readonly string[], flags: Flags): { expected: JsValue | null; newValue: JsValue } {
  if (inputTypeOf(flags) === "null") usageError(command, "cas takes no --null; --absent expects an absent key");
  const absent = flags["absent"] === true;
  const wanted = absent ? 1 : 2;
  if (texts.length !== wanted) usageError(command, absent ? "cas --absent takes one value: <new>" : "cas takes two values: <expected> <new>");
  const newValue = typedValue(command, texts[wanted - 1], flags);
  return { expected: absent ? null : typedValue(command, texts[0], flags), newValue };
}

/** `key=value`; the first `=` splits, so values may contain more. */
export function splitPair(command: Command, pair: string): [string, string] {
  const split = pair.indexOf("=");
  if (split <= 0) usageError(command, `"${pair}" is not key=value`);
  return [pair.slice(0, split), pair.slice(split + 1)];
}

function metadataOf(json: string): Map<string, JsValue> {
  const value = parseTypedValue(json, "json");
  if (!(value instanceof Map)) throw new KvValueError("metadata must be a JSON object");
  return value;
}

/** `lock:token`; the last colon splits, so a lock name may contain colons. */
function fenceOf(command: Command, text: string): { lock: string; token: bigint } {
  const split = text.lastIndexOf(":");
  const token = text.slice(split + 1);
  if (split <= 0 || !/^\d+$/.test(token)) usageError(command, `--fence "${text}" is not lock:token`);
  return { lock: text.slice(0, split), token: BigInt(token) };
}

function camelCase(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** `{ [name]: value }` or nothing (exactOptionalPropertyTypes). */
function defined<Name extends string, T>(name: Name, value: T | undefined): { [K in Name]?: T } {
  return (value === undefined ? {} : { [name]: value }) as { [K in Name]?: T };
}
