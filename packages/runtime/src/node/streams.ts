import type { ObjectPayload } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';

/** What a consumer's pull gets: the item's id (its hold handed over), or the end of the stream. */
export type StreamNext = { readonly id: string } | { readonly end: true; readonly error?: Error };

/** The producer's answer to `stream-wait`: items below `upTo` may be yielded; `stop`: end. */
export interface StreamGo {
  readonly upTo: number;
  readonly stop: boolean;
}

/** Where a stream's producer runs now: a `credit { stop }` goes there. */
export type StreamProducer = { send(message: { type: 'credit'; taskId: number; upTo: number; stop: boolean }): void; readonly taskId: number };

/** What a {@link StreamService} asks of the node around it. */
export interface StreamHost {
  /** Where the task or call making stream `returnId` runs now, if it was sent to a process. */
  producer(returnId: string): StreamProducer | undefined;
  /** Stops the task or call making stream `returnId`, which has not reached a process yet. */
  cancel(returnId: string): void;
  /** The number of producers paused for their consumers changed (see {@link StreamService.paused}). */
  pausedChanged(): void;
}

interface Stream {
  /** Who consumes it (its submitter; undefined: this node's own driver): only it may pull or close. */
  readonly consumer: object | undefined;
  readonly window: number;
  /** Item ids by index; taken ones are undefined (their holds went to the consumer). */
  readonly items: (string | undefined)[];
  /** Items taken so far: the producer may run `window` ahead of it. */
  taken: number;
  /** Room granted for items not reported yet (a producer may not ask for more than its credit). */
  granted: number;
  ended: boolean;
  error: Error | undefined;
  /** Pulls waiting for item `index` (or the end). */
  readonly pulls: Map<number, ((next: StreamNext) => void)[]>;
  /** The producer's `stream-wait`s, each for the item it may not yield yet. */
  readonly waits: { readonly index: number; readonly reply: (go: StreamGo) => void }[];
}

/**
 * The streams of streaming tasks and actor methods on this node, by the id of the task's
 * result: each item the producer yields is stored as an object of its own and held here until
 * the consumer takes it (its hold handed over). The producer may run `window` items past what
 * the consumer took; past that its `stream-wait` is answered only once the consumer takes more.
 * The stream ends when the task's result settles (ready: done, failed: after the items before
 * the error). See docs/internals.md ("Streams").
 */
export class StreamService {
  readonly #store: ObjectStore;
  readonly #host: StreamHost;
  readonly #streams = new Map<string, Stream>();
  /**
   * Producers waiting for their consumers (a `stream-wait` not answered): work that does not keep
   * the program alive by itself, since only the consumer can let it go on.
   */
  #paused = 0;
  /** Room granted for items not reported yet, by item id: the stream it was charged to. */
  readonly #grants = new Map<string, Stream>();

  constructor(store: ObjectStore, host: StreamHost) {
    this.#store = store;
    this.#host = host;
  }

  /** Tasks and calls whose producer waits for its consumer now. */
  get paused(): number {
    return this.#paused;
  }

