import type { Socket } from "node:net";
import { KvError } from "../errors.js";
import { MAX_FRAME_BYTES } from "../engine/limits.js";
import { COMMAND, commandByCode, isOneWayCommand, isPeerCommand } from "./protocol/commands.js";
import { DEFAULT_MAX_REQUEST_BYTES, FrameDecoder, FrameTooLargeError, type Frame, type FrameHeader } from "./protocol/frame.js";
import { isStatus, STATUS } from "./protocol/status.js";
import {
  AnswerQueue,
  errorResponse,
  isDeferred,
  responseForThrown,
  type Answer,
  type HandlerResult,
  type OutputEvent,
  type OutputLimits,
  type ServerResponse,
} from "./connection-output.js";
import type { RequestByteBudget } from "./request-budget.js";

export type { DeferredResponse, HandlerResult, ServerResponse } from "./connection-output.js";

export interface ServerRequest {
  readonly command: number;
  readonly requestId: number;
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
 * closed) when its code is INVALID; any other exception becomes ERROR INTERNAL. A deferred
 * result is built only when the connection has room to send it.
 */
export type RequestHandler = (request: ServerRequest, connection: ConnectionInfo) => Promise<HandlerResult>;

export interface ConnectionLimits extends OutputLimits {
  /** Largest request payload of a client, and of a link that has not completed a handshake. */
  readonly maxRequestBytes: number;
  /** Largest frame payload of a proven peer link: an AppendEntries holding the largest entry. */
  readonly maxPeerFrameBytes: number;
  /** Requests handed to the handler and not yet answered; past it the socket stops reading. */
  readonly maxInFlight: number;
  /**
   * Request payload bytes read (or being read) and not yet answered on one client connection;
   * past it the socket stops reading. One request is always admitted, however large.
   */
  readonly maxInFlightRequestBytes: number;
  /** A client connection with nothing in flight and no traffic for this long is closed; 0: never. */
  readonly idleTimeoutMs: number;
  /** A connection admitted on a slot kept for peers must complete its handshake within this. */
  readonly peerHandshakeDeadlineMs: number;
  /** After answering INVALID, how long the peer gets to read it before the socket is destroyed. */
  readonly closeGraceMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = Object.freeze({
  maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
  maxPeerFrameBytes: MAX_FRAME_BYTES,
  maxResponseBytes: MAX_FRAME_BYTES,
  maxInFlight: 1024,
  maxInFlightRequestBytes: MAX_FRAME_BYTES,
  outputPauseBytes: 8 * 1024 * 1024,
  outputLimitBytes: 256 * 1024 * 1024,
  idleTimeoutMs: 300_000,
  peerHandshakeDeadlineMs: 5000,
  closeGraceMs: 2000,
});

/** What a connection reports to its server, which counts and logs it. */
export type ConnectionEvent =
  | OutputEvent
  /** Closed: owed more answer bytes than outputLimitBytes. */
  | "outputLimit"
  | "idleTimeout"
  /** A request over maxRequestBytes, answered TOO_LARGE and skipped. */
  | "requestTooLarge"
  /** Stopped reading because the node's request byte budget was spent. */
  | "requestBudgetWait"
  /** On a slot kept for peers, it sent something else than a handshake, or too late. */
  | "notPeer";

export interface ConnectionContext {
  /** Request bytes in flight across the node's client connections. */
  readonly requestBudget?: RequestByteBudget;
  /** Admitted on a slot kept for peers: it must be a peer link, proven within the deadline. */
  readonly peerOnly?: boolean;
  /** Called once, when the link has completed its handshake. */
  readonly onPeerAdmitted?: () => void;
  readonly onEvent?: (event: ConnectionEvent, info: ConnectionInfo) => void;
}

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
export function serveConnection(
  socket: Socket,
  handler: RequestHandler,
  limits: Partial<ConnectionLimits> = {},
  context: ConnectionContext = {},
): ServedConnection {
  return new ServerConnection(socket, handler, { ...DEFAULT_CONNECTION_LIMITS, ...limits }, context);
}

let nextConnectionId = 1;

type ConnectionState = "open" | "closing" | "closed";

/** The handshake step whose OK answer proves a link is a peer of this cluster (peer-auth.ts). */
const FINAL_HANDSHAKE_STEP = COMMAND.handshakeProof;

/** A decoded frame and the request bytes reserved for it until it is answered. */
interface Received {
  readonly frame: Frame;
  readonly reservedBytes: number;
}

/**
 * Flow control, on the way in: a frame's payload bytes are reserved (on this connection and
 * in the node's RequestByteBudget) before the payload is read; frames are decoded into a
 * backlog and handed to the handler while fewer than `maxInFlight` are in flight. The socket
 * stops reading while a frame waits for its reservation, while the backlog is not empty,
 * while the handler is at its limit, while a handshake step is being checked, and while the
 * answers are paused (AnswerQueue). So a connection holds at most `maxInFlightRequestBytes`
 * of requests and one write buffer of answers, and the node at most its budget of requests.
 *
 * A link that completes its handshake is a peer: it may send frames up to
 * `maxPeerFrameBytes`, is never idle-closed, and its Raft traffic is not held back by the
 * clients' budget (replication is what lets client writes complete and free that budget).
 */
class ServerConnection implements ServedConnection {
  readonly info: { id: number; remoteAddress: string; peer: boolean };
  readonly closed: Promise<void>;
  private readonly decoder: FrameDecoder;
  private readonly answers: AnswerQueue;
  private backlog: Received[] = [];
  private backlogHead = 0;
  private inFlightCount = 0;
  private handshakePending = false;
  private firstFrameSeen = false;
  private peerAdmitted = false;
  private state: ConnectionState = "open";
  private graceTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** Request bytes this connection holds: the admitted frame being read, the backlog, in flight. */
  private heldRequestBytes = 0;
  /** Reserved for the frame whose header was admitted and whose payload is still arriving. */
  private partialFrameBytes = 0;
  /** Why the decoder holds a frame: this connection's own bound, or the node's budget. */
  private heldBy: "connection" | "node" | null = null;
  private waitingForBudget = false;

