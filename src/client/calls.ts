import type { EngineLimits } from "../engine/limits.js";
import type { SessionStamp } from "../engine/sessions.js";
import { KvError } from "../errors.js";
import { MAX_REQUEST_TIMEOUT_MS, MIN_REQUEST_TIMEOUT_MS } from "../server/protocol/operations.js";
import { KvBusyError, KvConnectionError, KvTimeoutError, KvValueError, toClientError } from "./errors.js";
import { requests, type OperationRequest } from "./requests.js";
import { Router, type Route } from "./router.js";
import { WriteSession } from "./session.js";
import type { IntMode } from "./values.js";

/** Client-wide settings, defaults applied. */
export interface ClientSettings {
  readonly ints: IntMode;
  readonly timeoutMs: number;
  readonly consistency: "linearizable" | "serializable";
  readonly connectionsPerNode: number;
  readonly maxInFlight: number;
  readonly limits: EngineLimits;
  readonly signal: AbortSignal | undefined;
}

export interface CallOptions {
  /** The whole call, retries included; default the client's timeoutMs. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Per-attempt fields of a request: how long the server may take, and the write's stamp. */
export interface AttemptFields {
  readonly timeoutMs: number;
  readonly session?: SessionStamp;
}

/** How one operation is sent and retried. */
export interface CallSpec<Result> {
  readonly route: Route;
  /** Changes state: once sent without an answer, its outcome is unknown. */
  readonly write: boolean;
  /** Carries a session stamp, so a retry applies once. */
  readonly stamped: boolean;
  /** A retry after an unknown outcome is harmless (reads, stamped writes). */
  readonly idempotent: boolean;
  /** Ask this node only: no redirect, no other member. */
  readonly node?: string;
  /** The server may legitimately use the whole deadline (membership changes, snapshots). */
  readonly wholeDeadline?: boolean;
  build(fields: AttemptFields): OperationRequest<Result>;
}

/**
 * NOT_LEADER hints followed in a row without a pause; more means the hints loop, and the call
 * pauses before asking again. A pause (no hint, an unreachable node) starts the count again: an
 * election may have happened. A call that runs out of time this way fails with UNAVAILABLE.
 */
const MAX_REDIRECTS = 5;
const FIRST_BACKOFF_MS = 10;
const MAX_BACKOFF_MS = 500;
/**
 * One attempt gets a share of the call's deadline (at least MIN_ATTEMPT_MS), so a node that
 * stopped answering (SIGSTOP, a partition) leaves time to try another one.
 */
const ATTEMPTS_PER_DEADLINE = 3;
const MIN_ATTEMPT_MS = 2000;

/**
 * What every view of one client shares: settings, members and connections, the write session,
 * and the bound on calls in flight.
 */
export class ClientCore {
  readonly router: Router;
  readonly session: WriteSession;
  private inFlight = 0;
  private closed = false;

  constructor(
    readonly settings: ClientSettings,
    seeds: readonly string[],
  ) {
    this.router = new Router(seeds, { connectionsPerNode: settings.connectionsPerNode, maxInFlight: settings.maxInFlight });
    this.session = new WriteSession(() => this.execute(REGISTER_SESSION, {}));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Runs one operation: `prepare` (validation, conversion) and every attempt. Errors reach the
   * caller as their client classes. Past `maxInFlight` calls the next fails with BUSY at once.
   */
  async call<Result>(prepare: () => CallSpec<Result>, options: CallOptions): Promise<Result> {
    if (this.inFlight >= this.settings.maxInFlight) {
      throw new KvBusyError(`${this.settings.maxInFlight} calls already in flight on this client`);
    }
    this.inFlight += 1;
    try {
      return await this.execute(prepare(), options);
    } catch (error) {
      throw toClientError(error);
    } finally {
      this.inFlight -= 1;
    }
  }

  /**
   * Without the in-flight bound, and errors as raised: for the client's own calls made on behalf
   * of one caller's call (session registration, the per-member status requests).
   */
  execute<Result>(spec: CallSpec<Result>, options: CallOptions): Promise<Result> {
    if (this.closed) return Promise.reject(new KvConnectionError("the client is closed"));
    const timeoutMs = options.timeoutMs ?? this.settings.timeoutMs;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) return Promise.reject(new KvValueError(`timeoutMs must be a positive number, got ${timeoutMs}`));
    return new CallRun(this, spec, timeoutMs, combinedSignal(this.settings.signal, options.signal)).run();
  }

