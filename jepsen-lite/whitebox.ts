/**
 * White-box checks of the Raft cluster after healing: every node applied the same state, and no
 * term ever had two leaders (from the nodes' pino "raft role" log lines). The faults that attack
 * a node's identity or its peer links report what they see meanwhile with the same shape.
 */
import type { NodeStatus } from "../src/server/replicated-node.js";

export interface WhiteboxAnomaly {
  readonly kind:
    | "state-diverged"
    | "two-leaders-in-term"
    /** corrupt-log-tail: a node started on a damaged log, or refused without naming the file. */
    | "damaged-log-accepted"
    | "damaged-log-unnamed"
    /** reprovision: a wiped, removed member led or took a write on its own. */
    | "second-cluster"
    /** forged-peer: a forged message was taken (its link stayed open), a term jumped, or a node exited. */
    | "forged-message-accepted"
    | "term-jumped"
    | "node-exited";
  readonly message: string;
}

export interface NodeState {
  readonly id: string;
  readonly applied: number;
  readonly keys: number;
  readonly term: number;
}

/** After quiescence, nodes at the same applied index must hold the same number of keys. */
export function compareStates(statuses: ReadonlyMap<string, NodeStatus>): { states: NodeState[]; anomalies: WhiteboxAnomaly[] } {
  const states = [...statuses.entries()].map(([id, status]) => ({ id, applied: status.applied, keys: status.keys, term: status.term }));
  const anomalies: WhiteboxAnomaly[] = [];
  const [first] = states;
  for (const state of states) {
    if (first === undefined || (state.applied === first.applied && state.keys === first.keys)) continue;
    anomalies.push({
      kind: "state-diverged",
      message: `${state.id} applied ${state.applied} with ${state.keys} keys, ${first.id} applied ${first.applied} with ${first.keys} keys`,
    });
  }
  return { states, anomalies };
}

/** Term -> the nodes that logged becoming its leader. */
export function leadersByTerm(logs: ReadonlyMap<string, string>): Map<number, Set<string>> {
  const leaders = new Map<number, Set<string>>();
  for (const [id, text] of logs) {
    for (const line of text.split("\n")) {
      if (!line.includes('"raft role"')) continue;
      let record: { role?: unknown; term?: unknown };
      try {
        record = JSON.parse(line) as { role?: unknown; term?: unknown };
      } catch {
        continue; // a line cut by kill -9
      }
      if (record.role !== "leader" || typeof record.term !== "number") continue;
      const nodes = leaders.get(record.term) ?? new Set<string>();
      nodes.add(id);
      leaders.set(record.term, nodes);
    }
  }
  return leaders;
}

export function checkOneLeaderPerTerm(logs: ReadonlyMap<string, string>): { terms: number; anomalies: WhiteboxAnomaly[] } {
  const leaders = leadersByTerm(logs);
  const anomalies: WhiteboxAnomaly[] = [];
  for (const [term, nodes] of leaders) {
    if (nodes.size > 1) anomalies.push({ kind: "two-leaders-in-term", message: `term ${term} had leaders ${[...nodes].sort().join(", ")}` });
  }
  return { terms: leaders.size, anomalies };
}
