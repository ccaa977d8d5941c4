// Errors about objects, the store and shared memory.
import { ShoalError, formatBytes, type ShoalErrorOptions } from './shoal-error.js';

/** A system call on a shared-memory segment failed. Carries the `errno`, the syscall and the path. */
export class SharedMemoryError extends ShoalError {
  /** The prefix of this class's codes: the errno name follows, e.g. `'ERR_SHM_ENOSPC'`. */
  static readonly code = 'ERR_SHM_';
  /** The system error code, e.g. `'ENOSPC'`. */
  readonly errnoCode: string;
  /** The numeric errno. */
  readonly errno: number;
  /** The failed system call, e.g. `'mmap'`. */
  readonly syscall: string;
  /** The segment file the call was about. */
  readonly path: string;

  constructor(details: { errnoCode: string; errno: number; syscall: string; path: string; advice: string }, options?: ShoalErrorOptions) {
    super(
      `${SharedMemoryError.code}${details.errnoCode}`,
      `${details.syscall} failed for ${details.path} (${details.errnoCode}). ${details.advice}`,
      options,
    );
    this.errnoCode = details.errnoCode;
    this.errno = details.errno;
    this.syscall = details.syscall;
    this.path = details.path;
  }
}

/** This process holds so many segment mappings that mapping one more would risk `vm.max_map_count`. */
export class TooManyMappingsError extends ShoalError {
  static readonly code = 'ERR_TOO_MANY_MAPPINGS';
  constructor(path: string, live: number, limit: number) {
    super(
      TooManyMappingsError.code,
      `Cannot map ${path}: this process already has ${live} segment mappings alive (the limit is ${limit}, ` +
        `half of vm.max_map_count). Mappings of objects no longer in use are released by garbage collection, ` +
        'which runs between event-loop turns: a long synchronous loop over many distinct objects keeps them ' +
        'all alive. Await something now and then inside such a loop, drop views you no longer need, or raise ' +
        'vm.max_map_count (`sysctl -w vm.max_map_count=262144`).',
    );
  }
}

/** The session directory (under `shmRoot`) could not be created. `errnoCode` says why. */
export class SessionDirectoryError extends ShoalError {
  static readonly code = 'ERR_SESSION_DIRECTORY';
  constructor(path: string, root: string, errnoCode: string | undefined, options?: ShoalErrorOptions) {
    super(
      SessionDirectoryError.code,
      `Cannot create the session directory ${path} (${errnoCode ?? 'error'}). ` +
        (errnoCode === 'EEXIST'
          ? 'Another session uses this id; pick another `sessionId` or leave it unset.'
          : errnoCode === 'ENOENT'
            ? `${root} does not exist; Shoal needs a tmpfs there (or set \`shmRoot\`).`
            : `Check that ${root} exists and is writable by this user.`),
      options,
    );
  }
}

/** The object was freed (by `store.free` or because no reference to it remained) before this get. */
export class ObjectFreedError extends ShoalError {
  static readonly code = 'ERR_OBJECT_FREED';
  readonly objectId: string;
  constructor(objectId: string, detail = '', options?: ShoalErrorOptions) {
    super(
      ObjectFreedError.code,
      `Object ${objectId} was freed${detail}: its memory has been released. ` +
        'Keep an ObjectRef to it (or do not call store.free) for as long as you need to get it.',
      options,
    );
    this.objectId = objectId;
  }
}

/** No object with this id is known where it was looked up. */
export class ObjectNotFoundError extends ShoalError {
  static readonly code = 'ERR_OBJECT_NOT_FOUND';
  readonly objectId: string;
  constructor(objectId: string, detail: string, options?: ShoalErrorOptions) {
    super(ObjectNotFoundError.code, `Object ${objectId} was not found: ${detail}`, options);
    this.objectId = objectId;
  }
}

/** A put did not fit in the object store's capacity. */
export class ObjectStoreFullError extends ShoalError {
  static readonly code = 'ERR_OBJECT_STORE_FULL';
  /** Bytes the object needs. */
  readonly requested: number;
  /** Bytes already held by the store. */
  readonly used: number;
  /** The store's capacity in bytes. */
  readonly capacity: number;

  constructor(requested: number, used: number, capacity: number, detail = '') {
    super(
      ObjectStoreFullError.code,
      `Cannot store an object of ${formatBytes(requested)}: the object store holds ${formatBytes(used)} ` +
        `of its ${formatBytes(capacity)} capacity${detail}. Free objects you no longer need ` +
        '(store.free(ref), or drop the refs), or raise `objectStoreMemory` in init().',
    );
    this.requested = requested;
    this.used = used;
    this.capacity = capacity;
  }
}

/**
 * Objects could not be written to (or read back from) the spill directory: the disk is full, or
 * the directory cannot be written. Carries the system error; what was spilled before is intact.
 */
export class SpillError extends ShoalError {
  static readonly code = 'ERR_SPILL_FAILED';
  /** The system error code, e.g. `'ENOSPC'`. */
  readonly errnoCode: string;
  /** The spill directory. */
  readonly directory: string;

