import type { Socket } from "node:net";
import { KvError } from "../errors.js";
import { MAX_FRAME_BYTES } from "../engine/limits.js";
import { InvariantViolation } from "../util/assert.js";
import { TickCork } from "../util/tick-cork.js";
import { COMMAND, commandByCode, isPeerCommand } from "./protocol/commands.js";
import { encodeFrame, FrameDecoder, FrameTooLargeError, type Frame } from "./protocol/frame.js";
import { encodeErrorPayload, isStatus, STATUS, type Status } from "./protocol/status.js";

export interface ServerRequest {
  readonly command: number;
  readonly requestId: number;
  readonly payload: Uint8Array;
}

export interface ServerResponse {
  readonly status: Status;
  readonly payload: Uint8Array;
}

export interface ConnectionInfo {
  /** Unique per process, for logs and per-connection state kept by the handler. */
  readonly id: number;
  readonly remoteAddress: string;
  /** True once the connection opened with a handshake: it is a peer link. */
  readonly peer: boolean;
}

/**
 * Serves one request. A KvError becomes an ERROR response, or INVALID (and the connection is
 * closed) when its code is INVALID; any other exception becomes ERROR INTERNAL.
 */
export type RequestHandler = (request: ServerRequest, connection: ConnectionInfo) => Promise<ServerResponse>;

export interface ConnectionLimits {
  readonly maxFrameBytes: number;
  /** Requests handed to the handler and not yet answered; past it the socket stops reading. */
  readonly maxInFlight: number;
  /** After answering INVALID, how long the peer gets to read it before the socket is destroyed. */
  readonly closeGraceMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = Object.freeze({
  maxFrameBytes: MAX_FRAME_BYTES,
  maxInFlight: 1024,
  closeGraceMs: 2000,
});

export interface ServedConnection {
  readonly info: ConnectionInfo;
  /** Resolves once the socket is closed, whoever closed it. */
  readonly closed: Promise<void>;
  /** Requests the handler is working on right now. */
  readonly inFlight: number;
  /** Drops the connection at once; answers still being computed are discarded. */
  close(): void;
}

/**
 * Serves the protocol on one socket: many requests in flight, answered in completion order,
 * with backpressure on both sides (see ServerConnection).
 */
export function serveConnection(socket: Socket, handler: RequestHandler, limits: Partial<ConnectionLimits> = {}): ServedConnection {
  return new ServerConnection(socket, handler, { ...DEFAULT_CONNECTION_LIMITS, ...limits });
}

let nextConnectionId = 1;

type ConnectionState = "open" | "closing" | "closed";

/**
 * Flow control: frames are decoded as they arrive into a backlog and handed to the handler
 * while fewer than `maxInFlight` are in flight. The socket stops reading while the backlog is
 * not empty, while the handler is at its limit, while a peer handshake is being checked, or
 * while the socket's write buffer is above its high-water mark (write() returned false) until
 * 'drain'. So memory per connection is bounded by one read's worth of frames plus the answers
 * of `maxInFlight` requests.
 */
class ServerConnection implements ServedConnection {
  readonly info: { id: number; remoteAddress: string; peer: boolean };
  readonly closed: Promise<void>;
  private readonly decoder: FrameDecoder;
  private backlog: Frame[] = [];
  private backlogHead = 0;
  private inFlightCount = 0;
  private waitingForDrain = false;
  private handshakePending = false;
  private firstFrameSeen = false;
  private readonly cork: TickCork;
  private state: ConnectionState = "open";
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly handler: RequestHandler,
    private readonly limits: ConnectionLimits,
  ) {
    this.info = { id: nextConnectionId++, remoteAddress: `${socket.remoteAddress}:${socket.remotePort}`, peer: false };
    this.decoder = new FrameDecoder({ maxFrameBytes: limits.maxFrameBytes });
    this.cork = new TickCork(socket);
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("close", () => this.onClose());
    // Errors (reset by peer...) are always followed by 'close', which does the cleanup.
    socket.on("error", () => undefined);
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    // While closing, input is read and dropped so that the peer gets a clean end, not a reset.
    if (this.state !== "open") return;
    try {
      this.decoder.push(chunk, (frame) => this.backlog.push(frame));
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      this.refuse(error.requestId, error);
      return;
    }
    this.dispatchBacklog();
  }

  private onDrain(): void {
    this.waitingForDrain = false;
    this.dispatchBacklog();
  }

  private onClose(): void {
    this.state = "closed";
    clearTimeout(this.graceTimer);
    this.backlog = [];
    this.backlogHead = 0;
  }

