// The sandbox when xenosd is not root: a user namespace, xenosd's own uid outside. Run as `nobody` through
// setpriv when the tests run as root (skipped otherwise: the other tests then cover this mode). The domain
// shares the data dir's owner uid outside, so only its namespaces keep it from the secret beside it.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostileReport } from '../driver-contract.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'unprivileged-domain.ts');
const HOSTILE = join(import.meta.dirname, '..', 'fixtures', 'hostile');
const NOBODY = 65534;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.runIf(process.getuid?.() === 0)('the sandbox without root (a user namespace)', () => {
  it('keeps the domain from the data dir its own uid could read, and runs exec in a sandbox', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xenos-unpriv-'));
    dirs.push(dir);
    chownSync(dir, NOBODY, NOBODY);
    const child = spawn(
      'setpriv',
      [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        '--',
        process.execPath,
        '--no-warnings',
        FIXTURE,
        dir,
        HOSTILE,
      ],
      { cwd: dir, env: { PATH: process.env.PATH, HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const [code] = await once(child, 'exit');
    expect(code, err).toBe(0);
    const result = JSON.parse(out) as {
      conditions: { type: string; status: string; message: string }[];
      isolation: { sandboxed: boolean; mechanism: string; uid: number };
      report: HostileReport;
      exec: { exitCode: number; stdout: string; stderr: string };
      stopped: { state: string; exitCode: number };
    };
    expect(result.conditions[0]).toMatchObject({ type: 'DomainsSandboxed', status: 'True' });
    expect(result.conditions[0].message).toContain('user namespace');
    expect(result.isolation).toMatchObject({ sandboxed: true, uid: NOBODY });
    expect(result.isolation.mechanism).toContain('user namespace');
    expect(result.report.token).toBe('unpriv-token');
    for (const [path, outcome] of Object.entries(result.report.reads))
      expect(outcome, path).not.toMatch(/^(read|listed)$/);
    expect(Object.values(result.report.kills)).toEqual(['ESRCH']);
    const [uid, token, ...rest] = result.exec.stdout.trim().split('\n');
    expect(result.exec.exitCode, result.exec.stderr).toBe(0);
    expect(Number(uid)).toBe(NOBODY);
    expect(token).toBe('unpriv-token');
    expect(rest).toContain('domain');
    expect(rest).toContain('denied');
    expect(result.stopped).toMatchObject({ state: 'stopped', exitCode: 0 });
  });
});
