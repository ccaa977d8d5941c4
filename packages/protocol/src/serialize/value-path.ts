// Names a value's path in encoding errors (`args[0].list[1].callback`), and the kinds of
// values it names, so a TypeError says exactly which part of a value cannot be stored.

/** One step into a value: a key, an index, or text such as `.get("k")` for a Map entry. */
export type PathSegment = string | number | { readonly text: string };

/** The path as text, `value.list[1].callback`; shortened to its ends when very long. */
export function formatPath(root: string, path: readonly PathSegment[]): string {
  let text = root;
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string') text += /^[A-Za-z_$][\w$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
    else text += segment.text;
  }
  // A path thousands of levels deep helps nobody: keep its ends.
  return text.length > 200 ? `${text.slice(0, 90)}...${text.slice(-90)}` : text;
}

/** A Map key as it appears in a path: short strings quoted, objects by their class. */
export function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key.length > 40 ? `${key.slice(0, 37)}...` : key);
  if (typeof key === 'number' || typeof key === 'boolean' || key === null || key === undefined) return String(key);
  if (typeof key === 'bigint') return `${key}n`;
  return `<${describeObject(key as object)}>`;
}

/** A function as an error names it. */
export function describeFunction(fn: Function): string {
  return fn.name ? `function ${fn.name}` : 'a function';
}

/** An object's class name, for errors. */
export function describeObject(object: object): string {
  const ctor = (object as { constructor?: { name?: unknown } }).constructor;
  if (typeof ctor?.name === 'string' && ctor.name !== '') return ctor.name;
  return Object.prototype.toString.call(object).slice(8, -1);
}