  private dispatchBacklog(): void {
    while (this.state === "open" && this.backlogHead < this.backlog.length && this.canDispatch()) {
      const frame = this.backlog[this.backlogHead++];
      if (frame !== undefined) this.dispatch(frame);
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog = [];
      this.backlogHead = 0;
    }
    this.updateFlow();
  }

  /** A full write buffer stops dispatch too: answers must not pile up faster than they leave. */
  private canDispatch(): boolean {
    return this.inFlightCount < this.limits.maxInFlight && !this.handshakePending && !this.waitingForDrain;
  }

  private updateFlow(): void {
    if (this.state !== "open") return;
    const backlogged = this.backlogHead < this.backlog.length;
    const stop = backlogged || !this.canDispatch();
    if (stop && !this.socket.isPaused()) this.socket.pause();
    if (!stop && this.socket.isPaused()) this.socket.resume();
  }

  private dispatch(frame: Frame): void {
    const refusal = this.checkCommand(frame.kind);
    if (refusal !== null) {
      this.refuse(frame.requestId, refusal);
      return;
    }
    // Nothing else is read from a link until each step of its handshake is answered.
    const handshake = frame.kind === COMMAND.handshake || frame.kind === COMMAND.handshakeProof;
    if (handshake) this.handshakePending = true;
    this.inFlightCount += 1;
    const request: ServerRequest = { command: frame.kind, requestId: frame.requestId, payload: frame.payload };
    callHandler(this.handler, request, this.info).then((response) => this.complete(frame.requestId, handshake, response));
  }

  /** Unknown codes, and mixing client and peer traffic on one connection, break the stream. */
  private checkCommand(code: number): KvError | null {
    const command = commandByCode(code);
    if (command === undefined) return new KvError("INVALID", `unknown command 0x${code.toString(16)}`);
    const isFirst = !this.firstFrameSeen;
    this.firstFrameSeen = true;
    if (command.name === "handshake") {
      if (!isFirst) return new KvError("INVALID", "a handshake must be the first frame of a connection");
      this.info.peer = true;
      return null;
    }
    if (isPeerCommand(code) !== this.info.peer) {
      return new KvError("INVALID", `command ${command.name} is not allowed on a ${this.info.peer ? "peer" : "client"} connection`);
    }
    return null;
  }

  private complete(requestId: number, handshake: boolean, response: ServerResponse): void {
    this.inFlightCount -= 1;
    if (handshake) this.handshakePending = false;
    if (this.state !== "open" || this.socket.destroyed) return;
    this.write(requestId, response);
    // A refused handshake leaves the link unauthenticated, and INVALID means the stream broke.
    if (response.status === STATUS.INVALID || (handshake && response.status !== STATUS.OK)) {
      this.closeAfterFlush();
      return;
    }
    this.dispatchBacklog();
  }

  /** Answers INVALID and closes: the stream cannot be trusted past a broken frame. */
  private refuse(requestId: number, error: KvError): void {
    this.write(requestId, { status: STATUS.INVALID, payload: encodeErrorPayload(error) });
    this.closeAfterFlush();
  }

  private closeAfterFlush(): void {
    this.state = "closing";
    this.backlog = [];
    this.backlogHead = 0;
    this.socket.end();
    this.socket.resume();
    this.graceTimer = setTimeout(() => this.socket.destroy(), this.limits.closeGraceMs).unref();
  }

  /** Responses that complete in the same tick leave in one write (cork until next tick). */
  private write(requestId: number, response: ServerResponse): void {
    if (!this.cork.write(encodeFrame(response.status, requestId, response.payload))) this.waitingForDrain = true;
  }
}

/** Never rejects: every outcome of the handler becomes a response. */
async function callHandler(handler: RequestHandler, request: ServerRequest, info: ConnectionInfo): Promise<ServerResponse> {
  try {
    const response = await handler(request, info);
    if (!isStatus(response.status) || !(response.payload instanceof Uint8Array)) {
      return errorResponse(new KvError("INTERNAL", `handler returned a malformed response for command ${request.command}`));
    }
    return response;
  } catch (error) {
    return responseForThrown(error);
  }
}

function responseForThrown(error: unknown): ServerResponse {
  if (error instanceof InvariantViolation) {
    // A broken invariant means this process can no longer be trusted: crash it (assert.ts).
    process.nextTick(() => {
      throw error;
    });
  }
  if (error instanceof KvError) return errorResponse(error);
  const message = error instanceof Error ? error.message : String(error);
  return errorResponse(new KvError("INTERNAL", `unexpected server error: ${message}`));
}

function errorResponse(error: KvError): ServerResponse {
  const status = error.code === "INVALID" ? STATUS.INVALID : STATUS.ERROR;
  return { status, payload: encodeErrorPayload(error) };
}
