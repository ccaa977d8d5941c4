import {
  ObjectFreedError,
  NotConnectedError,
  ObjectNotFoundError,
  ObjectTooLargeError,
  REMOTE_OBJECT_LIMIT_BYTES,
  decodeValue,
  writeInline,
  type EncodedValue,
  type ObjectLocation,
  type ObjectPayload,
  type ObjectRef,
} from '@shoal/protocol';
import { ObjectWriter, SegmentReservations, SessionSegments, type TypedArrayKind, type WriterHost } from '@shoal/store';

/** How a client announces an object made with `create()` once it is sealed. */
export interface Publisher {
  /** A small object, written in ordinary memory: put it as a value. */
  publishInline(array: ArrayBufferView): ObjectRef;
  /** The segment of `size` bytes is written: tell the node. */
  publish(size: number): ObjectRef;
}

/**
 * How a client reads and writes objects. A process on the node's machine reads and writes the
 * node's segments directly ({@link LocalObjects}); a program that joined from a machine without a
 * node has no shared memory and sends and receives every object as bytes ({@link RemoteObjects}).
 * The client picks one when it is made, so no operation asks which kind of client it is.
 */
export interface ObjectIO {
  /**
   * What the node is told of object `id` (a put or a task result): a segment written here, or its
   * bytes. A segment's room is reserved first unless `granted` (the node granted it already);
   * `lent`: the name of the file of reused memory the node lent for it, filled rather than created.
   * @throws ObjectStoreFullError when the segment does not fit: nothing was written.
   */
  payload(id: string, encoded: EncodedValue, granted?: boolean, lent?: string): ObjectPayload;
  /** Bytes of shared memory writing `encoded` takes (0 when it travels inline): the room to reserve first. */
  segmentBytes(encoded: EncodedValue): number;
  /** A writer for `create()`, to fill in place. */
  create(id: string, kind: TypedArrayKind | number, length: number | undefined, publisher: Publisher): ObjectWriter<ArrayBufferView>;
  /** The value of object `id`, found at `location` (the node's answer to a resolve). */
  materialize(id: string, location: ObjectLocation): unknown;
  /** The value of object `id` if it is in this machine's shared memory (`getSync`). */
  readSync(id: string): unknown;
  /**
   * No ref to `id` remains here, or the node freed it: do not keep its mapping cached. Returns the
   * bytes of a mapping of it still alive (its memory is reused by the node once it is unmapped).
   */
  forget(id: string): number;
  /**
   * The node asks its processes to collect garbage (its memory is short): stop holding cached
   * mappings strongly, so that the ones no view needs are unmapped by the collection.
   */
  letGoOfMappings(): void;
}

/**
 * Objects in the node's session directory, read and written in place (zero-copy). Room for each
 * segment is reserved in the node's capacity page before the file is created.
 */
export class LocalObjects implements ObjectIO {
  readonly #segments: SessionSegments;
  readonly #reservations: SegmentReservations;
  readonly #inlineThreshold: number;
  readonly #segment = (id: string, size: number): unknown => this.#segments.read(id, size);

  /** `directory`: the node's session directory; objects from `inlineThreshold` bytes go to segments. */
  constructor(directory: string, inlineThreshold: number) {
    this.#segments = new SessionSegments(directory);
    this.#reservations = new SegmentReservations(directory);
    this.#inlineThreshold = inlineThreshold;
  }

  payload(id: string, encoded: EncodedValue, granted = false, lent?: string): ObjectPayload {
    const contains = encoded.refs.map((ref) => ref.id);
    const size = encoded.layout.totalSize;
    // One rule for what goes in a segment: the one the task executor reserves room by.
    if (this.segmentBytes(encoded) > 0) {
      if (!granted) this.#reservations.reserve(size);
      try {
        if (lent !== undefined) this.#segments.writeEncodedLent(lent, encoded);
        else this.#segments.writeEncoded(id, encoded);
      } catch (error) {
        if (!granted) this.#reservations.release(size);
        throw error;
      }
      return { size, contains };
    }
    return { size, bytes: writeInline(encoded), contains };
  }

  segmentBytes(encoded: EncodedValue): number {
    const size = encoded.layout.totalSize;
    return size >= this.#inlineThreshold ? size : 0;
  }

