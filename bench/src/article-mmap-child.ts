// Memory-mapped-file rows of the article table (article.ts), one forked child per core. As the
// article did with np.memmap, every call maps the file afresh in the child (Shoal's addon:
// open, mmap private read-only-in-practice, close the descriptor), sums its range with the same
// kernel as every other row and drops the mapping. The file's pages are in the page cache (or
// are tmpfs pages) either way; what a call pays beyond the sum is the mapping and its page faults.
// `gc` collects the last mapping (its ArrayBuffer unmaps when collected) before the next phase.
import { closeSegment, mapSegment, openSegment } from '@shoal/shm';
import { sumRange } from './seed-kernel.js';

export type MmapRequest = { path: string; start: number; end: number } | 'gc';
/** A sum, or why there is none (the parent rejects the call with it rather than wait forever). */
export type MmapReply = number | { error: string };

const gc = (globalThis as { gc?: () => void }).gc;

function sumMapped(path: string, start: number, end: number): number {
  const fd = openSegment(path, 'read');
  let buffer: ArrayBuffer;
  try {
    // Up to the end of this child's range: the pages before `start` are mapped but never
    // touched, so they cost no page faults.
    buffer = mapSegment(fd, end * Float64Array.BYTES_PER_ELEMENT, {}, path);
  } finally {
    closeSegment(fd, path);
  }
  return sumRange(new Float64Array(buffer, 0, end), start, end);
}

process.on('message', (message: MmapRequest) => {
  if (message === 'gc') {
    gc?.();
    process.send!('gc-done');
    return;
  }
  let reply: MmapReply;
  try {
    reply = sumMapped(message.path, message.start, message.end);
  } catch (error) {
    reply = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
  process.send!(reply);
});
process.on('disconnect', () => process.exit(0));
process.send!('ready');
