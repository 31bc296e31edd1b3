import { connect as connectSocket, type Socket } from "node:net";
import { KvError } from "../errors.js";
import { MAX_FRAME_BYTES } from "../engine/limits.js";
import { isPeerCommand } from "../server/protocol/commands.js";
import { encodeFrame, FrameDecoder, FrameTooLargeError, MAX_REQUEST_PAYLOAD_BYTES, type Frame } from "../server/protocol/frame.js";
import { decodeErrorPayload, STATUS } from "../server/protocol/status.js";
import { TickCork } from "../util/tick-cork.js";

export interface ClientConnectionOptions {
  /** Requests awaiting an answer; one more fails at once with BUSY. */
  readonly maxInFlight?: number;
  /** Largest response payload accepted; a larger answer fails its request with TOO_LARGE. */
  readonly maxFrameBytes?: number;
  /**
   * Largest request payload of a client command, the server's own limit: a larger request
   * fails with TOO_LARGE before anything is sent. Peer commands (Raft batches) may fill a
   * whole frame (MAX_FRAME_BYTES).
   */
  readonly maxRequestBytes?: number;
  readonly connectTimeoutMs?: number;
  /** Bytes waiting in the socket past which a one-way frame (`notify`) is not sent. */
  readonly maxUnsentNotificationBytes?: number;
  /** Aborts the connection attempt. */
  readonly signal?: AbortSignal;
}

export const DEFAULT_CLIENT_CONNECTION_OPTIONS = Object.freeze({
  maxInFlight: 4096,
  maxFrameBytes: MAX_FRAME_BYTES,
  maxRequestBytes: MAX_REQUEST_PAYLOAD_BYTES,
  connectTimeoutMs: 5000,
  maxUnsentNotificationBytes: 64 * 1024 * 1024,
});

export interface RequestOptions {
  /** Past it the request fails with TIMEOUT: a write's outcome is then unknown. */
  readonly timeoutMs?: number;
  /** Aborting fails the request with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** A successful answer; ERROR and INVALID answers reject with the server's KvError instead. */
export interface ClientResponse {
  readonly status: typeof STATUS.OK | typeof STATUS.NULL;
  readonly payload: Uint8Array;
}

interface PendingRequest {
  readonly requestId: number;
  readonly resolve: (response: ClientResponse) => void;
  readonly reject: (error: unknown) => void;
  /** Undoes the timer and the abort listener. */
  release: () => void;
  /** The encoded frame while it waits for 'drain'; null once handed to the socket. */
  frame: Uint8Array | null;
}

const REQUEST_ID_SPACE = 2 ** 32;

/**
 * The client side of one connection (node-redis / ioredis style): requests are pipelined, each
 * carries an id, and answers are matched by id in whatever order they come back.
 *
 * Bounds: at most `maxInFlight` requests wait for an answer (the next fails with BUSY at once).
 * When the socket's write buffer is full, frames wait in a send queue until 'drain'; that queue
 * only holds pending requests, so it shares the same bound. On close or error every pending
 * request fails with CONNECTION, and `closed` resolves with the reason so a pool can reconnect.
 */
export class ClientConnection {
  /** Resolves (never rejects) with the reason once the connection is closed. */
  readonly closed: Promise<KvError>;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly decoder: FrameDecoder;
  private sendQueue: PendingRequest[] = [];
  private nextRequestId = 0;
  private waitingForDrain = false;
  private readonly cork: TickCork;
  private closeReason: KvError | null = null;
  private resolveClosed: (reason: KvError) => void = () => undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly maxInFlight: number,
    maxFrameBytes: number,
    private readonly maxRequestBytes: number,
    private readonly maxUnsentNotificationBytes: number,
  ) {
    this.decoder = new FrameDecoder({ maxFrameBytes });
    this.cork = new TickCork(socket);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("error", (error) => this.shutDown(new KvError("CONNECTION", `connection failed: ${error.message}`)));
    socket.on("close", () => this.shutDown(new KvError("CONNECTION", "connection closed")));
  }

