import { createHash, randomBytes } from "node:crypto";
import { open, readdir, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { KvError } from "../errors.js";
import type { NodeId } from "../raft/types.js";

/**
 * Who this data directory belongs to (etcd binds a member ID and a cluster ID to its data
 * directory for the same reason). A node that lost its disk must never pass itself off as the
 * member it used to be: that member may have voted and acknowledged entries that are gone now.
 *
 * - `name` is the operator's name for the node (`--id`, or its `--bind` address);
 * - `incarnation` is drawn once, when the directory is first initialised: a wiped directory
 *   gets a new one, so the cluster can tell a re-provisioned node from the one it replaced;
 * - `memberId` is the node's Raft id. Founding members use their name; any other incarnation
 *   (a node that joined, or came back with an empty disk) uses `name~incarnation`, so it is a
 *   new member to Raft and never inherits the votes or acknowledgements of an earlier one;
 * - `cluster` is the id of the cluster, derived from its founders' incarnations, and
 *   `founders` those incarnations, so a founding member that starts late can prove it was
 *   counted at the founding.
 * A directory in state `new` belongs to no cluster yet: the node is still finding out whether
 * to found one or to join the one its peers form.
 */
export type NodeIdentity =
  | {
      readonly state: "new";
      readonly name: string;
      readonly incarnation: string;
    }
  | {
      readonly state: "member";
      readonly name: string;
      readonly incarnation: string;
      readonly memberId: NodeId;
      /** null for a directory written before identities existed (or restored from a snapshot). */
      readonly cluster: string | null;
      readonly founders: Readonly<Record<string, string>> | null;
    };

export type MemberIdentity = Extract<NodeIdentity, { state: "member" }>;

const IDENTITY_FILE = "identity.json";
const IDENTITY_FORMAT = 1;
const INCARNATION_BYTES = 4;
/** Separates a member's name from its incarnation in its Raft id. */
export const INCARNATION_SEPARATOR = "~";

/** The operator's name of a Raft member: its id without the incarnation suffix. */
export function memberName(memberId: NodeId): string {
  const separator = memberId.indexOf(INCARNATION_SEPARATOR);
  return separator === -1 ? memberId : memberId.slice(0, separator);
}

export function newIncarnation(): string {
  return randomBytes(INCARNATION_BYTES).toString("hex");
}

/** The Raft id of an incarnation that did not found the cluster. */
export function incarnationMemberId(name: string, incarnation: string): NodeId {
  return `${name}${INCARNATION_SEPARATOR}${incarnation}`;
}

/**
 * A cluster's id is a digest of its founders' names and incarnations: every founder computes
 * the same one from the same founding set, without a round of agreement, and a founding set
 * that differs in any member's incarnation (a wiped founder) gives another id.
 */
export function clusterIdOf(founders: Readonly<Record<string, string>>): string {
  const canonical = JSON.stringify(Object.entries(founders).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)));
  const hex = createHash("sha256").update(canonical).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function foundingIdentity(identity: NodeIdentity, founders: Readonly<Record<string, string>>): MemberIdentity {
  return { state: "member", name: identity.name, incarnation: identity.incarnation, memberId: identity.name, cluster: clusterIdOf(founders), founders };
}

export function joiningIdentity(identity: NodeIdentity, cluster: string | null, founders: Readonly<Record<string, string>> | null): MemberIdentity {
  const memberId = incarnationMemberId(identity.name, identity.incarnation);
  return { state: "member", name: identity.name, incarnation: identity.incarnation, memberId, cluster, founders };
}

/**
 * Reads the directory's identity, or creates one: `new` for an empty directory, and for a
 * directory that holds a log or snapshots from before identities existed, a member under its
 * name (it keeps the id it always had).
 */
export async function loadIdentity(dataDirectory: string, name: string): Promise<NodeIdentity> {
  const stored = await readIdentity(dataDirectory);
  if (stored !== null) {
    if (stored.name !== name) {
      throw new KvError("INVALID", `data directory ${dataDirectory} belongs to node "${stored.name}", not "${name}" (check --id/--bind, or use another --data-dir)`);
    }
    return stored;
  }
  const incarnation = newIncarnation();
  const identity: NodeIdentity = (await holdsData(dataDirectory))
    ? { state: "member", name, incarnation, memberId: name, cluster: null, founders: null }
    : { state: "new", name, incarnation };
  await saveIdentity(dataDirectory, identity);
  return identity;
}

async function holdsData(dataDirectory: string): Promise<boolean> {
  const entries = await readdir(dataDirectory).catch(() => []);
  return entries.some((entry) => entry === "log" || entry === "snapshots");
}

async function readIdentity(dataDirectory: string): Promise<NodeIdentity | null> {
  const path = join(dataDirectory, IDENTITY_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  return parseIdentity(text, path);
}

export function parseIdentity(text: string, path: string): NodeIdentity {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KvError("CORRUPT", `${path} is not valid JSON`);
  }
  const record = parsed as Record<string, unknown>;
  const isString = (value: unknown): value is string => typeof value === "string" && value.length > 0;
  if (record["format"] !== IDENTITY_FORMAT || !isString(record["name"]) || !isString(record["incarnation"])) {
    throw new KvError("CORRUPT", `${path} is not an identity record of format ${IDENTITY_FORMAT}`);
  }
  const name = record["name"];
  const incarnation = record["incarnation"];
  if (record["state"] === "new") return { state: "new", name, incarnation };
  const cluster = record["cluster"] ?? null;
  const founders = record["founders"] ?? null;
  if (record["state"] !== "member" || !isString(record["memberId"]) || (cluster !== null && !isString(cluster)) || !isFounders(founders)) {
    throw new KvError("CORRUPT", `${path} holds an unknown identity state`);
  }
  return { state: "member", name, incarnation, memberId: record["memberId"], cluster, founders };
}

function isFounders(value: unknown): value is Record<string, string> | null {
  if (value === null) return true;
  if (typeof value !== "object" || Array.isArray(value)) return false;
  return Object.values(value as Record<string, unknown>).every((incarnation) => typeof incarnation === "string");
}

/** Written to a temporary file, fsynced and renamed, so a crash leaves the old or the new record. */
export async function saveIdentity(dataDirectory: string, identity: NodeIdentity): Promise<void> {
  const path = join(dataDirectory, IDENTITY_FILE);
  const temporary = `${path}.tmp`;
  const file = await open(temporary, "w");
  try {
    await file.writeFile(`${JSON.stringify({ format: IDENTITY_FORMAT, ...identity }, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const directory = await open(dataDirectory, "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
