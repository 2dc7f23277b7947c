// Instance logs across hosts, with two real xenosd processes joined over loopback: the printer runs on
// host B (hostSelector), and its log is read through host A, which forwards the request over the
// /xenos/logs/1.0.0 stream protocol — the whole log, --tail, and -f receiving lines as B's domain prints
// them until Ctrl-C (after which A and B still serve).

import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xenosctlInProcess } from '../cli/run-cli-in-process.ts';
import { killAllCtl, xenosctlUntil } from '../cli/run-xenosctl.ts';
import { type ClusterHost, TestCluster, waitFor } from '../cluster/harness.ts';
import { printerEndpoint, printerManifests } from './printer-fixture.ts';

const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';

describe('instance logs forwarded to the host that runs the instance', () => {
  const cluster = new TestCluster({ hostTimeout: '3s' });
  const dir = printerManifests('printer', '  hostSelector:\n    zone: b\n');
  let a: ClusterHost;
  let printer: string;
  const env = (h: ClusterHost) => ({ env: { XENOS_SERVER: h.url, XENOS_TOKEN: h.token } });

  beforeAll(async () => {
    [a] = await cluster.startHosts(['a', 'b']);
    const applied = await xenosctlInProcess(['apply', '-f', dir], env(a).env);
    expect(applied.stderr).toBe('');
    printer = await printerEndpoint((p) => a.api(p), 'printer');
    // A forwards to the peer id B published in its Host object.
    await waitFor(
      async () => (await cluster.json(a, '/apis/xenos.io/v1alpha1/hosts/b')).status?.peerId,
      'B peer id on A',
    );
  }, 120_000);

  afterAll(async () => {
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('runs on B, and A serves its log', async () => {
    const inst = await cluster.json(a, `${SI}/printer`);
    expect(inst.status.host).toBe('b');
    const text = await waitFor(async () => {
      const res = await a.api(`${SI}/printer/log`);
      if (res.status !== 200) throw new Error(`${res.status} ${await res.text()}`);
      const t = await res.text();
      return t.includes('printer: line 5') ? t : undefined;
    }, 'the log of printer through host a');
    for (const i of [1, 2, 3, 4, 5]) expect(text).toContain(`printer: line ${i}\n`);
    expect(text).toContain('printer: a warning on stderr\n');
    const tail = await (await a.api(`${SI}/printer/log?tailLines=1`)).text();
    expect(tail.trim().split('\n').sort()).toEqual(['printer: a warning on stderr', 'printer: line 5']);
  });

  it('xenosctl logs -f through A prints what B prints, and ends cleanly on Ctrl-C', async () => {
    const run = xenosctlUntil(['logs', 'printer', '-f', '--tail', '0'], env(a));
    const line = `forwarded ${randomBytes(4).toString('hex')}`;
    await waitFor(async () => {
      await fetch(`${printer}/print?line=${encodeURIComponent(line)}`);
      return run.output().includes(line);
    }, 'a line printed on b in xenosctl logs -f on a');
    const closed = new Promise<number | null>((r) => run.child.once('close', (code) => r(code)));
    run.child.kill('SIGINT');
    expect(await closed).toBe(130);
    // Both hosts serve on after the reader left.
    const again = await xenosctlInProcess(['logs', 'printer', '--tail', '1'], env(a).env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(line);
  }, 30_000);

  it("B's refusal comes back through A with its code and words", async () => {
    const halted = printerManifests('halted', '  hostSelector:\n    zone: b\n');
    try {
      const spec = `${readFileSync(join(halted, 'instance.yaml'), 'utf8')}`.replace(
        'runStrategy: Always',
        'runStrategy: Halted',
      );
      writeFileSync(join(halted, 'instance.yaml'), spec);
      await xenosctlInProcess(['apply', '-f', join(halted, 'instance.yaml')], env(a).env);
      await waitFor(
        async () => (await cluster.json(a, `${SI}/halted`)).status?.host === 'b',
        'halted bound to b',
      );
      const res = await a.api(`${SI}/halted/log`);
      const body = await res.text();
      expect({ status: res.status, body }).toMatchObject({ status: 400 });
      expect(JSON.parse(body).message).toMatch(/^instance halted has no domain on host b yet/);
    } finally {
      rmSync(halted, { recursive: true, force: true });
    }
  });
});
