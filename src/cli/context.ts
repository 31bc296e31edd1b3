import type { Command } from "commander";
import { KvClient } from "../client/client.js";
import { renderData, type OutputMode } from "./output.js";
import type { CliIo } from "./run.js";

/** The options every `kv` command shares, given before the command name. */
export interface GlobalOptions {
  readonly endpoints: string;
  readonly namespace?: string;
  readonly json?: boolean;
  readonly typed?: boolean;
  readonly timeout: number;
  readonly consistency: "linearizable" | "serializable";
}

export const DEFAULT_ENDPOINTS = "kv://127.0.0.1:6380";
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * What a command action needs: the output mode, a client connected on first use (so usage
 * errors never wait for a network), and where to print. One context per program run.
 */
export class CommandContext {
  private client: Promise<KvClient> | null = null;

  constructor(
    readonly program: Command,
    readonly io: CliIo,
  ) {}

  get options(): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  get mode(): OutputMode {
    if (this.options.typed === true) return "typed";
    return this.options.json === true ? "json" : "plain";
  }

  /** Connects once; the CLI asks for every Int as a bigint so Int and Float stay apart. */
  connect(): Promise<KvClient> {
    this.client ??= KvClient.connect(this.options.endpoints, { ints: "bigint", timeoutMs: this.options.timeout, consistency: this.options.consistency }).then((client) =>
      this.options.namespace === undefined ? client : client.namespace(this.options.namespace),
    );
    return this.client;
  }

  /** Runs one action against the client and prints its output line. */
  async run(action: (client: KvClient) => Promise<string>): Promise<void> {
    try {
      const output = await action(await this.connect());
      if (output !== "") this.io.stdout(`${output}\n`);
    } finally {
      await this.close();
    }
  }

  /** A result that is not a stored value (count, boolean, key list, info) in the output mode. */
  render(data: unknown): string {
    return renderData(data, this.mode);
  }

  print(text: string): void {
    this.io.stdout(`${text}\n`);
  }

  async close(): Promise<void> {
    const pending = this.client;
    this.client = null;
    if (pending !== null) await (await pending.catch(() => null))?.close();
  }
}
