import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import type { EngineLimits } from "../engine/limits.js";
import { encode } from "../engine/codec.js";
import { KvError } from "../errors.js";
import { decodeMessages } from "./peer-codec.js";
import { parseHostPort } from "./peers.js";
import { serveConnection, type ConnectionInfo, type ServedConnection, type ServerRequest, type ServerResponse } from "./connection.js";
import { COMMAND, commandByCode } from "./protocol/commands.js";
import { checkHandshake, readHandshake } from "./protocol/handshake.js";
import { parseOperation, rejection, renderOutcome, type Operation } from "./protocol/operations.js";
import { EMPTY_PAYLOAD, STATUS } from "./protocol/status.js";
import type { ReplicatedNode } from "./replicated-node.js";

export interface KvServerOptions {
  readonly bind: string;
  readonly clusterId: string;
  readonly limits: EngineLimits;
  /** Deadline of a request that names none. */
  readonly defaultTimeoutMs: number;
  readonly logger: Logger;
}

/**
 * The one listener of a node: clients and peers share the address (SPEC §5). A connection that
 * opens with a handshake is a peer link carrying Raft messages; any other is a client.
 */
export class KvServer {
  private readonly connections = new Set<ServedConnection>();

  private constructor(
    private readonly server: Server,
    private readonly node: ReplicatedNode,
    private readonly options: KvServerOptions,
  ) {}

  static async start(node: ReplicatedNode, options: KvServerOptions): Promise<KvServer> {
    const { host, port } = parseHostPort(options.bind);
    const server = createServer();
    const kvServer = new KvServer(server, node, options);
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

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.close();
    await closed;
  }

  private accept(socket: Socket): void {
    const connection = serveConnection(socket, (request, info) => this.handle(request, info));
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
  }

  private async handle(request: ServerRequest, info: ConnectionInfo): Promise<ServerResponse> {
    if (request.command === COMMAND.handshake) return this.handshake(request, info);
    if (request.command === COMMAND.raftMessages) {
      this.node.receive(decodeMessages(request.payload));
      return { status: STATUS.OK, payload: EMPTY_PAYLOAD };
    }
    const name = commandByCode(request.command)?.name;
    if (name === undefined) throw new KvError("INVALID", `unknown command 0x${request.command.toString(16)}`);
    const { operation, timeoutMs } = parseOperation(request.command, request.payload, this.options.limits);
    return this.execute(name, operation, timeoutMs ?? this.options.defaultTimeoutMs);
  }

  private handshake(request: ServerRequest, info: ConnectionInfo): ServerResponse {
    const handshake = readHandshake(request.payload);
    try {
      checkHandshake(handshake, this.options.clusterId);
    } catch (error) {
      this.options.logger.warn({ peer: handshake.nodeId, from: info.remoteAddress, reason: (error as Error).message }, "peer refused");
      throw error;
    }
    return { status: STATUS.OK, payload: EMPTY_PAYLOAD };
  }

  private async execute(name: string, operation: Operation, timeoutMs: number): Promise<ServerResponse> {
    switch (operation.kind) {
      case "write":
        return renderOutcome(name, await this.node.write(operation.command, timeoutMs));
      case "read":
        return renderOutcome(name, await this.node.read(operation.query, operation.consistency, timeoutMs));
      case "ping":
        return ok("PONG");
      case "info":
        return ok({ ...this.node.status(), engine: this.node.engineInfo(), wal: this.node.logStats() });
      case "clusterStatus":
        return ok(this.node.status());
      case "memberAdd":
        return ok(await this.node.addMember(operation.id, operation.address, timeoutMs));
      case "memberRemove":
        return ok(await this.node.changeMembership({ type: "remove", node: operation.id }, timeoutMs));
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
