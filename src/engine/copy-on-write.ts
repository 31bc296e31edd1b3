/**
 * A Map that can be handed to a snapshot in O(1): `share()` returns the current Map and marks
 * it shared; the next write copies it first (a shallow copy, enough because the values stored
 * in it are immutable or cloned before change). The snapshot keeps reading the Map it was
 * given, which no write touches again, while the engine keeps applying.
 *
 * There is no "unshare": a share that outlives its snapshot costs one extra copy at the next
 * write, which is simpler and cheaper than tracking when every reader is done.
 */
export class CopyOnWriteMap<K, V> {
  private map: Map<K, V>;
  private shared = false;

  constructor(initial: Map<K, V> = new Map()) {
    this.map = initial;
  }

  get current(): ReadonlyMap<K, V> {
    return this.map;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  share(): ReadonlyMap<K, V> {
    this.shared = true;
    return this.map;
  }

  set(key: K, value: V): void {
    this.writable().set(key, value);
  }

  delete(key: K): boolean {
    if (!this.map.has(key)) return false;
    return this.writable().delete(key);
  }

  private writable(): Map<K, V> {
    if (this.shared) {
      this.map = new Map(this.map);
      this.shared = false;
    }
    return this.map;
  }
}
