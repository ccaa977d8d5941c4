// How far the store's copies of big objects got, for whoever watches (the runtime's progress bar
// on a terminal). Nobody watching: a copy is one call, as it always was.

/** Told of a copy's progress: bytes copied since the last call, then that it is over. */
export interface CopyProgress {
  advance(bytes: number): void;
  done(): void;
}

/**
 * Gives a reporter for `what` of `total` bytes (a `put`: a copy into the store; a `pull`: an object
 * arriving from another node), or undefined to let it run unwatched (in one call for a copy).
 */
export type CopyWatcher = (what: 'put' | 'pull', total: number) => CopyProgress | undefined;

/** The most copied between two reports of a watched copy. */
export const COPY_PART_BYTES = 256 * 2 ** 20;

let watcher: CopyWatcher | undefined;

/** Who watches this process's big copies (undefined: nobody). */
export function watchCopies(next: CopyWatcher | undefined): void {
  watcher = next;
}

/** Whether anyone watches copies: unwatched, a copy is one native call, with nothing around it. */
export function copiesWatched(): boolean {
  return watcher !== undefined;
}

/** A reporter for a pull of `total` bytes, if anyone watches. */
export function watchPull(total: number): CopyProgress | undefined {
  return watcher?.('pull', total);
}

type Views = readonly (ArrayBufferView | ArrayBuffer)[];

/**
 * Copies `views` to their `offsets` with `copy`: in one call when nobody watches (or the watcher
 * declines, e.g. a small object), else in parts of at most {@link COPY_PART_BYTES}, reported.
 */
export function copyInParts(views: Views, offsets: readonly number[], copy: (views: Views, offsets: readonly number[]) => void): void {
  if (watcher === undefined) return copy(views, offsets);
  let total = 0;
  for (const view of views) total += view.byteLength;
  const progress = watcher('put', total);
  if (progress === undefined) return copy(views, offsets);
  try {
    views.forEach((view, index) => {
      const bytes = ArrayBuffer.isView(view) ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength) : new Uint8Array(view);
      for (let at = 0; at < bytes.byteLength; at += COPY_PART_BYTES) {
        const part = bytes.subarray(at, Math.min(bytes.byteLength, at + COPY_PART_BYTES));
        copy([part], [offsets[index]! + at]);
        progress.advance(part.byteLength);
      }
    });
  } finally {
    progress.done();
  }
}
