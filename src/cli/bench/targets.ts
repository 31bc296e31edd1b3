import { KvClient } from "../../client/client.js";

export type Consistency = "linearizable" | "serializable";

/** What the benchmark drives: one store, reached over `conns` connections. */
export interface BenchTarget {
  /** `requester` (0 .. clients-1) picks the connection, as etcd's benchmark shares conns among clients. */
  put(requester: number, key: string, value: Uint8Array): Promise<void>;
  get(requester: number, key: string): Promise<void>;
  close(): Promise<void>;
}

export interface TargetOptions {
  readonly endpoints: string;
  readonly conns: number;
  readonly clients: number;
  readonly consistency: Consistency;
  readonly timeoutMs: number;
}

/** The KvClient default; raised when more requesters share one client than it allows in flight. */
const DEFAULT_MAX_IN_FLIGHT = 1024;

/**
 * data-bridge-kv through the library: `conns` KvClient instances with one connection per node
 * each, requester i using client i mod conns. So "conns" means what it means to etcd's tool:
 * that many pipelined connections to the leader (and, for serializable reads, to each node).
 */
export async function connectKv(options: TargetOptions): Promise<BenchTarget> {
  const maxInFlight = Math.max(DEFAULT_MAX_IN_FLIGHT, Math.ceil(options.clients / options.conns));
  const clients: KvClient[] = [];
  try {
    for (let index = 0; index < options.conns; index++) {
      clients.push(await KvClient.connect(options.endpoints, { connectionsPerNode: 1, maxInFlight, timeoutMs: options.timeoutMs, consistency: options.consistency }));
    }
  } catch (error) {
    await Promise.all(clients.map((client) => client.close()));
    throw error;
  }
  const clientOf = (requester: number): KvClient => clients[requester % clients.length] as KvClient;
  return {
    put: async (requester, key, value) => {
      await clientOf(requester).set(key, value);
    },
    get: async (requester, key) => {
      await clientOf(requester).get(key);
    },
    close: async () => {
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}
