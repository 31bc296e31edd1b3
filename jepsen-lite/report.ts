/**
 * report.html: one self-contained page (inline SVG and CSS, no script, no network) with the
 * operations of every process on a timeline under the nemesis bands, latency and throughput over
 * time, availability and p99 latency per fault, and the operations of every reported anomaly.
 * Also the per-fault figures results.json carries.
 */
import { pairOperations, toJsonText, type Operation, type OperationEvent } from "./history.js";
import type { Anomaly } from "./checkers/result.js";
import type { NemesisEvent } from "./nemesis.js";
import { DECISION_CODES } from "./workloads/workload.js";

/** Drawn marks per plot; a longer history is sampled evenly so the page stays small. */
export const MAX_PLOTTED_OPERATIONS = 10_000;
const MAX_LANES = 120;
const MAX_LISTED_ANOMALIES = 20;
const PLOT_WIDTH = 1100;
const MARGIN_LEFT = 50;

/** The minimal run description the report needs (RunResult satisfies it). */
export interface ReportInput {
  readonly valid: boolean | "unknown";
  readonly seed: number;
  readonly options: object;
  readonly nemesis: readonly NemesisEvent[];
  readonly checks: { readonly valid: unknown; readonly operations: object; readonly workloads: Partial<Record<string, { readonly valid: unknown; readonly anomalies: readonly Anomaly[]; readonly anomalyCount: number }>> };
  readonly ttl: { readonly valid: unknown; readonly anomalies: readonly Anomaly[]; readonly anomalyCount: number } | null;
  readonly whitebox: { readonly anomalies: readonly { readonly kind: string; readonly message: string }[] };
  readonly errors: readonly string[];
  readonly crashes: readonly string[];
  readonly recovered: boolean;
  readonly faults: readonly FaultStatistics[];
}

export interface FaultStatistics {
  /** A fault kind, or "none" for the time outside every fault. */
  readonly kind: string;
  readonly windows: number;
  readonly attempted: number;
  readonly ok: number;
  /** ok / attempted, of the operations invoked inside the windows; null when none was attempted. */
  readonly okRatio: number | null;
  /**
   * Answered / attempted: ok, or a fail that is the cluster's decision (cas mismatch, lock held,
   * fenced) rather than its absence (unavailable, timeout).
   */
  readonly availability: number | null;
  /**
   * ok completions per second of window time. Unlike the ratios, it also shows the clients that
   * were stuck in calls begun before the fault and so attempted nothing inside it.
   */
  readonly okPerSecond: number | null;
  /** Of ok operations, in ms. */
  readonly p50LatencyMs: number | null;
  readonly p99LatencyMs: number | null;
}

function latencyMs(operation: Operation): number | null {
  return operation.completion === null ? null : (operation.completion.time - operation.invoke.time) / 1e6;
}

function percentile(sorted: readonly number[], fraction: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? null;
}

function isAnswered(operation: Operation): boolean {
  return operation.type === "ok" || (operation.type === "fail" && DECISION_CODES.has(operation.completion?.error ?? ""));
}

function ratio(part: number, whole: number): number | null {
  return whole === 0 ? null : part / whole;
}

/** Time windows of one kind, [start, end) in nanoseconds. */
type Windows = ReadonlyArray<readonly [number, number]>;

function isInside(time: number, windows: Windows): boolean {
  return windows.some(([start, end]) => time >= start && time < end);
}

function statisticsOf(kind: string, windows: Windows, all: readonly Operation[]): FaultStatistics {
  const operations = all.filter((operation) => isInside(operation.invoke.time, windows));
  const completedOk = all.filter((operation) => operation.type === "ok" && operation.completion !== null && isInside(operation.completion.time, windows)).length;
  const seconds = windows.reduce((sum, [start, end]) => sum + (end - start) / 1e9, 0);
  const ok = operations.filter((operation) => operation.type === "ok");
  const latencies = ok.map(latencyMs).filter((value): value is number => value !== null).sort((left, right) => left - right);
  return {
    kind, windows: kind === "none" ? 0 : windows.length, attempted: operations.length, ok: ok.length,
    okPerSecond: seconds > 0 ? completedOk / seconds : null,
    okRatio: ratio(ok.length, operations.length),
    availability: ratio(operations.filter(isAnswered).length, operations.length),
    p50LatencyMs: percentile(latencies, 0.5), p99LatencyMs: percentile(latencies, 0.99),
  };
}

