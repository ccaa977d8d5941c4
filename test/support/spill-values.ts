// Values for the spilling tests (store-spill, runtime-spill): arrays whose every element depends
// on a seed, and a checksum that tells them apart, the same in the driver and in tasks.

/** A Float64Array of `bytes` bytes whose elements depend on `seed`. */
export function filled(bytes: number, seed: number): Float64Array {
  return new Float64Array(bytes / 8).map((_, i) => (i % 1000) * seed + seed);
}

/** A checksum of `values` (every 97th element, weighted, and the last). Tasks ship their own copy of it as source. */
export function checksum(values: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i += 97) sum += values[i]! * (i + 1);
  return sum + values[values.length - 1]!;
}
