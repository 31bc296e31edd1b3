import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";

/** Linux's default ephemeral range, used when /proc cannot be read. */
const DEFAULT_EPHEMERAL_RANGE = { low: 32768, high: 60999 } as const;
/** Ports below this are often taken by well-known services. */
const LOWEST_CHOSEN_PORT = 10_000;
const MAX_ATTEMPTS_PER_PORT = 50;

/**
 * Ports for processes the caller is about to start (test clusters, jepsen-lite, benchmarks).
 *
 * Port 0 would hand out ports from the ephemeral range, which the operating system also gives to
 * outgoing connections: between probing such a port and the child binding it, a proxy's or a
 * client's outgoing socket can take it (EADDRINUSE). So ports are drawn below that range, and
 * each one is checked by binding it; all stay bound until every port is known, so they differ.
 */
export async function reservePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const { low } = await ephemeralRange();
  const servers: Server[] = [];
  try {
    while (servers.length < count) servers.push(await bindSomePort(host, LOWEST_CHOSEN_PORT, Math.max(LOWEST_CHOSEN_PORT + count * 10, low - 1)));
    return servers.map(portOf);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

async function ephemeralRange(): Promise<{ readonly low: number; readonly high: number }> {
  try {
    const [low, high] = (await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8")).trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)) return { low, high };
  } catch {
    // Not Linux: fall through to the default.
  }
  return DEFAULT_EPHEMERAL_RANGE;
}

async function bindSomePort(host: string, low: number, high: number): Promise<Server> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS_PER_PORT; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, host, () => resolve(true));
    });
    if (bound) return server;
  }
  throw new Error(`no free port between ${low} and ${high} after ${MAX_ATTEMPTS_PER_PORT} attempts`);
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("a reserved port has no TCP address");
  return address.port;
}
