// The recommender's data and kernel, shared by the Shoal server (server.ts) and the benchmark's
// naive peer (bench/src/recommender-naive-server.ts), so the two differ only in where the matrix
// lives.
import type { ServerResponse } from 'node:http';

/** Deterministic pseudo-random embeddings: xorshift32, so every version is reproducible. */
export function fillEmbeddings(target: Float32Array, seed: number): void {
  let state = seed >>> 0 || 1;
  for (let i = 0; i < target.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    target[i] = ((state >>> 0) / 0xffffffff) * 2 - 1;
  }
}

/** The k items with the highest dot product with `item` (excluding itself); rows of `dim` floats. */
export function topK(items: Float32Array, dim: number, item: number, k: number): { item: number; score: number }[] {
  const rows = items.length / dim;
  const query = items.subarray(item * dim, item * dim + dim);
  const bestItems = new Int32Array(k).fill(-1);
  const bestScores = new Float64Array(k).fill(Number.NEGATIVE_INFINITY);
  for (let row = 0; row < rows; row++) {
    if (row === item) continue;
    let score = 0;
    const base = row * dim;
    for (let d = 0; d < dim; d++) score += query[d]! * items[base + d]!;
    if (score <= bestScores[k - 1]!) continue;
    let at = k - 1;
    while (at > 0 && bestScores[at - 1]! < score) {
      bestScores[at] = bestScores[at - 1]!;
      bestItems[at] = bestItems[at - 1]!;
      at -= 1;
    }
    bestScores[at] = score;
    bestItems[at] = row;
  }
  const results: { item: number; score: number }[] = [];
  for (let i = 0; i < k && bestItems[i]! >= 0; i++) results.push({ item: bestItems[i]!, score: bestScores[i]! });
  return results;
}

/** A JSON answer. */
export function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
