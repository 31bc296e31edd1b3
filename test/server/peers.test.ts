import { describe, expect, it } from "vitest";
import { findSelf, membershipOf, parseHostPort, parsePeers } from "../../src/server/peers.js";

describe("--peers parsing", () => {
  it("accepts host:port and name=host:port", () => {
    const peers = parsePeers("n1=127.0.0.1:7001, 127.0.0.1:7002,n3=localhost:7003");
    expect(peers).toEqual([
      { id: "n1", address: "127.0.0.1:7001" },
      { id: "127.0.0.1:7002", address: "127.0.0.1:7002" },
      { id: "n3", address: "localhost:7003" },
    ]);
    expect(membershipOf(peers)).toEqual({
      voters: ["n1", "127.0.0.1:7002", "n3"],
      learners: [],
      addresses: { n1: "127.0.0.1:7001", "127.0.0.1:7002": "127.0.0.1:7002", n3: "localhost:7003" },
    });
  });

  it("rejects bad addresses and duplicate names", () => {
    for (const list of ["n1=127.0.0.1", "n1=127.0.0.1:0", "n1=127.0.0.1:70000", "=127.0.0.1:1", "a=1.1.1.1:1,a=1.1.1.1:2"]) {
      expect(() => parsePeers(list), list).toThrow(expect.objectContaining({ code: "INVALID" }));
    }
  });

  it("finds this node by --id or by --bind", () => {
    const peers = parsePeers("n1=127.0.0.1:7001,n2=127.0.0.1:7002");
    expect(findSelf(peers, "127.0.0.1:7002", undefined).id).toBe("n2");
    expect(findSelf(peers, "0.0.0.0:7001", "n1").id).toBe("n1");
    expect(() => findSelf(peers, "127.0.0.1:9999", undefined)).toThrow(/not one of --peers/);
  });

  it("parses IPv6 host:port", () => {
    expect(parseHostPort("[::1]:6380")).toEqual({ host: "::1", port: 6380 });
  });
});
