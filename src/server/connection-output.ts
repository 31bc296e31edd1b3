import type { Socket } from "node:net";
import { KvError } from "../errors.js";
import { InvariantViolation } from "../util/assert.js";
import { TickCork } from "../util/tick-cork.js";
import { encodeFrame } from "./protocol/frame.js";
import { encodeErrorPayload, STATUS, type Status } from "./protocol/status.js";

export interface ServerResponse {
  readonly status: Status;
  readonly payload: Uint8Array;
}

/**
 * An answer built only when its connection has room to send it: while a client does not read,
 * its answers wait as results (references to stored values), not as encoded bytes.
 */
export interface DeferredResponse {
  /** A lower bound of the payload's size, known without building it (response-size.ts). */
  readonly minimumBytes: number;
  build(): ServerResponse;
}

export type HandlerResult = ServerResponse | DeferredResponse;

export function isDeferred(result: HandlerResult): result is DeferredResponse {
  return typeof (result as Partial<DeferredResponse>).build === "function";
}

export interface OutputLimits {
  /** Largest answer payload: a larger one is answered TOO_LARGE, since no client could read it. */
  readonly maxResponseBytes: number;
  /**
   * Bytes in the socket's write buffer past which no more answers are built or written until
   * it drains (the connection also stops dispatching and reading meanwhile).
   */
  readonly outputPauseBytes: number;
  /**
   * Bytes owed to the client (in the write buffer, plus the minimum size of every answer
   * waiting) past which the connection is closed: it asks for far more than it reads.
   */
  readonly outputLimitBytes: number;
}

export type OutputEvent = "outputPaused" | "responseTooLarge";

/** A handler's result waiting to be written, in completion order. */
export interface Answer {
  readonly requestId: number;
  readonly command: number;
  readonly result: HandlerResult;
}

/**
 * The answers of one connection, like Redis's client output buffer with its soft and hard
 * limits: answers are built and written while the write buffer is below `outputPauseBytes`,
 * wait (unbuilt) while it is above, and the client is cut off once it owes more than
 * `outputLimitBytes`. So a client that pipelines a thousand gets of a large value and never
 * reads costs one write buffer, not a thousand encoded values.
 */
export class AnswerQueue {
  private waiting: Answer[] = [];
  private waitingHead = 0;
  private waitingBytes = 0;
  private paused = false;
  private readonly cork: TickCork;

  constructor(
    private readonly socket: Socket,
    private readonly limits: OutputLimits,
    private readonly onEvent: (event: OutputEvent) => void,
  ) {
    this.cork = new TickCork(socket);
  }

  /** True from a write that left the buffer past `outputPauseBytes` until 'drain'. */
  get isPaused(): boolean {
    return this.paused;
  }

  get isEmpty(): boolean {
    return this.waitingHead === this.waiting.length;
  }

  /** What the client owes: unsent bytes plus the least the waiting answers will take. */
  get owedBytes(): number {
    return this.socket.writableLength + this.waitingBytes;
  }

  /** Queues an answer; false when the client now owes more than the limit (close it). */
  add(answer: Answer): boolean {
    this.waiting.push(answer);
    this.waitingBytes += minimumBytesOf(answer.result);
    return this.owedBytes <= this.limits.outputLimitBytes;
  }

  /**
   * Builds and writes waiting answers while the write buffer has room, and hands each one to
   * `sent`; stops early when `sent` returns false (the connection is closing).
   */
  flush(sent: (answer: Answer, response: ServerResponse) => boolean): void {
    while (!this.paused && this.waitingHead < this.waiting.length) {
      const answer = this.waiting[this.waitingHead++] as Answer;
      this.waitingBytes -= minimumBytesOf(answer.result);
      const response = this.build(answer.result);
      this.write(answer.requestId, response);
      if (!sent(answer, response)) break;
    }
    if (this.waitingHead === this.waiting.length) this.clear();
  }

  /** Writes at once, ahead of waiting answers (a refusal that closes the connection). */
  write(requestId: number, response: ServerResponse): void {
    const roomLeft = this.cork.write(encodeFrame(response.status, requestId, response.payload));
    // write() returning false guarantees a 'drain' later, so a pause always ends.
    if (!roomLeft && this.socket.writableLength >= this.limits.outputPauseBytes && !this.paused) {
      this.paused = true;
      this.onEvent("outputPaused");
    }
  }

  drained(): void {
    this.paused = false;
  }

  clear(): void {
    this.waiting = [];
    this.waitingHead = 0;
    this.waitingBytes = 0;
  }

  /** An answer over the response limit is refused before it is built when its size shows early. */
  private build(result: HandlerResult): ServerResponse {
    if (isDeferred(result) && result.minimumBytes > this.limits.maxResponseBytes) return this.tooLarge(result.minimumBytes);
    const response = isDeferred(result) ? buildDeferred(result) : result;
    return response.payload.byteLength > this.limits.maxResponseBytes ? this.tooLarge(response.payload.byteLength) : response;
  }

  private tooLarge(bytes: number): ServerResponse {
    this.onEvent("responseTooLarge");
    return errorResponse(new KvError("TOO_LARGE", `the answer takes at least ${bytes} bytes; the response limit is ${this.limits.maxResponseBytes} bytes`));
  }
}

function minimumBytesOf(result: HandlerResult): number {
  return isDeferred(result) ? result.minimumBytes : result.payload.byteLength;
}

/** Building may fail like handling (an unencodable result), and becomes an answer the same way. */
function buildDeferred(result: DeferredResponse): ServerResponse {
  try {
    return result.build();
  } catch (error) {
    return responseForThrown(error);
  }
}

/** A KvError becomes its typed answer; anything else an INTERNAL one. */
export function responseForThrown(error: unknown): ServerResponse {
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

/** INVALID answers go out under the INVALID status: the connection closes after them. */
export function errorResponse(error: KvError): ServerResponse {
  const status = error.code === "INVALID" ? STATUS.INVALID : STATUS.ERROR;
  return { status, payload: encodeErrorPayload(error) };
}
