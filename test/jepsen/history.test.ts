import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvError } from "../../src/errors.js";
import {
  HistoryRecorder,
  fromJsonText,
  pairOperations,
  parseJsonl,
  readHistory,
  toJsonText,
  toJsonl,
  valueKey,
  writeHistory,
  type HistoryValue,
} from "../../jepsen-lite/history.js";
import { HistoryBuilder } from "./history-builder.js";

function expectCode(run: () => unknown, code: string): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KvError);
    expect((error as KvError).code).toBe(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe("pairing invokes with completions", () => {
  it("pairs per process, takes the ok value, and turns a missing completion into info", () => {
    const events = new HistoryBuilder()
      .invoke(0, "read", "x")
      .invoke(1, "write", "x", 5)
      .ok(1)
      .ok(0, 5)
      .invoke(2, "write", "x", 6)
      .events();
    const operations = pairOperations(events);
    expect(operations.map((operation) => [operation.process, operation.f, operation.type, operation.value])).toEqual([
      [0, "read", "ok", 5],
      [1, "write", "ok", 5],
      [2, "write", "info", 6],
    ]);
    expect(operations[2]?.completion).toBeNull();
    expect(operations[0]?.completion?.index).toBe(3);
  });

  it("refuses a completion without an invoke and a second invoke while one is pending", () => {
    const stray = [{ index: 0, process: 0, type: "ok" as const, f: "read", time: 0 }];
    expectCode(() => pairOperations(stray), "INVALID");
    const twice = new HistoryBuilder().invoke(0, "read", "x").events();
    expectCode(() => pairOperations([...twice, { ...twice[0]!, index: 1 }]), "INVALID");
  });
});

const historyValue: fc.Arbitrary<HistoryValue> = fc.letrec<{ value: HistoryValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.string(),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.string().filter((field) => field !== "$bigint"), tie("value"), { maxKeys: 4 }),
  ),
})).value;

describe("JSON and JSONL", () => {
  it("property: values round-trip exactly, bigints included, and equal values have equal keys", () => {
    fc.assert(
      fc.property(historyValue, (value) => {
        const text = toJsonText(value);
        expect(fromJsonText(text)).toEqual(value);
        expect(valueKey(fromJsonText(text) as HistoryValue)).toBe(valueKey(value));
      }),
      { numRuns: 200 },
    );
  });

  it("keeps 1 and 1n apart and ignores field order", () => {
    expect(valueKey(1)).not.toBe(valueKey(1n));
    expect(valueKey({ a: 1, b: 2 })).toBe(valueKey({ b: 2, a: 1 }));
  });

  it("writes and reads history.jsonl with tokens as bigints", async () => {
    const events = new HistoryBuilder().invoke(0, "acquire", "l").ok(0, 2n ** 64n).invoke(0, "fencedWrite", "l", { token: 2n ** 64n, data: "d" }).fail(0, "FENCED").events();
    const directory = await mkdtemp(join(tmpdir(), "jepsen-history-"));
    try {
      const path = join(directory, "history.jsonl");
      await writeHistory(path, events);
      expect(await readHistory(path)).toEqual(events);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("names the line of a malformed event", () => {
    const good = toJsonl(new HistoryBuilder().invoke(0, "read", "x").events());
    expect(() => parseJsonl(`${good}{"index":1}\n`)).toThrow(/line 2/);
    expectCode(() => parseJsonl("not json\n"), "INVALID");
  });
});

describe("HistoryRecorder", () => {
  it("numbers events, measures time from its start, and completes with the invoke's f and key", () => {
    let clock = 1_000n;
    const recorder = new HistoryRecorder({ maxEvents: 10, clockNanoseconds: () => clock });
    const process = recorder.newProcess();
    clock = 1_500n;
    const invoke = recorder.invoke(process, "write", "x", 1);
    clock = 2_000n;
    recorder.complete(invoke, "info", undefined, "TIMEOUT");
    expect(recorder.newProcess()).toBe(process + 1);
    expect(recorder.events()).toEqual([
      { index: 0, process, type: "invoke", f: "write", key: "x", value: 1, time: 500 },
      { index: 1, process, type: "info", f: "write", key: "x", error: "TIMEOUT", time: 1_000 },
    ]);
  });

  it("refuses events past its bound with TOO_LARGE", () => {
    const recorder = new HistoryRecorder({ maxEvents: 1 });
    recorder.invoke(0, "read", "x");
    expectCode(() => recorder.invoke(1, "read", "x"), "TOO_LARGE");
  });
});
