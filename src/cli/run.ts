import { CommanderError, type Command } from "commander";
import { KvError } from "../errors.js";

/** Where a command-line program writes; the real process streams, or buffers in tests. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Whether stderr is a terminal (progress bars only then). */
  readonly stderrIsTty: boolean;
}

export const EXIT_OK = 0;
/** A failed operation: the error's code and message are on stderr. */
export const EXIT_FAILURE = 1;
/** The command line itself was wrong (unknown command or option, missing argument). */
export const EXIT_USAGE = 2;

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTty: process.stderr.isTTY === true,
  };
}

/**
 * Runs a commander program over `argv` (user arguments only) and turns the outcome into an
 * exit code: usage errors 2 (commander has printed them), KvErrors 1 with `error CODE: message`
 * on stderr, anything else 1 with its message.
 */
export async function runProgram(program: Command, argv: readonly string[], io: CliIo): Promise<number> {
  configureTree(program, io);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (error) {
    return exitCodeOf(error, io);
  }
}

/** Subcommands copy these settings only when created, so the whole tree is configured here. */
function configureTree(command: Command, io: CliIo): void {
  command.exitOverride();
  command.configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  for (const subcommand of command.commands) configureTree(subcommand, io);
}

function exitCodeOf(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) {
    // Help and version asked for exit 0; everything else commander refuses is a usage error.
    return error.exitCode === EXIT_OK ? EXIT_OK : EXIT_USAGE;
  }
  if (error instanceof KvError) {
    io.stderr(`error ${error.code}: ${error.message}\n`);
    return EXIT_FAILURE;
  }
  io.stderr(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT_FAILURE;
}

/** A usage error raised from inside an action: printed like commander's own, exit code 2. */
export function usageError(program: Command, message: string): never {
  program.error(`error: ${message}`, { exitCode: EXIT_USAGE, code: "kv.usage" });
}
