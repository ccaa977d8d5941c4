import { createHash } from 'node:crypto';
import { builtinModules, createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { parse, type Node } from 'acorn';
import { analyze } from 'periscopic';
import { argumentError } from '@shoal/protocol';

/** A function ready to ship to workers: its source, a hash to cache it by, and its name. */
export interface FunctionSource {
  readonly source: string;
  readonly hash: string;
  readonly name: string;
}

// Helpers compilers inject into function bodies, which workers define themselves.
// esbuild (tsx) adds `__name(fn, "name")` to keep names of nested functions.
const INJECTED_HELPERS = new Set(['__name', 'arguments']);
// Available inside every task, though not properties of globalThis in an ES module.
const TASK_SCOPE = new Set(['require', 'module', 'exports', '__filename', '__dirname', 'undefined', 'NaN', 'Infinity']);

function isAllowedGlobal(name: string): boolean {
  return INJECTED_HELPERS.has(name) || TASK_SCOPE.has(name) || name in globalThis || builtinModules.includes(name);
}

function parseFunction(source: string): Node {
  const options = { ecmaVersion: 'latest', sourceType: 'module' } as const;
  try {
    return parse(`(${source})`, options);
  } catch {
    // Method shorthand (`sum(a) { ... }`, `async sum(a) { ... }`) is not an expression on its own.
    return parse(`({${source}})`, options);
  }
}

/**
 * Reads a function for shipping to other processes: checks that it can run there and hashes it.
 *
 * A remote function runs in another process, so it may use only its parameters, globals, Node
 * built-ins and what it imports itself (`await import('pkg')`). Every variable it captures from
 * an enclosing scope is named in the error.
 *
 * @throws TypeError when `fn` is not a function, cannot be shipped (native or bound), or captures
 *   variables from its enclosing scope.
 */
export function functionSource(fn: unknown, caller = 'remote', calledThrough?: Function, kind: 'function' | 'class' = 'function'): FunctionSource {
  if (typeof fn !== 'function') {
    throw argumentError('ERR_INVALID_ARGUMENT', `Expected \`${caller}()\` to be given a function, got \`${fn === null ? 'null' : typeof fn}\``);
  }
  const source = Function.prototype.toString.call(fn);
  const name = fn.name || 'anonymous';
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw argumentError('ERR_NOT_REMOTABLE',
      `${caller}(${name}): native and bound functions cannot be shipped to a worker; wrap the call in a plain function`,
    );
  }
  const isClass = /^class[\s{]/.test(source);
  if (isClass && kind === 'function') {
    throw argumentError('ERR_NOT_REMOTABLE', `${caller}(${name}): a class cannot be a remote function; turn it into an actor with actor(${name})`);
  }
  if (!isClass && kind === 'class') {
    throw argumentError('ERR_NOT_REMOTABLE', `${caller}(${name}): expected a class (\`class ${name} { ... }\`); turn a function into tasks with remote()`);
  }
  let ast: Node;
  try {
    ast = parseFunction(source);
  } catch (error) {
    throw argumentError('ERR_NOT_REMOTABLE', `${caller}(${name}): the function's source could not be parsed (${(error as Error).message})`, {
      cause: error,
    });
  }
  // A class's own name is in scope inside it (periscopic does not count a class expression's
  // name). It is the name in its source, not `fn.name`: esbuild renames `class Counter` to
  // `class Counter2 { static { __name(this, "Counter") } }`.
  const ownName = isClass ? classNameOf(ast) : undefined;
  const captured = [...analyze(ast as never).globals.keys()].filter((variable) => !isAllowedGlobal(variable) && variable !== ownName).sort();
  if (captured.length > 0) {
    const list = captured.map((variable) => `\`${variable}\``).join(', ');
    throw argumentError('ERR_NOT_REMOTABLE',
      `${caller}(${name}): the ${isClass ? 'class' : 'function'} uses ${list} from its enclosing scope, but it runs in another process ` +
        'where those do not exist. Pass them as arguments, or import them inside the function ' +
        "(`const { x } = await import('pkg')`).",
    );
  }
  const shipped = originHeader(callerLocation(calledThrough ?? functionSource)) + source;
  const hash = createHash('sha256').update(shipped).digest('base64url').slice(0, 22);
  return { source: shipped, hash, name };
}

/** The name a parsed `(class Name { ... })` gives itself, if any. */
function classNameOf(ast: Node): string | undefined {
  const statement = (ast as unknown as { body: { expression?: { type: string; id?: { name: string } | null } }[] }).body[0];
  const expression = statement?.expression;
  return expression?.type === 'ClassExpression' ? expression.id?.name : undefined;
}

/** Where a function shipped from `file` at `line`:`column` was turned remote (see {@link originHeader}). */
interface Origin {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/**
 * Where the call of `through` (the API function the user called: `remote`, `fn.options`) was
 * made: the first frame below it. For a function written in the call (`remote((a) => ...)`)
 * that is where the function is.
 */
function callerLocation(through: Function): Origin | undefined {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, through);
  const frame = (holder.stack ?? '').split('\n')[1] ?? '';
  const match = /\(?((?:file:\/\/|\/)[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(frame);
  return match ? { file: match[1]!, line: Number(match[2]), column: Number(match[3]) } : undefined;
}

/** The comment shipped before a function's source that says where it comes from; its line stands alone. */
const ORIGIN_PREFIX = '/*@shoal-origin ';

function originHeader(origin: Origin | undefined): string {
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
  const isMethod = (() => {
    try {
      parse(`(${source})`, { ecmaVersion: 'latest', sourceType: 'module' });
      return false;
    } catch {
      return true;
    }
  })();
  const body = isMethod ? `(() => { const o = {${source}}; return o[Object.keys(o)[0]]; })()` : `(${source})`;
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
  if (!local || vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER === undefined) {
    return (new Function('__name', 'require', `return ${body};`) as Factory)(keepName, taskRequire);
  }
  const factory = vm.compileFunction(`return ${body};`, ['__name', 'require'], {
    filename: origin.file,
    lineOffset: origin.line - 1,
    columnOffset: Math.max(0, origin.column - 1),
    // `await import()` in the task goes through the main loader, and a relative specifier resolves
    // from the file that called remote(), as it would there (see the worker's warning filter).
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER as never,
  }) as Factory;
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