  close(): void {
    this.closed = true;
    this.router.close();
  }
}

const REGISTER_SESSION: CallSpec<bigint> = {
  route: "leader",
  write: true,
  stamped: false,
  // A repeated registration leaves an unused session behind, which expires on its own.
  idempotent: true,
  build: (fields) => requests.registerSession({ timeoutMs: fields.timeoutMs }),
};

type Step<Result> = { readonly done: true; readonly result: Result } | { readonly done: false; readonly next: "retry" | "pause" };

/** One call: attempts until an answer, a final error, or the deadline. */
class CallRun<Result> {
  private readonly deadline: number;
  private stamp: SessionStamp | null = null;
  /** A write was sent and its answer lost: it may have applied. */
  private inDoubt = false;
  private redirects = 0;
  private backoffMs = FIRST_BACKOFF_MS;
  private target: string | null = null;
  private lastError: KvError | null = null;
  /** Some node answered (with a refusal): the cluster is reachable, so the failure is UNAVAILABLE. */
  private reachedNode = false;

  constructor(
    private readonly core: ClientCore,
    private readonly spec: CallSpec<Result>,
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.deadline = Date.now() + timeoutMs;
  }

  async run(): Promise<Result> {
    try {
      for (;;) {
        this.signal?.throwIfAborted();
        if (this.core.isClosed) throw new KvConnectionError("the client is closed");
        const remainingMs = this.deadline - Date.now();
        if (remainingMs <= 0) throw this.deadlineError();
        const step = await this.attempt(this.nextTarget(), remainingMs);
        if (step.done) return step.result;
        if (step.next === "pause") await this.pause();
      }
    } finally {
      if (this.stamp !== null) this.core.session.settle(this.stamp);
    }
  }

  private nextTarget(): string {
    const target = this.spec.node ?? this.target ?? this.core.router.pick(this.spec.route);
    this.target = null;
    return target;
  }

  private async attempt(address: string, remainingMs: number): Promise<Step<Result>> {
    if (this.spec.stamped && this.stamp === null) this.stamp = await this.core.session.begin();
    const connection = await this.core.router.connection(address, remainingMs).catch((error: unknown) => {
      if (!isCode(error, "CONNECTION")) throw error;
      this.lastError = error;
      this.core.router.markDown(address);
      return null;
    });
    if (connection === null) return { done: false, next: "pause" };
    const attemptMs = this.spec.wholeDeadline === true ? remainingMs : Math.min(remainingMs, Math.max(MIN_ATTEMPT_MS, this.timeoutMs / ATTEMPTS_PER_DEADLINE));
    const request = this.spec.build(this.fields(attemptMs));
    try {
      const response = await connection.request(request.code, request.payload, { timeoutMs: attemptMs, ...(this.signal === undefined ? {} : { signal: this.signal }) });
      this.answered(address);
      return { done: true, result: request.decodeResult(response) };
    } catch (error) {
      if (!(error instanceof KvError)) throw error; // the caller's abort reason
      return this.react(error, address);
    }
  }

  private fields(attemptMs: number): AttemptFields {
    const timeoutMs = Math.min(MAX_REQUEST_TIMEOUT_MS, Math.max(MIN_REQUEST_TIMEOUT_MS, Math.ceil(attemptMs)));
    return this.stamp === null ? { timeoutMs } : { timeoutMs, session: this.core.session.refresh(this.stamp) };
  }

  /** A node that served a leader-only call without redirecting is the leader. */
  private answered(address: string): void {
    this.core.router.markUp(address);
    if (this.spec.route === "leader" && this.spec.node === undefined) this.core.router.setLeader(address);
  }

