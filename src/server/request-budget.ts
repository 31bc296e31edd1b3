import { assert } from "../util/assert.js";

/** Default of `--max-inflight-request-bytes`: four of the largest requests at once. */
export const DEFAULT_MAX_INFLIGHT_REQUEST_BYTES = 256 * 1024 * 1024;

/**
 * Bytes of request payloads a node holds at once: read (or being read) and not yet answered,
 * across every client connection. A connection reserves a frame's declared payload size
 * before it reads the payload, so the bound holds however many connections send at once; past
 * it a connection stops reading and waits in line until answers free room.
 *
 * One reservation is always granted when nothing is held, so a request larger than the whole
 * budget is still served, alone.
 */
export class RequestByteBudget {
  private heldBytes = 0;
  /** In arrival order (a Set keeps insertion order). */
  private readonly waiters = new Set<() => boolean>();
  /** A waiter that releases bytes while it is woken must not start a second round of waking. */
  private waking = false;

  constructor(readonly limitBytes: number) {
    assert(Number.isSafeInteger(limitBytes) && limitBytes > 0, "the request byte budget must be a positive integer");
  }

  get usedBytes(): number {
    return this.heldBytes;
  }

  /** Connections waiting for room. */
  get waiting(): number {
    return this.waiters.size;
  }

  tryReserve(bytes: number): boolean {
    if (this.heldBytes > 0 && this.heldBytes + bytes > this.limitBytes) return false;
    this.heldBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    assert(bytes <= this.heldBytes, `releasing ${bytes} request bytes, only ${this.heldBytes} held`);
    this.heldBytes -= bytes;
    this.wakeWaiters();
  }

  /**
   * Queues `retry`, called when room may have freed. It returns true once the waiter needs no
   * more room (it is then forgotten), false when it still does (it keeps its place at the head
   * of the line). It must not call `wait` itself.
   */
  wait(retry: () => boolean): void {
    this.waiters.add(retry);
  }

  cancel(retry: () => boolean): void {
    this.waiters.delete(retry);
  }

  /** In arrival order, and only while there is room: a release never wakes every waiter at once. */
  private wakeWaiters(): void {
    if (this.waking) return;
    this.waking = true;
    try {
      for (const retry of this.waiters) {
        if (this.heldBytes >= this.limitBytes || !retry()) return;
        this.waiters.delete(retry);
      }
    } finally {
      this.waking = false;
    }
  }
}
