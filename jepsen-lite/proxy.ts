/**
 * A TCP proxy for one directed node-to-node link. kv-node sends Raft traffic only over the
 * connections it dials itself (inbound connections carry the other node's messages), so the
 * proxy on link i->j decides alone whether i's messages reach j: cutting it is a one-way
 * partition, cutting both i->j and j->i isolates the pair.
 *
 * Modes:
 * - "pass": bytes flow, after `delayMs` when set;
 * - "drop": a black hole. Connections stay open but nothing is delivered, as when packets are
 *   lost: the sender notices only by timeouts;
 * - "refuse": connections are reset at once, as when the peer's port is closed.
 * Entering a fault mode or restoring closes every open connection: a stream cut mid-frame must
 * never be resumed, or the receiver would read a corrupt frame instead of a clean break.
 */
import { createServer, Socket, type Server } from "node:net";
import { KvError } from "../src/errors.js";

export type LinkMode = "pass" | "drop" | "refuse";

const HOST = "127.0.0.1";
/** Bytes a delayed connection may hold in flight; past it the connection is closed. */
export const MAX_DELAYED_BYTES_PER_CONNECTION = 64 * 1024 * 1024;

interface Pipe {
  readonly client: Socket;
  readonly upstream: Socket | null;
}

export class LinkProxy {
  private mode: LinkMode = "pass";
  private delay = 0;
  private readonly pipes = new Set<Pipe>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly targetPort: number,
  ) {}

  /** Listens on a free loopback port and forwards to 127.0.0.1:targetPort. */
  static async start(targetPort: number): Promise<LinkProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, HOST, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new KvError("INTERNAL", "the proxy has no TCP address");
    const proxy = new LinkProxy(server, address.port, targetPort);
    server.on("connection", (socket) => proxy.accept(socket));
    return proxy;
  }

  get address(): string {
    return `${HOST}:${this.port}`;
  }

  get currentMode(): LinkMode {
    return this.mode;
  }

  get delayMs(): number {
    return this.delay;
  }

  get openConnections(): number {
    return this.pipes.size;
  }

  setMode(mode: LinkMode): void {
    if (mode === this.mode) return;
    this.mode = mode;
    this.closeAll();
  }

  /** Delay applies to connections opened from now on; existing ones are closed to apply it. */
  setDelay(delayMs: number): void {
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new KvError("INVALID", `delay must be >= 0 ms, not ${delayMs}`);
    if (delayMs === this.delay) return;
    this.delay = delayMs;
    this.closeAll();
  }

  /** Back to a clean link: pass, no delay. */
  restore(): void {
    const changed = this.mode !== "pass" || this.delay !== 0;
    this.mode = "pass";
    this.delay = 0;
    if (changed) this.closeAll();
  }

  async close(): Promise<void> {
    this.closeAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private closeAll(): void {
    for (const pipe of this.pipes) {
      pipe.client.destroy();
      pipe.upstream?.destroy();
    }
    this.pipes.clear();
  }

  private accept(client: Socket): void {
    client.on("error", () => undefined);
    if (this.mode === "refuse") {
      client.resetAndDestroy();
      return;
    }
    if (this.mode === "drop") {
      const pipe: Pipe = { client, upstream: null };
      this.track(pipe);
      client.on("data", () => undefined);
      return;
    }
    const upstream = new Socket();
    upstream.on("error", () => undefined);
    const pipe: Pipe = { client, upstream };
    this.track(pipe);
    upstream.connect(this.targetPort, HOST);
    forward(client, upstream, this.delay);
    forward(upstream, client, this.delay);
  }

  private track(pipe: Pipe): void {
    this.pipes.add(pipe);
    const end = (): void => {
      if (!this.pipes.delete(pipe)) return;
      pipe.client.destroy();
      pipe.upstream?.destroy();
    };
    pipe.client.once("close", end);
    pipe.upstream?.once("close", end);
  }
}

/** Copies `from` to `to`, each chunk `delayMs` late; order is kept since every chunk waits the same. */
function forward(from: Socket, to: Socket, delayMs: number): void {
  if (delayMs === 0) {
    from.pipe(to);
    return;
  }
  let delayedBytes = 0;
  from.on("data", (chunk: Buffer) => {
    delayedBytes += chunk.length;
    if (delayedBytes > MAX_DELAYED_BYTES_PER_CONNECTION) {
      from.destroy();
      to.destroy();
      return;
    }
    setTimeout(() => {
      delayedBytes -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }, delayMs);
  });
  from.on("end", () => setTimeout(() => to.end(), delayMs));
}
