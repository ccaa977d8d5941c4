// An actor that loads a big model-like matrix once and answers queries from many tasks.
//
//   npm run build && node examples/dist/actors/model.js [rows] [queries]
//
// The Model actor builds a rows x 256 matrix (a stand-in for weights read from disk) in its
// constructor, in its own process, once. Tasks running on the node's workers each get the actor's
// handle as an argument and ask it to score a query vector: the matrix never moves, only the
// small query and the small answer do. Prints how many times the matrix was built (1), the
// answers' checksum, and the throughput.
import { actor, get, remote, shutdown } from 'shoal';

const rows = Number(process.argv[2] ?? 10_000);
const queries = Number(process.argv[3] ?? 200);
const COLUMNS = 256;

class Model {
  readonly weights: Float64Array;
  readonly rows: number;
  loads = 0;

  constructor(rows: number, columns: number) {
    this.rows = rows;
    // The expensive part, done once per actor: here a deterministic matrix.
    this.weights = new Float64Array(rows * columns);
    for (let i = 0; i < this.weights.length; i++) this.weights[i] = ((i * 2654435761) % 1000) / 1000;
    this.loads += 1;
  }

  /** The index and score of the row that best matches `query` (dot product). */
  best(query: Float64Array): { row: number; score: number } {
    const columns = query.length;
    let best = -Infinity;
    let row = -1;
    for (let r = 0; r < this.rows; r++) {
      let score = 0;
      const base = r * columns;
      for (let c = 0; c < columns; c++) score += this.weights[base + c]! * query[c]!;
      if (score > best) {
        best = score;
        row = r;
      }
    }
    return { row, score: best };
  }

  stats(): { loads: number; megabytes: number; pid: number } {
    return { loads: this.loads, megabytes: this.weights.byteLength / 2 ** 20, pid: process.pid };
  }
}

const started = performance.now();
const model = new (actor(Model, { maxConcurrency: 1 }))(rows, COLUMNS);
// A task that asks the model: the handle travels as an argument, like a ref.
const ask = remote(async (m: { best(query: Float64Array): PromiseLike<{ row: number; score: number }> }, seed: number) => {
  const query = new Float64Array(256);
  for (let c = 0; c < query.length; c++) query[c] = ((seed * 31 + c * 17) % 100) / 100;
  return (await m.best(query)).row;
});
const answers = await get(Array.from({ length: queries }, (_, i) => ask(model, i)));
const elapsed = (performance.now() - started) / 1000;
const stats = await model.stats();
const checksum = answers.reduce((sum, row) => sum + row, 0);
console.log(`model: ${rows} x ${COLUMNS} matrix (${stats.megabytes.toFixed(1)} MiB) built ${stats.loads} time(s), in process ${stats.pid}`);
console.log(`answered ${answers.length} queries from tasks in ${elapsed.toFixed(2)} s; checksum of best rows ${checksum}`);
await shutdown();
