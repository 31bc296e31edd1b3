import { describe, expect, it } from "vitest";
import { KvError } from "../../src/errors.js";
import { decode, encode } from "../../src/engine/codec.js";
import { ClientConnection, nextFreeRequestId } from "../../src/client/connection.js";
import type { RequestHandler, ServerRequest, ServerResponse } from "../../src/server/connection.js";
import { COMMAND, PROTOCOL_VERSION } from "../../src/server/protocol/commands.js";
import { encodeFrame, type Frame } from "../../src/server/protocol/frame.js";
import { PayloadFields } from "../../src/server/protocol/payload.js";
import { decodeErrorPayload, STATUS } from "../../src/server/protocol/status.js";
import { deferred, fixtures, rawClient, startServer, waitFor, type TestServer } from "./helpers.js";

const echo: RequestHandler = async (request) => ({ status: STATUS.OK, payload: request.payload });

const { serve, client } = fixtures();

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

const codeOf = async (promise: Promise<unknown>): Promise<string> => {
  const error = await rejection(promise);
  return error instanceof KvError ? error.code : `not a KvError: ${String(error)}`;
};

const errorOf = (frame: Frame | undefined): string => (frame === undefined ? "no frame" : decodeErrorPayload(frame.payload).code);

describe("server and client connections over TCP", () => {
  it("completes 10,000 pipelined requests, each with its own answer", async () => {
    const server = await serve(echo);
    const connection = await client(server, { maxInFlight: 10_000 });
    const count = 10_000;
    const answers = await Promise.all(
      Array.from({ length: count }, (_, index) => connection.request(COMMAND.get, encode(BigInt(index)))),
    );
    expect(answers.map((answer) => decode(answer.payload))).toEqual(Array.from({ length: count }, (_, index) => BigInt(index)));
    expect(answers.every((answer) => answer.status === STATUS.OK)).toBe(true);
    expect(connection.inFlight).toBe(0);
  });

  it("lets answers complete out of order, matched by request id", async () => {
    const gate = deferred<void>();
    const server = await serve(async (request) => {
      if (decode(request.payload) === "slow") await gate.promise;
      return { status: STATUS.OK, payload: request.payload };
    });
    const connection = await client(server);
    const order: string[] = [];
    const slow = connection.request(COMMAND.get, encode("slow")).then((answer) => order.push(decode(answer.payload) as string));
    await connection.request(COMMAND.get, encode("fast")).then((answer) => order.push(decode(answer.payload) as string));
    gate.resolve();
    await slow;
    expect(order).toEqual(["fast", "slow"]);
  });

  it("never hands the handler more than maxInFlight requests at once", async () => {
    const maxInFlight = 8;
    let current = 0;
    let highest = 0;
    const server = await serve(
      async (request) => {
        current += 1;
        highest = Math.max(highest, current);
        await new Promise((resolve) => setImmediate(resolve));
        current -= 1;
        return { status: STATUS.OK, payload: request.payload };
      },
      { maxInFlight },
    );
    const connection = await client(server);
    const answers = await Promise.all(Array.from({ length: 2000 }, (_, index) => connection.request(COMMAND.get, encode(index))));
    expect(answers.map((answer) => decode(answer.payload))).toEqual(Array.from({ length: 2000 }, (_, index) => index));
    expect(highest).toBe(maxInFlight);
  });

  it("stops reading requests while a slow reader leaves answers in the write buffer", async () => {
    const answerBytes = 1024 * 1024;
    const requestCount = 200;
    const maxInFlight = 16;
    let handled = 0;
    const server = await serve(
      async () => {
        handled += 1;
        return { status: STATUS.OK, payload: new Uint8Array(answerBytes) };
      },
      { maxInFlight },
    );
    const raw = await rawClient(server.port);
    raw.socket.pause();
    const requests = Array.from({ length: requestCount }, (_, index) => encodeFrame(COMMAND.get, index, encode(null)));
    raw.socket.write(Buffer.concat(requests));
    const serverSocket = await waitForSocket(server);
    await waitFor(() => handled > 0 && serverSocket.writableNeedDrain && serverSocket.isPaused(), 10_000, "server to stop reading");
    expect(handled).toBeLessThan(requestCount);
    // Answers already computed may wait in the buffer; nothing more is read or computed.
    expect(serverSocket.writableLength).toBeLessThanOrEqual(maxInFlight * (answerBytes + 64));
    raw.socket.resume();
    await waitFor(() => raw.frames.length === requestCount, 20_000, "all answers");
    expect(raw.frames.map((frame) => frame.requestId)).toEqual(Array.from({ length: requestCount }, (_, index) => index));
    raw.socket.destroy();
  });

  it("answers a frame with an unknown command INVALID and closes only that connection", async () => {
    const server = await serve(echo);
    const bystander = await client(server);
    const raw = await rawClient(server.port);
    raw.socket.write(encodeFrame(0x7f, 5, encode(null)));
    await waitFor(raw.ended, 10_000, "server to close the broken connection");
    expect(raw.frames.map((frame) => [frame.kind, frame.requestId])).toEqual([[STATUS.INVALID, 5]]);
    expect(errorOf(raw.frames[0])).toBe("INVALID");
    expect(decode((await bystander.request(COMMAND.ping, encode("still here"))).payload)).toBe("still here");
  });

  it("destroys a broken connection whose client never reads the INVALID answer", async () => {
    const server = await serve(echo, { closeGraceMs: 50 });
    const raw = await rawClient(server.port);
    raw.socket.pause();
    raw.socket.write(encodeFrame(0x7f, 1, encode(null)));
    await waitFor(() => server.connections.length === 1, 10_000, "the server to accept");
    await server.connections[0]?.closed;
    expect(server.sockets[0]?.destroyed).toBe(true);
    raw.socket.destroy();
  });

  it("answers an oversized frame TOO_LARGE under INVALID, with its request id, and closes", async () => {
    const server = await serve(echo, { maxRequestBytes: 1024 });
    const bystander = await client(server);
    const raw = await rawClient(server.port);
    raw.socket.write(Uint8Array.of(COMMAND.set, 0, 0, 0, 9, 0x80, 0, 0, 0));
    await waitFor(raw.ended, 10_000, "server to close the oversized connection");
    expect(raw.frames.map((frame) => [frame.kind, frame.requestId])).toEqual([[STATUS.INVALID, 9]]);
    expect(errorOf(raw.frames[0])).toBe("TOO_LARGE");
    expect((await bystander.request(COMMAND.ping, encode(null))).status).toBe(STATUS.OK);
  });

  it("turns handler errors into typed answers: INVALID closes, others keep the connection", async () => {
    const server = await serve(async (request: ServerRequest): Promise<ServerResponse> => {
      const fields = PayloadFields.decode(request.payload);
      const kind = fields.string("throw");
      if (kind === "notLeader") throw new KvError("NOT_LEADER", "follower", { leader: "127.0.0.1:7002" });
      if (kind === "bug") throw new TypeError("undefined is not a function");
      if (kind === "null") return { status: STATUS.NULL, payload: encode(null) };
      return { status: 99 as typeof STATUS.OK, payload: encode(null) };
    });
    const connection = await client(server);
    const notLeader = await rejection(connection.request(COMMAND.get, encode({ throw: "notLeader" })));
    expect(notLeader).toBeInstanceOf(KvError);
    expect((notLeader as KvError).code).toBe("NOT_LEADER");
    expect((notLeader as KvError).details.leader).toBe("127.0.0.1:7002");
    expect(await codeOf(connection.request(COMMAND.get, encode({ throw: "bug" })))).toBe("INTERNAL");
    expect(await codeOf(connection.request(COMMAND.get, encode({ throw: "malformed status" })))).toBe("INTERNAL");
    expect((await connection.request(COMMAND.get, encode({ throw: "null" }))).status).toBe(STATUS.NULL);
    expect(connection.isOpen).toBe(true);
    expect(await codeOf(connection.request(COMMAND.get, encode({ nothing: 1 })))).toBe("INVALID");
    const reason = await connection.closed;
    expect(reason.code).toBe("CONNECTION");
    expect(connection.isOpen).toBe(false);
  });

  it("cleans up after a client that vanishes mid-request", async () => {
    const gate = deferred<void>();
    let started = 0;
    const server = await serve(async (request) => {
      started += 1;
      await gate.promise;
      return { status: STATUS.OK, payload: request.payload };
    });
    const raw = await rawClient(server.port);
    raw.socket.write(Buffer.concat([encodeFrame(COMMAND.get, 1, encode("a")), encodeFrame(COMMAND.get, 2, encode("b"))]));
    await waitFor(() => started === 2, 10_000, "both requests to reach the handler");
    raw.socket.destroy();
    const served = server.connections[0];
    expect(served).toBeDefined();
    await served?.closed;
    gate.resolve();
    await waitFor(() => served?.inFlight === 0, 10_000, "in-flight requests to finish");
    const connection = await client(server);
    expect(decode((await connection.request(COMMAND.get, encode("alive"))).payload)).toBe("alive");
  });
});

