// Event limits on a real xenosd: `--event-ttl` (default 1 h, like kube-apiserver's) makes an Event an
// instance posted leave the list and reach watchers as DELETED once it is that old; the original
// prototype-pollution report (an instance token's JSON patch through /__proto__) is refused and the admin
// can still write afterwards. The instance token is one the daemon reads from DATA_DIR/tokens.json, as
// it reads the ones it issues to services.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOptions } from '../../src/daemon/options.ts';
import { seedInstanceToken } from './instance-token.ts';
import { removeDataDir, startXenosd, tempDataDir, type XenosdProcess } from './xenosd-process.ts';

const EVENTS = '/api/v1/namespaces/default/events';
const SI = '/apis/xenos.io/v1alpha1/namespaces/default/serviceinstances';

describe('--event-ttl', () => {
  it('defaults to an hour, takes h/m/s durations and refuses zero', () => {
    expect(parseOptions([])?.eventTtlMs).toBe(3_600_000);
    expect(parseOptions(['--event-ttl', '90m'])?.eventTtlMs).toBe(5_400_000);
    expect(parseOptions(['--event-ttl', '2h'])?.eventTtlMs).toBe(7_200_000);
    expect(() => parseOptions(['--event-ttl', '0'])).toThrow(/--event-ttl "0": it must be above zero/);
    expect(() => parseOptions(['--event-ttl', 'soon'])).toThrow(/--event-ttl "soon": expected a duration/);
  });
});

describe('a real xenosd with --event-ttl 2s', () => {
  let xd: XenosdProcess;
  let token: string;

  beforeAll(async () => {
    const dataDir = tempDataDir();
    token = seedInstanceToken(dataDir, 'default', 'web');
    xd = await startXenosd({ dataDir, args: ['--event-ttl', '2s'] });
  });

  afterAll(async () => {
    await xd?.stop();
    if (xd) removeDataDir(xd.dataDir);
  });

  const asService = (method: string, path: string, body: unknown, type = 'application/json') =>
    fetch(xd.url + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': type },
      body: JSON.stringify(body),
    });

  it('drops an Event once it is older than the TTL: gone from the list, DELETED to a watch', async () => {
    const listed = await xd.api(EVENTS);
    const { resourceVersion } = ((await listed.json()) as { metadata: { resourceVersion: string } }).metadata;
    const watch = await xd.api(`${EVENTS}?watch=true&resourceVersion=${resourceVersion}&timeoutSeconds=20`);
    const created = await asService('POST', EVENTS, {
      metadata: { name: 'short-lived' },
      involvedObject: { kind: 'ServiceInstance', name: 'web', namespace: 'default' },
      reason: 'Started',
      message: 'the service started',
      type: 'Normal',
    });
    expect(created.status).toBe(201);
    const seen: string[] = [];
    const reader = watch.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    while (!seen.includes('DELETED short-lived')) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) {
        const ev = JSON.parse(l) as { type: string; object: { metadata: { name: string } } };
        if (ev.object.metadata.name === 'short-lived') seen.push(`${ev.type} short-lived`);
      }
    }
    await reader.cancel();
    expect(seen).toEqual(['ADDED short-lived', 'DELETED short-lived']);
    const after = (await (await xd.api(EVENTS)).json()) as { items: { metadata: { name: string } }[] };
    expect(after.items.map((e) => e.metadata.name)).not.toContain('short-lived');
  });

  it('refuses the instance token a JSON patch through /__proto__, and the admin can still write', async () => {
    const web = await xd.api(SI, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceInstance',
        metadata: { name: 'web' },
        spec: { templateRef: { name: 'none' }, runStrategy: 'Halted' },
      }),
    });
    expect(web.status).toBe(201);
    const attack = await asService(
      'PATCH',
      `${SI}/web/status`,
      [{ op: 'add', path: '/__proto__/polluted', value: true }],
      'application/json-patch+json',
    );
    expect(attack.status).toBe(403);
    for (const name of ['after-1', 'after-2']) {
      const write = await xd.api(SI, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          apiVersion: 'xenos.io/v1alpha1',
          kind: 'ServiceInstance',
          metadata: { name },
          spec: { templateRef: { name: 'none' }, runStrategy: 'Halted' },
        }),
      });
      expect(write.status, await write.clone().text()).toBe(201);
    }
  });
});
