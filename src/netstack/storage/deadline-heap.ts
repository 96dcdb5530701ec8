// A binary min-heap of (deadline, item) pairs: the interface's timer queue, so a poll visits only the flows whose
// timer is due instead of every flow. No clock: deadlines are plain numbers the caller compares with its own now.
// Stale entries are the caller's business (it compares the entry's deadline with the item's current one); the
// heap only orders. Invariant: ats[parent(i)] ≤ ats[i]; `ats` and `items` move together.

export class DeadlineHeap<T> {
  private ats: number[] = [];
  private items: T[] = [];

  get size(): number { return this.ats.length; }
  /** Earliest deadline, or Infinity when empty. */
  get nextAt(): number { return this.ats.length > 0 ? this.ats[0] : Infinity; }
  /** Item of the earliest deadline (undefined when empty). */
  get nextItem(): T | undefined { return this.items[0]; }

  push(at: number, item: T): void {
    const ats = this.ats;
    const items = this.items;
    let i = ats.length;
    ats.push(at);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (ats[p] <= at) break;
      ats[i] = ats[p];
      items[i] = items[p];
      i = p;
    }
    ats[i] = at;
    items[i] = item;
  }

  /** Removes the earliest entry and returns its item (undefined when empty). */
  pop(): T | undefined {
    const ats = this.ats;
    const items = this.items;
    if (ats.length === 0) return undefined;
    const top = items[0];
    const at = ats.pop() as number;
    const item = items.pop() as T;
    const n = ats.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ats[c + 1] < ats[c]) c++;
        if (ats[c] >= at) break;
        ats[i] = ats[c];
        items[i] = items[c];
        i = c;
      }
      ats[i] = at;
      items[i] = item;
    }
    return top;
  }

  /** Keeps only the entries `keep` accepts and restores heap order (O(n)); used to shed stale entries. */
  filter(keep: (at: number, item: T) => boolean): void {
    const ats: number[] = [];
    const items: T[] = [];
    for (let i = 0; i < this.ats.length; i++) {
      if (keep(this.ats[i], this.items[i])) {
        ats.push(this.ats[i]);
        items.push(this.items[i]);
      }
    }
    this.ats = [];
    this.items = [];
    for (let i = 0; i < ats.length; i++) this.push(ats[i], items[i]);
  }
}
