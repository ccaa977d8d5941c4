// The receiving side of a shipped function (function-source.ts reads and checks it where remote()
// is called): workers compile it back into a function. Kept apart from the closure check, so a
// worker does not load a JavaScript parser (acorn, periscopic) to run tasks.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

/** Where a function shipped from `file` at `line`:`column` was turned remote (see {@link originHeader}). */
export interface Origin {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** The comment shipped before a function's source that says where it comes from; its line stands alone. */
const ORIGIN_PREFIX = '/*@shoal-origin ';

export function originHeader(origin: Origin | undefined): string {
  return origin ? `${ORIGIN_PREFIX}${JSON.stringify(origin)}*/\n` : '';
}

/** The origin header of shipped `source`, and the function's own source after it. */
function splitOrigin(source: string): { origin: Origin | undefined; code: string } {
  if (!source.startsWith(ORIGIN_PREFIX)) return { origin: undefined, code: source };
  const end = source.indexOf('*/\n');
  try {
    const origin = JSON.parse(source.slice(ORIGIN_PREFIX.length, end)) as Origin;
    if (typeof origin.file === 'string' && Number.isInteger(origin.line) && Number.isInteger(origin.column)) {
      return { origin, code: source.slice(end + 3) };
    }
  } catch {
    // Not a header of ours: compiled as it is.
  }
  return { origin: undefined, code: source };
}

/**
 * Turns shipped source back into a function, in a scope providing the helpers compilers inject
 * (`__name`) and CommonJS-style `require` for the worker's directory.
 */
export function compileFunction(shipped: string, require: NodeJS.Require): (...args: unknown[]) => unknown {
  const { origin, code: source } = splitOrigin(shipped);
  const keepName = (target: Function, value: string) =>
    Object.defineProperty(target, 'name', { value, configurable: true });
  type Factory = (name: unknown, require: NodeJS.Require) => (...args: unknown[]) => unknown;
  // Compiled as if written where remote() was called (stack frames of the task name that file
  // and line; columns of the first line are shifted by the wrapper), but only when that file is
  // on this machine (a task from another node's driver resolves its imports as before) and this
  // Node has the loader for it (20.12 and later).
  const file = origin && (origin.file.startsWith('file:') ? fileURLToPath(origin.file) : origin.file);
  const local = origin !== undefined && existsSync(file!);
  // `require` resolves from the calling file first, as it would there, then from the worker's
  // working directory (its runtimeEnv cwd): see callerRequire.
  const taskRequire = local ? callerRequire(file!, require) : require;
  const compile = (body: string): Factory => {
    if (!local || vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER === undefined) {
      return new Function('__name', 'require', `return ${body};`) as Factory;
    }
    return vm.compileFunction(`return ${body};`, ['__name', 'require'], {
      filename: origin.file,
      lineOffset: origin.line - 1,
      columnOffset: Math.max(0, origin.column - 1),
      // `await import()` in the task goes through the main loader, and a relative specifier resolves
      // from the file that called remote(), as it would there (see the worker's warning filter).
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER as never,
    }) as Factory;
  };
  let factory: Factory;
  try {
    factory = compile(`(${source})`);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // Method shorthand (`sum(a) { ... }`, `async sum(a) { ... }`) is not an expression on its own.
    factory = compile(`(() => { const o = {${source}}; return o[Object.keys(o)[0]]; })()`);
  }
  return factory(keepName, taskRequire);
}

/** A `require` per calling file (the functions of one file share it, and its module cache). */
const callerRequires = new Map<string, NodeJS.Require>();

/**
 * `require` for a task defined in `file`: a specifier resolves as `file` would resolve it (a
 * relative path next to it, a bare name from its `node_modules`), else as `fallback` (the
 * worker's working directory) does. Only a specifier that does not resolve from `file` falls
 * back: an error while loading a module that was found is the task's.
 */
function callerRequire(file: string, fallback: NodeJS.Require): NodeJS.Require {
  const known = callerRequires.get(file);
  if (known) return known;
  const own = createRequire(file);
  const resolve = (id: string, options?: { paths?: string[] }): string => {
    try {
      return own.resolve(id, options);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
      return fallback.resolve(id, options);
    }
  };
  resolve.paths = (request: string) => own.resolve.paths(request);
  const taskRequire = ((id: string) => own(resolve(id))) as NodeJS.Require;
  Object.assign(taskRequire, { resolve, cache: own.cache, main: own.main, extensions: own.extensions });
  callerRequires.set(file, taskRequire);
  return taskRequire;
}
