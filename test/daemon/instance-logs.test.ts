// Instance logs end to end on one real xenosd with the process driver: the printer fixture (a tiny node
// service that prints lines, and one more per request to /print) applied from a temp dir; its log read
// through GET .../serviceinstances/{name}/log and `xenosctl logs` — all of it, --tail, -f receiving lines
// as they are printed until Ctrl-C, a follow ending when the domain is destroyed — and the errors:
// unknown instance (404), no token (401), an instance no host runs yet (400, one line), an instance on
// another host while this one runs without the p2p overlay (503).

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xenosctlInProcess } from '../cli/run-cli-in-process.ts';
import { killAllCtl, xenosctlUntil } from '../cli/run-xenosctl.ts';
import { waitFor } from '../cluster/harness.ts';
import { printerEndpoint, printerManifests } from './printer-fixture.ts';
import { startXenosd, type XenosdProcess } from './xenosd-process.ts';

const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';
const FIRST_LINES = [1, 2, 3, 4, 5].map((i) => `printer: line ${i}`);

describe('instance logs on one host', () => {
  let xd: XenosdProcess;
  let printer: string;
  const dirs: string[] = [];
  const ctl = (args: string[]) => xenosctlInProcess(args, { XENOS_SERVER: xd.url, XENOS_TOKEN: xd.token });
  const logs = (query = '') => xd.api(`${SI}/printer/log${query}`);

  beforeAll(async () => {
    xd = await startXenosd({ hostName: 'solo', args: ['--driver', 'process'] });
    const dir = printerManifests('printer');
    dirs.push(dir);
    const applied = await ctl(['apply', '-f', dir]);
    expect(applied.stderr).toBe('');
    printer = await printerEndpoint((p) => xd.api(p), 'printer');
  }, 120_000);

  afterAll(async () => {
    killAllCtl();
    if (xd) {
      // Domains outlive xenosd by design: delete them first.
      const list = (await (await xd.api(SI)).json()) as any;
      for (const i of list.items ?? []) await xd.api(`${SI}/${i.metadata.name}`, { method: 'DELETE' });
      await waitFor(
        async () => ((await (await xd.api(SI)).json()) as any).items.length === 0,
        'every instance deleted',
      ).catch((err) => console.error(err));
      await xd.stop();
      rmSync(xd.dataDir, { recursive: true, force: true });
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  it('are discoverable as serviceinstances/log with the verb get', async () => {
    const list = (await (await xd.api('/apis/xenos.io/v1alpha1')).json()) as any;
    const entry = list.resources.find((r: any) => r.name === 'serviceinstances/log');
    expect(entry).toMatchObject({ kind: 'ServiceInstance', namespaced: true, verbs: ['get'] });
  });

  it('GET .../log answers text/plain with stdout and stderr', async () => {
    const text = await waitFor(async () => {
      const res = await logs();
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const t = await res.text();
      return t.includes('line 5') && t.includes('stderr') ? t : undefined;
    }, 'the first lines in the log');
    for (const line of FIRST_LINES) expect(text).toContain(`${line}\n`);
    expect(text).toContain('printer: a warning on stderr\n');
  });

  it('tailLines keeps only the last lines of each stream', async () => {
    const text = await (await logs('?tailLines=2')).text();
    const lines = text.trim().split('\n').sort();
    // the last two of stdout (the printer prints no more unless asked) and the one stderr line
    expect(lines).toEqual(['printer: a warning on stderr', 'printer: line 4', 'printer: line 5']);
    expect(await (await logs('?tailLines=0')).text()).toBe('');
  });

  it('xenosctl logs prints the log; --tail the last lines; --limit-bytes cuts it', async () => {
    const all = await ctl(['logs', 'printer']);
    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    for (const line of FIRST_LINES) expect(all.stdout).toContain(line);
    const tail = await ctl(['logs', 'si/printer', '--tail', '1']);
    expect(tail.stdout.trim().split('\n').sort()).toEqual([
      'printer: a warning on stderr',
      'printer: line 5',
    ]);
    const cut = await ctl(['logs', 'printer', '--limit-bytes', '7']);
    expect(cut.stdout).toHaveLength(7);
  });

  it('xenosctl logs -f prints lines as they are printed and ends cleanly on Ctrl-C', async () => {
    const run = xenosctlUntil(['logs', 'printer', '-f', '--tail', '0'], {
      env: { XENOS_SERVER: xd.url, XENOS_TOKEN: xd.token },
    });
    const first = `fresh ${randomBytes(4).toString('hex')}`;
    const second = `fresher ${randomBytes(4).toString('hex')}`;
    // The follow starts at the end: print until the line shows (the first print may precede the follow).
    await waitFor(async () => {
      await fetch(`${printer}/print?line=${encodeURIComponent(first)}`);
      return run.output().includes(first);
    }, 'a printed line in xenosctl logs -f');
    await fetch(`${printer}/print?line=${encodeURIComponent(second)}`);
    await run.waitFor(new RegExp(second));
    expect(run.output()).not.toContain('printer: line 1');
    const closed = new Promise<number | null>((r) => run.child.once('close', (code) => r(code)));
    run.child.kill('SIGINT');
    expect(await closed).toBe(130);
  });

  it('a follow through the API streams until the client aborts', async () => {
    const abort = new AbortController();
    const res = await xd.api(`${SI}/printer/log?follow=true&tailLines=1`, { signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toMatch(/\n$/);
    const line = `api follow ${randomBytes(4).toString('hex')}`;
    await fetch(`${printer}/print?line=${encodeURIComponent(line)}`);
    let seen = '';
    while (!seen.includes(line)) seen += Buffer.from((await reader.read()).value!).toString();
    abort.abort();
    await expect(reader.read()).rejects.toThrow();
  }, 20_000);

  it('unknown instance: 404 from the API, one line from xenosctl', async () => {
    const res = await xd.api(`${SI}/nope/log`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).message).toBe('serviceinstances.xenos.io "nope" not found');
    const r = await ctl(['logs', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'error: instance nope not found in namespace default (see xenosctl get serviceinstances)\n',
    );
  });

  it('no token: 401', async () => {
    const res = await fetch(`${xd.url}${SI}/printer/log`);
    expect(res.status).toBe(401);
  });

  it('an instance no host runs yet: 400 naming its phase', async () => {
    const dir = printerManifests('lonely', '  hostSelector:\n    zone: nowhere\n');
    dirs.push(dir);
    await ctl(['apply', '-f', join(dir, 'instance.yaml')]);
    const r = await ctl(['logs', 'lonely']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: instance lonely is not running on any host yet (phase Pending)\n');
    const res = await xd.api(`${SI}/lonely/log`);
    expect(res.status).toBe(400);
  });

  it('an instance on another host, without the overlay: 503 saying so', async () => {
    const dir = printerManifests('remote', '  host: elsewhere\n');
    dirs.push(dir);
    await ctl(['apply', '-f', join(dir, 'instance.yaml')]);
    const r = await ctl(['logs', 'remote']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: instance remote runs on host elsewhere; log forwarding needs the cluster overlay \(this xenosd, host solo, runs without --p2p\)/,
    );
  });

  it('a follow ends when the domain is destroyed', async () => {
    const res = await logs('?follow=true');
    expect(res.status).toBe(200);
    const body = res.text();
    const deleted = await xd.api(`${SI}/printer`, { method: 'DELETE' });
    expect(deleted.ok).toBe(true);
    const text = await body;
    expect(text).toContain('printer: line 1');
  }, 30_000);
});
