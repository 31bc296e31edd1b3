import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KvError } from "../../src/errors.js";
import { encode } from "../../src/engine/codec.js";
import {
  acceptProof,
  answerHello,
  decodeAnnouncement,
  dialPeer,
  encodeAnnouncement,
  loadCredentials,
  parseSecrets,
  type PeerAnnouncement,
  type PeerCredentials,
} from "../../src/server/peer-auth.js";
import { PROTOCOL_VERSION } from "../../src/server/protocol/commands.js";
import { PayloadFields } from "../../src/server/protocol/payload.js";
import { serveConnection } from "../../src/server/connection.js";
import { COMMAND } from "../../src/server/protocol/commands.js";
import { EMPTY_PAYLOAD, STATUS } from "../../src/server/protocol/status.js";

const SECRET = "correct horse battery staple 0123456789";
const secret = (text: string): PeerCredentials => ({ mode: "secret", secrets: parseSecrets(text) });

function announcement(name: string, memberId: string | null = name): PeerAnnouncement {
  return { name, memberId, incarnation: "0a0b0c0d", cluster: "c-1", founders: { n1: "0a0b0c0d" }, address: "127.0.0.1:1", bootId: "b1" };
}

function listener(credentials: PeerCredentials, name = "n1") {
  return { clusterId: "kv", credentials, announcement: () => announcement(name) };
}

