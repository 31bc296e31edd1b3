import type { ChildProcess } from "node:child_process";
import { KvError } from "../errors.js";

/**
 * Helpers for programs that run kv-node processes and wait on them: the integration test
 * harness, jepsen-lite and the benchmarks. Every wait has a deadline.
 */

/** One spawned process and what its owner knows about it. */
export class NodeProcess {
  hasExited = false;
  /** SIGSTOP'd: alive but unable to answer. */
  paused = false;
  /** Set when the owner stopped it on purpose; an exit without it is a crash. */
  killed = false;
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once("exit", () => {
        this.hasExited = true;
        resolve();
      });
    });
  }

  /** SIGKILL at once (after SIGCONT, so a paused process dies too); synchronous for exit hooks. */
  killNow(): void {
    if (this.hasExited) return;
    this.killed = true;
    this.child.kill("SIGCONT");
    this.child.kill("SIGKILL");
  }
}

/** Calls `probe` every `intervalMs` until it returns non-null or the deadline passes (then null). */
export async function pollUntil<T>(deadlineMs: number, probe: () => Promise<T | null>, intervalMs = 25): Promise<T | null> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const result = await probe();
    if (result !== null) return result;
    if (Date.now() >= deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** `promise`, or a TIMEOUT error naming `what` once `deadlineMs` has passed. */
export async function withDeadline<T>(promise: Promise<T>, deadlineMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KvError("TIMEOUT", `timed out after ${deadlineMs} ms waiting for ${what}`)), deadlineMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
