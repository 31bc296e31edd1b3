import { describe, expect, it } from "vitest";
import type { PeerAnnouncement } from "../../src/server/peer-auth.js";
import { PeerDirectory } from "../../src/server/peer-directory.js";

function announcement(memberId: string, incarnation: string): PeerAnnouncement {
  const name = memberId.split("~")[0] ?? memberId;
  return { name, memberId, incarnation, cluster: "c", founders: null, address: "127.0.0.1:1", bootId: `boot-${incarnation}` };
}

describe("PeerDirectory", () => {
  it("counts a connected node as reachable until its link closes", () => {
    const directory = new PeerDirectory();
    directory.linkOpened(7, announcement("n2", "a"));
    expect(directory.reachablePeers(0).map((peer) => peer.memberId)).toEqual(["n2"]);
    directory.linkClosed(7);
    expect(directory.reachablePeers(0)).toEqual([]);
  });

  it("keeps a node sighted on a refused dial reachable for a few seconds, then forgets it", () => {
    const directory = new PeerDirectory();
    directory.sighted(announcement("n2~1a2b3c4d", "1a2b3c4d"), 1000);
    expect(directory.reachableMemberIdOf("n2", 3000)).toBe("n2~1a2b3c4d");
    expect(directory.reachablePeers(60_000)).toEqual([]);
    expect(directory.reachableMemberIdOf("n2", 60_000)).toBeNull();
  });

  it("names no id when two incarnations of one name are reachable", () => {
    const directory = new PeerDirectory();
    directory.linkOpened(1, announcement("n2~aaaaaaaa", "aaaaaaaa"));
    directory.sighted(announcement("n2~bbbbbbbb", "bbbbbbbb"), 0);
    expect(directory.reachablePeers(0)).toHaveLength(2);
    expect(directory.reachableMemberIdOf("n2", 0)).toBeNull();
  });
});
