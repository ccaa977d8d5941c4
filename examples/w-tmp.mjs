import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { init, store, shutdown } from 'shoal';
if (process.argv[2] === 'child') {
  await init();
  let current;
  (async () => { for await (const { version, ref } of store.watch('items')) { current = { version, items: await ref }; console.log('child v', version); } })();
  setInterval(() => { for (let i = 0; i < 1e5; i++) ({ a: i }); globalThis.gc?.(); }, 50);
} else {
  const s = await init({ numCpus: 0 });
  const pub = async (v) => { const w = store.create(Float32Array, 1_000_000); w.array.fill(v); return (await store.putNamed('items', w.seal())).version; };
  await pub(1);
  const child = fork(new URL(import.meta.url).pathname, ['child'], { env: { ...process.env, SHOAL_ADDRESS: s.address }, execArgv: ['--expose-gc'] });
  await new Promise((r) => setTimeout(r, 1000));
  await pub(2);
  for (let i = 0; i < 20; i++) { await new Promise((r) => setTimeout(r, 200)); globalThis.gc(); }
  console.log('segments', readdirSync(s.directory).filter((n) => n.length === 20).length, store.stats().objects);
  child.kill(); await shutdown();
}
