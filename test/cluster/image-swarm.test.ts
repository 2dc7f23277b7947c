// The image swarm end to end with four real xenosd processes joined over loopback, each sending image
// chunks at most 1 MiB a second (--image-upload-rate) so pulls last long enough to watch and to break:
//   - `xenosctl apply` through h1 uploads the template's directory image (a small web service plus 20 MiB
//     of random bytes) and stores only its digest; the source directory is then deleted;
//   - h2 pulls it through the pulls API; its copy is then damaged on its disk, every chunk;
//   - h3 pulls it from h1 and h2: h2 finds the damage when asked, says so and sends none of it, and h3
//     ends with the image (every chunk and the image digest checked) from h1;
//   - an instance placed on h4 pulls it from h1, h2 and h3, showing phase Pulling with status.imagePull;
//     h3 is killed (-9) mid-pull, and the pull still completes: the instance runs from the pulled image
//     and answers.

import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAllCtl, xenosctl } from '../cli/run-xenosctl.ts';
import { type ClusterHost, SI, TestCluster, waitFor } from './harness.ts';

const MANIFESTS = new URL('../../manifests/web/', import.meta.url).pathname;
const PULLS = '/apis/images.xenos.io/v1/pulls';
const CHUNK = 4 * 1024 * 1024;

describe('image swarm across four real hosts', () => {
  const cluster = new TestCluster({ hostTimeout: '2s' });
  const dir = mkdtempSync(join(tmpdir(), 'xenos-swarm-'));
  let h1: ClusterHost;
  let h2: ClusterHost;
  let h3: ClusterHost;
  let h4: ClusterHost;
  let digest: string;

  beforeAll(async () => {
    [h1, h2, h3, h4] = await cluster.startHosts(['h1', 'h2', 'h3', 'h4'], ['--image-upload-rate', '1Mi']);
    cpSync(MANIFESTS, dir, { recursive: true });
    writeFileSync(join(dir, 'image', 'payload.bin'), randomBytes(20 * 1024 * 1024));
    const instance = readFileSync(join(dir, 'instance.yaml'), 'utf8');
    writeFileSync(join(dir, 'instance.yaml'), `${instance.trimEnd()}\n  hostSelector:\n    zone: h4\n`);
  }, 90_000);

  afterAll(async () => {
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 90_000);

  const ctl = (h: ClusterHost, args: string[]) =>
    xenosctl(args, { env: { XENOS_SERVER: h.url, XENOS_TOKEN: h.token }, timeoutMs: 60_000 });

  /** The pulls API of `h` for the image. */
  const pullOn = (h: ClusterHost) => cluster.json(h, `${PULLS}/${digest}`);

  async function pulled(h: ClusterHost): Promise<void> {
    const started = await h.api(PULLS, { method: 'POST', body: JSON.stringify({ digest }) });
    expect([201, 202]).toContain(started.status);
    await waitFor(
      async () => {
        const p = await pullOn(h);
        if (p.error) throw new Error(`pull on ${h.name} failed: ${p.error.message}`);
        return p.done === true;
      },
      `${h.name} holding the image`,
      90_000,
    );
  }

  /** The manifest digest `h` lists for the image in its Host object, as h1 sees it. */
  async function listed(h: ClusterHost): Promise<string | undefined> {
    const host = await cluster.json(h1, `/apis/xenos.io/v1alpha1/hosts/${h.name}`);
    return host.status?.images?.find((i: any) => i.digest === digest)?.manifest;
  }

  it('uploaded through h1, the template names the image by digest alone; the source can go', async () => {
    const applied = await ctl(h1, ['apply', '-f', join(dir, 'template.yaml')]);
    expect(applied.code, applied.stderr).toBe(0);
    const template = await cluster.json(
      h1,
      '/apis/xenos.io/v1alpha1/namespaces/default/servicetemplates/web',
    );
    digest = template.spec.image.digest;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(template.spec.image.path).toBeUndefined();
    rmSync(join(dir, 'image'), { recursive: true, force: true });
    await waitFor(() => listed(h1), 'h1 listing the image in Host.status.images');
  }, 90_000);

  it('h2 pulls it; h3 pulls it past chunks damaged on h2, which h2 does not send', async () => {
    await pulled(h2);
    const manifest = await waitFor(() => listed(h2), 'h2 listing the image');
    expect(manifest).toBe(await listed(h1));
    // Damage every chunk of h2's copy on its disk: whatever h3 asks h2 for is damaged.
    const blob = join(h2.dataDir, 'images', 'sha256', digest.slice(7), 'blob');
    const bytes = readFileSync(blob);
    for (let at = 12345; at < bytes.length; at += CHUNK) bytes[at] ^= 0xff;
    writeFileSync(blob, bytes);
    await pulled(h3);
    expect(await waitFor(() => listed(h3), 'h3 listing the image')).toBe(manifest);
    // h3's copy is whole (the store checked every chunk and the image digest): h2 found the damage when
    // asked, said so, and sent none of it.
    expect(await pullOn(h3)).toMatchObject({ done: true, percent: 100 });
    expect(h2.stderr()).toMatch(/chunk \d+ of image sha256:[0-9a-f]{64} is damaged on this host/);
  }, 180_000);

  it('an instance on h4 pulls the image, shows Pulling, survives h3 killed mid-pull, and runs', async () => {
    const applied = await ctl(h1, ['apply', '-f', join(dir, 'instance.yaml')]);
    expect(applied.code, applied.stderr).toBe(0);
    // Pulling, with progress, as h1 sees the instance's status.
    const pulling = await waitFor(
      async () => {
        const i = await cluster.json(h1, `${SI}/web-1`);
        const p = i.status?.imagePull;
        return i.status?.phase === 'Pulling' && p && p.percent < 100 ? i : undefined;
      },
      'web-1 Pulling on h4 with status.imagePull',
      60_000,
    );
    expect(pulling.status.imagePull).toMatchObject({ digest, host: 'h4', size: expect.any(Number) });
    expect(pulling.status.imagePull.holders).toBeGreaterThanOrEqual(1);
    h3.child.kill('SIGKILL');
    await h3.exited;
    const running = await waitFor(
      async () => {
        const i = await cluster.json(h1, `${SI}/web-1`);
        return i.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True' ? i : undefined;
      },
      'web-1 Ready on h4',
      120_000,
    );
    expect(running.status.host).toBe('h4');
    expect(running.status.imagePull).toBeUndefined();
    expect(await listed(h4)).toBe(await listed(h1));
    const url =
      running.status.endpoints[0].url ??
      `http://${running.status.endpoints[0].address}:${running.status.endpoints[0].port}/`;
    const answer = await fetch(url);
    expect(answer.status).toBe(200);
    expect(await answer.text()).toContain('hello from xenos');
  }, 240_000);
});
