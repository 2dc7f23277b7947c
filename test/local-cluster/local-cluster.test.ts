// `npm start` as a user runs it: the launcher brings up a local cluster, applies manifests/web, prints the
// endpoint (which answers) and the xenosctl/kubectl lines; SIGINT to its process group (what Ctrl-C does)
// deletes the instance and stops every xenosd: no host and no domain process is left.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../src/local-cluster/local-cluster.ts';
import { waitFor } from '../cluster/harness.ts';
import { startXenosd } from '../daemon/xenosd-process.ts';
import { alive } from '../process-alive.ts';
import { unmountUnder } from '../unmount-under.ts';

const MAIN = fileURLToPath(new URL('../../src/local-cluster/local-cluster-main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('npm start (local cluster)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xenos-local-'));
  let launcher: ChildProcess | undefined;

  afterAll(() => {
    if (launcher?.pid && alive(launcher.pid)) process.kill(-launcher.pid, 'SIGKILL');
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to replace the directory of a cluster that still runs', async () => {
    // A host left running by a launcher that was killed with SIGKILL.
    const left = await startXenosd({ dataDir: join(dir, 'old', 'host-1'), hostName: 'host-1' });
    try {
      const again = new LocalCluster({ dir: join(dir, 'old'), hosts: 1, log: () => {} });
      await expect(again.start()).rejects.toThrow(
        `host-1 of a cluster in ${join(dir, 'old')} still runs (xenosd pid ${left.child.pid}); stop that cluster first`,
      );
      expect((await left.api('/apis')).status).toBe(200);
      expect(readFileSync(join(dir, 'old', 'host-1', 'api.addr'), 'utf8').trim()).toBe(left.url);
    } finally {
      await left.stop();
    }
  });

  it('starts hosts, serves the example, and Ctrl-C leaves nothing running', async () => {
    launcher = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', MAIN, '--hosts', '2', '--dir', join(dir, 'c')],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    launcher.stdout!.on('data', (d) => {
      out += d;
    });
    launcher.stderr!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => launcher!.once('exit', (c) => r(c)));
    const url = await waitFor(
      () => /web-1 \(on host-\d\): (http:\/\/\S+)/.exec(out)?.[1],
      'the launcher printing the endpoint',
      50_000,
    );
    expect(out).toContain('export KUBECONFIG=');
    expect(out).toContain(`export XENOS_DATA_DIR=${join(dir, 'c', 'host-1')}`);
    expect(await (await fetch(url)).text()).toContain('hello');

    for (const h of ['host-1', 'host-2']) {
      expect(readFileSync(join(dir, 'c', `${h}.log`), 'utf8')).toContain('serving API');
    }

    process.kill(-launcher.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('stopped.');
    // The endpoint no longer answers (its domain was stopped), and no process of this cluster runs: neither
    // a xenosd nor a domain supervisor (both carry the cluster's directory in their arguments).
    await expect(fetch(url, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    const ps = spawn('ps', ['-eo', 'pid,args'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let table = '';
    ps.stdout.on('data', (d) => {
      table += d;
    });
    await new Promise((r) => ps.once('exit', r));
    expect(table).not.toContain(join(dir, 'c'));
  }, 58_000);
});
