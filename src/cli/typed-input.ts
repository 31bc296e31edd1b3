import { readFileSync } from "node:fs";
import { kv, type JsValue } from "../client/values.js";
import { KvValueError } from "../client/errors.js";
import { Decimal } from "../engine/value.js";
import { parseExactJson } from "./exact-json.js";

/** How `kv set` reads its value argument; "string" unless a type flag says otherwise. */
export type InputType = "string" | "int" | "float" | "decimal" | "bool" | "null" | "json" | "bytesFile" | "bytesHex";

/** The type flags of `kv set` (and cas, append), in the order they are listed in help. */
export const INPUT_TYPE_FLAGS: readonly { readonly flag: string; readonly type: InputType; readonly help: string }[] = [
  { flag: "--int", type: "int", help: "the value is a signed 64-bit integer" },
  { flag: "--float", type: "float", help: "the value is a float (also for integral numbers)" },
  { flag: "--decimal", type: "decimal", help: "the value is an exact decimal" },
  { flag: "--bool", type: "bool", help: "the value is true or false" },
  { flag: "--null", type: "null", help: "the value is null (no value argument)" },
  { flag: "--json", type: "json", help: "the value is JSON: integers become Int, other numbers Float, objects Map" },
  { flag: "--bytes", type: "bytesFile", help: "the value is the bytes of a file: --bytes @path" },
  { flag: "--bytes-hex", type: "bytesHex", help: "the value is bytes written in hex" },
];

const INTEGER_PATTERN = /^[+-]?\d+$/;
const FLOAT_WORDS: Readonly<Record<string, number>> = { nan: NaN, inf: Infinity, "+inf": Infinity, infinity: Infinity, "-inf": -Infinity, "-infinity": -Infinity };

/**
 * The value a command-line argument stands for under `type`. Range and limits are left to the
 * client's own validation (the same rules as the server's); what is checked here is only that
 * the text spells a value of the type at all.
 */
export function parseTypedValue(text: string | undefined, type: InputType): JsValue {
  if (type === "null") {
    if (text !== undefined) throw new KvValueError("--null takes no value argument");
    return null;
  }
  if (text === undefined) throw new KvValueError("a value argument is required");
  switch (type) {
    case "string":
      return text;
    case "int":
      return parseInteger(text);
    case "float":
      return kv.float(parseFloatText(text));
    case "decimal":
      return parseDecimal(text);
    case "bool":
      return parseBool(text);
    case "json":
      return parseExactJson(text);
    case "bytesFile":
      return readBytesFile(text);
    case "bytesHex":
      return parseHex(text);
  }
}

export function parseInteger(text: string): bigint {
  if (!INTEGER_PATTERN.test(text.trim())) throw new KvValueError(`"${text}" is not an integer`);
  return BigInt(text.trim());
}

export function parseFloatText(text: string): number {
  const word = FLOAT_WORDS[text.trim().toLowerCase()];
  if (word !== undefined) return word;
  const value = Number(text);
  if (text.trim() === "" || Number.isNaN(value)) throw new KvValueError(`"${text}" is not a number`);
  return value;
}

export function parseDecimal(text: string): Decimal {
  try {
    const value = new Decimal(text.trim());
    if (!value.isFinite()) throw new Error("not finite");
    return value;
  } catch {
    throw new KvValueError(`"${text}" is not a decimal number`);
  }
}

function parseBool(text: string): boolean {
  const lowered = text.trim().toLowerCase();
  if (lowered === "true") return true;
  if (lowered === "false") return false;
  throw new KvValueError(`"${text}" is not a boolean (true or false)`);
}

/** `@path`, like curl's `-d @file`: the @ keeps a file name from being taken for data. */
function readBytesFile(text: string): Uint8Array {
  if (!text.startsWith("@")) throw new KvValueError("--bytes takes @path (the file whose bytes are the value)");
  try {
    return new Uint8Array(readFileSync(text.slice(1)));
  } catch (error) {
    throw new KvValueError(`cannot read ${text.slice(1)}: ${(error as Error).message}`);
  }
}

export function parseHex(text: string): Uint8Array {
  const digits = text.trim().replace(/^0x/i, "");
  if (digits.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(digits)) throw new KvValueError(`"${text}" is not hex (an even number of 0-9a-f digits)`);
  return new Uint8Array(Buffer.from(digits, "hex"));
}
