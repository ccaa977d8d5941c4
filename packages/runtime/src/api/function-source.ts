import { createHash } from 'node:crypto';
import { builtinModules } from 'node:module';
import { parse, type Node } from 'acorn';
import { analyze } from 'periscopic';
import { argumentError } from '@shoal/protocol';
import { originHeader, type Origin } from './compile-function.js';

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
