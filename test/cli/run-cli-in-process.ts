// Test helper: xenosctl run inside the test process (runCli, as bin/xenosctl.js runs it) with a clean
// environment, for tests that call it often: a child process costs seconds on a busy machine. Tests of
// signals (Ctrl-C) and of the process entry itself use run-xenosctl.ts.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Io } from '../../src/cli/context.ts';
import { runCli } from '../../src/cli/main.ts';
import { type CtlResult, cleanDir } from './run-xenosctl.ts';

export async function xenosctlInProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<CtlResult> {
  let stdout = '';
  let stderr = '';
  const cwd = cleanDir();
  const io: Io = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: { HOME: cwd, XENOS_CONFIG: join(cwd, 'no-config.yaml'), ...env },
    cwd,
    readStdin: async () => '',
  };
  try {
    return { code: await runCli(args, io), stdout, stderr };
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}
