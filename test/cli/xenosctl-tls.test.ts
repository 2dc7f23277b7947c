// End-to-end over HTTPS: xenosd with a self-signed certificate. xenosctl trusts the local data
// dir's tls.crt by itself, needs --certificate-authority for a server given by URL, and its
// kubeconfig (with the CA and token inside) works with the real kubectl.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XenosClient } from '../../src/client/client.ts';
import { SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import { removeDataDir, startXenosd, type XenosdProcess } from '../daemon/xenosd-process.ts';
import { killAllCtl, xenosctl } from './run-xenosctl.ts';

const KUBECTL = '/usr/bin/kubectl';

let xenosd: XenosdProcess;
let dir: string;

beforeAll(async () => {
  xenosd = await startXenosd({ args: ['--tls-self-signed'] });
  dir = mkdtempSync(join(tmpdir(), 'xenosctl-tls-'));
});

afterEach(() => killAllCtl());

afterAll(async () => {
  await xenosd?.stop();
  if (xenosd) removeDataDir(xenosd.dataDir);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('https', () => {
  it('trusts the local data dir certificate, and asks for a CA otherwise', async () => {
    expect(xenosd.url).toMatch(/^https:/);
    const local = await xenosctl(['get', 'hosts', '-o', 'name'], { env: { XENOS_DATA_DIR: xenosd.dataDir } });
    expect(local.code, local.stderr).toBe(0);

    const env = { XENOS_SERVER: xenosd.url, XENOS_TOKEN: xenosd.token };
    const untrusted = await xenosctl(['get', 'hosts'], { env });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/^error: cannot reach xenosd at https:.*--certificate-authority/);

    const withCa = await xenosctl(
      ['get', 'hosts', '--certificate-authority', join(xenosd.dataDir, 'tls.crt')],
      { env },
    );
    expect(withCa.code, withCa.stderr).toBe(0);
  });

  // kubectl is installed on these machines (see KUBECTL.md); elsewhere there is nothing to run.
  it.skipIf(!existsSync(KUBECTL))('prints a kubeconfig the real kubectl can use', async () => {
    const client = new XenosClient({ server: xenosd.url, token: xenosd.token, insecureSkipTlsVerify: true });
    await client.create(
      SERVICE_TEMPLATE,
      {
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceTemplate',
        metadata: { name: 'kc' },
        spec: { image: { path: '/srv/images/kc' } },
      },
      { namespace: 'default' },
    );
    client.close();
    const r = await xenosctl(['kubeconfig', '--name', 'lab'], { env: { XENOS_DATA_DIR: xenosd.dataDir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('certificate-authority-data: ');
    const file = join(dir, 'kubeconfig.yaml');
    writeFileSync(file, r.stdout);
    const { stdout } = await promisify(execFile)(
      KUBECTL,
      ['--kubeconfig', file, '--cache-dir', join(dir, 'cache'), 'get', 'servicetemplates', '-o', 'name'],
      { env: { PATH: process.env.PATH ?? '', HOME: dir }, timeout: 30_000 },
    );
    expect(stdout).toBe('servicetemplate.xenos.io/kc\n');
  });
});
