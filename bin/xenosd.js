#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// xenosd: the Xenos coordinator (see src/daemon/main.ts). It bounds its own heap first (src/daemon/heap-bound.ts).
import { codeFile } from './code.js';
import { ensureModernNode } from './node-version.js';

// Node's file system calls share libuv's thread pool, 4 threads by default: with a burst of domains
// starting, their record writes and image copies queued behind each other for hundreds of ms (measured
// by bench/instances-ready). Set before anything uses the pool (and before the heap bound re-executes
// xenosd, which keeps the environment); an operator's own value wins.
process.env.UV_THREADPOOL_SIZE ??= '16';
// glibc gives each thread that allocates its own malloc arena (up to 8 per core): the thread pool's and
// V8's threads held about 10 MB of mostly idle arenas (bench/host-footprint.ts). Two are plenty for a
// daemon whose work is on one thread. glibc reads it at start, so it applies from the heap bound's
// re-execution on.
process.env.MALLOC_ARENA_MAX ??= '2';

const script = new URL(import.meta.url).pathname;
if (ensureModernNode(script)) {
  const main = codeFile('src/daemon/main.ts');
  // The heap bound re-executes xenosd: the choice goes with it, so the sources are walked once per start.
  process.env.XENOS_CODE ??= main.includes('/dist/') ? 'dist' : 'sources';
  const { boundHeap } = await import(codeFile('src/daemon/heap-bound.ts'));
  boundHeap(script);
  await import(main);
}
