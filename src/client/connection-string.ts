import { validateNamespace } from "../engine/commands.js";
import { parseHostPort } from "../server/peers.js";
import { KvProtocolError } from "./errors.js";

/** Port of an address given without one, the port `kv-node` listens on by default. */
export const DEFAULT_PORT = 6380;
const SCHEME = "kv://";

export interface ConnectionTarget {
  /** Seed addresses as `host:port`, in the order given, without duplicates. */
  readonly seeds: readonly string[];
  /** "" is the default namespace. */
  readonly namespace: string;
}

/**
 * Parses `kv://host:port[,host:port…][/namespace]`, or the same without the scheme
 * (`127.0.0.1:6380`, `a:7001,b:7002`). A host without a port gets DEFAULT_PORT. The namespace is
 * percent-decoded and must follow the key rules. A malformed string is INVALID.
 */
export function parseConnectionString(connection: string): ConnectionTarget {
  const text = connection.trim();
  const rest = text.toLowerCase().startsWith(SCHEME) ? text.slice(SCHEME.length) : text;
  const slash = rest.indexOf("/");
  const hosts = slash === -1 ? rest : rest.slice(0, slash);
  const namespace = slash === -1 ? "" : decodeNamespace(rest.slice(slash + 1));
  const seeds = [...new Set(hosts.split(",").map((address) => normalizeAddress(address, connection)))];
  return { seeds, namespace };
}

function normalizeAddress(address: string, connection: string): string {
  const trimmed = address.trim();
  if (trimmed.length === 0) throw new KvProtocolError(`connection string "${connection}" has an empty address`);
  const withPort = /:\d+$/.test(trimmed) ? trimmed : `${trimmed}:${DEFAULT_PORT}`;
  const { host, port } = parseHostPort(withPort);
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

function decodeNamespace(encoded: string): string {
  let namespace: string;
  try {
    namespace = decodeURIComponent(encoded);
  } catch {
    throw new KvProtocolError(`namespace "${encoded}" is not valid percent-encoding`);
  }
  return validateNamespace(namespace);
}