  constructor(
    private readonly socket: Socket,
    private readonly handler: RequestHandler,
    private readonly limits: ConnectionLimits,
    private readonly context: ConnectionContext,
  ) {
    this.info = { id: nextConnectionId++, remoteAddress: `${socket.remoteAddress}:${socket.remotePort}`, peer: false };
    this.decoder = new FrameDecoder({
      maxFrameBytes: limits.maxRequestBytes,
      admit: (header) => this.admitFrame(header),
      skipOversized: { upToBytes: limits.maxPeerFrameBytes, onSkipped: (header) => this.refuseOversized(header) },
    });
    this.answers = new AnswerQueue(socket, limits, (event) => this.report(event));
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("close", () => this.onClose());
    // Errors (reset by peer...) are always followed by 'close', which does the cleanup.
    socket.on("error", () => undefined);
    if (limits.idleTimeoutMs > 0) {
      socket.setTimeout(limits.idleTimeoutMs);
      socket.on("timeout", () => this.onIdle());
    }
    if (context.peerOnly === true) {
      this.handshakeTimer = setTimeout(() => this.dropNotPeer(), limits.peerHandshakeDeadlineMs).unref();
    }
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
    this.decode(() => this.decoder.push(chunk, (frame) => this.receive(frame)));
    this.waitForBudgetIfHeld();
    this.dispatchBacklog();
  }

  private onDrain(): void {
    this.answers.drained();
    this.flushAnswers();
    this.dispatchBacklog();
  }

  private onClose(): void {
    this.state = "closed";
    clearTimeout(this.graceTimer);
    clearTimeout(this.handshakeTimer);
    this.clearBacklog();
    this.releaseRequestBytes(this.partialFrameBytes);
    this.partialFrameBytes = 0;
    this.answers.clear();
    if (this.waitingForBudget) this.context.requestBudget?.cancel(this.retryHeldFrame);
    this.waitingForBudget = false;
  }

  /** No traffic for idleTimeoutMs: a client with nothing in flight is closed, anything else waits on. */
  private onIdle(): void {
    if (this.state !== "open" || this.peerAdmitted) return;
    if (this.inFlightCount > 0) {
      this.socket.setTimeout(this.limits.idleTimeoutMs);
      return;
    }
    this.report("idleTimeout");
    this.socket.destroy();
  }

  private dropNotPeer(): void {
    if (this.peerAdmitted || this.state === "closed") return;
    this.report("notPeer");
    this.socket.destroy();
  }

  /** Decoder input, with an oversized frame answered TOO_LARGE: the stream is lost past it. */
  private decode(step: () => void): void {
    try {
      step();
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      this.refuse(error.requestId, error);
    }
  }