describe("client connection", () => {
  it("times out a request with TIMEOUT, drops the late answer and keeps working", async () => {
    const gate = deferred<void>();
    const server = await serve(async (request) => {
      if (decode(request.payload) === "stuck") await gate.promise;
      return { status: STATUS.OK, payload: request.payload };
    });
    const connection = await client(server);
    expect(await codeOf(connection.request(COMMAND.get, encode("stuck"), { timeoutMs: 20 }))).toBe("TIMEOUT");
    expect(connection.inFlight).toBe(0);
    gate.resolve();
    await waitFor(() => server.connections[0]?.inFlight === 0, 10_000, "the late answer to be sent");
    expect(decode((await connection.request(COMMAND.get, encode("next"), { timeoutMs: 10_000 })).payload)).toBe("next");
  });

  it("aborts a request with the signal's reason, before or after it is sent", async () => {
    const gate = deferred<void>();
    const server = await serve(async (request) => {
      await gate.promise;
      return { status: STATUS.OK, payload: request.payload };
    });
    const connection = await client(server);
    const controller = new AbortController();
    const pending = connection.request(COMMAND.get, encode(1), { signal: controller.signal });
    expect(connection.inFlight).toBe(1);
    const reason = new Error("caller gave up");
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(connection.inFlight).toBe(0);
    expect(await rejection(connection.request(COMMAND.get, encode(2), { signal: controller.signal }))).toBe(reason);
    gate.resolve();
  });

  it("holds frames while the socket wants 'drain', and never sends one aborted meanwhile", async () => {
    const seen: number[] = [];
    const server = await serve(async (request) => {
      const fields = PayloadFields.decode(request.payload);
      seen.push(fields.integer("index"));
      return { status: STATUS.OK, payload: encode(fields.bytes("data").length) };
    });
    const connection = await client(server);
    const data = new Uint8Array(1024 * 1024);
    const controller = new AbortController();
    const requests = Array.from({ length: 20 }, (_, index) =>
      connection.request(COMMAND.set, encode({ index, data }), index === 10 ? { signal: controller.signal } : {}),
    );
    controller.abort(new Error("not needed"));
    const outcomes = await Promise.allSettled(requests);
    expect(outcomes.map((outcome) => (outcome.status === "fulfilled" ? decode(outcome.value.payload) : "aborted"))).toEqual(
      Array.from({ length: 20 }, (_, index) => (index === 10 ? "aborted" : data.length)),
    );
    expect(seen).toEqual(Array.from({ length: 20 }, (_, index) => index).filter((index) => index !== 10));
  });

  it("fails with BUSY at once past its in-flight bound", async () => {
    const gate = deferred<void>();
    const server = await serve(async (request) => {
      await gate.promise;
      return { status: STATUS.OK, payload: request.payload };
    });
    const connection = await client(server, { maxInFlight: 4 });
    const held = Array.from({ length: 4 }, (_, index) => connection.request(COMMAND.get, encode(index)));
    expect(await codeOf(connection.request(COMMAND.get, encode(4)))).toBe("BUSY");
    gate.resolve();
    expect((await Promise.all(held)).map((answer) => decode(answer.payload))).toEqual([0, 1, 2, 3]);
    expect((await connection.request(COMMAND.get, encode(5))).status).toBe(STATUS.OK);
  });

  it("fails every pending request with CONNECTION when the server goes away", async () => {
    const server = await serve(() => new Promise<ServerResponse>(() => undefined));
    const connection = await client(server);
    const pending = [connection.request(COMMAND.get, encode(1)), connection.request(COMMAND.set, encode(2))];
    await waitFor(() => server.connections[0]?.inFlight === 2, 10_000, "requests to reach the server");
    server.connections[0]?.close();
    expect(await Promise.all(pending.map(codeOf))).toEqual(["CONNECTION", "CONNECTION"]);
    expect((await connection.closed).code).toBe("CONNECTION");
    expect(await codeOf(connection.request(COMMAND.ping, encode(null)))).toBe("CONNECTION");
  });

  it("fails to connect to a closed port with CONNECTION", async () => {
    const server = await startServer(echo);
    const port = server.port;
    await server.close();
    expect(await codeOf(ClientConnection.connect("127.0.0.1", port, { connectTimeoutMs: 5000 }))).toBe("CONNECTION");
  });

  it("allocates request ids in sequence, wrapping around and skipping ids in flight", () => {
    const inFlight = new Set([0, 1, 2 ** 32 - 1, 7]);
    expect(nextFreeRequestId(5, (id) => inFlight.has(id))).toBe(5);
    expect(nextFreeRequestId(7, (id) => inFlight.has(id))).toBe(8);
    expect(nextFreeRequestId(2 ** 32 - 1, (id) => inFlight.has(id))).toBe(2);
    expect(nextFreeRequestId(2 ** 32, (id) => inFlight.has(id))).toBe(2);
  });
});

