/**
 * A small Prometheus registry: counters the node increments and gauges read on demand. Names
 * follow Prometheus conventions (`kv_` prefix, unit last, `_total` for counters).
 */
interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  readonly read: () => number;
}

export interface Counter {
  increment(amount?: number): void;
  readonly value: number;
}

export class Metrics {
  private readonly families = new Map<string, MetricFamily>();

  counter(name: string, help: string): Counter {
    let total = 0;
    this.register({ name, help, type: "counter", read: () => total });
    return {
      increment(amount = 1) {
        total += amount;
      },
      get value() {
        return total;
      },
    };
  }

  gauge(name: string, help: string, read: () => number): void {
    this.register({ name, help, type: "gauge", read });
  }

  /** The text exposition format (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    for (const family of this.families.values()) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
      lines.push(`${family.name} ${formatNumber(family.read())}`);
    }
    return `${lines.join("\n")}\n`;
  }

  private register(family: MetricFamily): void {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.families.set(family.name, family);
  }
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
