// A watch's share of a sharded kind (issue 33): the buckets of the shard hash space it keeps, as
// a value the owner of the share can change (`Share.set`) while watches follow it, and the filter
// a watch applies with it (the server's selector, or the same test on the client where the server
// does not apply the selector).
import type { KubeObject } from "../core/objects.js";
import { bucketOf, checkBucketCount, emptyShardSelector, fnv1a64, shardSelector, shardValue, type ShardKey } from "../core/shards.js";

/** A share, given once. */
export interface ShareOptions {
  key: ShardKey;
  buckets: readonly number[];
  count: number;
  /** Hears once per watch whether the server filters ("server") or the watcher does ("client"). */
  onMode?: (mode: "server" | "client") => void;
}

/**
 * The buckets a watch keeps, changeable: `set()` makes every watch that uses it relist with the
 * new selector; objects that left the share come as `delete` events marked `unshared`.
 * @throws RangeError naming `sharding.buckets` for a count that cannot cut the hash space.
 */
export class Share {
  readonly key: ShardKey;
  readonly count: number;
  readonly onMode: ((mode: "server" | "client") => void) | undefined;
  private current: readonly number[];
  private readonly listeners = new Set<() => void>();

  constructor(options: ShareOptions) {
    checkBucketCount(options.count);
    this.key = options.key;
    this.count = options.count;
    this.onMode = options.onMode;
    this.current = [...new Set(options.buckets)].sort((a, b) => a - b);
  }

  /** The buckets kept now, ascending. */
  get buckets(): readonly number[] {
    return this.current;
  }

  /** Changes the share (no-op when the same); watches that use it relist with the new selector. */
  set(buckets: readonly number[]): void {
    const next = [...new Set(buckets)].sort((a, b) => a - b);
    if (next.length === this.current.length && next.every((b, i) => b === this.current[i])) return;
    this.current = next;
    for (const listener of [...this.listeners]) listener();
  }

  /** Calls `listener` on every change; returns how to stop. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** A watch's use of a share: the selector it sends, and its own test until a list shows the server applied the selector. */
export class ShardFilter {
  selector: string | undefined;
  mode: "server" | "client" | undefined;
  private buckets: Set<number>;

  constructor(readonly share: Share) {
    this.buckets = new Set(share.buckets);
    this.selector = selectorOf(share);
  }

  /** Whether the watcher passes `object` on: the server filtered, or its hash is in the share. */
  keeps(object: KubeObject): boolean {
    if (this.buckets.size === 0) return false; // the server's selector for none still keeps hash 0
    if (this.mode === "server" || this.buckets.size === this.share.count) return true;
    return this.buckets.has(bucketOf(fnv1a64(shardValue(object, this.share.key)), this.share.count));
  }

  /** Learns from a list's metadata whether the server applied the selector (once per watch). */
  learn(metadata: { shardInfo?: { selector: string } } | undefined): void {
    if (this.mode !== undefined || this.selector === undefined) return;
    this.mode = metadata?.shardInfo?.selector === this.selector ? "server" : "client";
    this.share.onMode?.(this.mode);
  }

  /**
   * Follows the share's changes for one watch: `signal()` aborts when it changes (the attempt in
   * flight ends); `changed()` then takes the new buckets into the selector sent (`base.selectors`)
   * and marks the relist to come as unsharing, once.
   */
  follow(base: { selectors: { shardSelector?: string }; lists: { unsharing: boolean } }): { signal: () => AbortSignal; changed: () => boolean; stop: () => void } {
    let interrupt = new AbortController();
    const stop = this.share.onChange(() => interrupt.abort());
    return {
      signal: () => interrupt.signal,
      changed: () => {
        if (!interrupt.signal.aborted) return false;
        interrupt = new AbortController();
        this.buckets = new Set(this.share.buckets);
        this.selector = selectorOf(this.share);
        if (this.selector) base.selectors.shardSelector = this.selector;
        else delete base.selectors.shardSelector;
        base.lists.unsharing = true;
        return true;
      },
      stop,
    };
  }
}

/** The server's selector for a share: none for every bucket; one that keeps (almost) nothing for none (the watcher's own test drops the rest). */
function selectorOf(share: Share): string | undefined {
  return share.buckets.length === 0 ? emptyShardSelector(share.key) : shardSelector(share.key, share.buckets, share.count);
}
