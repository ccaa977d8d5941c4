// Piscina's task for the Ray-named microbenchmarks (ray-micro.ts): Ray's `small_value`, which
// returns a short constant, so the peer does the same (no) work as Shoal's remote(() => 'ok').
export default function smallValue(): string {
  return 'ok';
}
