import { Agent, request } from "node:http";
import { KvError } from "../../errors.js";
import type { BenchTarget, TargetOptions } from "./targets.js";

/** An etcd answer larger than this is not one of ours (a range of one small key). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly agent: Agent;
}

/**
 * etcd through its v3 HTTP/JSON gateway (POST /v3/kv/put and /v3/kv/range, keys and values in
 * base64), so one tool measures both stores without an etcd client library. The `conns`
 * keep-alive sockets are spread over the endpoints round robin; requester i uses connection
 * i mod conns, as etcd's own benchmark does.
 */
export function connectEtcd(options: TargetOptions): BenchTarget {
  const urls = options.endpoints.split(",").map((text) => new URL(text.trim()));
  const endpoints = urls.map((url, index): Endpoint => {
    const sockets = Math.max(1, Math.floor(options.conns / urls.length) + (index < options.conns % urls.length ? 1 : 0));
    return { host: url.hostname, port: Number(url.port || 2379), agent: new Agent({ keepAlive: true, maxSockets: sockets }) };
  });
  const endpointOf = (requester: number): Endpoint => endpoints[(requester % options.conns) % endpoints.length] as Endpoint;
  const base64 = (data: string | Uint8Array): string => Buffer.from(data).toString("base64");
  return {
    put: (requester, key, value) => post(endpointOf(requester), "/v3/kv/put", { key: base64(key), value: base64(value) }, options.timeoutMs),
    get: (requester, key) =>
      post(endpointOf(requester), "/v3/kv/range", { key: base64(key), ...(options.consistency === "serializable" ? { serializable: true } : {}) }, options.timeoutMs),
    close: async () => {
      for (const endpoint of endpoints) endpoint.agent.destroy();
    },
  };
}

function post(endpoint: Endpoint, path: string, body: object, timeoutMs: number): Promise<void> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { host: endpoint.host, port: endpoint.port, method: "POST", path, agent: endpoint.agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } },
      (response) => {
        const parts: Buffer[] = [];
        let bytes = 0;
        response.on("data", (part: Buffer) => {
          bytes += part.length;
          if (bytes > MAX_RESPONSE_BYTES) response.destroy(new KvError("TOO_LARGE", `etcd answered more than ${MAX_RESPONSE_BYTES} bytes`));
          else parts.push(part);
        });
        response.on("error", reject);
        response.on("end", () => {
          if (response.statusCode === 200) resolve();
          else reject(new KvError("UNAVAILABLE", `etcd ${path}: HTTP ${response.statusCode}: ${Buffer.concat(parts).toString("utf8").slice(0, 200)}`));
        });
      },
    );
    outgoing.setTimeout(timeoutMs, () => outgoing.destroy(new KvError("TIMEOUT", `etcd ${path}: no answer within ${timeoutMs} ms`)));
    outgoing.on("error", (error) => reject(error instanceof KvError ? error : new KvError("CONNECTION", `etcd ${path}: ${error.message}`)));
    outgoing.end(payload);
  });
}
