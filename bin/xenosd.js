#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// xenosd: the Xenos coordinator (see src/daemon/main.ts). It bounds its own heap first (src/daemon/heap-bound.ts).
import { ensureModernNode } from './node-version.js';

const script = new URL(import.meta.url).pathname;
if (ensureModernNode(script)) {
  const { boundHeap } = await import('../src/daemon/heap-bound.ts');
  boundHeap(script);
  await import('../src/daemon/main.ts');
}