  /** Answers the waits of `stream` for which `answer` gives a reply (all of them by default). */
  #answerWaits(stream: Stream, answer: (index: number) => StreamGo | undefined): void {
    if (stream.waits.length === 0) return;
    const kept: Stream['waits'] = [];
    const replies: (() => void)[] = [];
    for (const wait of stream.waits) {
      const go = answer(wait.index);
      if (go) replies.push(() => wait.reply(go));
      else kept.push(wait);
    }
    stream.waits.splice(0, stream.waits.length, ...kept);
    if (kept.length === 0) {
      this.#paused -= 1;
      this.#host.pausedChanged();
    }
    for (const reply of replies) reply();
  }

  /**
   * A streaming task or call whose result is `returnId` was submitted (its result is expected
   * already) by `consumer`. If the result is failed already, the stream ends with that failure.
   */
  open(returnId: string, window: number, consumer?: object): void {
    const stream: Stream = { consumer, window, items: [], taken: 0, granted: 0, ended: false, error: undefined, pulls: new Map(), waits: [] };
    this.#streams.set(returnId, stream);
    this.#store.onSettled(returnId, () => {
      stream.ended = true;
      const status = this.#store.status(returnId);
      if (status.state === 'failed') stream.error = status.error;
      this.#answerWaits(stream, (index) => ({ upTo: index, stop: true }));
      // Pulls past the last item: the end.
      for (const [index, replies] of stream.pulls) {
        if (index < stream.items.length) continue;
        stream.pulls.delete(index);
        const end = this.#end(returnId, stream);
        for (const reply of replies) reply(end);
      }
    });
  }

  /**
   * Whether the producer of stream `returnId` may be granted room for one more item now (its
   * credit not used up by items and grants); with `id`, the grant is counted, against this stream.
   */
  grant(returnId: string, id?: string): boolean {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.ended || stream.items.length + stream.granted >= this.#credit(stream)) return false;
    if (id === undefined) return true;
    stream.granted += 1;
    this.#grants.set(id, stream);
    return true;
  }

  /** Room granted for item `id` was refused or its item discarded: the stream it was charged to may be granted again. */
  ungrant(id: string): void {
    const stream = this.#grants.get(id);
    if (!stream) return;
    this.#grants.delete(id);
    stream.granted = Math.max(0, stream.granted - 1);
  }

  /**
   * Whether item `index`, stored as `id`, is what the producer of stream `returnId` may report
   * now: the stream is open, the index is the next one and within the credit, and `id` is a new
   * object (or one room was granted for: `granted`).
   */
  accepts(returnId: string, index: number, id: string, granted: boolean): boolean {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.ended || index !== stream.items.length || index >= this.#credit(stream)) return false;
    return granted || this.#store.status(id).state === 'freed';
  }

  /** Stores item `index` as `id` (checked with {@link StreamService.accepts} first). */
  item(returnId: string, index: number, id: string, payload: ObjectPayload, granted: boolean): void {
    const stream = this.#streams.get(returnId)!;
    // Charged to the stream it was granted for (another stream of the same actor, perhaps).
    if (granted) this.ungrant(id);
    try {
      this.#store.register(id, payload);
    } catch (error) {
      // No room: the item exists as that failure, for whoever gets it.
      this.#store.expect(id);
      this.#store.hold(id);
      this.#store.fail(id, error as Error);
    }
    // Held for the stream until the consumer takes it (a failed one is held already).
    if (this.#store.status(id).state !== 'failed') this.#store.hold(id);
    stream.items.push(id);
    const replies = stream.pulls.get(index);
    if (!replies) return;
    stream.pulls.delete(index);
    const first = this.#take(stream, index);
    replies[0]!(first);
    // A second pull of the same index (a confused consumer) learns it was taken.
    for (const reply of replies.slice(1)) reply(this.#take(stream, index));
  }

  /**
   * The producer of stream `returnId` may not yield item `index` yet: answered once the consumer
   * has taken enough, or at once when it has (or the stream is over: `stop`).
   */
  waitForCredit(returnId: string, index: number): StreamGo | Promise<StreamGo> {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.ended) return { upTo: index, stop: true };
    const upTo = this.#credit(stream);
    if (index < upTo) return { upTo, stop: false };
    return new Promise((reply) => {
      stream.waits.push({ index, reply });
      if (stream.waits.length === 1) {
        this.#paused += 1;
        this.#host.pausedChanged();
      }
    });
  }

  /**
   * Item `index` of stream `returnId` for `consumer`, once yielded (its hold handed over: the
   * caller counts it for the consumer), or the end. A stream this consumer did not open ends at
   * once (with the result's failure, if it failed: an actor dead before the call, say).
   */
  pull(returnId: string, index: number, consumer?: object): Promise<StreamNext> | StreamNext {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.consumer !== consumer) {
      const status = this.#store.status(returnId);
      // A call sent to an actor on another node opens no stream here: it ends as its result does.
      if (!stream && status.state === 'pending') return new Promise((resolve) => this.#store.onSettled(returnId, () => resolve(this.pull(returnId, index, consumer))));
      return status.state === 'failed' && !stream ? { end: true, error: status.error } : { end: true };
    }
    if (index < stream.items.length) return this.#take(stream, index);
    if (stream.ended) return this.#end(returnId, stream);
    return new Promise((resolve) => {
      const replies = stream.pulls.get(index);
      if (replies) replies.push(resolve);
      else stream.pulls.set(index, [resolve]);
    });
  }

  /** `consumer` stopped stream `returnId`: the producer is told to end (or its task is cancelled), items not taken go. */
  close(returnId: string, consumer?: object): void {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.consumer !== consumer) return;
    this.#streams.delete(returnId);
    for (const [index, replies] of stream.pulls) {
      stream.pulls.delete(index);
      for (const reply of replies) reply({ end: true });
    }
    this.#releaseItems(stream);
    if (stream.ended) return;
    this.#answerWaits(stream, (index) => ({ upTo: index, stop: true }));
    // Items yielded from now on find no stream and are discarded.
    const producer = this.#host.producer(returnId);
    if (producer) producer.send({ type: 'credit', taskId: producer.taskId, upTo: 0, stop: true });
    else this.#host.cancel(returnId);
  }

  /** What the producer may yield up to (exclusive). */
  #credit(stream: Stream): number {
    return stream.taken + stream.window;
  }

  #take(stream: Stream, index: number): StreamNext {
    const id = stream.items[index];
    if (id === undefined) return { end: true, error: new RangeError(`Item ${index} of the stream was taken already`) };
    stream.items[index] = undefined;
    stream.taken = Math.max(stream.taken, index + 1);
    const upTo = this.#credit(stream);
    this.#answerWaits(stream, (index) => (index < upTo ? { upTo, stop: false } : undefined));
    return { id };
  }

  /** The end, as the consumer learns it: the stream is forgotten (items it skipped go). */
  #end(returnId: string, stream: Stream): StreamNext {
    this.#streams.delete(returnId);
    this.#releaseItems(stream);
    return stream.error ? { end: true, error: stream.error } : { end: true };
  }

  #releaseItems(stream: Stream): void {
    for (const [id, charged] of this.#grants) if (charged === stream) this.#grants.delete(id);
    for (const [index, id] of stream.items.entries()) {
      if (id === undefined) continue;
      stream.items[index] = undefined;
      this.#store.release(id);
    }
  }

  /** The consumer went away: its streams are closed. */
  forget(consumer: object): void {
    for (const [returnId, stream] of [...this.#streams]) if (stream.consumer === consumer) this.close(returnId, consumer);
  }

  /** The node is closing: every stream ends. */
  clear(): void {
    for (const [returnId, stream] of [...this.#streams]) this.close(returnId, stream.consumer);
    this.#streams.clear();
  }
}
