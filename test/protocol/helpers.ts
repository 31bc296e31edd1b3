import { createServer, connect, type Server, type Socket } from "node:net";
import { once } from "node:events";
import { afterEach } from "vitest";
import { ClientConnection, type ClientConnectionOptions } from "../../src/client/connection.js";
import { serveConnection, type ConnectionContext, type ConnectionLimits, type RequestHandler, type ServedConnection } from "../../src/server/connection.js";
import { FrameDecoder, type Frame } from "../../src/server/protocol/frame.js";

export interface TestServer {
  readonly port: number;
  readonly connections: ServedConnection[];
  readonly sockets: Socket[];
  close(): Promise<void>;
}

/** A protocol server on 127.0.0.1 with an ephemeral port. */
export async function startServer(
  handler: RequestHandler,
  limits: Partial<ConnectionLimits> = {},
  context: (socket: Socket) => ConnectionContext = () => ({}),
): Promise<TestServer> {
  const connections: ServedConnection[] = [];
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    connections.push(serveConnection(socket, handler, limits, context(socket)));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    port: address.port,
    connections,
    sockets,
    close: async () => {
      for (const connection of connections) connection.close();
      server.close();
      await once(server, "close");
    },
  };
}

export interface Fixtures {
  /** A server closed after the test. */
  serve(handler: RequestHandler, limits?: Partial<ConnectionLimits>, context?: ConnectionContext): Promise<TestServer>;
  /** A client connection to `server`, closed after the test. */
  client(server: TestServer, options?: ClientConnectionOptions): Promise<ClientConnection>;
}

/** Servers and clients that are closed after each test of the calling file. */
export function fixtures(): Fixtures {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    serve: async (handler, limits = {}, context = {}) => {
      const server = await startServer(handler, limits, () => context);
      cleanups.push(() => server.close());
      return server;
    },
    client: async (server, options = {}) => {
      const connection = await ClientConnection.connect("127.0.0.1", server.port, options);
      cleanups.push(() => connection.close());
      return connection;
    },
  };
}

/** Polls `condition` until it holds, failing after `deadlineMs`: no fixed sleeps in tests. */
export async function waitFor(condition: () => boolean, deadlineMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

/** A raw socket that records every frame it receives and whether the server closed it. */
export interface RawClient {
  readonly socket: Socket;
  readonly frames: Frame[];
  readonly ended: () => boolean;
}

export async function rawClient(port: number): Promise<RawClient> {
  const socket = connect({ host: "127.0.0.1", port });
  await once(socket, "connect");
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  let ended = false;
  socket.on("data", (chunk: Buffer) => decoder.push(chunk, (frame) => frames.push(frame)));
  socket.on("close", () => {
    ended = true;
  });
  socket.on("error", () => undefined);
  return { socket, frames, ended: () => ended };
}
