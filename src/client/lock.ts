import { sleep, type CallOptions } from "./calls.js";
import type { KvClient } from "./client.js";
import { KvBusyError } from "./errors.js";

export interface LockWaitOptions extends CallOptions {
  /**
   * While the lock is held by another owner: false (default) fails at once with KvBusyError;
   * true retries with backoff for up to the client's timeoutMs; `{ timeoutMs }` for that long.
   */
  readonly wait?: boolean | { readonly timeoutMs: number };
}

export interface LockAcquireOptions extends LockWaitOptions {
  /** Seconds, fractions allowed. */
  readonly ttl: number;
  /** Extend every ttl/3 until released. */
  readonly autoExtend?: boolean;
}

const FIRST_WAIT_BACKOFF_MS = 10;
const MAX_WAIT_BACKOFF_MS = 500;
/** autoExtend extends this many times per TTL, so one lost extension never loses the lock. */
const EXTENSIONS_PER_TTL = 3;

/**
 * A held lock: `await using lock = await Lock.acquire(client, name, owner, { ttl })`. Disposal
 * releases it. `token` is the fencing token to pass to fenced writes.
 *
 * A lock held by another owner is a KvBusyError (code BUSY: nothing happened, try again later),
 * both without `wait` and when the wait runs out.
 */
export class Lock implements AsyncDisposable {
  private released = false;
  private extender: NodeJS.Timeout | undefined;

  private constructor(
    private readonly client: KvClient,
    readonly name: string,
    readonly owner: string,
    readonly token: bigint,
    private readonly ttl: number,
  ) {}

  static async acquire(client: KvClient, name: string, owner: string, options: LockAcquireOptions): Promise<Lock> {
    const waitMs = waitBudgetMs(options.wait, client);
    const deadline = Date.now() + waitMs;
    let backoffMs = FIRST_WAIT_BACKOFF_MS;
    for (;;) {
      const result = await client.lock(name, owner, options.ttl, callOptions(options));
      if (result.acquired && result.token !== null) {
        const lock = new Lock(client, name, owner, result.token, options.ttl);
        if (options.autoExtend === true) lock.startExtending();
        return lock;
      }
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) {
        throw new KvBusyError(waitMs === 0 ? `lock "${name}" is held by another owner` : `lock "${name}" is still held by another owner after ${waitMs} ms`);
      }
      await sleep(Math.min(remainingMs, backoffMs / 2 + Math.random() * (backoffMs / 2)), options.signal);
      backoffMs = Math.min(backoffMs * 2, MAX_WAIT_BACKOFF_MS);
    }
  }

  /** true if still held by this owner and extended; default the TTL it was acquired with. */
  extend(ttl = this.ttl): Promise<boolean> {
    if (this.released) return Promise.resolve(false);
    return this.client.extend(this.name, this.owner, ttl);
  }

  /** true if it was still held; later calls answer false without asking. */
  async release(): Promise<boolean> {
    if (this.released) return false;
    this.released = true;
    clearInterval(this.extender);
    return this.client.unlock(this.name, this.owner);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** Extends every ttl/3; stops when released, when an extension finds the lock lost, or on close. */
  private startExtending(): void {
    const intervalMs = Math.max(1, (this.ttl * 1000) / EXTENSIONS_PER_TTL);
    this.extender = setInterval(() => {
      this.extend().then(
        (held) => {
          if (!held) clearInterval(this.extender);
        },
        () => {
          // A failed extension is retried at the next interval, unless the client is gone.
          if (this.client.isClosed) clearInterval(this.extender);
        },
      );
    }, intervalMs);
    this.extender.unref();
  }
}

function waitBudgetMs(wait: LockWaitOptions["wait"], client: KvClient): number {
  if (wait === undefined || wait === false) return 0;
  return wait === true ? client.timeoutMs : wait.timeoutMs;
}

function callOptions(options: CallOptions): CallOptions {
  return { ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }), ...(options.signal === undefined ? {} : { signal: options.signal }) };
}
