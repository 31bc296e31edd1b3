import { createServer } from "node:net";
import { describe, expect, test } from "vitest";
import { runBench } from "../../src/cli/bench/bench-program.js";
import { runKv } from "../../src/cli/kv-program.js";
import type { CliIo } from "../../src/cli/run.js";

function bufferedIo(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (text) => out.push(text), stderr: (text) => err.push(text), stderrIsTty: false };
}

/** A port with nothing listening: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === "object" && address !== null ? address.port : 0;
}

describe("kv command line", () => {
  // None of these reach for the network: the command line is refused first.
  test.each([
    ["an unknown command", ["frobnicate"]],
    ["a missing value", ["set", "k"]],
    ["two type flags", ["set", "k", "1", "--int", "--float"]],
    ["a bad TTL", ["expire", "k", "soon"]],
    ["a bad lock TTL", ["lock", "name", "owner", "-"]],
    ["an mset pair without =", ["mset", "novalue"]],
    ["cas without its two values", ["cas", "k", "only-one"]],
    ["cas --absent with two values", ["cas", "k", "--absent", "a", "b"]],
    ["restore without --data-dir", ["snapshot", "restore", "file.snap"]],
    ["an output flag after the command", ["get", "k", "--typed"]],
    ["a bad timeout", ["--timeout", "0", "ping"]],
  ])("%s is a usage error: exit code 2, message on stderr", async (_name, argv) => {
    const io = bufferedIo();
    expect(await runKv(argv, io, {})).toBe(2);
    expect(io.err.join("")).toMatch(/error/);
    expect(io.out.join("")).toBe("");
  });

  test("--help exits 0 and lists the commands", async () => {
    const io = bufferedIo();
    expect(await runKv(["--help"], io, {})).toBe(0);
    expect(io.out.join("")).toMatch(/cluster[\s\S]*snapshot/);
  });

  test("a value that does not parse under its type flag fails with VALUE_INVALID, exit 1", async () => {
    const io = bufferedIo();
    expect(await runKv(["--endpoints", "127.0.0.1:1", "set", "k", "12x", "--int"], io, {})).toBe(1);
    expect(io.err.join("")).toMatch(/^error VALUE_INVALID: /);
  });

  test("an unreachable cluster fails with the error's code, exit 1; KV_ENDPOINTS is the default endpoint", async () => {
    const io = bufferedIo();
    const port = await closedPort();
    expect(await runKv(["--timeout", "300", "get", "k"], io, { KV_ENDPOINTS: `kv://127.0.0.1:${port}` })).toBe(1);
    expect(io.err.join("")).toMatch(/^error CONNECTION: .*127\.0\.0\.1:\d+/);
  });
});

describe("kv-bench command line", () => {
  test.each([
    ["zero clients", ["put", "--clients", "0"]],
    ["more conns than clients", ["put", "--clients", "2", "--conns", "3"]],
    ["a key size too small for the key space", ["get", "--key-size", "2", "--key-space", "1000"]],
    ["a read ratio above 1", ["mixed", "--read-ratio", "1.5"]],
    ["an admin endpoint without a port", ["put", "--admin", "127.0.0.1:8101,localhost"]],
  ])("%s is a usage error", async (_name, argv) => {
    const io = bufferedIo();
    expect(await runBench(argv, io)).toBe(2);
    expect(io.err.join("")).toMatch(/error/);
  });
});
