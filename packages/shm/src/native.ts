import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

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

/** The C library this process runs on, as prebuild tags name it. */
function libc(): 'glibc' | 'musl' {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/**
 * Loads the addon with node-gyp-build from `native/`: a source build there (`native/build/Release`,
 * made by bin/shoal-build-addon.js) wins, else the prebuilt binary under
 * `native/prebuilds/<platform>-<arch>/` (linux-x64, glibc), which the workspace build makes and the
 * package ships. It is an N-API addon, so one binary serves every supported Node version. The
 * package has no binding.gyp at its root, so npm neither builds it nor warns of an install script.
 */
function load(): NativeShm {
  const require = createRequire(import.meta.url);
  const directory = fileURLToPath(new URL('../native', import.meta.url));
  const build = `node ${fileURLToPath(new URL('../bin/shoal-build-addon.js', import.meta.url))}`;
  const platform = () => `${process.platform}-${process.arch} (${libc()}, Node ${process.versions.node})`;
  const howToBuild =
    'Build it from source: install python3, make and a C++17 compiler (Debian: apt-get install python3 make g++), ' +
    `then run \`${build}\`. In the Shoal repository, \`npm run build\` builds it.`;
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(directory) as NativeShm;
  } catch (error) {
    const message = (error as Error).message;
    if (message.startsWith('No native build was found')) {
      throw new Error(
        `@shoal/shm: no native addon for ${platform()}: this package ships a prebuilt one for linux-x64 ` +
          `(glibc 2.34 or newer), and none was built here. ${howToBuild}`,
        { cause: error },
      );
    }
    // There is a binary, and the system would not load it (an older glibc, a damaged file).
    throw new Error(
      `@shoal/shm: the native addon for ${platform()} could not be loaded: ${message.split('\n')[0]}. ` +
        `The prebuilt one needs glibc 2.34 or newer (Debian 12, Ubuntu 22.04, RHEL 9). ${howToBuild}`,
      { cause: error },
    );
  }
}

export const native: NativeShm = load();
