#!/usr/bin/env node
/**
 * `jepsen-lite --nodes 3 --time 60 --workload register,counter,set,lock --nemesis all --seed N`
 * Exit code 0: no anomaly; 1: an anomaly (or a check that could not decide); 2: usage error or
 * the run itself failed.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { join } from "node:path";
import { FAULT_GROUPS, parseFaultGroups } from "./nemesis.js";
import { run, WORKLOAD_NAMES, type RunWorkloadName } from "./runner.js";

function positiveInteger(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError("expected a positive integer");
  return value;
}

function workloadList(text: string): RunWorkloadName[] {
  const names = text === "all" ? [...WORKLOAD_NAMES] : text.split(",").map((name) => name.trim());
  for (const name of names) {
    if (!(WORKLOAD_NAMES as readonly string[]).includes(name)) throw new InvalidArgumentError(`unknown workload "${name}" (all, ${WORKLOAD_NAMES.join(", ")})`);
  }
  return names as RunWorkloadName[];
}

function nemesisList(text: string): ReturnType<typeof parseFaultGroups> {
  try {
    return parseFaultGroups(text);
  } catch (error) {
    throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
  }
}

interface CommandLine {
  readonly nodes: number;
  readonly time: number;
  readonly workload: RunWorkloadName[];
  readonly nemesis: ReturnType<typeof parseFaultGroups>;
  readonly seed: number;
  readonly out?: string;
  readonly consistency: "linearizable" | "serializable";
  readonly fsync: "always" | "interval";
  readonly clients: number;
  readonly timeoutMs: number;
}

const program = new Command("jepsen-lite")
  .description("fault injection against a real kv-node cluster, with checked histories and an HTML report")
  .addOption(new Option("--nodes <n>", "cluster size").choices(["3", "5"]).argParser(Number).default(3))
  .option("--time <seconds>", "how long the workloads and the nemesis run", positiveInteger, 60)
  .addOption(new Option("--workload <list>", `comma-separated: all, ${WORKLOAD_NAMES.join(", ")}`).argParser(workloadList).default(workloadList("register,counter,set,lock"), "register,counter,set,lock"))
  .addOption(new Option("--nemesis <list>", `comma-separated: all, none, ${FAULT_GROUPS.join(", ")}`).argParser(nemesisList).default(nemesisList("all"), "all"))
  .addOption(new Option("--seed <n>", "seeds the fault schedule and the operations").argParser(positiveInteger).default(1 + (Date.now() % 1_000_000), "from the clock"))
  .option("--out <dir>", "where results.json, history.jsonl, report.html and node logs go (default runs/seed-<seed>)")
  .addOption(new Option("--consistency <level>", "read consistency (serializable: a negative control)").choices(["linearizable", "serializable"]).default("linearizable"))
  .addOption(new Option("--fsync <mode>", "node durability (interval: a negative control with kill -9)").choices(["always", "interval"]).default("always"))
  .option("--clients <n>", "clients per workload", positiveInteger, 4)
  .option("--timeout-ms <ms>", "deadline of each client call", positiveInteger, 3000)
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

async function main(): Promise<void> {
  program.parse();
  const options = program.opts<CommandLine>();
  const outDirectory = options.out ?? join("runs", `seed-${options.seed}`);
  const result = await run({
    nodes: options.nodes,
    timeSeconds: options.time,
    workloads: options.workload,
    nemesis: options.nemesis,
    seed: options.seed,
    outDirectory,
    consistency: options.consistency,
    fsync: options.fsync,
    clientsPerWorkload: options.clients,
    operationTimeoutMs: options.timeoutMs,
    log: (line) => process.stderr.write(`jepsen-lite: ${line}\n`),
  });
  process.stdout.write(`${result.valid === true ? "valid" : result.valid === false ? "INVALID" : "unknown"}: ${join(outDirectory, "report.html")}\n`);
  process.exitCode = result.valid === true ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`jepsen-lite: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
});
