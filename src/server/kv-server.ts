import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import type { EngineLimits } from "../engine/limits.js";
import { encode } from "../engine/codec.js";
import { KvError } from "../errors.js";
import { parseHostPort } from "./peers.js";
import {
  DEFAULT_CONNECTION_LIMITS,
  serveConnection,
  type ConnectionInfo,
  type ConnectionLimits,
  type HandlerResult,
  type ServedConnection,
  type ServerRequest,
  type ServerResponse,
} from "./connection.js";
import { ConnectionAdmission } from "./connection-admission.js";
import type { Metrics } from "./metrics.js";
import { deferredOutcome } from "./response-size.js";
import { COMMAND, commandByCode } from "./protocol/commands.js";
import { parseOperation, rejection, renderOutcome, type Operation } from "./protocol/operations.js";
import { STATUS } from "./protocol/status.js";
import type { PeerGate } from "./peer-gate.js";
import type { ReplicatedNode } from "./replicated-node.js";

export interface KvServerOptions {
  readonly bind: string;
  /** Admits peer links (handshake, proof) and hands their Raft messages on. */
  readonly peers: PeerGate;
  readonly limits: EngineLimits;
  /** Deadline of a request that names none. */
  readonly defaultTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Client connections accepted at once; peers have slots of their own (connection-limits.ts). */
  readonly maxConnections: number;
  /** Request bytes in flight across all client connections. */
  readonly maxInFlightRequestBytes: number;
  /** Bounds of each connection; the defaults of connection.ts where absent. */
  readonly connectionLimits?: Partial<ConnectionLimits>;
}

/**
 * The one listener of a node: clients and peers share the address (SPEC §5). A connection that
 * opens with a handshake is a peer link carrying Raft messages; any other is a client.
 *
 * It listens before the node exists: a node with an empty data directory first learns from its
 * peers' handshakes whether to found a cluster or join one, and they must be able to reach it
 * meanwhile. Until `attach`, client requests are answered UNAVAILABLE.
 */
export class KvServer {
  private readonly connections = new Set<ServedConnection>();
  private attached: ReplicatedNode | null = null;
  private readonly admission: ConnectionAdmission;
  private readonly connectionLimits: ConnectionLimits;

  private constructor(
    private readonly server: Server,
    private readonly options: KvServerOptions,
  ) {
    this.admission = new ConnectionAdmission(options);
    this.connectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits };
  }

  static async start(options: KvServerOptions): Promise<KvServer> {
    const { host, port } = parseHostPort(options.bind);
    const server = createServer();
    const kvServer = new KvServer(server, options);
    server.on("connection", (socket) => kvServer.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return kvServer;
  }

  attach(node: ReplicatedNode): void {
    this.attached = node;
  }

  private get node(): ReplicatedNode {
    if (this.attached === null) throw new KvError("UNAVAILABLE", "the node is starting: it is still finding out which cluster it belongs to");
    return this.attached;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.close();
    await closed;
  }

  /** Past --max-connections the socket is destroyed at once (ConnectionAdmission). */
  private accept(socket: Socket): void {
    const admitted = this.admission.admit(socket);
    if (admitted === null) return;
    const connection = serveConnection(socket, (request, info) => this.handle(request, info), this.connectionLimits, admitted.context);
    this.connections.add(connection);
    void connection.closed.then(() => {
      this.connections.delete(connection);
      admitted.release();
      this.options.peers.closed(connection.info);
    });
  }

  private async handle(request: ServerRequest, info: ConnectionInfo): Promise<HandlerResult> {
    if (request.command === COMMAND.handshake) return this.options.peers.hello(request.payload, info);
    if (request.command === COMMAND.handshakeProof) return this.options.peers.proof(request.payload, info);
    if (request.command === COMMAND.raftMessages) return this.options.peers.messages(request.payload, info);
    const name = commandByCode(request.command)?.name;
    if (name === undefined) throw new KvError("INVALID", `unknown command 0x${request.command.toString(16)}`);
    const { operation, timeoutMs } = parseOperation(request.command, request.payload, this.options.limits);
    return this.execute(name, operation, timeoutMs ?? this.options.defaultTimeoutMs);
  }

  private async execute(name: string, operation: Operation, timeoutMs: number): Promise<HandlerResult> {
    switch (operation.kind) {
      case "write":
        return renderOutcome(name, await this.node.write(operation.command, timeoutMs));
      case "read":
        // Read results can be large (getPattern, mget): sized first, built when sent.
        return deferredOutcome(name, await this.node.read(operation.query, operation.consistency, timeoutMs), this.connectionLimits.maxResponseBytes);
      case "ping":
        return ok("PONG");
      case "info":
        return ok({ ...this.node.status(), engine: this.node.engineInfo(), wal: this.node.logStats() });
      case "clusterStatus":
        return ok(this.node.status());
      case "memberAdd":
        return ok(await this.node.addMember(operation.id, operation.address, timeoutMs, { force: operation.force }));
      case "memberRemove":
        return ok(await this.node.changeMembership({ type: "remove", node: operation.id }, timeoutMs, { force: operation.force }));
      case "memberPromote":
        return ok(await this.node.promoteMember(operation.id, timeoutMs, { force: operation.force }));
      case "transferLeader":
        return ok(await this.node.transferLeadershipTo(operation.to, timeoutMs));
      case "snapshotSave":
        return ok(await this.node.snapshotNow());
      case "rejected":
        return renderOutcome(name, rejection(operation.error));
      case "snapshotRead":
        return ok(await this.node.readSnapshotFile(operation.offset, operation.maxBytes));
    }
  }
}

function ok(value: unknown): ServerResponse {
  return { status: STATUS.OK, payload: encode(value) };
}
