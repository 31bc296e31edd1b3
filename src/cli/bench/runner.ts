/** Distinct error messages kept as samples; the rest are only counted. */
const MAX_ERROR_SAMPLES = 5;

export interface RunResult {
  /** Seconds per successful request, in completion order. */
  readonly latenciesSeconds: Float64Array;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly totalSeconds: number;
}

export interface RunOptions {
  readonly total: number;
  readonly clients: number;
  /** Request number `sequence` (0 .. total-1) issued by `requester`. */
  readonly request: (requester: number, sequence: number) => Promise<void>;
  /** Called after every completed request with the count so far. */
  readonly onProgress?: (completed: number) => void;
}

/**
 * `clients` concurrent requesters, each sending its next request as soon as its previous one
 * is answered, until `total` have been sent: the closed-loop model of etcd's benchmark. Memory
 * is one float per request, bounded by `total`.
 */
export async function runRequests(options: RunOptions): Promise<RunResult> {
  const latencies = new Float64Array(options.total);
  const errorSamples = new Set<string>();
  let issued = 0;
  let succeeded = 0;
  let errors = 0;
  const started = performance.now();
  const requester = async (id: number): Promise<void> => {
    while (issued < options.total) {
      const sequence = issued++;
      const sent = performance.now();
      try {
        await options.request(id, sequence);
        latencies[succeeded++] = (performance.now() - sent) / 1000;
      } catch (error) {
        errors += 1;
        if (errorSamples.size < MAX_ERROR_SAMPLES) errorSamples.add(error instanceof Error ? error.message : String(error));
      }
      options.onProgress?.(succeeded + errors);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.clients, options.total) }, (_, id) => requester(id)));
  return { latenciesSeconds: latencies.subarray(0, succeeded), errors, errorSamples: [...errorSamples], totalSeconds: (performance.now() - started) / 1000 };
}

/** A bar such as `[=========>          ]  45% 45000/100000` for stderr. */
export function progressBar(completed: number, total: number, width = 40): string {
  const fraction = total === 0 ? 1 : Math.min(1, completed / total);
  const filled = Math.floor(fraction * width);
  const bar = `${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === width ? "=" : ">") : ""}`.padEnd(width);
  return `[${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}% ${completed}/${total}`;
}
