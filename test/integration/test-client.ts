import { ClientConnection, type ClientResponse } from "../../src/client/connection.js";
import type { OperationRequest } from "../../src/client/requests.js";
import { KvError } from "../../src/errors.js";
import { commandByCode } from "../../src/server/protocol/commands.js";
import { parseHostPort } from "../../src/server/peers.js";

/** A request as the builders of src/client/requests.ts produce it. */
export interface BuiltRequest {
  readonly code: number;
  readonly payload: Uint8Array;
}

export interface SendOptions {
  /** The whole call, retries included, ends by then; default DEFAULT_DEADLINE_MS. */
  readonly deadlineMs?: number;
  /** Ask this node only: no redirect, no fail-over (serializable reads of one replica). */
  readonly node?: string;
}

const DEFAULT_DEADLINE_MS = 10_000;
/**
 * NOT_LEADER hints followed in a row without a pause; more means the hints loop. A pause (the
 * hinted leader was unreachable, or no leader) starts the count again: by then an election may
 * have changed the leader for real.
 */
const MAX_REDIRECTS = 5;
const FIRST_BACKOFF_MS = 10;
const MAX_BACKOFF_MS = 500;
const MAX_CONNECT_TIMEOUT_MS = 2000;

/**
 * A small cluster-aware client for the integration tests (the real KvClient will replace it).
 *
 * It pipelines: concurrent `send` calls share one connection per node. It follows NOT_LEADER
 * hints (bounded), and retries with backoff, within the call's deadline, whatever is known not
 * to have taken effect: UNAVAILABLE, BUSY, a failed connect. A write whose connection breaks
 * after it was sent has an unknown outcome: that surfaces as TIMEOUT and is never retried.
 */
export class TestClient {
  private readonly connections = new Map<string, Promise<ClientConnection>>();
  private target: string;
  private closed = false;

  constructor(private readonly seeds: readonly string[]) {
    const [first] = seeds;
    if (first === undefined) throw new Error("a test client needs at least one seed address");
    this.target = first;
  }

  /** The node the next unpinned request goes to (the last known leader). */
  get leaderGuess(): string {
    return this.target;
  }

  /** Sends a typed request and decodes its result; an ERROR answer throws the server's KvError. */
  async call<Result>(request: OperationRequest<Result>, options: SendOptions = {}): Promise<Result> {
    return request.decodeResult(await this.send(request, options));
  }

  async send(request: BuiltRequest, options: SendOptions = {}): Promise<ClientResponse> {
    const deadline = Date.now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS);
    const isWrite = commandByCode(request.code)?.write === true;
    let address = options.node ?? this.target;
    let redirects = 0;
    let backoffMs = FIRST_BACKOFF_MS;
    for (;;) {
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new KvError("TIMEOUT", `no answer within the deadline (last tried ${address})`);
      const next = await this.attempt(address, request, remainingMs, isWrite);
      if ("response" in next) return next.response;
      if (next.redirect !== undefined && options.node === undefined) {
        if (++redirects > MAX_REDIRECTS) throw new KvError("UNAVAILABLE", `more than ${MAX_REDIRECTS} NOT_LEADER redirects in a row`);
        address = this.target = next.redirect;
        continue;
      }
      if (options.node === undefined && next.failOver) address = this.target = this.nextSeed(address);
      await sleep(Math.min(backoffMs, Math.max(0, deadline - Date.now())));
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      redirects = 0;
    }
  }

  /** One try: an answer, or what to do next. Errors that must surface are thrown. */
  private async attempt(
    address: string,
    request: BuiltRequest,
    remainingMs: number,
    isWrite: boolean,
  ): Promise<{ readonly response: ClientResponse } | { readonly redirect?: string; readonly failOver: boolean }> {
    let connection: ClientConnection;
    try {
      connection = await this.connection(address, remainingMs);
    } catch (error) {
      if (isCode(error, "CONNECTION")) return { failOver: true }; // nothing was sent
      throw error;
    }
    try {
      return { response: await connection.request(request.code, request.payload, { timeoutMs: remainingMs }) };
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
      switch (error.code) {
        case "NOT_LEADER":
          return error.details.leader === undefined ? { failOver: true } : { redirect: error.details.leader, failOver: false };
        case "UNAVAILABLE":
        case "BUSY":
          return { failOver: false };
        case "CONNECTION":
          this.connections.delete(address);
          if (isWrite) throw new KvError("TIMEOUT", `the connection to ${address} broke after the write was sent; its outcome is unknown`);
          return { failOver: true };
        default:
          throw error;
      }
    }
  }

  private connection(address: string, remainingMs: number): Promise<ClientConnection> {
    if (this.closed) return Promise.reject(new KvError("CONNECTION", "the test client is closed"));
    const cached = this.connections.get(address);
    if (cached !== undefined) {
      return cached.then((connection) => (connection.isOpen ? connection : this.reconnect(address, remainingMs)));
    }
    return this.reconnect(address, remainingMs);
  }

  private reconnect(address: string, remainingMs: number): Promise<ClientConnection> {
    const { host, port } = parseHostPort(address);
    const connecting = ClientConnection.connect(host, port, { connectTimeoutMs: Math.min(remainingMs, MAX_CONNECT_TIMEOUT_MS) });
    this.connections.set(address, connecting);
    connecting.catch(() => {
      if (this.connections.get(address) === connecting) this.connections.delete(address);
    });
    return connecting;
  }

  private nextSeed(address: string): string {
    const index = this.seeds.indexOf(address);
    return this.seeds[(index + 1) % this.seeds.length] ?? address;
  }

  close(): void {
    this.closed = true;
    for (const connecting of this.connections.values()) connecting.then((connection) => connection.close(), () => undefined);
    this.connections.clear();
  }
}

export function isCode(error: unknown, code: KvError["code"]): boolean {
  return error instanceof KvError && error.code === code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