describe("peer admission handshake", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /** A listener on loopback that answers the two handshake steps and records who it admitted. */
  async function listen(credentials: PeerCredentials): Promise<{ port: number; admitted: PeerAnnouncement[] }> {
    const admitted: PeerAnnouncement[] = [];
    const side = listener(credentials);
    const pending = new Map<number, ReturnType<typeof answerHello>["pending"]>();
    const server = createServer((socket) =>
      serveConnection(socket, async (request, info) => {
        if (request.command === COMMAND.handshake) {
          const { reply, pending: half } = answerHello(side, request.payload);
          pending.set(info.id, half);
          return { status: STATUS.OK, payload: reply };
        }
        const half = pending.get(info.id);
        if (half === undefined) throw new KvError("INVALID", "no hello");
        admitted.push(acceptProof(side, half, request.payload));
        return { status: STATUS.OK, payload: EMPTY_PAYLOAD };
      }),
    );
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    return { port: address.port, admitted };
  }

  it("admits a dialer that holds the secret and binds the link to its announcement", async () => {
    const { port, admitted } = await listen(secret(SECRET));
    const { connection, announcement: heard } = await dialPeer(`127.0.0.1:${port}`, {
      clusterId: "kv",
      credentials: secret(SECRET),
      announcement: announcement("n2"),
      connectTimeoutMs: 2000,
    });
    connection.close();
    expect(heard.memberId).toBe("n1");
    expect(admitted.map((peer) => peer.memberId)).toEqual(["n2"]);
  });

  it("refuses a dialer with a wrong secret, and a dialer refuses a listener with a wrong secret", async () => {
    const { port, admitted } = await listen(secret(SECRET));
    const dial = (credentials: PeerCredentials): Promise<unknown> =>
      dialPeer(`127.0.0.1:${port}`, { clusterId: "kv", credentials, announcement: announcement("n2"), connectTimeoutMs: 2000 });
    // The listener proves first, so the dialer with another secret stops before proving anything.
    await expect(dial(secret("another secret that is long enough"))).rejects.toThrow(/failed to prove/);
    await expect(dial({ mode: "insecure" })).rejects.toThrow(/failed to prove/);
    expect(admitted).toEqual([]);
  });

  it("accepts every listed secret during a rotation and proves with the first", async () => {
    // Mid-rotation: this listener already proves with the new secret, the dialer still with the old one.
    const newSecret = "new secret of the cluster 42";
    const { port, admitted } = await listen(secret(`${newSecret}\n${SECRET}`));
    const { connection } = await dialPeer(`127.0.0.1:${port}`, { clusterId: "kv", credentials: secret(`${SECRET}\n${newSecret}`), announcement: announcement("n3"), connectTimeoutMs: 2000 });
    connection.close();
    expect(admitted.map((peer) => peer.memberId)).toEqual(["n3"]);
  });

  it("refuses another cluster name, another protocol version, and any hello when running alone", () => {
    const hello = (clusterId: string, protocolVersion: number): Uint8Array => encode({ clusterId, protocolVersion, challenge: new Uint8Array(32) });
    expect(() => answerHello(listener(secret(SECRET)), hello("other", PROTOCOL_VERSION))).toThrow(/cluster/);
    expect(() => answerHello(listener(secret(SECRET)), hello("kv", PROTOCOL_VERSION + 1))).toThrow(/protocol/);
    expect(() => answerHello(listener({ mode: "refuseAll" }), hello("kv", PROTOCOL_VERSION))).toThrow(/accepts no peers/);
  });

  it("refuses a forged proof, a reflected listener proof and a tampered announcement", () => {
    const side = listener(secret(SECRET));
    const { reply, pending } = answerHello(side, encode({ clusterId: "kv", protocolVersion: PROTOCOL_VERSION, challenge: new Uint8Array(32).fill(7) }));
    const fields = PayloadFields.decode(reply);
    const forged = (proof: Uint8Array, announcementBytes: Uint8Array): Uint8Array => encode({ proof, announcement: announcementBytes });
    const mine = encodeAnnouncement(announcement("n2"));
    expect(() => acceptProof(side, pending, forged(new Uint8Array(32), mine))).toThrow(/failed to prove/);
    // The listener's own proof, sent back: the role label makes it worthless as a dialer's.
    expect(() => acceptProof(side, pending, forged(fields.bytes("proof"), fields.bytes("announcement")))).toThrow(/failed to prove/);
    expect(() => acceptProof(side, pending, encode({ announcement: mine }))).toThrow(KvError);
  });

  it("validates announcements as network input", () => {
    const good = announcement("n1");
    expect(decodeAnnouncement(encodeAnnouncement(good))).toEqual(good);
    expect(() => decodeAnnouncement(encode({ ...good, founders: null, name: "" }))).toThrow(KvError);
    expect(() => decodeAnnouncement(encode({ ...good, founders: null, name: "x".repeat(257) }))).toThrow(KvError);
    expect(() => decodeAnnouncement(encode(new Map<string, unknown>([["name", "n1"], ["incarnation", "1"], ["address", "a"], ["bootId", "b"], ["founders", new Map([["n1", 5]])]])))).toThrow(/founders/);
  });
});

describe("cluster secrets", () => {
  it("parses one secret a line, skips blanks and comments, refuses short secrets", () => {
    expect(parseSecrets("# rotated on monday\nfirst secret 0123456789\n\nsecond secret 0123456789\n").map((bytes) => Buffer.from(bytes).toString())).toEqual([
      "first secret 0123456789",
      "second secret 0123456789",
    ]);
    expect(() => parseSecrets("short")).toThrow(/at least 16 bytes/);
  });

  it("needs a secret for a cluster unless peers are insecure on purpose; a single node refuses peers", async () => {
    const environment = {};
    await expect(loadCredentials({ insecurePeers: false, clustered: true, environment })).rejects.toThrow(/needs a cluster secret/);
    expect((await loadCredentials({ insecurePeers: true, clustered: true, environment })).mode).toBe("insecure");
    expect((await loadCredentials({ insecurePeers: false, clustered: false, environment })).mode).toBe("refuseAll");
    expect((await loadCredentials({ insecurePeers: false, clustered: true, environment: { KV_CLUSTER_SECRET: SECRET } })).mode).toBe("secret");
    await expect(loadCredentials({ secretFile: "/nonexistent/secret", insecurePeers: false, clustered: true, environment })).rejects.toThrow(/cannot read/);
  });
});