  /**
   * A request over maxRequestBytes (but no larger than any frame) is answered TOO_LARGE while
   * its payload is discarded unread; the connection and its other requests carry on.
   */
  private refuseOversized(header: FrameHeader): void {
    if (this.state !== "open") return;
    const isFirst = !this.firstFrameSeen;
    this.firstFrameSeen = true;
    if (isFirst && this.context.peerOnly === true) {
      this.refuse(header.requestId, this.notPeer());
      return;
    }
    this.report("requestTooLarge");
    const error = new KvError("TOO_LARGE", `request of ${header.payloadBytes} bytes exceeds the limit of ${this.limits.maxRequestBytes} bytes`);
    this.answers.write(header.requestId, errorResponse(error));
  }

  /** The decoder's admission of a frame, before its payload is read: reserve its bytes. */
  private admitFrame(header: FrameHeader): boolean {
    const bytes = this.peerAdmitted ? 0 : header.payloadBytes;
    if (this.heldRequestBytes > 0 && this.heldRequestBytes + bytes > this.limits.maxInFlightRequestBytes) {
      this.heldBy = "connection";
      return false;
    }
    if (bytes > 0 && this.context.requestBudget?.tryReserve(bytes) === false) {
      this.heldBy = "node";
      return false;
    }
    this.heldBy = null;
    this.heldRequestBytes += bytes;
    this.partialFrameBytes = bytes;
    return true;
  }

  private receive(frame: Frame): void {
    this.backlog.push({ frame, reservedBytes: this.partialFrameBytes });
    this.partialFrameBytes = 0;
  }

  private releaseRequestBytes(bytes: number): void {
    if (bytes === 0) return;
    this.heldRequestBytes -= bytes;
    this.context.requestBudget?.release(bytes);
  }

  /** Registers with the node's budget when that is what holds the decoder, and only once. */
  private waitForBudgetIfHeld(): void {
    const budget = this.context.requestBudget;
    if (budget === undefined || this.waitingForBudget || !this.decoder.isHeld || this.heldBy !== "node") return;
    this.waitingForBudget = true;
    this.report("requestBudgetWait");
    budget.wait(this.retryHeldFrame);
  }

  /** Called by the node's budget when room may have freed; true once this connection needs none. */
  private readonly retryHeldFrame = (): boolean => {
    if (this.state === "open") this.resumeInput();
    const stillWaiting = this.state === "open" && this.decoder.isHeld && this.heldBy === "node";
    this.waitingForBudget = stillWaiting;
    return !stillWaiting;
  };

  /** Retries a held frame (room freed on this connection or in the budget) and dispatches. */
  private resumeInput(): void {
    if (this.state !== "open") return;
    if (this.decoder.isHeld) this.decode(() => this.decoder.resume((frame) => this.receive(frame)));
    this.dispatchBacklog();
  }

  private dispatchBacklog(): void {
    while (this.state === "open" && this.backlogHead < this.backlog.length && this.canDispatch()) {
      const received = this.backlog[this.backlogHead++];
      if (received !== undefined) this.dispatch(received);
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog = [];
      this.backlogHead = 0;
    }
    this.updateFlow();
  }

  /** Paused answers stop dispatch too: they must not pile up faster than they leave. */
  private canDispatch(): boolean {
    return this.inFlightCount < this.limits.maxInFlight && !this.handshakePending && !this.answers.isPaused;
  }

  private updateFlow(): void {
    if (this.state !== "open") return;
    const backlogged = this.backlogHead < this.backlog.length;
    const stop = backlogged || this.decoder.isHeld || !this.canDispatch();
    if (stop && !this.socket.isPaused()) this.socket.pause();
    if (!stop && this.socket.isPaused()) this.socket.resume();
  }

  private dispatch(received: Received): void {
    const { frame } = received;
    const refusal = this.checkCommand(frame.kind);
    if (refusal !== null) {
      this.releaseRequestBytes(received.reservedBytes);
      this.refuse(frame.requestId, refusal);
      return;
    }
    // Nothing else is read from a link until each step of its handshake is answered.
    const handshake = frame.kind === COMMAND.handshake || frame.kind === COMMAND.handshakeProof;
    if (handshake) this.handshakePending = true;
    this.inFlightCount += 1;
    const request: ServerRequest = { command: frame.kind, requestId: frame.requestId, payload: frame.payload };
    callHandler(this.handler, request, this.info).then((result) => this.complete(received, handshake, result));
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
    if (isFirst && this.context.peerOnly === true) {
      return this.notPeer();
    }
    if (isPeerCommand(code) !== this.info.peer) {
      return new KvError("INVALID", `command ${command.name} is not allowed on a ${this.info.peer ? "peer" : "client"} connection`);
    }
    return null;
  }

