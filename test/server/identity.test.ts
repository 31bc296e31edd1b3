import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { decideIdentity, discoverIdentity } from "../../src/server/discovery.js";
import { clusterIdOf, loadIdentity, memberName, parseIdentity, saveIdentity, type NodeIdentity } from "../../src/server/identity.js";
import type { PeerAnnouncement } from "../../src/server/peer-auth.js";

const directories: string[] = [];
afterEach(async () => {
  await Promise.all(directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })));
});

async function directory(): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), "kv-identity-"));
  directories.push(path);
  return path;
}

const fresh = (name: string, incarnation: string): Extract<NodeIdentity, { state: "new" }> => ({ state: "new", name, incarnation });
const peers = [
  { id: "n2", address: "127.0.0.1:2" },
  { id: "n3", address: "127.0.0.1:3" },
];

function heardNew(name: string, incarnation: string): PeerAnnouncement {
  return { name, memberId: null, incarnation, cluster: null, founders: null, address: "a", bootId: "b" };
}

function heardMember(name: string, memberId: string, founders: Record<string, string>): PeerAnnouncement {
  return { name, memberId, incarnation: founders[name] ?? "ffffffff", cluster: clusterIdOf(founders), founders, address: "a", bootId: "b" };
}

describe("node identity on disk", () => {
  it("an empty directory is new; the record survives a reload; another name is refused", async () => {
    const path = await directory();
    const identity = await loadIdentity(path, "n1");
    expect(identity.state).toBe("new");
    expect(await loadIdentity(path, "n1")).toEqual(identity);
    await expect(loadIdentity(path, "n2")).rejects.toThrow(/belongs to node "n1"/);
  });

  it("a directory with a log from before identities is a member under its name", async () => {
    const path = await directory();
    await mkdir(join(path, "log"));
    expect(await loadIdentity(path, "n1")).toMatchObject({ state: "member", memberId: "n1", cluster: null });
  });

  it("a damaged record is refused, not replaced", async () => {
    const path = await directory();
    await writeFile(join(path, "identity.json"), "{ not json");
    await expect(loadIdentity(path, "n1")).rejects.toThrow(/not valid JSON/);
    expect(() => parseIdentity(JSON.stringify({ format: 1, name: "n1", incarnation: "1", state: "other" }), "x")).toThrow(/unknown identity state/);
  });

  it("saves atomically and reads back", async () => {
    const path = await directory();
    const identity: NodeIdentity = { state: "member", name: "n2", incarnation: "abcd0123", memberId: "n2~abcd0123", cluster: "c", founders: { n1: "1" } };
    await saveIdentity(path, identity);
    expect(parseIdentity(await readFile(join(path, "identity.json"), "utf8"), "x")).toEqual(identity);
    expect(memberName(identity.memberId)).toBe("n2");
  });
});

describe("deciding what an empty node is", () => {
  it("founds once every founding peer answered as new; all founders compute one cluster id", () => {
    const heard = new Map([["n2", heardNew("n2", "22")], ["n3", heardNew("n3", "33")]]);
    const one = decideIdentity(fresh("n1", "11"), peers, heard, false);
    expect(one).toMatchObject({ memberId: "n1", founders: { n1: "11", n2: "22", n3: "33" } });
    const two = decideIdentity(fresh("n2", "22"), [{ id: "n1", address: "" }, peers[1]!], new Map([["n1", heardNew("n1", "11")], ["n3", heardNew("n3", "33")]]), false);
    expect(two?.cluster).toBe(one?.cluster);
  });

  it("waits while a founding peer is silent: a node that lost its disk alone cannot found", () => {
    expect(decideIdentity(fresh("n1", "11"), peers, new Map([["n2", heardNew("n2", "22")]]), false)).toBeNull();
    expect(decideIdentity(fresh("n1", "11"), peers, new Map(), false)).toBeNull();
  });

  it("a founder counted at the founding takes its own name; any other incarnation joins under a new id", () => {
    const founders = { n1: "11", n2: "22", n3: "33" };
    const heard = new Map([["n2", heardMember("n2", "n2", founders)]]);
    expect(decideIdentity(fresh("n1", "11"), peers, heard, false)).toMatchObject({ memberId: "n1", cluster: clusterIdOf(founders) });
    // The same name with another incarnation: a wiped founder.
    expect(decideIdentity(fresh("n1", "99"), peers, heard, false)).toMatchObject({ memberId: "n1~99", cluster: clusterIdOf(founders) });
  });

  it("--join never founds", () => {
    const heard = new Map([["n2", heardNew("n2", "22")], ["n3", heardNew("n3", "33")]]);
    expect(decideIdentity(fresh("n1", "11"), peers, heard, true)).toBeNull();
  });

  it("discovery probes until it can decide", async () => {
    let calls = 0;
    const decided = await discoverIdentity({
      identity: fresh("n1", "11"),
      peers,
      join: false,
      logger: pino({ level: "silent" }),
      probe: async (address) => {
        calls++;
        if (calls < 4) throw new Error("connection refused");
        return address === "127.0.0.1:2" ? heardNew("n2", "22") : heardNew("n3", "33");
      },
    });
    expect(decided.memberId).toBe("n1");
    expect(calls).toBeGreaterThanOrEqual(4);
  });
});
