import { Command, Option } from "commander";
import { positiveInteger } from "./arguments.js";
import { addClusterCommands } from "./cluster-commands.js";
import { CommandContext, DEFAULT_ENDPOINTS, DEFAULT_TIMEOUT_MS } from "./context.js";
import { addDataCommands } from "./data-commands.js";
import { runProgram, type CliIo } from "./run.js";

/**
 * `kv [global options] <command>`: the command-line client, like etcdctl or redis-cli. Global
 * options come before the command (positional options), because `--json` after `set` means
 * "the value is JSON" while before the command it means "print JSON".
 */
export function createKvProgram(io: CliIo, environment: NodeJS.ProcessEnv = process.env): { program: Command; context: CommandContext } {
  const program = new Command()
    .name("kv")
    .description("data-bridge-kv command-line client. Global options go before the command: kv --json get key")
    .enablePositionalOptions()
    .option("--endpoints <list>", "kv://host:port[,host:port...][/namespace] (env KV_ENDPOINTS)", environment["KV_ENDPOINTS"] ?? DEFAULT_ENDPOINTS)
    .option("--namespace <name>", "confine every key and pattern to this namespace")
    .option("--json", "print JSON")
    .option("--typed", "print JSON with type tags, e.g. {\"type\":\"int\",\"value\":\"42\"}")
    .option("--timeout <ms>", "deadline of the call, retries included", positiveInteger, DEFAULT_TIMEOUT_MS)
    .addOption(new Option("--consistency <level>", "reads: linearizable, or serializable (any node, may be stale)").choices(["linearizable", "serializable"]).default("linearizable"))
    .showHelpAfterError("(add --help for usage)");
  const context = new CommandContext(program, io);
  addDataCommands(program, context);
  addClusterCommands(program, context);
  return { program, context };
}

/** Runs `kv` with the user's arguments; resolves with the exit code. */
export async function runKv(argv: readonly string[], io: CliIo, environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { program, context } = createKvProgram(io, environment);
  try {
    return await runProgram(program, argv, io);
  } finally {
    await context.close();
  }
}
