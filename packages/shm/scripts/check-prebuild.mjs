// Run by `npm pack` / `npm publish` (prepack): the package must ship the prebuilt addon it
// promises, for linux-x64 with glibc 2.34+ and libstdc++ of GCC 11+ (GLIBCXX 3.4.29): a binary
// built on a newer system would need a newer one and fail to load on the systems the README names.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const binary = fileURLToPath(new URL('../native/prebuilds/linux-x64/shoal_shm.glibc.node', import.meta.url));
const FLOORS = { GLIBC: [2, 34], GLIBCXX: [3, 4, 29] };

let bytes;
try {
  bytes = readFileSync(binary);
} catch {
  console.error(`@shoal/shm: ${binary} is missing: run \`npm run build\` (on linux-x64) before packing or publishing.`);
  process.exit(1);
}
// The symbol versions the binary needs are plain strings in its .dynstr section.
const text = bytes.toString('latin1');
for (const [library, floor] of Object.entries(FLOORS)) {
  const needed = [...text.matchAll(new RegExp(`${library}_(\\d+(?:\\.\\d+)+)`, 'g'))].map((match) => match[1].split('.').map(Number));
  const newest = needed.sort(compare).at(-1);
  if (newest && compare(newest, floor) > 0) {
    console.error(
      `@shoal/shm: the prebuilt addon needs ${library}_${newest.join('.')}, newer than the ${library}_${floor.join('.')} ` +
        'the package promises: build it on an older system (Debian 12, Ubuntu 22.04 or RHEL 9).',
    );
    process.exit(1);
  }
}

function compare(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}
