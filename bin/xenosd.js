#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// xenosd: the Xenos coordinator (see src/daemon/main.ts).
import { ensureModernNode } from './node-version.js';

if (ensureModernNode(new URL(import.meta.url).pathname)) await import('../src/daemon/main.ts');
