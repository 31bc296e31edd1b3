import DecimalModule from "decimal.js";
import type { Decimal as DecimalInstance } from "decimal.js";

/**
 * decimal.js declares its types as an ES module but ships as CommonJS plus an `.mjs` file, so
 * under NodeNext a default import is typed as the whole module while at run time it is the
 * class. Import Decimal from here, where the value and the type agree.
 */
export const Decimal = DecimalModule as unknown as typeof DecimalInstance;
export type Decimal = DecimalInstance;

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

