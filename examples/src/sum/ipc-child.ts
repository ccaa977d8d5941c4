// Child process of the IPC comparison in sum/index.ts: sums the slice it is sent (a copy).
process.on('message', (slice: Float64Array) => {
  let total = 0;
  for (let i = 0; i < slice.length; i++) total += slice[i]!;
  process.send!(total);
});
