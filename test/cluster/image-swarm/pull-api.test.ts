// The pulls API on the real API server over a real image store, on a host without the overlay (pulls
// that run are in test/cluster/image-swarm.test.ts): an image held is 201 done; one not held is 404 to GET
// and 503 to POST (no peers); a bad digest is 400, another method 405, an instance token 403 — each a
// Kubernetes Status saying what to do.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullRoute } from '../../../src/cluster/image-swarm/pull-api.ts';
import { ImageStore } from '../../../src/images/image-store.ts';
import { importInto } from '../../../src/images/import-image.ts';
import { type InProcessApi, startInProcessApi } from '../../api/in-process-api.ts';

const PULLS = '/apis/images.xenos.io/v1/pulls';
let api: InProcessApi;
let dir: string;
let digest: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xenos-pulls-'));
  const images = new ImageStore({ cacheDir: join(dir, 'images') });
  await writeFile(join(dir, 'disk.raw'), Buffer.alloc(5000, 7));
  digest = (await importInto(images, { path: join(dir, 'disk.raw') }, undefined)).digest;
  const held = async (d: string) => {
    const image = await images.get(d);
    return image ? { size: image.size } : undefined;
  };
  api = await startInProcessApi({ routes: [pullRoute(() => ({ hostName: 'solo', held }))] });
});

afterAll(async () => {
  await api?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the pulls API', () => {
  it('an image held is done at once', async () => {
    const post = await api.call(api.admin, 'POST', PULLS, { digest });
    expect(post.status).toBe(201);
    expect(post.body).toMatchObject({
      kind: 'ImagePull',
      digest,
      host: 'solo',
      done: true,
      percent: 100,
      bytes: 5000,
    });
    const get = await api.call(api.admin, 'GET', `${PULLS}/${digest}`);
    expect(get.status).toBe(200);
    expect(get.body).toMatchObject({ done: true, size: 5000 });
  });

  it('an image not held: 404 to GET, and 503 to POST on a host without peers', async () => {
    const other = `sha256:${'1'.repeat(64)}`;
    const get = await api.call(api.admin, 'GET', `${PULLS}/${other}`);
    expect(get.status).toBe(404);
    expect(get.body).toMatchObject({ kind: 'Status', reason: 'NotFound' });
    expect(get.body.message).toContain('neither holds nor pulls');
    const post = await api.call(api.admin, 'POST', PULLS, { digest: other });
    expect(post.status).toBe(503);
    expect(post.body.message).toMatch(/without the p2p overlay.*xenosctl image push/);
  });

  it('refuses bad requests and callers without the admin token', async () => {
    expect((await api.call(api.admin, 'POST', PULLS, { digest: 'sha256:nope' })).status).toBe(400);
    expect((await api.call(api.admin, 'POST', PULLS, 'not json')).body.message).toMatch(/not JSON/);
    expect((await api.call(api.admin, 'DELETE', `${PULLS}/${digest}`)).status).toBe(405);
    const denied = await api.call(api.instanceToken('web-1'), 'POST', PULLS, { digest });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toContain('admin token');
  });
});
