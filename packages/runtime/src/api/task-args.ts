import { ObjectRef, encodeValue, writeInline, type EncodedValue, type WireArg } from '@shoal/protocol';

/** Task arguments ready for the wire. */
export interface BuiltArgs {
  readonly args: WireArg[];
  /** Ids of refs passed at top level: resolved before the function runs. */
  readonly deps: string[];
  /** Ids of refs nested inside inline arguments: kept alive while the task is pending. */
  readonly contains: string[];
  /** Refs made here for large arguments; the caller must keep them alive until submit is done. */
  readonly temporaries: ObjectRef[];
}

// Frozen all the way: a change to a shared list would throw, never leak into another call.
const none = <T>(): T[] => Object.freeze([]) as unknown as T[];
const NO_ARGS: BuiltArgs = Object.freeze({ args: none<WireArg>(), deps: none<string>(), contains: none<string>(), temporaries: none<ObjectRef>() });

/**
 * Turns call arguments into wire arguments: a top-level ObjectRef is passed by id (the worker gets
 * the value, zero-copy); a small value travels inline; a large value is put into the object store
 * first (by `putEncoded`) and passed by ref, so it is written once and read in place.
 */
export function buildArgs(
  values: readonly unknown[],
  inlineThreshold: number,
  putEncoded: (encoded: EncodedValue) => ObjectRef,
): BuiltArgs {
  // No arguments (a common call): nothing to build; the shared empty lists are never changed.
  if (values.length === 0) return NO_ARGS;
  const built: BuiltArgs = { args: [], deps: [], contains: [], temporaries: [] };
  values.forEach((value, i) => {
    if (value instanceof ObjectRef) {
      built.args.push({ ref: value.id, owner: value.owner });
      built.deps.push(value.id);
      return;
    }
    const encoded = encodeValue(value, `args[${i}]`);
    if (encoded.layout.totalSize >= inlineThreshold) {
      const ref = putEncoded(encoded);
      built.temporaries.push(ref);
      built.args.push({ ref: ref.id });
      built.deps.push(ref.id);
      return;
    }
    built.args.push({ value: writeInline(encoded) });
    for (const ref of encoded.refs) built.contains.push(ref.id);
  });
  return built;
}
