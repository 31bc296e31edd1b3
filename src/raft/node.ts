import { RaftError } from "./types.js";
import type { MembershipChange, Message, NodeId, RaftConfig, RaftStatus, Ready } from "./types.js";

/** Defaults in the spirit of etcd: 10-tick elections, 1-tick heartbeats, 1 MiB messages. */
export function defaultRaftConfig(
  partial: Pick<RaftConfig, "id" | "storage" | "random"> & Partial<RaftConfig>,
): RaftConfig {
  return {
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxEntriesBytesPerMessage: 1024 * 1024,
    maxInflightMessages: 256,
    maxInflightBytes: 16 * 1024 * 1024,
    maxUncommittedEntriesBytes: 64 * 1024 * 1024,
    maxSnapshotChunkBytes: 1024 * 1024,
    applied: 0,
    ...partial,
  };
}

/** The Raft core (skeleton: the API is fixed, the implementation follows). */
export class RaftNode {
  constructor(private readonly config: RaftConfig) {}

  tick(): void {}
  step(_message: Message): void {}
  propose(_commands: readonly Uint8Array[]): { readonly firstIndex: number; readonly term: number } {
    throw new RaftError("NOT_LEADER", "not implemented yet");
  }
  proposeMembershipChange(_change: MembershipChange): { readonly index: number; readonly term: number } {
    throw new RaftError("NOT_LEADER", "not implemented yet");
  }
  readIndex(_context: number): void {}
  transferLeadership(_to: NodeId): void {}
  campaign(): void {}
  hasReady(): boolean {
    return false;
  }
  ready(): Ready {
    return { entries: [], snapshotChunks: [], committedEntries: [], messages: [], readStates: [], droppedReads: [] };
  }
  advance(): void {}
  status(): RaftStatus {
    const { hardState, membership } = this.config.storage.initialState();
    return {
      id: this.config.id, role: "follower", term: hardState.term, leader: null, commit: hardState.commit,
      applied: this.config.applied, lastIndex: this.config.storage.lastIndex(), membership, progress: {},
    };
  }
}