  static connect(host: string, port: number, options: ClientConnectionOptions = {}): Promise<ClientConnection> {
    const settings = { ...DEFAULT_CLIENT_CONNECTION_OPTIONS, ...options };
    return new Promise((resolve, reject) => {
      const socket = connectSocket({ host, port });
      const fail = (message: string): void => {
        cleanUp();
        socket.destroy();
        reject(new KvError("CONNECTION", `cannot connect to ${host}:${port}: ${message}`));
      };
      const onError = (error: Error): void => fail(error.message);
      const onAbort = (): void => fail("aborted");
      const timer = setTimeout(() => fail(`no answer within ${settings.connectTimeoutMs} ms`), settings.connectTimeoutMs);
      const cleanUp = (): void => {
        clearTimeout(timer);
        socket.off("error", onError);
        options.signal?.removeEventListener("abort", onAbort);
      };
      if (options.signal?.aborted === true) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("error", onError);
      socket.once("connect", () => {
        cleanUp();
        resolve(new ClientConnection(socket, settings.maxInFlight, settings.maxFrameBytes, settings.maxRequestBytes, settings.maxUnsentNotificationBytes));
      });
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get isOpen(): boolean {
    return this.closeReason === null;
  }

  request(command: number, payload: Uint8Array, options: RequestOptions = {}): Promise<ClientResponse> {
    if (this.closeReason !== null) return Promise.reject(this.closeReason);
    if (this.pending.size >= this.maxInFlight) {
      return Promise.reject(new KvError("BUSY", `${this.maxInFlight} requests already in flight on this connection`));
    }
    if (options.signal?.aborted === true) return Promise.reject(options.signal.reason);
    const maxBytes = isPeerCommand(command) ? MAX_FRAME_BYTES : this.maxRequestBytes;
    if (payload.byteLength > maxBytes) {
      return Promise.reject(new KvError("TOO_LARGE", `request of ${payload.byteLength} bytes exceeds the limit of ${maxBytes} bytes`));
    }
    const requestId = this.allocateRequestId();
    const frame = encodeFrame(command, requestId, payload);
    return new Promise<ClientResponse>((resolve, reject) => {
      const entry: PendingRequest = { requestId, resolve, reject, release: () => undefined, frame };
      this.pending.set(requestId, entry);
      entry.release = this.armCancellation(entry, options);
      this.send(entry);
    });
  }

  /**
   * Sends a one-way frame (peer Raft traffic): no answer comes unless the server refuses it, and
   * then it closes the connection. False when the frame cannot leave (closed, over the frame
   * limit, requests waiting for 'drain' that it would overtake, or `maxUnsentNotificationBytes`
   * already waiting in the socket): the caller drops it. It goes straight to the socket, which
   * buffers it even while a 'drain' is awaited; the byte bound is what keeps that finite.
   */
  notify(command: number, payload: Uint8Array): boolean {
    if (this.closeReason !== null || payload.byteLength > MAX_FRAME_BYTES || this.sendQueue.length > 0) return false;
    if (this.socket.writableLength > this.maxUnsentNotificationBytes) return false;
    this.cork.write(encodeFrame(command, 0, payload));
    return true;
  }

  /** Closes the connection; pending requests fail with CONNECTION. */
  close(): void {
    this.shutDown(new KvError("CONNECTION", "connection closed by the client"));
  }

  private allocateRequestId(): number {
    const requestId = nextFreeRequestId(this.nextRequestId, (id) => this.pending.has(id));
    this.nextRequestId = (requestId + 1) % REQUEST_ID_SPACE;
    return requestId;
  }

  private armCancellation(entry: PendingRequest, options: RequestOptions): () => void {
    const { timeoutMs, signal } = options;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => this.cancel(entry, new KvError("TIMEOUT", `no answer within ${timeoutMs} ms; the outcome is unknown`)), timeoutMs);
    const onAbort = (): void => this.cancel(entry, signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    return () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
  }

  /** A cancelled request is forgotten: a late answer is dropped, an unsent frame never leaves. */
  private cancel(entry: PendingRequest, reason: unknown): void {
    if (this.pending.get(entry.requestId) !== entry) return;
    this.pending.delete(entry.requestId);
    entry.release();
    entry.frame = null;
    entry.reject(reason);
  }

  private send(entry: PendingRequest): void {
    if (this.waitingForDrain) {
      this.sendQueue.push(entry);
      return;
    }
    this.write(entry);
  }

  /** Requests issued in the same tick leave in one write (cork until next tick). */
  private write(entry: PendingRequest): void {
    const frame = entry.frame;
    if (frame === null) return;
    entry.frame = null;
    if (!this.cork.write(frame)) this.waitingForDrain = true;
  }

  private onDrain(): void {
    this.waitingForDrain = false;
    let index = 0;
    while (index < this.sendQueue.length && !this.waitingForDrain) {
      const entry = this.sendQueue[index++];
      if (entry !== undefined) this.write(entry);
    }
    this.sendQueue = this.sendQueue.slice(index);
  }

  /**
   * An answer over the frame limit fails its own request with TOO_LARGE, which is final: asked
   * again, the server would build the same answer. The stream cannot be resynchronised past
   * it, so the other requests fail with CONNECTION (and may be retried elsewhere).
   */
  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk, (frame) => this.onFrame(frame));
    } catch (error) {
      const tooLarge = error instanceof FrameTooLargeError ? this.pending.get(error.requestId) : undefined;
      if (tooLarge !== undefined) this.cancel(tooLarge, new KvError("TOO_LARGE", `the answer is too large to read: ${(error as Error).message}`));
      const message = error instanceof Error ? error.message : String(error);
      this.shutDown(new KvError("CONNECTION", `broken response stream: ${message}`));
    }
  }

  private onFrame(frame: Frame): void {
    const entry = this.pending.get(frame.requestId);
    if (entry === undefined) return; // its request timed out or was aborted
    this.pending.delete(frame.requestId);
    entry.release();
    if (frame.kind === STATUS.OK || frame.kind === STATUS.NULL) {
      entry.resolve({ status: frame.kind, payload: frame.payload });
    } else if (frame.kind === STATUS.ERROR || frame.kind === STATUS.INVALID) {
      entry.reject(decodeErrorPayload(frame.payload));
    } else {
      entry.reject(new KvError("CONNECTION", `unknown response status ${frame.kind}`));
      this.shutDown(new KvError("CONNECTION", `server sent unknown status ${frame.kind}`));
    }
  }

  private shutDown(reason: KvError): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    this.socket.destroy();
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.sendQueue = [];
    for (const entry of pending) {
      entry.release();
      entry.reject(reason);
    }
    this.resolveClosed(reason);
  }
}

/**
 * Request ids are allocated in sequence and wrap around after 2^32 - 1, skipping any id still
 * awaiting its answer. The in-flight bound keeps the search short and guarantees a free id.
 */
export function nextFreeRequestId(candidate: number, isInFlight: (requestId: number) => boolean): number {
  let requestId = candidate % REQUEST_ID_SPACE;
  while (isInFlight(requestId)) requestId = (requestId + 1) % REQUEST_ID_SPACE;
  return requestId;
}