  constructor(details: { what: string; directory: string; errnoCode: string }, options?: ShoalErrorOptions) {
    const advice =
      details.errnoCode === 'ENOSPC' || details.errnoCode === 'EDQUOT'
        ? 'The disk is full: free space there, or point `spillDirectory` (shoal start --spill-directory) at a larger disk.'
        : 'Check that the directory exists and this user may write it, or point `spillDirectory` (shoal start --spill-directory) elsewhere.';
    super(SpillError.code, `Cannot ${details.what} in the spill directory ${details.directory} (${details.errnoCode}). ${advice}`, options);
    this.errnoCode = details.errnoCode;
    this.directory = details.directory;
  }
}

/** The bytes of a stored object do not have Shoal's layout (wrong magic, version or sizes). */
export class ObjectCorruptError extends ShoalError {
  static readonly code = 'ERR_OBJECT_CORRUPT';
  constructor(where: string, detail: string) {
    super(ObjectCorruptError.code, `${where} is not a valid Shoal object: ${detail}.`);
  }
}

/** The store was used after `shutdown()`. */
export class StoreClosedError extends ShoalError {
  static readonly code = 'ERR_STORE_CLOSED';
  constructor(operation: string) {
    super(StoreClosedError.code, `Cannot ${operation}: the object store was shut down. Call init() again to start a new session.`);
  }
}

/**
 * Every copy of an object was on nodes that left the cluster (or a transfer of it broke and no
 * other node holds it). Re-execution from lineage is not done yet: re-run what made it.
 */
export class ObjectLostError extends ShoalError {
  static readonly code = 'ERR_OBJECT_LOST';
  readonly objectId: string;
  constructor(objectId: string, detail: string) {
    super(ObjectLostError.code, `Object ${objectId} is lost: ${detail}`);
    this.objectId = objectId;
  }
}

/**
 * A program on a machine without a node moves each object whole over its one connection, up to a
 * limit: this object is above it. With `objectId` it was an object to receive, without one an
 * object to store.
 */
export class ObjectTooLargeError extends ShoalError {
  static readonly code = 'ERR_OBJECT_TOO_LARGE';
  /** The object's size in bytes. */
  readonly size: number;
  constructor(details: { readonly size: number; readonly objectId?: string }) {
    super(
      ObjectTooLargeError.code,
      details.objectId === undefined
        ? `Cannot store an object of ${formatBytes(details.size)}: a program on a machine without a node sends each object ` +
            'whole, up to 1 GiB. Split it into several objects, or run the program on a machine with a node ' +
            '(`shoal start --address ...`).'
        : `Object ${details.objectId} is ${formatBytes(details.size)}: a program on a machine without a node receives each object ` +
            'whole, up to 1 GiB. Read it in a task, or run the program on a machine with a node.',
    );
    this.size = details.size;
  }
}

/** The node refused to bind a name to an object; `reason` is the node's explanation. */
export class BindFailedError extends ShoalError {
  static readonly code = 'ERR_BIND_FAILED';
  constructor(reason: string) {
    super(BindFailedError.code, reason);
  }
}

/**
 * This process ran out of file descriptors (EMFILE, or the system's table: ENFILE) opening a
 * segment file or accepting a connection. Not a lost object: the object is fine, the process
 * cannot open anything more until some descriptor is closed.
 */
export class DescriptorsExhaustedError extends ShoalError {
  static readonly code = 'ERR_DESCRIPTORS_EXHAUSTED';
  /** Descriptors open when it happened (undefined when even counting them failed). */
  readonly open: number | undefined;
  /** The process's soft limit (`ulimit -n`). */
  readonly limit: number | undefined;

  /**
   * @param what - what failed, e.g. `'open /dev/shm/shoal-x/abc'` or `'accept on the data port'`.
   * @param errnoCode - `'EMFILE'` (this process's limit) or `'ENFILE'` (the system's).
   */
  constructor(details: { what: string; errnoCode: string; open?: number | undefined; limit?: number | undefined }, options?: ShoalErrorOptions) {
    const { what, errnoCode, open, limit } = details;
    const counts = `${open ?? 'all'} open, limit ${limit ?? 'unknown'}`;
    super(
      DescriptorsExhaustedError.code,
      `File descriptors exhausted (${errnoCode}) at ${what}: ${counts}. ` +
        (errnoCode === 'ENFILE'
          ? 'The whole system is out of open files: raise fs.file-max (`sysctl -w fs.file-max=…`) or stop what holds them.'
          : 'Raise this process\'s limit (`ulimit -n <hard limit>` before starting it, `LimitNOFILE=` in a systemd unit; ' +
            'a Shoal daemon raises its soft limit to the hard one itself) or find what holds them (`ls /proc/<pid>/fd`); ' +
            'connections that never authenticate are refused by the listeners\' budgets.'),
      options,
    );
    this.open = open;
    this.limit = limit;
  }
}
