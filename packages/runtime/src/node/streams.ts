import type { ObjectPayload } from '@shoal/protocol';
import type { ObjectStore } from '@shoal/store';

/** What a consumer's pull gets: the item's id (its hold handed over), or the end of the stream. */
export type StreamNext = { readonly id: string } | { readonly end: true; readonly error?: Error };

/** Where a stream's producer runs now: its worker's `credit` goes there. */
export type StreamProducer = { send(message: { type: 'credit'; taskId: number; upTo: number; stop: boolean }): void; readonly taskId: number };

interface Stream {
  /** Who consumes it (its submitter; undefined: this node's own driver): closed if it goes away. */
  readonly consumer: object | undefined;
  readonly window: number;
  /** Item ids by index; taken ones are undefined (their holds went to the consumer). */
  readonly items: (string | undefined)[];
  /** Items taken so far: the producer may run `window` ahead of it. */
  taken: number;
  /** The highest `upTo` sent to the producer. */
  credited: number;
  ended: boolean;
  error: Error | undefined;
  closed: boolean;
  /** Pulls waiting for item `index` (or the end). */
  readonly pulls: Map<number, (next: StreamNext) => void>;
}

/**
 * The streams of streaming tasks and actor methods on this node, by the id of the task's
 * result: each item the producer yields is stored as an object of its own and held here until
 * the consumer takes it (its hold handed over); the producer gets `credit` for `window` items
 * past what the consumer took, so a slow consumer holds it back; the stream ends when the
 * task's result settles (ready: done, failed: after the items before the error).
 */
export class StreamService {
  readonly #store: ObjectStore;
  readonly #producer: (returnId: string) => StreamProducer | undefined;
  readonly #streams = new Map<string, Stream>();

  /** `producer(returnId)`: where the task or call making stream `returnId` runs now. */
  constructor(store: ObjectStore, producer: (returnId: string) => StreamProducer | undefined) {
    this.#store = store;
    this.#producer = producer;
  }

  /**
   * A streaming task or call whose result is `returnId` was submitted (its result is expected
   * already) by `consumer`.
   */
  open(returnId: string, window: number, consumer?: object): void {
    const stream: Stream = { consumer, window, items: [], taken: 0, credited: window, ended: false, error: undefined, closed: false, pulls: new Map() };
    this.#streams.set(returnId, stream);
    this.#store.onSettled(returnId, () => {
      stream.ended = true;
      const status = this.#store.status(returnId);
      if (status.state === 'failed') stream.error = status.error;
      // Pulls past the last item: the end.
      for (const [index, reply] of stream.pulls) {
        if (index >= stream.items.length) {
          stream.pulls.delete(index);
          reply(this.#end(returnId, stream));
        }
      }
    });
  }

  /** Whether `returnId` is a stream's (its producer may reserve room for items). */
  has(returnId: string): boolean {
    return this.#streams.has(returnId);
  }

  /**
   * The producer of stream `returnId` yielded item `index`, stored as `id`; false when there is
   * no such stream (it was closed: the item is discarded).
   */
  item(returnId: string, index: number, id: string, payload: ObjectPayload): boolean {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.closed || index !== stream.items.length) {
      this.#store.discardUnclaimed(id);
      return false;
    }
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
    const reply = stream.pulls.get(index);
    if (reply) {
      stream.pulls.delete(index);
      reply(this.#take(returnId, stream, index));
    }
    return true;
  }

  /**
   * Item `index` of stream `returnId`, once yielded (its hold handed over: the caller counts it
   * for the consumer), or the end. A stream nobody opened here ends at once.
   */
  pull(returnId: string, index: number): Promise<StreamNext> | StreamNext {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.closed) return { end: true };
    if (index < stream.items.length) return this.#take(returnId, stream, index);
    if (stream.ended) return this.#end(returnId, stream);
    return new Promise((resolve) => stream.pulls.set(index, resolve));
  }

  /** The consumer stopped: the producer is told to end, items not taken go. */
  close(returnId: string): void {
    const stream = this.#streams.get(returnId);
    if (!stream || stream.closed) return;
    stream.closed = true;
    for (const [index, reply] of stream.pulls) {
      stream.pulls.delete(index);
      reply({ end: true });
    }
    this.#releaseItems(stream);
    const producer = this.#producer(returnId);
    if (!stream.ended && producer) producer.send({ type: 'credit', taskId: producer.taskId, upTo: stream.credited, stop: true });
    // Items yielded from now on find no stream and are discarded.
    this.#streams.delete(returnId);
  }

  #take(returnId: string, stream: Stream, index: number): StreamNext {
    const id = stream.items[index];
    if (id === undefined) return { end: true, error: new RangeError(`Item ${index} of the stream was taken already`) };
    stream.items[index] = undefined;
    stream.taken = Math.max(stream.taken, index + 1);
    const upTo = stream.taken + stream.window;
    if (upTo > stream.credited && !stream.ended) {
      stream.credited = upTo;
      const producer = this.#producer(returnId);
      producer?.send({ type: 'credit', taskId: producer.taskId, upTo, stop: false });
    }
    return { id };
  }

  /** The end, as the consumer learns it: the stream is forgotten (every item was taken before it). */
  #end(returnId: string, stream: Stream): StreamNext {
    this.#streams.delete(returnId);
    return stream.error ? { end: true, error: stream.error } : { end: true };
  }

  #releaseItems(stream: Stream): void {
    for (const [index, id] of stream.items.entries()) {
      if (id === undefined) continue;
      stream.items[index] = undefined;
      this.#store.release(id);
    }
  }

  /** The consumer went away: its streams are closed. */
  forget(consumer: object): void {
    for (const [returnId, stream] of [...this.#streams]) if (stream.consumer === consumer) this.close(returnId);
  }

  /** The node is closing: every stream ends. */
  clear(): void {
    for (const returnId of [...this.#streams.keys()]) this.close(returnId);
    this.#streams.clear();
  }
}
