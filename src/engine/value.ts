import Decimal from "decimal.js";

/**
 * A stored value. Inside the engine and on the wire every type is unambiguous:
 * Int is always a `bigint` (signed 64-bit), Float is always a `number`, Map is always a
 * `Map` with string keys. The client converts from and to friendlier JS shapes at the edge.
 */
export type Value =
  | null
  | boolean
  | bigint
  | number
  | Decimal
  | string
  | Uint8Array
  | readonly Value[]
  | ValueMap;

export type ValueMap = ReadonlyMap<string, Value>;

export type ValueType =
  | "null"
  | "bool"
  | "int"
  | "float"
  | "decimal"
  | "string"
  | "bytes"
  | "list"
  | "map";

export { Decimal };
