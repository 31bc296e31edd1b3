/**
 * Engine benchmark: a program that prints figures, not a test.
 *   npm run build && npm run bench:engine
 * Applies commands straight to the state machine (no network, no log), so the figures are the
 * ceiling the cluster can approach.
 */
import { PerformanceObserver, performance } from "node:perf_hooks";
import { decodeCommand, encodeCommand, Engine, type Command, type Query } from "../src/engine/index.js";

const KEY_COUNT = Number(process.env.BENCH_KEYS ?? 1_000_000);
const VALUE = "x".repeat(16);
const START_TIME_MS = 1_700_000_000_000;

interface Timing {
  readonly name: string;
  readonly operations: number;
  readonly milliseconds: number;
}

function measure(name: string, operations: number, body: () => void): Timing {
  const started = performance.now();
  body();
  return { name, operations, milliseconds: performance.now() - started };
}

function report(timing: Timing): void {
  const perSecond = Math.round((timing.operations / timing.milliseconds) * 1000);
  console.log(`${timing.name.padEnd(28)} ${perSecond.toLocaleString("en-US").padStart(12)} ops/s  (${timing.operations.toLocaleString("en-US")} in ${timing.milliseconds.toFixed(0)} ms)`);
}

interface Steps {
  /** Garbage-collection pauses observed meanwhile, to tell the engine's steps from V8's. */
  readonly gcPausesMs: number[];
  /** Wall-clock stretches between event-loop turns (they include time the process was descheduled). */
  readonly gapsMs: number[];
  /** Longest wall-clock stretch without an event-loop turn. */
  longestStepMs: number;
  /** Longest stretch in process CPU time, a fairer figure on a loaded machine. */
  longestStepCpuMs: number;
}

function cpuMilliseconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Time spent and the longest stretch without an event-loop turn while `body` runs. */
async function measureAsync<T>(body: () => Promise<T>): Promise<Steps & { result: T; milliseconds: number }> {
  const steps: Steps = { gcPausesMs: [], gapsMs: [], longestStepMs: 0, longestStepCpuMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) steps.gcPausesMs.push(entry.duration);
  });
  observer.observe({ entryTypes: ["gc"] });
  let last = performance.now();
  let lastCpu = cpuMilliseconds();
  let running = true;
  const tick = (): void => {
    const now = performance.now();
    const cpu = cpuMilliseconds();
    steps.gapsMs.push(now - last);
    steps.longestStepMs = Math.max(steps.longestStepMs, now - last);
    steps.longestStepCpuMs = Math.max(steps.longestStepCpuMs, cpu - lastCpu);
    last = now;
    lastCpu = cpu;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const started = performance.now();
  const result = await body();
  running = false;
  observer.disconnect();
  return { result, milliseconds: performance.now() - started, ...steps };
}

function describeSteps(steps: Steps): string {
  const sorted = [...steps.gapsMs].sort((left, right) => left - right);
  const percentile = (fraction: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0).toFixed(1);
  const gcTotalMs = steps.gcPausesMs.reduce((sum, pause) => sum + pause, 0);
  const gcLongestMs = Math.max(0, ...steps.gcPausesMs);
  return (
    `${steps.longestStepMs.toFixed(1)} ms wall / ${steps.longestStepCpuMs.toFixed(1)} ms CPU ` +
    `(median ${percentile(0.5)} ms, p99 ${percentile(0.99)} ms, ${sorted.length} turns; ` +
    `GC pauses ${gcTotalMs.toFixed(0)} ms in all, longest ${gcLongestMs.toFixed(1)} ms)`
  );
}

async function main(): Promise<void> {
  const engine = new Engine();
  let index = 0;
  const apply = (command: Command): void => {
    const outcome = engine.apply(command, { index: ++index, term: 1, now: START_TIME_MS });
    if (!outcome.ok) throw new Error(`${command.type} failed: ${outcome.error.code}`);
  };
  const key = (number: number): string => `key:${number}`;
  console.log(`engine benchmark: ${KEY_COUNT.toLocaleString("en-US")} keys, ${engine.shardCount} shards, Node ${process.version}`);

  report(measure("set", KEY_COUNT, () => {
    for (let number = 0; number < KEY_COUNT; number++) apply({ type: "set", namespace: "", key: key(number), value: VALUE });
  }));
  const query: { type: "get"; namespace: string; key: string } = { type: "get", namespace: "", key: "" };
  report(measure("get", KEY_COUNT, () => {
    for (let number = 0; number < KEY_COUNT; number++) {
      query.key = key((number * 7919) % KEY_COUNT);
      if (!engine.read(query as Query, START_TIME_MS).ok) throw new Error("get failed");
    }
  }));
  report(measure("incr", KEY_COUNT, () => {
    for (let number = 0; number < KEY_COUNT; number++) apply({ type: "incr", namespace: "", key: `counter:${number % 1000}`, delta: 1n });
  }));
  const encoded = Array.from({ length: 100_000 }, (_, number) => encodeCommand({ type: "set", namespace: "", key: key(number), value: VALUE }));
  report(measure("set (decode from log)", encoded.length, () => {
    for (const bytes of encoded) apply(decodeCommand(bytes));
  }));

  const keys = engine.info().keys;
  const snapshot = await measureAsync(async () => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of engine.snapshot()) chunks.push(chunk);
    return chunks;
  });
  const bytes = snapshot.result.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  console.log(`snapshot: ${keys.toLocaleString("en-US")} keys in ${snapshot.milliseconds.toFixed(0)} ms, ${snapshot.result.length} chunks, ${(bytes / 1024 / 1024).toFixed(1)} MiB, ${(bytes / keys).toFixed(1)} bytes/key, longest step ${describeSteps(snapshot)}`);
  const restored = new Engine();
  const restore = await measureAsync(async () => restored.restore((async function* () { yield* snapshot.result; })()));
  console.log(`restore:  ${restored.info().keys.toLocaleString("en-US")} keys in ${restore.milliseconds.toFixed(0)} ms, longest step ${describeSteps(restore)}`);
  console.log(`memory estimate: ${(engine.info().memoryBytes / keys).toFixed(0)} bytes/key; heap used ${(process.memoryUsage().heapUsed / 1024 / 1024).toFixed(0)} MiB (two engines)`);
}

await main();
