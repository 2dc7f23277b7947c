// xenosd in dom0 of a real Xen host, end to end (run inside dom0 by test/drivers/xen/dom0-suite.test.ts):
// a real xenosd with `--driver auto` picks Xen, `xenosctl apply -f` of the shipped manifests/vm-web (the
// image uploaded, the instance asking for the xen driver) makes a running Xen domain, which `xl list`
// shows, whose console says `ready` through `xenosctl logs`, and whose service answers through the
// endpoint the API names; `xenosctl delete -f` shuts it down and removes it and its files.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseXlList } from '../../src/drivers/xen/xl-list.ts';
import { killAllCtl, xenosctl } from '../cli/run-xenosctl.ts';
import { type ClusterHost, TestCluster, waitFor } from '../cluster/harness.ts';
import { guestLine } from '../guest-client.ts';

const API = '/apis/xenos.io/v1alpha1';
const MANIFESTS = join(import.meta.dirname, '..', '..', 'manifests', 'vm-web');
const BOOT_MS = 180_000;
const guestDir = process.env.XENOS_GUEST_DIR;
if (!guestDir) throw new Error('XENOS_GUEST_DIR must name the demo guest image (the dom0 suite sets it)');

const vmWebDomains = () =>
  parseXlList(execFileSync('xl', ['list'], { encoding: 'utf8' })).filter((r) =>
    r.name.startsWith('xenos-default-vm-web-1-'),
  );

// The test waits up to BOOT_MS for Ready and again for the domain to go: its own limit covers both, as a
// loaded CI machine (dom0 emulated under TCG beside other suites) can take most of either.
describe('xenosd in dom0, driving Xen', { timeout: 5 * BOOT_MS }, () => {
  const cluster = new TestCluster({ hostTimeout: '30s' });
  const dir = mkdtempSync(join(tmpdir(), 'xenos-xen-e2e-'));
  let a: ClusterHost;
  // `apply` uploads the guest image (a tar of ~77 MB, hashed on both sides) from dom0's one emulated vCPU:
  // 2-3 minutes on a slow machine.
  const ctl = (args: string[], timeoutMs = 2 * BOOT_MS) =>
    xenosctl(args, { env: { XENOS_SERVER: a.url, XENOS_TOKEN: a.token }, timeoutMs });

  beforeAll(async () => {
    const template = readFileSync(join(MANIFESTS, 'template.yaml'), 'utf8');
    writeFileSync(
      join(dir, 'template.yaml'),
      template.replace('path: ../../build/guest', `path: ${guestDir}`),
    );
    const instance = readFileSync(join(MANIFESTS, 'instance.yaml'), 'utf8');
    expect(instance).toMatch(/ {2}driver: qemu\n/);
    writeFileSync(join(dir, 'instance.yaml'), instance.replace('  driver: qemu\n', '  driver: xen\n'));
    // dom0 has one vCPU, emulated twice over (Xen under QEMU's TCG): xenosd starts in tens of seconds.
    a = await cluster.startHost('a', { args: ['--driver', 'auto'], startTimeoutMs: 150_000 });
  }, BOOT_MS);

  afterAll(async () => {
    // The suite's report is all there is of a run in dom0: xenosd's last words go into it.
    if (a) console.log(`--- xenosd a, last lines:\n${a.stderr().slice(-4000)}`);
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, BOOT_MS);

  it('picks Xen, runs the instance as a domain that serves, and removes it on delete', async () => {
    const host = await cluster.json(a, `${API}/hosts/a`);
    expect(host.status?.driver).toBe('xen');

    const applied = await ctl(['apply', '-f', dir]);
    expect(applied.code, applied.stderr).toBe(0);
    const ready = await waitFor(
      async () => {
        const i = await cluster.json(a, `${API}/namespaces/default/serviceinstances/vm-web-1`);
        const ok = i.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
        return ok ? i : undefined;
      },
      'vm-web-1 Ready',
      BOOT_MS,
    );
    const [domain] = vmWebDomains();
    expect(domain, 'xl list has the domain').toBeDefined();
    const ep = ready.status.endpoints[0];
    const body = await (await fetch(ep.url ?? `http://${ep.address}:${ep.port}/`)).text();
    expect(guestLine(body), body).toBeDefined();
    const logs = await ctl(['logs', 'vm-web-1']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/^ready/m);

    const deleted = await ctl(['delete', '-f', dir]);
    expect(deleted.code, deleted.stderr).toBe(0);
    await waitFor(() => vmWebDomains().length === 0, 'the domain gone from xl list', BOOT_MS);
    const xenDir = join(a.dataDir, 'xen');
    await waitFor(
      () => !existsSync(xenDir) || readdirSync(xenDir).every((n) => !n.includes('vm-web-1')),
      'its files removed',
      60_000,
    );
  });
});
