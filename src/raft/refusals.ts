import type { Message, RefusalReason, RefusedMessage } from "./types.js";

/**
 * Records of one reason kept per Ready. A flood of forged messages between two Readies must not
 * grow memory without bound: past this many, refusals of the same reason only add to the count
 * of the last record, so the driver still counts every one of them.
 */
const MAX_RECORDS_PER_REASON = 16;

/** The refusals since the last Ready, bounded per reason. */
export class RefusalCollector {
  private records: RefusedMessage[] = [];
  private readonly lastRecordOf = new Map<RefusalReason, number>();
  private readonly recordsOf = new Map<RefusalReason, number>();

  record(reason: RefusalReason, message: Message): void {
    const kept = this.recordsOf.get(reason) ?? 0;
    const last = this.lastRecordOf.get(reason);
    if (kept >= MAX_RECORDS_PER_REASON && last !== undefined) {
      const record = this.records[last];
      if (record !== undefined) this.records[last] = { ...record, count: record.count + 1 };
      return;
    }
    this.lastRecordOf.set(reason, this.records.length);
    this.recordsOf.set(reason, kept + 1);
    this.records.push({ reason, from: message.from, type: message.type, term: message.term, count: 1 });
  }

  hasRecords(): boolean {
    return this.records.length > 0;
  }

  /** The refusals for this Ready; the collector starts empty again. */
  take(): RefusedMessage[] {
    const records = this.records;
    this.records = [];
    this.lastRecordOf.clear();
    this.recordsOf.clear();
    return records;
  }
}
