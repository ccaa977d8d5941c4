// Relays: a broadcast at the cost of about one transfer (data-protocol.ts). A holder already
// sending a large object sends the next puller of it to the node receiving it
// (`RelayChains`, the holder's side); that node's data server passes the bytes on as they arrive
// (`Arrivals` says what is arriving here, `sendArriving` writes it on), so the pullers form a
// chain in which each link carries the object once.
import type { Socket } from 'node:net';
import type { IncomingObject } from '@shoal/store';

/** An object arriving at this node from another, which this node's data server may send on. */
export interface Arriving {
  readonly incoming: IncomingObject;
  /** Ids of the objects it refers to, as its holder's answer gave them. */
  readonly contains: readonly string[] | undefined;
}

/**
 * How long a relay asked for an object it is about to receive waits for the first of it (see
 * {@link Arrivals.whenArriving}). Relays waiting on each other in a cycle (possible only when a
 * puller whose relay failed is relayed again by another holder) end there: the puller is told
 * the relay does not have it, and goes to the holder.
 */
export const ARRIVAL_WAIT_MS = 5_000;

/**
 * The segment objects this node is receiving now, by id: recorded as each pull's answer starts
 * its object, dropped once the object is sealed into the store or discarded. Also the pulls
 * started here whose object has not begun to arrive: a puller sent here by the holder may ask
 * before this node's own pull of it was answered (both were sent on at once), and waits.
 */
export class Arrivals {
  readonly #arriving = new Map<string, Arriving>();
  /** Pulls started here, no answer yet: who waits for their object to start arriving. */
  readonly #starting = new Map<string, ((arriving: Arriving | undefined) => void)[]>();

  /** This node started pulling `id`: until it arrives (or the pull ends) relays ask wait. */
  pulling(id: string): void {
    if (!this.#starting.has(id)) this.#starting.set(id, []);
  }

  /** This node's pull of `id` ended: whoever still waits for it to start arriving is told it will not. */
  pulled(id: string): void {
    const waiting = this.#starting.get(id);
    this.#starting.delete(id);
    for (const tell of waiting ?? []) tell(undefined);
  }

  /** Records `incoming` until it is sealed or discarded. */
  add(incoming: IncomingObject, contains: readonly string[] | undefined): void {
    const arriving: Arriving = { incoming, contains };
    this.#arriving.set(incoming.id, arriving);
    const waiting = this.#starting.get(incoming.id);
    if (waiting) {
      this.#starting.set(incoming.id, []);
      for (const tell of waiting) tell(arriving);
    }
    const stop = incoming.watch(() => {
      if (incoming.state !== 'sealed' && incoming.state !== 'discarded') return;
      stop();
      if (this.#arriving.get(incoming.id) === arriving) this.#arriving.delete(incoming.id);
    });
  }

  /** Object `id` while it arrives here (not yet sealed), or undefined. */
  get(id: string): Arriving | undefined {
    return this.#arriving.get(id);
  }

  /**
   * Object `id` while it arrives here; while this node's pull of it waits for its answer, a
   * promise of it once it starts arriving (undefined if the pull ends first, or after
   * {@link ARRIVAL_WAIT_MS}); undefined when this node is not getting it.
   */
  whenArriving(id: string): Arriving | Promise<Arriving | undefined> | undefined {
    const arriving = this.#arriving.get(id);
    if (arriving) return arriving;
    const waiting = this.#starting.get(id);
    if (!waiting) return undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ARRIVAL_WAIT_MS);
      timer.unref();
      waiting.push((started) => {
        clearTimeout(timer);
        resolve(started);
      });
    });
  }

  get size(): number {
    return this.#arriving.size;
  }
}

/** Bytes that must have arrived before they are passed on in one write (fewer, larger writes), except the last ones. */
const RELAY_WRITE_BYTES = 1 << 20;

/** How a {@link sendArriving} ended. */
export type RelayEnd = 'sent' | 'discarded' | 'closed';

/**
 * Writes the bytes of an object that is still arriving on `socket` as they arrive, from `read`
 * (its own mapping of the object's file, opened with `incoming.openForRead()`), in views of it
 * (no copy). `done` is told once: every byte was accepted by the socket (`sent`), the object was
 * discarded here (its pull failed: the socket is destroyed, so the far end fails over), or the
 * socket closed first. `written` is told of the bytes the socket took, write by write.
 */
export function sendArriving(
  socket: Socket,
  incoming: IncomingObject,
  read: { chunk(offset: number, length: number): Buffer; close(): void },
  done: (end: RelayEnd) => void,
  written: (bytes: number) => void = () => {},
): void {
  const { size } = incoming;
  let sent = 0;
  let ended = false;
  const end = (how: RelayEnd) => {
    if (ended) return;
    ended = true;
    stop();
    socket.off('close', onClose);
    read.close();
    done(how);
  };
  const onClose = () => end('closed');
  const pump = () => {
    if (ended) return;
    if (incoming.state === 'discarded') {
      socket.destroy();
      end('discarded');
      return;
    }
    const upTo = incoming.written;
    if (upTo === sent || (upTo - sent < RELAY_WRITE_BYTES && upTo < size)) return;
    const length = upTo - sent;
    const last = upTo === size;
    socket.write(read.chunk(sent, length), (error) => {
      if (!error) written(length);
      if (last) end(error ? 'closed' : 'sent');
    });
    sent = upTo;
    if (last) stop();
  };
  socket.once('close', onClose);
  const stop = incoming.watch(pump);
  if (socket.destroyed) return end('closed');
  pump();
}

/** A holder's chain of pullers for one object, while the holder still sends it to the first. */
interface Chain {
  /** The data URL the next puller is sent to (the newest puller in the chain). */
  tail: string;
  /** Whether the holder's own transfer to the first puller goes on. */
  readonly live: () => boolean;
}

/**
 * The holder's side: for each large object it is sending now, the chain of pullers receiving
 * it. The first puller gets the bytes from the holder ({@link start}); each later one is sent to
 * the newest puller before it ({@link next}), which then becomes the one the next is sent to. A
 * chain lasts as long as the holder's own transfer to its first puller: once that ended, the
 * next puller is sent the object by the holder, and starts a chain of its own.
 */
export class RelayChains {
  readonly #chains = new Map<string, Chain>();

  /**
   * A puller at `url` asks for object `id`: the URL it should pull from instead (the newest
   * puller receiving it now), or undefined when the holder sends it itself.
   */
  next(id: string, url: string): string | undefined {
    const chain = this.#live(id);
    if (!chain || chain.tail === url) return undefined;
    const relay = chain.tail;
    chain.tail = url;
    return relay;
  }

  /**
   * The holder started sending `id` to the puller at `url`, for as long as `live` says: later
   * pullers are sent there. Does nothing while a chain of `id` goes on (a puller its relay failed,
   * served directly). Chains that ended are dropped here, so there are never more than the
   * transfers in flight, and one.
   */
  start(id: string, url: string, live: () => boolean): void {
    for (const [other, chain] of this.#chains) if (!chain.live()) this.#chains.delete(other);
    if (!this.#chains.has(id)) this.#chains.set(id, { tail: url, live });
  }

  /** Objects with a chain now (ended ones included until the next {@link start}). */
  get size(): number {
    return this.#chains.size;
  }

  #live(id: string): Chain | undefined {
    const chain = this.#chains.get(id);
    if (chain && !chain.live()) {
      this.#chains.delete(id);
      return undefined;
    }
    return chain;
  }
}
