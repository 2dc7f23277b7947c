// `xenosctl image pull DIGEST --host H` against the real API server: a malformed digest is a usage error
// (exit 2) before anything is asked; an unknown host, or one that publishes no API address, is a clear
// error naming it. (Pulls themselves, with their progress, run against real hosts in the swarm's tests.)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { type InProcessApi, startInProcessApi } from '../api/in-process-api.ts';

const DIGEST = `sha256:${'9a'.repeat(32)}`;
let api: InProcessApi;
let dir: string;

beforeAll(async () => {
  api = await startInProcessApi();
  dir = mkdtempSync(join(tmpdir(), 'xenosctl-pull-'));
  api.store.create({ apiVersion: 'xenos.io/v1alpha1', kind: 'Host', metadata: { name: 'quiet' }, spec: {} });
});

afterAll(async () => {
  await api?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function pull(args: string[]) {
  const out = { stdout: '', stderr: '' };
  const code = await runCli(['image', 'pull', ...args], {
    stdout: (t) => {
      out.stdout += t;
    },
    stderr: (t) => {
      out.stderr += t;
    },
    env: { XENOS_SERVER: api.url, XENOS_TOKEN: api.admin, HOME: dir, XENOS_CONFIG: join(dir, 'none.yaml') },
    cwd: dir,
    readStdin: async () => '',
  });
  return { code, ...out };
}

describe('xenosctl image pull', () => {
  it('refuses a malformed digest as a usage error', async () => {
    const r = await pull(['sha256:XYZ', '--host', 'quiet']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: "sha256:XYZ" is not an image digest: expected sha256: and 64 lower-case hex digits\n',
    );
  });

  it('names a host that does not exist, or that publishes no API address', async () => {
    const missing = await pull([DIGEST, '--host', 'nowhere']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no host "nowhere" in the cluster');
    const quiet = await pull([DIGEST, '--host', 'quiet']);
    expect(quiet.code).toBe(1);
    expect(quiet.stderr).toContain('host "quiet" publishes no API address');
  });

  it('needs --host', async () => {
    const r = await pull([DIGEST]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--host/);
  });
});
