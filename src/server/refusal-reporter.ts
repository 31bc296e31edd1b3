import type { Logger } from "pino";
import { REFUSAL_REASONS, type RefusalReason, type RefusedMessage } from "../raft/types.js";
import type { Counter, Metrics } from "./metrics.js";

/** At most one log line per refusal reason in this interval; the count is never limited. */
const REFUSAL_LOG_INTERVAL_MS = 1000;

/**
 * Logs and counts the peer messages the Raft core refused (Ready.refusedMessages): each one is a
 * broken or forged peer, or a node that lost its disk, so an operator must hear of it, but a
 * flood of them must not flood the log. Counted in `kv_peer_messages_refused_total{reason}`.
 */
export class RefusalReporter {
  private readonly counters: Readonly<Record<RefusalReason, Counter>>;
  private readonly lastLoggedAtMs = new Map<RefusalReason, number>();
  /** Refusals not logged since the last line of their reason. */
  private readonly unlogged = new Map<RefusalReason, number>();

  constructor(
    metrics: Metrics,
    private readonly logger: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.counters = metrics.labelledCounter(
      "kv_peer_messages_refused_total",
      "Peer messages refused because they contradict this node's Raft state (two leaders in a term, a match beyond the log, a term beyond the bound, ...), by reason.",
      "reason",
      REFUSAL_REASONS,
    );
  }

  report(refusals: readonly RefusedMessage[]): void {
    for (const refusal of refusals) {
      this.counters[refusal.reason].increment(refusal.count);
      this.log(refusal);
    }
  }

  private log(refusal: RefusedMessage): void {
    const { reason, from, type, term, count } = refusal;
    const now = this.nowMs();
    const lastLoggedAt = this.lastLoggedAtMs.get(reason);
    if (lastLoggedAt !== undefined && now - lastLoggedAt < REFUSAL_LOG_INTERVAL_MS) {
      this.unlogged.set(reason, (this.unlogged.get(reason) ?? 0) + count);
      return;
    }
    const notLoggedBefore = this.unlogged.get(reason) ?? 0;
    this.unlogged.delete(reason);
    this.lastLoggedAtMs.set(reason, now);
    this.logger.warn({ reason, from, type, term, count, notLoggedBefore }, "peer message refused: it contradicts this node's Raft state");
  }
}
