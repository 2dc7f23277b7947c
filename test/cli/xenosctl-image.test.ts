// End-to-end: images pushed to a real xenosd. `xenosctl image push` of a directory and of a file prints the
// image digest and leaves a complete image in the host's store; pushing again sends nothing; a push
// resumes an upload begun earlier from where the host stands; `xenosctl apply` of a template with a local
// path uploads the image and stores the digest without the path; `image ls` lists it. The upload API
// refuses callers without the admin token (403), a piece at the wrong offset (416), a blob that is not
// what its digest says (422), a tar holding `..` (422, nothing kept) and a blob over the size cap (413).

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { XenosClient } from '../../src/client/client.ts';
import { ApiStatusError } from '../../src/client/errors.ts';
import { directoryDigest } from '../../src/images/digest.ts';
import { SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import { seedInstanceToken } from '../daemon/instance-token.ts';
import { removeDataDir, startXenosd, tempDataDir, type XenosdProcess } from '../daemon/xenosd-process.ts';
import { until } from '../wait.ts';
import { killAllCtl, xenosctl } from './run-xenosctl.ts';

const UPLOADS = '/apis/images.xenos.io/v1/uploads';
const unexpected = (): never => {
  throw new Error('expected the API to refuse this');
};
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Listed {
  digest: string;
  complete: boolean;
  kind: string;
  blobSize: number;
}

let xenosd: XenosdProcess;
let client: XenosClient;
let env: Record<string, string>;
let dir: string;
let instanceToken: string;

beforeAll(async () => {
  const dataDir = tempDataDir();
  instanceToken = seedInstanceToken(dataDir, 'default', 'web-0');
  xenosd = await startXenosd({ dataDir, args: ['--max-image-size', '8Mi', '--driver', 'process'] });
  client = new XenosClient({ server: xenosd.url, token: xenosd.token });
  env = { XENOS_SERVER: xenosd.url, XENOS_TOKEN: xenosd.token };
  dir = mkdtempSync(join(tmpdir(), 'xenosctl-image-'));
});

afterEach(() => killAllCtl());

afterAll(async () => {
  client?.close();
  await xenosd?.stop();
  if (xenosd) removeDataDir(xenosd.dataDir);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function held(): Promise<Listed[]> {
  return (await client.request<{ items: Listed[] }>('GET', '/apis/images.xenos.io/v1/images')).items;
}

function tree(name: string, content: string): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin', 'serve'), content, { mode: 0o755 });
  writeFileSync(join(root, 'index.html'), `<h1>${name}</h1>\n`);
  return root;
}

describe('xenosctl image push', () => {
  it('pushes a directory, prints its digest, and sends nothing the second time', async () => {
    const root = tree('site', '#!/bin/sh\necho site\n');
    const { digest } = await directoryDigest(root);
    const first = await xenosctl(['image', 'push', root], { env });
    expect(first.stderr).toContain('pushing');
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`${digest}\n`);
    expect(await held()).toContainEqual(
      expect.objectContaining({ digest, complete: true, kind: 'directory' }),
    );
    const second = await xenosctl(['image', 'push', root], { env });
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`${digest}\n`);
    expect(second.stderr).toContain('already holds');
  });

  it('resumes an upload from where the host stands', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 5, 1);
    for (let i = 0; i < body.length; i += 4096) body[i] = i & 255;
    const file = join(dir, 'disk.raw');
    writeFileSync(file, body);
    const digest = sha(body);
    const begun = await client.exchange<{ upload: string; offset: number }>('POST', UPLOADS, {
      body: { digest, size: body.length, kind: 'file' },
    });
    expect(begun).toMatchObject({ code: 202, body: { offset: 0 } });
    const half = 2 * 1024 * 1024;
    const piece = await client.exchange<{ offset: number }>('PATCH', begun.body.upload, {
      bytes: {
        stream: Readable.from([body.subarray(0, half)]),
        headers: { 'content-length': String(half), 'content-range': `bytes 0-${half - 1}/${body.length}` },
      },
    });
    expect(piece.body.offset).toBe(half);
    const pushed = await xenosctl(['image', 'push', file], { env });
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toBe(`${digest}\n`);
    // Not a terminal: plain lines, the first at the offset the host already had (66 %).
    expect(pushed.stderr.split('\n')[0]).toMatch(/6[0-9]%/);
    expect(await held()).toContainEqual(expect.objectContaining({ digest, complete: true, kind: 'file' }));
  });
});

