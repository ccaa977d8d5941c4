import { createHash } from 'node:crypto';
import { builtinModules } from 'node:module';
import { parse, type Node } from 'acorn';
import { analyze } from 'periscopic';

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
export function functionSource(fn: unknown, caller = 'remote'): FunctionSource {
  if (typeof fn !== 'function') {
    throw new TypeError(`Expected \`${caller}()\` to be given a function, got \`${fn === null ? 'null' : typeof fn}\``);
  }
  const source = Function.prototype.toString.call(fn);
  const name = fn.name || 'anonymous';
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new TypeError(
      `${caller}(${name}): native and bound functions cannot be shipped to a worker; wrap the call in a plain function`,
    );
  }
  if (/^class[\s{]/.test(source)) {
    throw new TypeError(`${caller}(${name}): classes cannot be remote functions; pass a function`);
  }
  let ast: Node;
  try {
    ast = parseFunction(source);
  } catch (error) {
    throw new TypeError(`${caller}(${name}): the function's source could not be parsed (${(error as Error).message})`, {
      cause: error,
    });
  }
  const captured = [...analyze(ast as never).globals.keys()].filter((variable) => !isAllowedGlobal(variable)).sort();
  if (captured.length > 0) {
    const list = captured.map((variable) => `\`${variable}\``).join(', ');
    throw new TypeError(
      `${caller}(${name}): the function uses ${list} from its enclosing scope, but it runs in another process ` +
        'where those do not exist. Pass them as arguments, or import them inside the function ' +
        "(`const { x } = await import('pkg')`).",
    );
  }
  const hash = createHash('sha256').update(source).digest('base64url').slice(0, 22);
  return { source, hash, name };
}

/**
 * Turns shipped source back into a function, in a scope providing the helpers compilers inject
 * (`__name`) and CommonJS-style `require` for the worker's directory.
 */
export function compileFunction(source: string, require: NodeJS.Require): (...args: unknown[]) => unknown {
  const isMethod = (() => {
    try {
      parse(`(${source})`, { ecmaVersion: 'latest', sourceType: 'module' });
      return false;
    } catch {
      return true;
    }
  })();
  const body = isMethod ? `(() => { const o = {${source}}; return o[Object.keys(o)[0]]; })()` : `(${source})`;
  const factory = new Function('__name', 'require', `return ${body};`) as (
    name: unknown,
    require: NodeJS.Require,
  ) => (...args: unknown[]) => unknown;
  const keepName = (target: Function, value: string) =>
    Object.defineProperty(target, 'name', { value, configurable: true });
  return factory(keepName, require);
}