  /** What an error answer means for the next attempt; final errors are thrown. */
  private react(error: KvError, address: string): Step<Result> {
    this.lastError = error;
    if (error.code === "NOT_LEADER" || error.code === "UNAVAILABLE") this.reachedNode = true;
    switch (error.code) {
      case "NOT_LEADER":
        return this.redirect(error, address);
      case "UNAVAILABLE":
        if (this.core.router.leader === address) this.core.router.setLeader(null);
        return this.retryable("pause");
      case "CONNECTION":
      case "TIMEOUT":
        this.core.router.markDown(address);
        return this.unknownOutcome(error);
      case "NOT_FOUND":
        if (this.stamp === null) throw error;
        return this.sessionExpired(this.stamp);
      case "BUSY":
      case "NO_SPACE":
        // A refusal says nothing of an earlier attempt in doubt: keep asking (the session makes
        // the retry safe) until the deadline, which then reports the outcome as unknown.
        if (this.inDoubt) return { done: false, next: "pause" };
        throw error;
      case "TOO_LARGE":
        // Final: the request, or its answer, is just as large on any node and at any later time.
        throw error;
      default:
        throw error;
    }
  }

  private redirect(error: KvError, address: string): Step<Result> {
    this.core.router.markUp(address);
    const hint = error.details.leader;
    if (hint === undefined || hint === address) {
      this.core.router.setLeader(null);
      return this.retryable("pause");
    }
    this.redirects += 1;
    if (this.redirects > MAX_REDIRECTS) {
      // Hints that keep pointing elsewhere are stale (an election is under way): forget them
      // and pause. Failing here would turn a write in doubt into a wrong "not applied".
      this.core.router.setLeader(null);
      return this.retryable("pause");
    }
    this.core.router.setLeader(hint);
    this.target = hint;
    return this.retryable("retry");
  }

  /** A pinned call has nowhere else to go: it retries the same node within its deadline. */
  private retryable(next: "retry" | "pause"): Step<Result> {
    return { done: false, next: this.spec.node === undefined ? next : "pause" };
  }

  /** The request may have reached the server: a write is in doubt from now on. */
  private unknownOutcome(error: KvError): Step<Result> {
    if (!this.spec.write) return { done: false, next: "pause" };
    if (!this.spec.idempotent) throw new KvTimeoutError(`${error.message}; the outcome is unknown`);
    this.inDoubt = true;
    return { done: false, next: "pause" };
  }

  /** The server forgot the session: a write in doubt under it can no longer be deduplicated. */
  private sessionExpired(stamp: SessionStamp): Step<Result> {
    this.core.session.expire(stamp);
    this.stamp = null;
    if (this.inDoubt) throw new KvTimeoutError("the client session expired while a write was in doubt; its outcome is unknown");
    return { done: false, next: "retry" };
  }

  private deadlineError(): KvError {
    if (this.inDoubt) return new KvTimeoutError(`no answer within ${this.timeoutMs} ms; the outcome of the write is unknown`);
    const last = this.lastError;
    if (last === null) return new KvTimeoutError(`no answer within ${this.timeoutMs} ms`);
    const code = this.reachedNode ? "UNAVAILABLE" : last.code;
    return new KvError(code, `no answer within ${this.timeoutMs} ms; last error: ${last.message}`, last.details);
  }

  /** Exponential backoff with jitter (half to full), never past the deadline. */
  private async pause(): Promise<void> {
    const jittered = this.backoffMs / 2 + Math.random() * (this.backoffMs / 2);
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.redirects = 0;
    await sleep(Math.max(0, Math.min(jittered, this.deadline - Date.now())), this.signal);
  }
}

function isCode(error: unknown, code: KvError["code"]): error is KvError {
  return error instanceof KvError && error.code === code;
}

function combinedSignal(client: AbortSignal | undefined, call: AbortSignal | undefined): AbortSignal | undefined {
  if (client === undefined) return call;
  if (call === undefined) return client;
  return AbortSignal.any([client, call]);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