describe('xenosctl apply of a template with a local image path', () => {
  it('uploads the image and stores its digest without the path; image ls lists it with the template', async () => {
    const root = tree('web', '#!/bin/sh\necho web\n');
    const { digest } = await directoryDigest(root);
    writeFileSync(
      join(dir, 'web.yaml'),
      `apiVersion: xenos.io/v1alpha1
kind: ServiceTemplate
metadata:
  name: web
spec:
  image:
    path: ./web
  process:
    command: [sleep, "1000"]
`,
    );
    const applied = await xenosctl(['apply', '-f', join(dir, 'web.yaml')], { env });
    expect(applied.code).toBe(0);
    expect(applied.stderr).toBe(''); // not a terminal: no progress
    expect(applied.stdout).toBe('servicetemplate.xenos.io/web created\n');
    const t = await client.get(SERVICE_TEMPLATE, 'web', { namespace: 'default' });
    expect(t.spec?.image).toEqual({ digest, format: 'directory' });
    const again = await xenosctl(['apply', '-f', join(dir, 'web.yaml')], { env });
    expect(again.stdout).toContain('unchanged');
    // The host says it holds the image in its Host object once it notices; image ls lists it then.
    const row = await until(
      'image ls listing the image, its holder and its template',
      async () => {
        const ls = await xenosctl(['image', 'ls'], { env });
        expect(ls.code).toBe(0);
        const r = ls.stdout.split('\n').find((l) => l.startsWith(digest.slice(7, 19)));
        return r?.includes('test-host') ? r : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(row).toMatch(/^[0-9a-f]{12}\s+directory\s+\d+(\.\d)? KiB\s+test-host\s+default\/web\s*$/);
  });
});

describe('the upload API refuses', () => {
  it('an instance token (403) and no token (401)', async () => {
    const scoped = new XenosClient({ server: xenosd.url, token: instanceToken });
    const err = await scoped
      .request('POST', UPLOADS, { body: { digest: sha('x'), size: 1, kind: 'file' } })
      .then(unexpected, (e: ApiStatusError) => e);
    scoped.close();
    expect(err).toBeInstanceOf(ApiStatusError);
    expect(err.code).toBe(403);
    const anonymous = new XenosClient({ server: xenosd.url });
    expect(
      (
        await anonymous
          .request('GET', '/apis/images.xenos.io/v1/images')
          .then(unexpected, (e: ApiStatusError) => e)
      ).code,
    ).toBe(401);
    anonymous.close();
  });

  it('a piece that does not start at the offset (416), saying where to go on from', async () => {
    const body = Buffer.from('0123456789');
    const begun = await client.exchange<{ upload: string }>('POST', UPLOADS, {
      body: { digest: sha(body), size: body.length, kind: 'file' },
    });
    const err = await client
      .exchange('PATCH', begun.body.upload, {
        bytes: {
          stream: Readable.from([body.subarray(4)]),
          headers: { 'content-length': '6', 'content-range': 'bytes 4-9/10' },
        },
      })
      .then(unexpected, (e: ApiStatusError) => e);
    expect(err.code).toBe(416);
    expect(err.message).toContain('send from byte 0');
  });

  it('a blob that does not hash to its digest (422), and forgets it', async () => {
    const claimed = sha('what the client said');
    const begun = await client.exchange<{ upload: string }>('POST', UPLOADS, {
      body: { digest: claimed, size: 5, kind: 'file' },
    });
    await client.exchange('PATCH', begun.body.upload, {
      bytes: {
        stream: Readable.from([Buffer.from('other')]),
        headers: { 'content-length': '5', 'content-range': 'bytes 0-4/5' },
      },
    });
    const err = await client.exchange('PUT', begun.body.upload).then(unexpected, (e: ApiStatusError) => e);
    expect(err.code).toBe(422);
    expect(err.message).toContain('hash to');
    expect(
      (await client.request('GET', begun.body.upload).then(unexpected, (e: ApiStatusError) => e)).code,
    ).toBe(404);
  });

  it('a directory tar that climbs out with .. (422) and keeps nothing', async () => {
    const p = pack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    const ended = new Promise((r) => p.on('end', () => r(undefined)));
    p.entry({ name: '../escaped', mode: 0o644 }, 'pwned');
    p.finalize();
    await ended;
    const tar = Buffer.concat(chunks);
    const before = await held();
    const begun = await client.exchange<{ upload: string }>('POST', UPLOADS, {
      body: { digest: sha(tar), size: tar.length, kind: 'directory' },
    });
    await client.exchange('PATCH', begun.body.upload, {
      bytes: {
        stream: Readable.from([tar]),
        headers: {
          'content-length': String(tar.length),
          'content-range': `bytes 0-${tar.length - 1}/${tar.length}`,
        },
      },
    });
    const err = await client.exchange('PUT', begun.body.upload).then(unexpected, (e: ApiStatusError) => e);
    expect(err.code).toBe(422);
    expect(err.message).toContain('".." path component');
    expect(await held()).toEqual(before);
  });

  it('a blob over --max-image-size (413) before a byte is sent', async () => {
    const err = await client
      .request('POST', UPLOADS, { body: { digest: sha('big'), size: 9 * 1024 * 1024, kind: 'file' } })
      .then(unexpected, (e: ApiStatusError) => e);
    expect(err.code).toBe(413);
    expect(err.message).toContain('--max-image-size');
  });
});
