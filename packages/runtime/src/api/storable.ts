import type { ActorHandle, ObjectRef } from '@shoal/protocol';

declare const notStorable: unique symbol;

/**
 * Stands where a value cannot be stored: a type error then reads
 * `… is not assignable to type 'NotStorable<"a function cannot be stored …">'`.
 */
export interface NotStorable<Why extends string> {
  readonly [notStorable]: Why;
}

/** Values stored as they are, whatever methods their type declares. */
type StoredWhole =
  | null
  | undefined
  | boolean
  | number
  | string
  | bigint
  | ArrayBuffer
  | ArrayBufferView
  | Date
  | RegExp
  | Error
  | ObjectRef<unknown>
  | ActorHandle;

/**
 * `T` where every part of it can be stored, and {@link NotStorable} in place of each part that
 * cannot: functions, symbols, promises, and methods of class instances (at run time only plain
 * objects, arrays, Map, Set and the types of {@link StoredWhole} are stored). `store.put` takes
 * `T & Storable<T>`, so a value that cannot be stored is a type error, not a `TypeError` later.
 * `any` and `unknown` pass, and so does an instance of a class with fields only (types are
 * structural): their parts are checked when stored.
 *
 * In generic code, where `T` is not known, pass the value as `unknown` and type the ref:
 * `store.put(value as unknown) as ObjectRef<T>`.
 */
export type Storable<T> = 0 extends 1 & T
  ? T
  : unknown extends T
    ? T
    : T extends StoredWhole
      ? T
      : T extends (...args: never[]) => unknown
        ? NotStorable<'a function cannot be stored (to run code elsewhere, use remote(fn))'>
        : T extends symbol
          ? NotStorable<'a symbol cannot be stored'>
          : T extends PromiseLike<unknown>
            ? NotStorable<'a promise cannot be stored: await it and store its result'>
            : T extends ReadonlyMap<infer K, infer V>
              ? ReadonlyMap<Storable<K>, Storable<V>>
              : T extends ReadonlySet<infer V>
                ? ReadonlySet<Storable<V>>
                : { [K in keyof T]: Storable<T[K]> };
