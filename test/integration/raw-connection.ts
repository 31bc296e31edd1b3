import { connect, type Socket } from "node:net";
import { KvError } from "../../src/errors.js";
import { parseHostPort } from "../../src/server/peers.js";
import { FrameDecoder, type Frame } from "../../src/server/protocol/frame.js";
import { decodeErrorPayload, STATUS } from "../../src/server/protocol/status.js";

/** What a server did with a bad input: answered (with a typed error, we hope) or hung up. */
export type RawOutcome =
  | { readonly kind: "answer"; readonly status: number; readonly requestId: number; readonly error: KvError | null }
  | { readonly kind: "closed" };

/**
 * A bare TCP connection that writes arbitrary bytes, for feeding a node input no well-behaved
 * client would send, and reads back whatever frames come (or the close).
 */
export class RawConnection {
  private readonly frames: Frame[] = [];
  private isClosed = false;
  private wake: () => void = () => undefined;

  private constructor(private readonly socket: Socket) {
    const decoder = new FrameDecoder();
    socket.on("data", (chunk: Buffer) => {
      decoder.push(chunk, (frame) => this.frames.push({ ...frame, payload: frame.payload.slice() }));
      this.wake();
    });
    socket.on("error", () => undefined); // a reset is one of the outcomes: 'close' follows
    socket.on("close", () => {
      this.isClosed = true;
      this.wake();
    });
  }

  static async open(address: string): Promise<RawConnection> {
    const { host, port } = parseHostPort(address);
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawConnection(socket);
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Half-closes our side: the server then knows no more bytes of a partial frame will come. */
  end(): void {
    this.socket.end();
  }

  /** The next answer, or "closed"; throws if neither happens within the deadline. */
  async next(deadlineMs: number): Promise<RawOutcome> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return answerOf(frame);
      if (this.isClosed) return { kind: "closed" };
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new Error(`neither an answer nor a close within ${deadlineMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remainingMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Waits for the server to close the connection, skipping any answers before it. */
  async closedWithin(deadlineMs: number): Promise<RawOutcome[]> {
    const answers: RawOutcome[] = [];
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const outcome = await this.next(Math.max(1, deadline - Date.now()));
      if (outcome.kind === "closed") return answers;
      answers.push(outcome);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function answerOf(frame: Frame): RawOutcome {
  const failed = frame.kind === STATUS.ERROR || frame.kind === STATUS.INVALID;
  return { kind: "answer", status: frame.kind, requestId: frame.requestId, error: failed ? decodeErrorPayload(frame.payload) : null };
}
