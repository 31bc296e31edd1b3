import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import { formatMemberTable, memberRows } from "./cluster-table.js";
import { restoreSnapshot, saveSnapshot } from "./snapshot-files.js";

/**
 * Why a change may need --force: the leader refuses one after which the voters would have no
 * quorum among the members it hears from, or that promotes a learner behind the commit index.
 */
const FORCE_HELP = "go ahead even if the change could leave the cluster without a reachable quorum (or promotes a learner that is behind)";

/** `kv cluster status|add|remove|promote|transfer-leader` and `kv snapshot save|restore`. */
export function addClusterCommands(program: Command, context: CommandContext): void {
  const cluster = program.command("cluster").description("membership and leadership");
  cluster
    .command("status")
    .description("every member's role, term, indexes and lag behind the leader")
    .action(() =>
      context.run(async (client) => {
        const rows = memberRows(await client.clusterStatus());
        return context.mode === "plain" ? formatMemberTable(rows) : context.render(rows);
      }),
    );
  cluster
    .command("add <id> <address>")
    .description("add a member: as a learner first, promoted once it caught up")
    .option("--force", FORCE_HELP)
    .action((id: string, address: string, flags: ForceFlag) => context.run(async (client) => context.render(await client.addMember(id, address, forceOf(flags)))));
  cluster
    .command("remove <id>")
    .description("remove a member")
    .option("--force", FORCE_HELP)
    .action((id: string, flags: ForceFlag) => context.run(async (client) => context.render(await client.removeMember(id, forceOf(flags)))));
  cluster
    .command("promote <id>")
    .description("make a learner that has caught up a voter (kv cluster add does this by itself once the learner caught up)")
    .option("--force", FORCE_HELP)
    .action((id: string, flags: ForceFlag) => context.run(async (client) => context.render(await client.promoteMember(id, forceOf(flags)))));
  cluster
    .command("transfer-leader [to]")
    .description("hand leadership to member <to>, or to the most up-to-date one")
    .action((to: string | undefined) => context.run(async (client) => context.render(await client.transferLeader(to))));
  addSnapshotCommands(program, context);
}

interface ForceFlag {
  readonly force?: boolean;
}

function forceOf(flags: ForceFlag): { readonly force?: boolean } {
  return flags.force === true ? { force: true } : {};
}

function addSnapshotCommands(program: Command, context: CommandContext): void {
  const snapshot = program.command("snapshot").description("save a snapshot of the cluster, or restore one into a data directory");
  snapshot
    .command("save <file>")
    .description("make the leader snapshot now and download that snapshot to <file>")
    .action((file: string) => context.run(async (client) => savedOutput(await saveSnapshot(client, file), context)));
  snapshot
    .command("restore <file>")
    .description("verify <file> and place it in <dir>/snapshots/ so a node started on <dir> recovers from it")
    .requiredOption("--data-dir <dir>", "a fresh (absent or empty) data directory")
    .option("--peers <list>", "replace the snapshot's membership: name=host:port,... (as kv-node --peers)")
    .action(async (file: string, flags: { dataDir: string; peers?: string }) => {
      const restored = await restoreSnapshot(file, flags.dataDir, flags.peers);
      context.print(context.mode === "plain" ? `restored snapshot at index ${restored.index} (term ${restored.term}, voters ${restored.voters.join(",")}) to ${restored.path}` : context.render(restored));
    });
}

function savedOutput(saved: { path: string; name: string; index: number; sizeBytes: number }, context: CommandContext): string {
  return context.mode === "plain" ? `saved ${saved.name} (index ${saved.index}, ${saved.sizeBytes} bytes) to ${saved.path}` : context.render(saved);
}
