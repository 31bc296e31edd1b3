import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

async function* pieces(bytes: Uint8Array, cuts: readonly number[]): AsyncGenerator<Uint8Array> {
  let start = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut > start) yield bytes.subarray(start, cut);
    start = Math.max(start, cut);
  }
  yield bytes.subarray(start);
}

function filledEngine(): Engine {
  const engine = new Engine({ shardCount: 16 });
  for (let index = 1; index <= 1000; index++) {
    engine.apply({ type: "set", namespace: index % 3 === 0 ? "tenant" : "", key: `key:${index}`, value: "v".repeat(index % 50) }, { index, term: 1, now: index });
  }
  engine.apply({ type: "lock", namespace: "", name: "job", owner: "worker", ttlMs: 60_000 }, { index: 1001, term: 1, now: 1001 });
  return engine;
}

describe("snapshot stream framing", () => {
  it("restores identically whatever pieces the stream is cut into (files and sockets re-chunk it)", async () => {
    const bytes = await collect(filledEngine().snapshot());
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: bytes.byteLength }), { maxLength: 40 }), async (cuts) => {
        const restored = new Engine({ shardCount: 4 });
        await restored.restore(pieces(bytes, cuts));
        expect(await collect(restored.snapshot())).toEqual(bytes);
      }),
      { numRuns: 10 },
    );
  });

  it("reports a stream that ends inside a chunk as CORRUPT", async () => {
    const bytes = await collect(filledEngine().snapshot());
    const restored = new Engine();
    await expect(restored.restore(pieces(bytes.subarray(0, bytes.byteLength - 3), []))).rejects.toMatchObject({ code: "CORRUPT" });
  });
});
