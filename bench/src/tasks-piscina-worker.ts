// The Piscina contender's worker file for tasks.ts: the same trivial task as the Shoal and fork
// contenders. Piscina passes one value per task, so the two operands travel as an object.
const add = (a: number, b: number): number => a + b;

export default function task({ a, b }: { a: number; b: number }): number {
  return add(a, b);
}
