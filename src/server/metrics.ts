/**
 * A small Prometheus registry: counters the node increments and gauges read on demand. Names
 * follow Prometheus conventions (`kv_` prefix, unit last, `_total` for counters).
 */
interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  /** One line per sample: `labels` is "" or `{name="value"}`. */
  readonly samples: () => readonly { readonly labels: string; readonly value: number }[];
}

export interface Counter {
  increment(amount?: number): void;
  readonly value: number;
}

export class Metrics {
  private readonly families = new Map<string, MetricFamily>();

  counter(name: string, help: string): Counter {
    const counter = newCounter();
    this.register({ name, help, type: "counter", samples: () => [{ labels: "", value: counter.value }] });
    return counter;
  }

  /**
   * One counter per value of a label known up front, all exposed from the start (a series that
   * appears only at its first increment would hide the zero before it). Values are identifiers
   * from the code, written as they are (no escaping).
   */
  labelledCounter<Value extends string>(name: string, help: string, label: string, values: readonly Value[]): Readonly<Record<Value, Counter>> {
    const counters = Object.fromEntries(values.map((value) => [value, newCounter()])) as Record<Value, Counter>;
    const samples = values.map((value) => ({ labels: `{${label}="${value}"}`, counter: counters[value] }));
    this.register({ name, help, type: "counter", samples: () => samples.map(({ labels, counter }) => ({ labels, value: counter.value })) });
    return counters;
  }

  gauge(name: string, help: string, read: () => number): void {
    this.register({ name, help, type: "gauge", samples: () => [{ labels: "", value: read() }] });
  }

  /** A counter kept elsewhere (by the runtime, say), read when the metrics are rendered; `read` never decreases. */
  counterOf(name: string, help: string, read: () => number): void {
    this.register({ name, help, type: "counter", samples: () => [{ labels: "", value: read() }] });
  }

  /** The text exposition format (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    for (const family of this.families.values()) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
      for (const { labels, value } of family.samples()) lines.push(`${family.name}${labels} ${formatNumber(value)}`);
    }
    return `${lines.join("\n")}\n`;
  }

  private register(family: MetricFamily): void {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.set(family.name, family);
  }
}

const MICROSECONDS_PER_SECOND = 1_000_000;

/**
 * Prometheus' standard process CPU counters (user, system and their sum, in seconds, every
 * thread of the process: LevelDB's work on libuv's pool included), so a load generator can
 * tell how much CPU one request cost the node.
 */
export function registerProcessMetrics(metrics: Metrics, cpuUsage: () => NodeJS.CpuUsage = () => process.cpuUsage()): void {
  metrics.counterOf("process_cpu_user_seconds_total", "user CPU time of this process", () => cpuUsage().user / MICROSECONDS_PER_SECOND);
  metrics.counterOf("process_cpu_system_seconds_total", "system CPU time of this process", () => cpuUsage().system / MICROSECONDS_PER_SECOND);
  metrics.counterOf("process_cpu_seconds_total", "user and system CPU time of this process", () => {
    const usage = cpuUsage();
    return (usage.user + usage.system) / MICROSECONDS_PER_SECOND;
  });
}

function newCounter(): Counter {
  let total = 0;
  return {
    increment(amount = 1) {
      total += amount;
    },
    get value() {
      return total;
    },
  };
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
