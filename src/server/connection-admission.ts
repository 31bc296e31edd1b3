import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { ConnectionContext, ConnectionEvent, ConnectionInfo } from "./connection.js";
import { ConnectionSlots, ThrottledLog, type SlotKind } from "./connection-limits.js";
import type { Counter, Metrics } from "./metrics.js";
import { RequestByteBudget } from "./request-budget.js";

/** A bound that bites is logged at most this often, with the count since the last line. */
const LIMIT_LOG_INTERVAL_MS = 1000;

export interface ConnectionAdmissionOptions {
  /** Client connections accepted at once (`--max-connections`); peers have slots of their own. */
  readonly maxConnections: number;
  /** Request bytes in flight across all client connections (`--max-inflight-request-bytes`). */
  readonly maxInFlightRequestBytes: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface AdmittedConnection {
  readonly context: ConnectionContext;
  /** Gives the slot back; call once, when the connection has closed. */
  release(): void;
}

interface EventReport {
  readonly metric: string;
  readonly help: string;
  readonly level: "debug" | "info" | "warn";
  readonly message: string;
  /** The setting that bit. */
  readonly setting: string;
}

/** What each connection event leaves behind: a counter, and a throttled log line naming the setting. */
const EVENT_REPORTS: Readonly<Record<ConnectionEvent, EventReport>> = {
  outputPaused: {
    metric: "kv_connection_output_pauses_total",
    help: "Times a client's unsent answers passed the pause bound: reading from it stopped until it drained.",
    level: "debug",
    message: "client does not read its answers: paused",
    setting: "--client-output-pause-bytes",
  },
  outputLimit: {
    metric: "kv_connections_output_limit_closed_total",
    help: "Client connections closed for owing more answer bytes than the output limit.",
    level: "warn",
    message: "client closed: it owes more answer bytes than the output limit",
    setting: "--client-output-limit-bytes",
  },
  responseTooLarge: {
    metric: "kv_responses_too_large_total",
    help: "Answers refused with TOO_LARGE because they exceed the response limit.",
    level: "warn",
    message: "answer over the response limit refused with TOO_LARGE",
    setting: "maxResponseBytes (MAX_FRAME_BYTES)",
  },
  requestTooLarge: {
    metric: "kv_requests_too_large_total",
    help: "Client requests refused with TOO_LARGE because they exceed --max-request-bytes.",
    level: "warn",
    message: "request over the request limit refused with TOO_LARGE",
    setting: "--max-request-bytes",
  },
  idleTimeout: {
    metric: "kv_connections_idle_closed_total",
    help: "Client connections closed after --idle-timeout without traffic.",
    level: "info",
    message: "idle client connection closed",
    setting: "--idle-timeout",
  },
  requestBudgetWait: {
    metric: "kv_request_budget_waits_total",
    help: "Times a connection stopped reading because the node's request byte budget was spent.",
    level: "info",
    message: "request byte budget spent: connections wait before reading more",
    setting: "--max-inflight-request-bytes",
  },
  notPeer: {
    metric: "kv_connections_not_peer_total",
    help: "Connections on a slot kept for peers dropped because they did not complete a peer handshake in time.",
    level: "warn",
    message: "connection on a peer slot was not a peer: dropped",
    setting: "--max-connections",
  },
};

interface EventPolicy {
  readonly counter: Counter;
  readonly log: ThrottledLog;
}

/**
 * The node's side of the connection bounds: who gets a slot at accept (the rest are destroyed
 * at once), the request byte budget shared by all connections, and what a bound that bites
 * leaves behind: a counter in /metrics and a throttled log line saying which setting bit.
 */
export class ConnectionAdmission {
  readonly requestBudget: RequestByteBudget;
  private readonly slots: ConnectionSlots;
  private readonly refusals: EventPolicy;
  private readonly events: Readonly<Record<ConnectionEvent, EventPolicy>>;
  /** The address of the last connection a bound bit, for the throttled log line. */
  private lastRemote = "";

  constructor(private readonly options: ConnectionAdmissionOptions) {
    this.slots = new ConnectionSlots(options.maxConnections);
    this.requestBudget = new RequestByteBudget(options.maxInFlightRequestBytes);
    const { metrics } = options;
    metrics.gauge("kv_client_connections", "Client connections open (and links not yet proven to be peers).", () => this.slots.clientConnections);
    metrics.gauge("kv_peer_connections", "Incoming connections on the slots kept for peers.", () => this.slots.peerConnections);
    metrics.gauge("kv_max_connections", "Client connections accepted at once (--max-connections).", () => this.slots.maxConnections);
    metrics.gauge("kv_request_bytes_in_flight", "Request bytes read and not yet answered, all client connections together.", () => this.requestBudget.usedBytes);
    metrics.gauge("kv_request_bytes_budget", "Request bytes allowed in flight (--max-inflight-request-bytes).", () => this.requestBudget.limitBytes);
    this.refusals = this.policy("kv_connections_refused_total", "Connections destroyed at accept: every client and peer slot was taken.", "warn", (count) => ({
      message: "connection refused: --max-connections reached",
      details: { refused: count, clients: this.slots.clientConnections, peers: this.slots.peerConnections, maxConnections: this.slots.maxConnections },
    }));
    this.events = this.eventPolicies();
  }

  /** A slot and a context to serve `socket` with, or null: it was refused and destroyed. */
  admit(socket: Socket): AdmittedConnection | null {
    let slot: SlotKind | null = this.slots.take();
    if (slot === null) {
      socket.destroy();
      this.refusals.counter.increment();
      this.refusals.log.occurred();
      return null;
    }
    const context: ConnectionContext = {
      requestBudget: this.requestBudget,
      peerOnly: slot === "peer",
      onPeerAdmitted: () => {
        if (slot !== null) slot = this.slots.promote(slot);
      },
      onEvent: (event, info) => this.report(event, info),
    };
    return {
      context,
      release: () => {
        if (slot !== null) this.slots.release(slot);
        slot = null;
      },
    };
  }

  private report(event: ConnectionEvent, info: ConnectionInfo): void {
    const policy = this.events[event];
    policy.counter.increment();
    this.lastRemote = info.remoteAddress;
    policy.log.occurred();
  }

  private eventPolicies(): Readonly<Record<ConnectionEvent, EventPolicy>> {
    const policies = Object.entries(EVENT_REPORTS).map(([event, report]) => {
      const policy = this.policy(report.metric, report.help, report.level, (count) => ({
        message: report.message,
        details: { count, setting: report.setting, last: this.lastRemote, ...(event === "requestBudgetWait" ? this.budgetFigures() : {}) },
      }));
      return [event, policy] as const;
    });
    return Object.fromEntries(policies) as Record<ConnectionEvent, EventPolicy>;
  }

  private budgetFigures(): Record<string, number> {
    return { inFlightBytes: this.requestBudget.usedBytes, waiting: this.requestBudget.waiting };
  }

  private policy(
    name: string,
    help: string,
    level: "debug" | "info" | "warn",
    describe: (count: number) => { readonly message: string; readonly details: Record<string, unknown> },
  ): EventPolicy {
    const counter = this.options.metrics.counter(name, help);
    const log = new ThrottledLog(LIMIT_LOG_INTERVAL_MS, (count) => {
      const { message, details } = describe(count);
      this.options.logger[level](details, message);
    });
    return { counter, log };
  }
}
