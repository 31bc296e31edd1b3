import { createServer, Socket, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LinkProxy } from "../../jepsen-lite/proxy.js";

const HOST = "127.0.0.1";
const WAIT_DEADLINE_MS = 5000;

/** An echo server that counts the connections it accepted. */
interface EchoServer {
  readonly server: Server;
  readonly port: number;
  accepted: number;
}

async function startEcho(): Promise<EchoServer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, () => resolve()));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  const echo: EchoServer = { server, port: address.port, accepted: 0 };
  server.on("connection", (socket) => {
    echo.accepted += 1;
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  return echo;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ echo: EchoServer; proxy: LinkProxy }> {
  const echo = await startEcho();
  const proxy = await LinkProxy.start(echo.port);
  cleanups.push(async () => {
    await proxy.close();
    await new Promise((resolve) => echo.server.close(resolve));
  });
  return { echo, proxy };
}

/** What happened to a connection: the bytes it got back, or how it ended. */
function connect(port: number): { socket: Socket; received: () => string; closed: Promise<void>; opened: Promise<void> } {
  const socket = new Socket();
  let data = "";
  socket.on("error", () => undefined);
  socket.on("data", (chunk: Buffer) => (data += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const opened = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.connect(port, HOST);
  cleanups.push(async () => void socket.destroy());
  return { socket, received: () => data, closed, opened };
}

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function roundTrip(port: number, text: string): Promise<string> {
  const connection = connect(port);
  await connection.opened;
  connection.socket.write(text);
  await waitFor(() => connection.received().length >= text.length);
  connection.socket.destroy();
  return connection.received();
}

describe("LinkProxy on loopback", () => {
  it("passes bytes both ways", async () => {
    const { proxy } = await setup();
    expect(await roundTrip(proxy.port, "hello through the proxy")).toBe("hello through the proxy");
  });

  it("refuse: new connections are reset and never reach the target; restore lets them through again", async () => {
    const { echo, proxy } = await setup();
    proxy.setMode("refuse");
    const refused = connect(proxy.port);
    refused.socket.write("lost");
    await refused.closed;
    expect(refused.received()).toBe("");
    expect(echo.accepted).toBe(0);
    proxy.restore();
    expect(await roundTrip(proxy.port, "back")).toBe("back");
    expect(echo.accepted).toBe(1);
  });

  it("drop: the connection stays open but nothing is delivered; the cut closes open connections", async () => {
    const { echo, proxy } = await setup();
    const before = connect(proxy.port);
    await before.opened;
    await waitFor(() => echo.accepted === 1);
    proxy.setMode("drop");
    await before.closed; // a stream cut mid-frame must never resume
    const dropped = connect(proxy.port);
    await dropped.opened;
    dropped.socket.write("into the void");
    await waitFor(() => proxy.openConnections === 1);
    expect(dropped.socket.destroyed).toBe(false);
    expect(echo.accepted).toBe(1); // the black hole never dials the target
    proxy.restore();
    await dropped.closed;
    expect(dropped.received()).toBe("");
    expect(await roundTrip(proxy.port, "healed")).toBe("healed");
  });

  it("one way: cutting a->b leaves b->a untouched", async () => {
    const { proxy: forward } = await setup();
    const { proxy: backward } = await setup();
    forward.setMode("refuse");
    const cut = connect(forward.port);
    await cut.closed;
    expect(cut.received()).toBe("");
    expect(await roundTrip(backward.port, "still flows")).toBe("still flows");
  });

  it("delay: a round trip takes at least twice the delay, and the order of bytes is kept", async () => {
    const { proxy } = await setup();
    const delayMs = 120;
    proxy.setDelay(delayMs);
    const text = Array.from({ length: 50 }, (_, index) => `<${index}>`).join("");
    const connection = connect(proxy.port);
    await connection.opened;
    const started = performance.now();
    for (let index = 0; index < text.length; index += 7) connection.socket.write(text.slice(index, index + 7));
    await waitFor(() => connection.received().length >= text.length);
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * delayMs - 5);
    expect(connection.received()).toBe(text);
    expect(() => proxy.setDelay(-1)).toThrow();
  });
});