/** Availability and latency during each kind of fault, and outside all of them ("none"). */
export function faultStatistics(history: readonly OperationEvent[], nemesis: readonly NemesisEvent[]): FaultStatistics[] {
  const operations = pairOperations(history);
  const kinds = [...new Set(nemesis.map((event) => event.kind))].sort();
  const statistics = kinds.map((kind) => {
    const windows = nemesis.filter((event) => event.kind === kind).map((event) => [event.startTime, event.endTime] as const);
    return statisticsOf(kind, windows, operations);
  });
  return [statisticsOf("none", calmWindows(history, nemesis), operations), ...statistics];
}

/** The time between faults, from the first event to the last. */
function calmWindows(history: readonly OperationEvent[], nemesis: readonly NemesisEvent[]): Windows {
  const calm: Array<readonly [number, number]> = [];
  let start = 0;
  for (const event of [...nemesis].sort((left, right) => left.startTime - right.startTime)) {
    if (event.startTime > start) calm.push([start, event.startTime]);
    start = Math.max(start, event.endTime);
  }
  const end = (history.at(-1)?.time ?? 0) + 1;
  if (end > start) calm.push([start, end]);
  return calm;
}

// ---------------------------------------------------------------------------------------------

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function sampled<T>(items: readonly T[], limit: number): readonly T[] {
  if (items.length <= limit) return items;
  const step = items.length / limit;
  return Array.from({ length: limit }, (_, index) => items[Math.floor(index * step)] as T);
}

const COLORS: Readonly<Record<Operation["type"], string>> = { ok: "#2e9d4a", fail: "#d9534f", info: "#f0ad4e" };

interface Scale {
  readonly endTime: number;
  x(time: number): number;
}

function scaleOf(history: readonly OperationEvent[], nemesis: readonly NemesisEvent[]): Scale {
  const endTime = Math.max(1, history.at(-1)?.time ?? 1, ...nemesis.map((event) => event.endTime));
  return { endTime, x: (time) => MARGIN_LEFT + (Math.min(time, endTime) / endTime) * (PLOT_WIDTH - MARGIN_LEFT - 10) };
}

function nemesisBands(nemesis: readonly NemesisEvent[], scale: Scale, height: number): string {
  return nemesis
    .map((event) => {
      const left = scale.x(event.startTime);
      const width = Math.max(1, scale.x(event.endTime || scale.endTime) - left);
      return `<g class="nemesis-band"><rect x="${left.toFixed(1)}" y="0" width="${width.toFixed(1)}" height="${height}" fill="#7a5cff" fill-opacity="0.12"/><text x="${(left + 2).toFixed(1)}" y="10" font-size="9" fill="#5a3fd0">${escapeHtml(event.kind)}</text><title>${escapeHtml(`${event.kind}: ${event.detail}`)}</title></g>`;
    })
    .join("");
}

function timeAxis(scale: Scale, y: number): string {
  const seconds = Math.ceil(scale.endTime / 1e9);
  const step = Math.max(1, Math.ceil(seconds / 20));
  const ticks: string[] = [];
  for (let second = 0; second <= seconds; second += step) {
    const x = scale.x(second * 1e9).toFixed(1);
    ticks.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 4}" stroke="#555"/><text x="${x}" y="${y + 14}" font-size="9" text-anchor="middle">${second}s</text>`);
  }
  return ticks.join("");
}

function svg(title: string, height: number, body: string): string {
  return `<h2>${escapeHtml(title)}</h2><svg class="plot" xmlns="http://www.w3.org/2000/svg" width="${PLOT_WIDTH}" height="${height}" viewBox="0 0 ${PLOT_WIDTH} ${height}">${body}</svg>`;
}

function timelineSvg(operations: readonly Operation[], nemesis: readonly NemesisEvent[], scale: Scale): string {
  const processes = [...new Set(operations.map((operation) => operation.process))].sort((left, right) => left - right);
  const laneOf = new Map(processes.map((process, index) => [process, index % MAX_LANES]));
  const lanes = Math.min(MAX_LANES, Math.max(1, processes.length));
  const laneHeight = Math.max(3, Math.min(10, Math.floor(480 / lanes)));
  const height = lanes * laneHeight + 30;
  const marks = sampled(operations, MAX_PLOTTED_OPERATIONS).map((operation) => {
    const left = scale.x(operation.invoke.time);
    const right = scale.x(operation.completion?.time ?? scale.endTime);
    const y = (laneOf.get(operation.process) ?? 0) * laneHeight;
    return `<rect x="${left.toFixed(1)}" y="${y}" width="${Math.max(0.8, right - left).toFixed(1)}" height="${laneHeight - 1}" fill="${COLORS[operation.type]}"><title>${escapeHtml(describe(operation))}</title></rect>`;
  });
  return svg("Operations per process (lanes wrap past " + MAX_LANES + ")", height, nemesisBands(nemesis, scale, height - 20) + marks.join("") + timeAxis(scale, height - 20));
}

