import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Metrics } from "./metrics.js";
import { parseHostPort } from "./peers.js";

/** What the admin endpoint shows; the node provides it. */
export interface AdminSource {
  /** True while the node can serve: it has a leader it can reach (itself or another). */
  healthy(): boolean;
  /** null while the node has no Raft state yet (it is finding out which cluster it belongs to). */
  status(): unknown;
  readonly metrics: Metrics;
}

/**
 * HTTP admin endpoint (`--admin host:port`): `/health` (200 or 503), `/status` (JSON) and
 * `/metrics` (Prometheus). Read-only, so it needs no body parsing and no limits beyond Node's.
 */
export async function startAdminServer(address: string, source: AdminSource): Promise<Server> {
  const { host, port } = parseHostPort(address);
  const server = createServer((request, response) => route(request, response, source));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

function route(request: IncomingMessage, response: ServerResponse, source: AdminSource): void {
  const path = (request.url ?? "/").split("?")[0];
  if (request.method !== "GET") return send(response, 405, "text/plain", "method not allowed\n");
  switch (path) {
    case "/health": {
      const healthy = source.healthy();
      return send(response, healthy ? 200 : 503, "application/json", JSON.stringify({ healthy }));
    }
    case "/status": {
      const status = source.status();
      if (status === null) return send(response, 503, "application/json", JSON.stringify({ phase: "discovering" }));
      return send(response, 200, "application/json", JSON.stringify(status, jsonReplacer));
    }
    case "/metrics":
      return send(response, 200, "text/plain; version=0.0.4", source.metrics.render());
    default:
      return send(response, 404, "text/plain", "not found\n");
  }
}

/** bigint (terms, tokens) has no JSON form; show it as a number when safe, else as a string. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value !== "bigint") return value;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString();
}

function send(response: ServerResponse, statusCode: number, contentType: string, body: string): void {
  response.writeHead(statusCode, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  response.end(body);
}