describe("peer links", () => {
  const handshake = encode({ clusterId: "c1", protocolVersion: PROTOCOL_VERSION, challenge: new Uint8Array(32) });

  it("holds peer frames until the handshake is answered, then marks the connection as a peer", async () => {
    const gate = deferred<void>();
    const seen: { command: number; peer: boolean }[] = [];
    const server = await serve(async (request, connection) => {
      seen.push({ command: request.command, peer: connection.peer });
      if (request.command === COMMAND.handshake) await gate.promise;
      return { status: STATUS.OK, payload: encode(null) };
    });
    const raw = await rawClient(server.port);
    raw.socket.write(Buffer.concat([encodeFrame(COMMAND.handshake, 1, handshake), encodeFrame(COMMAND.raftMessages, 2, encode([]))]));
    await waitFor(() => seen.length === 1, 10_000, "the handshake");
    expect(server.connections[0]?.inFlight).toBe(1);
    gate.resolve();
    await waitFor(() => seen.length === 2, 10_000, "the Raft batch");
    expect(seen).toEqual([
      { command: COMMAND.handshake, peer: true },
      { command: COMMAND.raftMessages, peer: true },
    ]);
    // Raft batches travel one way: only the handshake is answered.
    expect(raw.frames.map((frame) => frame.requestId)).toEqual([1]);
    raw.socket.destroy();
  });

  it("a one-way frame is not sent once the bound of unsent bytes is reached, nor after close", async () => {
    const server = await serve(echo);
    const connection = await client(server, { maxUnsentNotificationBytes: 1024 * 1024 });
    (await waitForSocket(server)).pause();
    const payload = new Uint8Array(256 * 1024);
    let sent = 0;
    // The kernel's socket buffers take a few MiB before the client's own buffer grows.
    while (sent < 1000 && connection.notify(COMMAND.raftMessages, payload)) {
      sent++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sent).toBeLessThan(1000);
    connection.close();
    expect(connection.notify(COMMAND.raftMessages, new Uint8Array(1))).toBe(false);
  });

  it("answers a Raft batch only to refuse it, and then closes the link", async () => {
    const server = await serve(async (request) => {
      if (request.command === COMMAND.raftMessages && decode(request.payload) === "forged") throw new KvError("INVALID", "not from this link's member");
      return { status: STATUS.OK, payload: encode(null) };
    });
    const raw = await rawClient(server.port);
    raw.socket.write(Buffer.concat([encodeFrame(COMMAND.handshake, 1, handshake), encodeFrame(COMMAND.raftMessages, 0, encode([])), encodeFrame(COMMAND.raftMessages, 0, encode("forged"))]));
    await waitFor(raw.ended, 10_000, "the server to close the link");
    expect(raw.frames.map((frame) => [frame.requestId, frame.kind])).toEqual([
      [1, STATUS.OK],
      [0, STATUS.INVALID],
    ]);
    expect(decodeErrorPayload(raw.frames[1]?.payload ?? new Uint8Array()).message).toMatch(/not from this link's member/);
  });

  it("closes a link whose handshake is refused, or that mixes client and peer commands", async () => {
    const server = await serve(async (request) => {
      const payload = decode(request.payload);
      if (payload === "hold") return new Promise<ServerResponse>(() => undefined);
      if (payload === "refuse") return { status: STATUS.ERROR, payload: encode({ code: "INVALID", message: "no" }) };
      return { status: STATUS.OK, payload: encode(null) };
    });
    const scenarios = [
      [encodeFrame(COMMAND.handshake, 1, encode("refuse"))],
      [encodeFrame(COMMAND.handshake, 1, handshake), encodeFrame(COMMAND.get, 2, encode("k"))],
      [encodeFrame(COMMAND.get, 1, encode("hold")), encodeFrame(COMMAND.handshake, 2, handshake)],
      [encodeFrame(COMMAND.raftMessages, 1, encode([]))],
    ];
    const outcomes: number[][] = [];
    for (const frames of scenarios) {
      const raw = await rawClient(server.port);
      for (const frame of frames) raw.socket.write(frame);
      await waitFor(raw.ended, 10_000, "the server to close the link");
      outcomes.push(raw.frames.map((frame) => frame.kind));
    }
    // In the third, the get is still being served when the late handshake breaks the link.
    expect(outcomes).toEqual([[STATUS.ERROR], [STATUS.OK, STATUS.INVALID], [STATUS.INVALID], [STATUS.INVALID]]);
  });
});

async function waitForSocket(server: TestServer): Promise<NonNullable<TestServer["sockets"][number]>> {
  await waitFor(() => server.sockets.length > 0, 10_000, "the server to accept");
  const socket = server.sockets[0];
  if (socket === undefined) throw new Error("no server socket");
  return socket;
}