function latencySvg(operations: readonly Operation[], nemesis: readonly NemesisEvent[], scale: Scale): string {
  const height = 260;
  const plotHeight = height - 30;
  const completed = operations.filter((operation) => operation.completion !== null);
  const maximumMs = Math.max(1, ...completed.map((operation) => latencyMs(operation) ?? 0));
  const logMaximum = Math.log10(maximumMs + 1);
  const y = (ms: number): number => plotHeight - (Math.log10(ms + 1) / logMaximum) * (plotHeight - 12);
  const points = sampled(completed, MAX_PLOTTED_OPERATIONS).map((operation) => {
    const ms = latencyMs(operation) ?? 0;
    return `<circle cx="${scale.x(operation.invoke.time).toFixed(1)}" cy="${y(ms).toFixed(1)}" r="1.5" fill="${COLORS[operation.type]}"/>`;
  });
  const gridlines = [1, 10, 100, 1000, 10000].filter((ms) => ms <= maximumMs).map((ms) => `<line x1="${MARGIN_LEFT}" x2="${PLOT_WIDTH}" y1="${y(ms).toFixed(1)}" y2="${y(ms).toFixed(1)}" stroke="#ddd"/><text x="2" y="${(y(ms) + 3).toFixed(1)}" font-size="9">${ms} ms</text>`);
  return svg("Latency over time (log scale, by invoke time)", height, nemesisBands(nemesis, scale, plotHeight) + gridlines.join("") + points.join("") + timeAxis(scale, plotHeight));
}

