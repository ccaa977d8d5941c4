import { createRequire } from 'node:module';

/** The raw addon surface (see native/shm.cc). Only segment.ts, descriptors.ts and counters.ts call it. */
export interface NativeShm {
  open(path: string, mode: 0 | 1 | 2 | 3): number;
  close(fd: number): void;
  allocate(fd: number, size: number): void;
  fill(fd: number, size: number, views: readonly (ArrayBufferView | ArrayBuffer)[], offsets: readonly number[]): void;
  copy(buffer: ArrayBuffer, views: readonly (ArrayBufferView | ArrayBuffer)[], offsets: readonly number[]): void;
  size(fd: number): number;
  map(fd: number, length: number, shared: boolean, populate: boolean, path?: string): ArrayBuffer;
  remapPrivate(buffer: ArrayBuffer, fd: number): void;
  written(buffer: ArrayBuffer): boolean;
  unlink(path: string): void;
  reclaim(from: string, to: string): boolean;
  rename(from: string, to: string): void;
  unmap(buffer: ArrayBuffer): void;
  slice(buffer: ArrayBuffer, offset: number, length: number): ArrayBuffer;
  stats(): { mappings: number; mappedBytes: number; pageSize: number };
  setParentDeathSignal(signal: number): number;
  descriptorLimit(raise: boolean): { soft: number; hard: number };
  loadCounter(buffer: ArrayBuffer, offset: number): number;
  addToCounter(buffer: ArrayBuffer, offset: number, delta: number): number;
  reserveOnCounter(buffer: ArrayBuffer, offset: number, size: number, limit: number): boolean;
  takeFromCounter(buffer: ArrayBuffer, offset: number, size: number): boolean;
  exchangeCounter(buffer: ArrayBuffer, offset: number, expected: number, desired: number): boolean;
}

function load(): NativeShm {
  const require = createRequire(import.meta.url);
  try {
    return require('../build/Release/shoal_shm.node') as NativeShm;
  } catch (error) {
    throw new Error(
      "@shoal/shm: the native addon is not built (build/Release/shoal_shm.node). Run `npm run build` " +
        'at the repository root; it builds the addon with node-gyp (needs python3, make, g++).',
      { cause: error },
    );
  }
}

export const native: NativeShm = load();
