import { afterEach, describe, expect, test } from "vitest";
import { decode, encode } from "../../src/engine/codec.js";
import { KvError } from "../../src/errors.js";
import { runKv } from "../../src/cli/kv-program.js";
import type { CliIo } from "../../src/cli/run.js";
import { commandByCode } from "../../src/server/protocol/commands.js";
import { encodeErrorPayload, STATUS } from "../../src/server/protocol/status.js";
import { startServer, type TestServer } from "../protocol/helpers.js";

function bufferedIo(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (text) => out.push(text), stderr: (text) => err.push(text), stderrIsTty: false };
}

interface Received {
  readonly name: string | undefined;
  readonly fields: unknown;
}

/**
 * A one-node "cluster" on loopback that answers clusterStatus as the leader of n1 with learner
 * n4, records every other request, and answers it with `answer` (a membership, or an error).
 */
async function fakeLeader(answer: (name: string | undefined) => KvError | null): Promise<{ server: TestServer; received: Received[]; endpoint: string }> {
  const received: Received[] = [];
  let address = "";
  const server = await startServer(async (request) => {
    const name = commandByCode(request.command)?.name;
    const membership = { voters: ["n1"], learners: ["n4"], addresses: { n1: address, n4: "127.0.0.1:1" } };
    if (name === "clusterStatus") return { status: STATUS.OK, payload: encode({ role: "leader", term: 1, leader: "n1", leaderAddress: address, membership }) };
    received.push({ name, fields: decode(request.payload) });
    const error = answer(name);
    if (error !== null) return { status: STATUS.ERROR, payload: encodeErrorPayload(error) };
    return { status: STATUS.OK, payload: encode({ ...membership, voters: ["n1", "n4"], learners: [] }) };
  });
  address = `127.0.0.1:${server.port}`;
  return { server, received, endpoint: `kv://${address}` };
}

let running: TestServer | null = null;
afterEach(async () => {
  await running?.close();
  running = null;
});

function forceOf(fields: unknown): unknown {
  return fields instanceof Map ? fields.get("force") : undefined;
}

describe("kv cluster promote and --force", () => {
  test("promote sends memberPromote for the learner, without force unless asked", async () => {
    const { server, received, endpoint } = await fakeLeader(() => null);
    running = server;
    const io = bufferedIo();
    expect(await runKv(["--endpoints", endpoint, "--json", "cluster", "promote", "n4"], io, {})).toBe(0);
    expect(received.map((request) => request.name)).toEqual(["memberPromote"]);
    expect((received[0]?.fields as Map<string, unknown>).get("id")).toBe("n4");
    expect(forceOf(received[0]?.fields)).toBeUndefined();
    expect(JSON.parse(io.out.join(""))).toMatchObject({ voters: ["n1", "n4"] });
  });

  test.each([
    ["add", ["cluster", "add", "n5", "127.0.0.1:2", "--force"], "memberAdd"],
    ["remove", ["cluster", "remove", "n4", "--force"], "memberRemove"],
    ["promote", ["cluster", "promote", "n4", "--force"], "memberPromote"],
  ])("%s --force sends force: true", async (_name, argv, operation) => {
    const { server, received, endpoint } = await fakeLeader(() => null);
    running = server;
    expect(await runKv(["--endpoints", endpoint, ...argv], bufferedIo(), {})).toBe(0);
    expect(received.map((request) => request.name)).toEqual([operation]);
    expect(forceOf(received[0]?.fields)).toBe(true);
  });

  test("a refused change is reported at once with its code and message, exit 1, and sent once", async () => {
    const refusal = new KvError("VALUE_INVALID", "after this change the voters [n1] would have no quorum among the members the leader hears from ([]); force it to go ahead anyway");
    const { server, received, endpoint } = await fakeLeader(() => refusal);
    running = server;
    const io = bufferedIo();
    expect(await runKv(["--endpoints", endpoint, "--timeout", "2000", "cluster", "remove", "n1"], io, {})).toBe(1);
    expect(io.err.join("")).toMatch(/^error VALUE_INVALID: .*no quorum.*force/);
    expect(received.map((request) => request.name)).toEqual(["memberRemove"]);
  });
});
