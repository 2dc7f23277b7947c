// Images ahead of need, end to end with three real xenosd over loopback (labels zone=<name>):
//   - an image pushed to h1 (`xenosctl image push`), and a template naming it with
//     `distribution: {selector: {zone: h3}}`: h3 pulls it with no instance asking, h2 does not;
//   - placement then puts instances (Halted: bound, never run) on the hosts that hold the image, h1 and h3,
//     never on h2, which fits them as well;
//   - `xenosctl image pull DIGEST --host h2` has h2 pull it and says when it holds it; asked through h1
//     with h1's token, h2 refuses the token and the CLI says what to do (each host has its own).

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from '../cli/run-xenosctl.ts';
import { type ClusterHost, SI, TestCluster, waitFor } from './harness.ts';

const TEMPLATES = '/apis/xenos.io/v1alpha1/namespaces/default/servicetemplates';

describe('images ahead of need across three real hosts', () => {
  const cluster = new TestCluster({ hostTimeout: '2s' });
  const dir = mkdtempSync(join(tmpdir(), 'xenos-ahead-'));
  let h1: ClusterHost;
  let h2: ClusterHost;
  let h3: ClusterHost;
  let digest: string;

  beforeAll(async () => {
    [h1, h2, h3] = await cluster.startHosts(['h1', 'h2', 'h3']);
    mkdirSync(join(dir, 'image'));
    writeFileSync(join(dir, 'image', 'payload.bin'), randomBytes(6 * 1024 * 1024));
  }, 90_000);

  afterAll(async () => {
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  const ctl = (args: string[], via: ClusterHost = h1) =>
    xenosctl(args, { env: { XENOS_SERVER: via.url, XENOS_TOKEN: via.token }, timeoutMs: 90_000 });
  const JSON_BODY = { 'content-type': 'application/json' };

  /** Whether `h` says (in its Host object, as h1 sees it) it holds the image. */
  async function holds(h: ClusterHost): Promise<boolean> {
    const host = await cluster.json(h1, `/apis/xenos.io/v1alpha1/hosts/${h.name}`);
    return Boolean(host.status?.images?.some((i: { digest: string }) => i.digest === digest));
  }

  it('pulls the image onto the hosts spec.distribution names, before any instance', async () => {
    const pushed = await ctl(['image', 'push', '-q', join(dir, 'image')]);
    expect(pushed.code, pushed.stderr).toBe(0);
    digest = pushed.stdout.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    await waitFor(() => holds(h1), 'h1 listing the pushed image');

    const created = await h1.api(TEMPLATES, {
      method: 'POST',
      headers: JSON_BODY,
      body: JSON.stringify({
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceTemplate',
        metadata: { name: 'ahead' },
        spec: {
          image: { digest, format: 'directory' },
          distribution: { selector: { zone: 'h3' } },
          process: { command: ['sleep', '1000'] },
        },
      }),
    });
    expect(created.status, await created.text()).toBe(201);
    await waitFor(() => holds(h3), 'h3 pulling the image ahead of need', 90_000);
    // h2 is not named: when h3 is done, h2 holds nothing and pulls nothing.
    expect(await holds(h2)).toBe(false);
    expect((await h2.api(`/apis/images.xenos.io/v1/pulls/${digest}`)).status).toBe(404);
  }, 150_000);

  it('places instances on the hosts that hold the image when the rest is equal', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `ahead-${i}`);
    for (const name of names) {
      const res = await h1.api(SI, {
        method: 'POST',
        headers: JSON_BODY,
        body: JSON.stringify({
          apiVersion: 'xenos.io/v1alpha1',
          kind: 'ServiceInstance',
          metadata: { name },
          spec: { templateRef: { name: 'ahead' }, runStrategy: 'Halted' },
        }),
      });
      expect(res.status, await res.text()).toBe(201);
    }
    const hosts = await waitFor(
      async () => {
        const bound = await Promise.all(
          names.map(async (n) => (await cluster.json(h1, `${SI}/${n}`)).spec?.host as string | undefined),
        );
        return bound.every(Boolean) ? bound : undefined;
      },
      'every instance bound to a host',
      60_000,
    );
    // Without the preference, 8 instances over 3 hosts that all fit would land on h2 too (p ≈ 0.96).
    expect(new Set(hosts)).not.toContain('h2');
  }, 120_000);

  it('xenosctl image pull --host h2 has h2 pull the image and says when it holds it', async () => {
    const refused = await ctl(['image', 'pull', digest, '--host', 'h2']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/host h2 \(.*\) refused the token: each host has its own admin token/);
    const pulled = await ctl(['image', 'pull', digest, '--host', 'h2', '--timeout', '90s'], h2);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(new RegExp(`^${digest} is on host h2 \\(\\d+ bytes\\)\\n$`));
    // Not a terminal: plain progress lines, no control characters.
    expect(pulled.stderr.includes('\r') || pulled.stderr.includes('\x1b')).toBe(false);
    expect(pulled.stderr).toMatch(/pulling sha256:[0-9a-f]{12} on h2 .*100%/);
    await waitFor(() => holds(h2), 'h2 listing the image');
  }, 120_000);
});
