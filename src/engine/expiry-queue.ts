/**
 * A min-heap of (expiresAt, id) with lazy deletion: an item is not removed when its owner's
 * deadline changes; the consumer checks each popped item against the current state instead.
 * Items are ordered by deadline and then by id, so the order in which expired things are
 * purged is a function of the state alone (identical on every replica and every shard count).
 */
export interface ExpiryItem {
  readonly expiresAt: number;
  readonly id: string;
}

function before(left: ExpiryItem, right: ExpiryItem): boolean {
  return left.expiresAt < right.expiresAt || (left.expiresAt === right.expiresAt && left.id < right.id);
}

export class ExpiryQueue {
  private items: ExpiryItem[] = [];

  get length(): number {
    return this.items.length;
  }

  push(item: ExpiryItem): void {
    const items = this.items;
    items.push(item);
    let child = items.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      const parentItem = items[parent] as ExpiryItem;
      if (!before(item, parentItem)) break;
      items[child] = parentItem;
      child = parent;
    }
    items[child] = item;
  }

  peek(): ExpiryItem | undefined {
    return this.items[0];
  }

  pop(): ExpiryItem | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let parent = 0;
    for (;;) {
      const left = 2 * parent + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && before(items[right] as ExpiryItem, items[left] as ExpiryItem) ? right : left;
      const childItem = items[child] as ExpiryItem;
      if (!before(childItem, last)) break;
      items[parent] = childItem;
      parent = child;
    }
    items[parent] = last;
    return top;
  }

  /**
   * True when a current item is due by `now`. Stale items met on the way are dropped: the queue
   * is an index, not replicated state, and stale items never decide what a purge removes.
   */
  hasCurrentDue(now: number, isCurrent: (item: ExpiryItem) => boolean): boolean {
    for (let next = this.peek(); next !== undefined && next.expiresAt <= now; next = this.peek()) {
      if (isCurrent(next)) return true;
      this.pop();
    }
    return false;
  }

  /**
   * Expires current items due by `now`, earliest first, at most `limit` of them: each is popped
   * and handed to `expire` before the next is looked at, so a duplicate of an item just expired
   * is seen as stale and dropped. Returns how many were expired.
   */
  expireDue(now: number, limit: number, isCurrent: (item: ExpiryItem) => boolean, expire: (item: ExpiryItem) => void): number {
    let expired = 0;
    while (expired < limit && this.hasCurrentDue(now, isCurrent)) {
      expire(this.pop() as ExpiryItem);
      expired++;
    }
    return expired;
  }

  /**
   * Drops stale items (their owner's deadline changed or the owner is gone) and duplicates, so
   * the garbage of lazy deletion stays proportional to the live items. O(length).
   */
  compact(isCurrent: (item: ExpiryItem) => boolean): void {
    const seen = new Set<string>();
    const kept: ExpiryItem[] = [];
    for (const item of this.items) {
      if (seen.has(item.id) || !isCurrent(item)) continue;
      seen.add(item.id);
      kept.push(item);
    }
    this.items = [];
    for (const item of kept) this.push(item);
  }
}
