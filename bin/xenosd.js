#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// xenosd: the Xenos coordinator (see src/daemon/main.ts). It bounds its own heap first (src/daemon/heap-bound.ts).
import { ensureModernNode } from './node-version.js';

// Node's file system calls share libuv's thread pool, 4 threads by default: with a burst of domains
// starting, their record writes and image copies queued behind each other for hundreds of ms (measured
// by bench/instances-ready). Set before anything uses the pool (and before the heap bound re-executes
// xenosd, which keeps the environment); an operator's own value wins.
process.env.UV_THREADPOOL_SIZE ??= '16';

const script = new URL(import.meta.url).pathname;
if (ensureModernNode(script)) {
  const { boundHeap } = await import('../src/daemon/heap-bound.ts');
  boundHeap(script);
  await import('../src/daemon/main.ts');
}