  /** A slot kept for peers was taken by something that does not open with a handshake. */
  private notPeer(): KvError {
    this.report("notPeer");
    return new KvError("BUSY", "the node is at its connection limit: only peer links are admitted now");
  }

  private complete(received: Received, handshake: boolean, result: HandlerResult): void {
    this.inFlightCount -= 1;
    this.releaseRequestBytes(received.reservedBytes);
    if (handshake) this.handshakePending = false;
    if (this.state !== "open" || this.socket.destroyed) return;
    if (isOneWayCommand(received.frame.kind)) return this.completeOneWay(received.frame.requestId, result);
    const answer: Answer = { requestId: received.frame.requestId, command: received.frame.kind, result };
    if (!this.answers.add(answer)) {
      this.report("outputLimit");
      this.socket.destroy();
      return;
    }
    this.flushAnswers();
    this.resumeInput();
    this.waitForBudgetIfHeld();
  }

  /** Accepted: nothing to say. Refused: the sender learns why, and the link ends (it sent on without waiting). */
  private completeOneWay(requestId: number, result: HandlerResult): void {
    if (!isDeferred(result) && result.status === STATUS.OK) {
      this.resumeInput();
      this.waitForBudgetIfHeld();
      return;
    }
    const refusal = isDeferred(result) ? errorResponse(new KvError("INTERNAL", "a one-way command produced an answer")) : result;
    this.answers.write(requestId, refusal);
    this.closeAfterFlush();
  }

  private flushAnswers(): void {
    if (this.state === "open") this.answers.flush((answer, response) => this.sent(answer, response));
  }

  /** After an answer is written: a refused handshake or an INVALID answer ends the connection. */
  private sent(answer: Answer, response: ServerResponse): boolean {
    const handshakeStep = answer.command === COMMAND.handshake || answer.command === COMMAND.handshakeProof;
    // A refused handshake leaves the link unauthenticated, and INVALID means the stream broke.
    if (response.status === STATUS.INVALID || (handshakeStep && response.status !== STATUS.OK)) {
      this.closeAfterFlush();
      return false;
    }
    if (answer.command === FINAL_HANDSHAKE_STEP) this.admitPeer();
    return true;
  }

  private admitPeer(): void {
    this.peerAdmitted = true;
    clearTimeout(this.handshakeTimer);
    this.socket.setTimeout(0);
    this.decoder.maxFrameBytes = this.limits.maxPeerFrameBytes;
    this.context.onPeerAdmitted?.();
  }

  /** Answers INVALID and closes: the stream cannot be trusted past a broken frame. */
  private refuse(requestId: number, error: KvError): void {
    const response = errorResponse(error);
    this.answers.write(requestId, { status: STATUS.INVALID, payload: response.payload });
    this.closeAfterFlush();
  }

  private closeAfterFlush(): void {
    this.state = "closing";
    this.clearBacklog();
    this.answers.clear();
    this.socket.end();
    this.socket.resume();
    this.graceTimer = setTimeout(() => this.socket.destroy(), this.limits.closeGraceMs).unref();
  }

  private clearBacklog(): void {
    for (let index = this.backlogHead; index < this.backlog.length; index++) this.releaseRequestBytes(this.backlog[index]?.reservedBytes ?? 0);
    this.backlog = [];
    this.backlogHead = 0;
  }

  private report(event: ConnectionEvent): void {
    this.context.onEvent?.(event, this.info);
  }
}

/** Never rejects: every outcome of the handler becomes a response. */
async function callHandler(handler: RequestHandler, request: ServerRequest, info: ConnectionInfo): Promise<HandlerResult> {
  try {
    const result = await handler(request, info);
    if (isDeferred(result) ? !Number.isFinite(result.minimumBytes) : !isStatus(result.status) || !(result.payload instanceof Uint8Array)) {
      return errorResponse(new KvError("INTERNAL", `handler returned a malformed response for command ${request.command}`));
    }
    return result;
  } catch (error) {
    return responseForThrown(error);
  }
}