  create(id: string, kind: TypedArrayKind | number, length: number | undefined, publisher: Publisher): ObjectWriter<ArrayBufferView> {
    const { kind: resolvedKind, count } = writerShape(kind, length);
    return this.#segments.create(id, resolvedKind, count, writerHost(this.#inlineThreshold, publisher, this.#reservations));
  }

  materialize(id: string, location: ObjectLocation): unknown {
    return valueAt(id, location, this.#segment);
  }

  readSync(id: string): unknown {
    try {
      this.#segments.check(id);
    } catch {
      throw new ObjectNotFoundError(
        id,
        'inside a task, only objects in shared memory can be read synchronously; use `await get(ref)`.',
      );
    }
    return this.#segments.read(id);
  }

  forget(id: string): number {
    return this.#segments.forget([id]);
  }

  letGoOfMappings(): void {
    this.#segments.clear();
  }
}

/** Objects of a program on a machine without a node: each travels whole, as bytes, in one message. */
export class RemoteObjects implements ObjectIO {
  readonly #welcomed: () => boolean;

  /** `welcomed`: whether the node accepted this program yet (before, puts are refused). */
  constructor(welcomed: () => boolean) {
    this.#welcomed = welcomed;
  }

  payload(_id: string, encoded: EncodedValue): ObjectPayload {
    if (!this.#welcomed()) {
      throw new NotConnectedError('put an object');
    }
    const contains = encoded.refs.map((ref) => ref.id);
    const size = encoded.layout.totalSize;
    if (size > REMOTE_OBJECT_LIMIT_BYTES) {
      throw new ObjectTooLargeError({ size });
    }
    return { size, bytes: writeInline(encoded), contains };
  }

  segmentBytes(): number {
    return 0;
  }

  create(id: string, kind: TypedArrayKind | number, length: number | undefined, publisher: Publisher): ObjectWriter<ArrayBufferView> {
    // There is no segment to write into: fill in memory, send at seal() (the path is never opened).
    const { kind: resolvedKind, count } = writerShape(kind, length);
    return new ObjectWriter(resolvedKind, count, id, writerHost(Number.POSITIVE_INFINITY, publisher));
  }

  materialize(id: string, location: ObjectLocation): unknown {
    return valueAt(id, location, noSegment);
  }

  readSync(id: string): unknown {
    throw new ObjectNotFoundError(
      id,
      'this program joined the cluster from a machine without a node, so no object is in its memory: use `await get(ref)`.',
    );
  }

  forget(): number {
    return 0;
  }

  letGoOfMappings(): void {
    // Nothing is mapped here.
  }
}

function noSegment(id: string): never {
  throw new Error(`The node sent object ${id} as a segment to a program without shared memory (this is a bug).`);
}

/** The value an object location describes; `segment` reads a segment of this machine. */
function valueAt(id: string, location: ObjectLocation, segment: (id: string, size: number) => unknown): unknown {
  switch (location.kind) {
    case 'inline':
      return decodeValue(location.bytes, { copy: true, where: `object ${id}` });
    case 'segment':
      return segment(id, location.size);
    case 'error':
      throw decodeValue(location.error, { copy: true, where: `the error of object ${id}` });
    case 'freed':
      throw new ObjectFreedError(id);
    case 'spilled':
      // Sent only for a task's arguments, which the task executor asks for again.
      throw new Error(`The node sent object ${id} as spilled where it must say where it is (this is a bug).`);
  }
}

/** `create(Float64Array, n)` or `create(bytes)`, as a writer's kind and element count. */
function writerShape(kind: TypedArrayKind | number, length: number | undefined): { kind: string; count: number } {
  return typeof kind === 'number' ? { kind: 'Uint8Array', count: kind } : { kind: kind.name, count: length ?? Number.NaN };
}

/** A writer's host for a client: room is reserved in the node's page (none without shared memory). */
function writerHost(inlineThreshold: number, publisher: Publisher, reservations?: SegmentReservations): WriterHost {
  return {
    inlineThreshold,
    publishInline: (array) => publisher.publishInline(array),
    reserve: (size) => reservations?.reserve(size),
    unreserve: (size) => reservations?.release(size),
    publish: (size) => publisher.publish(size),
  };
}
