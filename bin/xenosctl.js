#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// xenosctl: the command-line client of xenosd (see src/cli/main.ts).
import { codeFile } from './code.js';
import { ensureModernNode } from './node-version.js';

if (ensureModernNode(new URL(import.meta.url).pathname)) {
  const { main } = await import(codeFile('src/cli/main.ts'));
  main().catch((err) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