function throughputSvg(operations: readonly Operation[], nemesis: readonly NemesisEvent[], scale: Scale): string {
  const height = 220;
  const plotHeight = height - 30;
  const buckets = Math.max(1, Math.ceil(scale.endTime / 1e9));
  const counts = { ok: new Array<number>(buckets).fill(0), fail: new Array<number>(buckets).fill(0), info: new Array<number>(buckets).fill(0) };
  for (const operation of operations) {
    const bucket = Math.min(buckets - 1, Math.floor((operation.completion?.time ?? operation.invoke.time) / 1e9));
    counts[operation.type][bucket] = (counts[operation.type][bucket] ?? 0) + 1;
  }
  const maximum = Math.max(1, ...counts.ok, ...counts.fail, ...counts.info);
  const line = (values: readonly number[], color: string): string => {
    const path = values.map((value, second) => `${scale.x((second + 0.5) * 1e9).toFixed(1)},${(plotHeight - (value / maximum) * (plotHeight - 12)).toFixed(1)}`).join(" ");
    return `<polyline points="${path}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
  };
  const label = `<text x="2" y="12" font-size="9">${maximum}/s</text>`;
  return svg("Throughput (completions per second: ok, fail, info)", height, nemesisBands(nemesis, scale, plotHeight) + label + line(counts.ok, COLORS.ok) + line(counts.fail, COLORS.fail) + line(counts.info, COLORS.info) + timeAxis(scale, plotHeight));
}

function describe(operation: Operation): string {
  const latency = latencyMs(operation);
  const value = operation.value === undefined ? "" : ` ${toJsonText(operation.value)}`;
  const error = operation.completion?.error === undefined ? "" : ` (${operation.completion.error})`;
  return `p${operation.process} ${operation.f} ${operation.key ?? ""}${value} → ${operation.type}${error}${latency === null ? "" : ` ${latency.toFixed(1)} ms`}`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const head = headers.map((header) => `<th>${escapeHtml(header)}</th>`).join("");
  const body = rows.map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(cell)}</td>`).join("")}</tr>`).join("");
  return `<table><tr>${head}</tr>${body}</table>`;
}

function format(value: number | null, digits: number): string {
  return value === null ? "–" : value.toFixed(digits);
}

function faultTable(faults: readonly FaultStatistics[]): string {
  const percent = (value: number | null): string => (value === null ? "–" : `${(value * 100).toFixed(1)} %`);
  const rows = faults.map((fault) => [fault.kind, String(fault.windows), String(fault.attempted), String(fault.ok), percent(fault.okRatio), percent(fault.availability), format(fault.okPerSecond, 1), format(fault.p50LatencyMs, 1), format(fault.p99LatencyMs, 1)]);
  const note = "<p>Operations invoked inside the fault's windows. Answered = ok, or refused by decision (cas mismatch, lock held, fenced); latency of ok operations; ok per s = ok completions per second of window time.</p>";
  return `<h2>Availability per fault</h2>${note}${table(["fault", "windows", "attempted", "ok", "ok / attempted", "answered / attempted", "ok per s", "p50 ms", "p99 ms"], rows)}`;
}

function nemesisTable(nemesis: readonly NemesisEvent[]): string {
  const rows = nemesis.map((event) => [(event.startTime / 1e9).toFixed(2), (event.endTime / 1e9).toFixed(2), event.kind, event.detail]);
  return `<h2>Nemesis</h2>${table(["start s", "end s", "fault", "what"], rows)}`;
}

function collectAnomalies(input: ReportInput): Anomaly[] {
  const fromWorkloads = Object.values(input.checks.workloads).flatMap((result) => result?.anomalies ?? []);
  return [...fromWorkloads, ...(input.ttl?.anomalies ?? [])];
}

function anomalySection(input: ReportInput): string {
  const anomalies = collectAnomalies(input);
  const other = [...input.whitebox.anomalies.map((anomaly) => `${anomaly.kind}: ${anomaly.message}`), ...input.crashes, ...input.errors];
  if (!input.recovered) other.push("the cluster did not recover after healing");
  if (anomalies.length === 0 && other.length === 0) return `<h2>Anomalies</h2><p>None found.</p>`;
  const listed = anomalies.slice(0, MAX_LISTED_ANOMALIES).map((anomaly) => {
    const rows = anomaly.operations.map((operation) => [String(operation.invoke.index), (operation.invoke.time / 1e9).toFixed(3), `p${operation.process}`, operation.f, operation.key ?? "", operation.value === undefined ? "" : toJsonText(operation.value), operation.type, operation.completion?.error ?? ""]);
    return `<h3>${escapeHtml(anomaly.kind)}${anomaly.key === undefined ? "" : ` on key ${escapeHtml(anomaly.key)}`}</h3><p>${escapeHtml(anomaly.message)}</p>${table(["index", "invoke s", "process", "f", "key", "value", "type", "error"], rows)}`;
  });
  const list = other.length === 0 ? "" : `<ul>${other.map((line) => `<li>${escapeHtml(line)}</li>`).join("")}</ul>`;
  return `<h2>Anomalies</h2>${list}${listed.join("")}`;
}

const STYLE = `body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;font-size:12px;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.valid{color:#2e9d4a}.invalid{color:#d9534f}.unknown{color:#b07d10}svg.plot{border:1px solid #eee;display:block}pre{font-size:11px;background:#f7f7f7;padding:6px}`;

export function renderReport(input: ReportInput, history: readonly OperationEvent[]): string {
  const operations = pairOperations(history);
  const scale = scaleOf(history, input.nemesis);
  const verdict = input.valid === true ? "valid" : input.valid === false ? "invalid" : "unknown";
  const checks = Object.entries(input.checks.workloads).map(([name, result]) => [name, String(result?.valid), String(result?.anomalyCount ?? 0)]);
  if (input.ttl !== null) checks.push(["ttl", String(input.ttl.valid), String(input.ttl.anomalyCount)]);
  return [
    `<!DOCTYPE html><html><head><meta charset="utf-8"><title>jepsen-lite report (seed ${input.seed})</title><style>${STYLE}</style></head><body>`,
    `<h1>jepsen-lite: <span class="${verdict}">${verdict}</span></h1>`,
    `<pre>${escapeHtml(JSON.stringify({ seed: input.seed, ...input.options, operations: input.checks.operations }, null, 1))}</pre>`,
    `<h2>Checks</h2>${table(["checker", "valid", "anomalies"], checks)}`,
    anomalySection(input),
    faultTable(input.faults),
    timelineSvg(operations, input.nemesis, scale),
    latencySvg(operations, input.nemesis, scale),
    throughputSvg(operations, input.nemesis, scale),
    nemesisTable(input.nemesis),
    `</body></html>\n`,
  ].join("\n");
}
