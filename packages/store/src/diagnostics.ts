import { channel } from 'node:diagnostics_channel';

/**
 * Object events of this process's store, on Node's `diagnostics_channel` (see the runtime's
 * diagnostics.ts for the list). Published only while a channel has subscribers: an unwatched
 * channel costs one property read.
 */
export const objectPutChannel = channel('shoal:object:put');
export const objectFreeChannel = channel('shoal:object:free');

/** `shoal:object:put`: an object was stored on this node (made here, or a task's result). */
export interface ObjectPutMessage {
  readonly id: string;
  /** Its bytes. */
  readonly size: number;
  /** Whether it lives in the object table (small) rather than in a segment of its own. */
  readonly inline: boolean;
}

/** `shoal:object:free`: nothing holds the object any more; it is gone from this node. */
export interface ObjectFreeMessage {
  readonly id: string;
  readonly size: number;
}
