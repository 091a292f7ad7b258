/**
 * A FIFO bounded by item count and by total bytes: pushing past either bound drops the oldest items
 * first and counts them (each as `weigh(item)`, 1 by default: a batch of samples counts its samples).
 * O(1) push and shift (a ring that grows up to `maxItems`).
 */
export class BoundedQueue<T> {
  private items: (T | undefined)[] = [];
  private sizes: number[] = [];
  private head = 0;
  private count = 0;
  private bytesHeld = 0;
  /** Items dropped so far to stay within the bounds (in `weigh` units). */
  dropped = 0;

  constructor(
    readonly maxItems: number,
    readonly maxBytes: number,
    private readonly weigh: (item: T) => number = () => 1,
  ) {
    if (!Number.isInteger(maxItems) || maxItems < 1) throw new RangeError(`maxItems must be a positive integer (got ${maxItems})`);
    if (!(maxBytes > 0)) throw new RangeError(`maxBytes must be positive (got ${maxBytes})`);
  }

  get length(): number {
    return this.count;
  }
  get bytes(): number {
    return this.bytesHeld;
  }

  /** Appends `item` of `size` bytes, dropping the oldest items while a bound is exceeded. An item larger than `maxBytes` is itself dropped. */
  push(item: T, size: number): void {
    if (size > this.maxBytes) {
      this.dropped += this.weigh(item);
      return;
    }
    while (this.count >= this.maxItems || this.bytesHeld + size > this.maxBytes) {
      this.dropped += this.weigh(this.shift()!);
    }
    const cap = this.items.length;
    if (this.count === cap) {
      // Grow: unroll the ring into a bigger array (amortized; capped by maxItems).
      const next = Math.min(this.maxItems, Math.max(16, cap * 2));
      const items: (T | undefined)[] = new Array<T | undefined>(next);
      const sizes: number[] = new Array<number>(next).fill(0);
      for (let i = 0; i < this.count; i++) {
        items[i] = this.items[(this.head + i) % cap];
        sizes[i] = this.sizes[(this.head + i) % cap];
      }
      this.items = items;
      this.sizes = sizes;
      this.head = 0;
    }
    const at = (this.head + this.count) % this.items.length;
    this.items[at] = item;
    this.sizes[at] = size;
    this.count++;
    this.bytesHeld += size;
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.bytesHeld -= this.sizes[this.head];
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return item;
  }

  /** The oldest item without removing it, or undefined when empty. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** Empties the queue; returns how many items it held (in `weigh` units). */
  clear(): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) n += this.weigh(this.items[(this.head + i) % this.items.length]!);
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.count = 0;
    this.bytesHeld = 0;
    return n;
  }
}
