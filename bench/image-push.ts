// Benchmark: uploading an image once, by digest, to a real xenosd on loopback, and the store's verified
// chunk writes. (1) `xenosctl image push` of an S MiB file (the real CLI process) against what any upload
// has to do at least: read the file, hash it and write it once (one pass on this machine, measured in the
// same run): the push reads the file twice (hash, then send), and the host writes it, hashes it and cuts
// its manifest. (2) A second push of the same file (the host holds it: nothing is sent) against one hash
// pass. (3) A directory of F files of S/F bytes each (packed twice on the client, extracted and digested
// on the host) against three such passes. (4) PartialImage.writeChunk with the store's chunks (1 MiB for
// images up to 2 GiB; hash check + positional write + a durable bitmap every 8 chunks), as a swarm pull
// writes, against the one-pass copy rate: the store's write path must keep up with the disk, far above
// any network link.
// Every push bound includes what starting xenosctl costs (measured in the same run).
//
//   node bench/image-push.ts [sizeMiB=256] [files=256]

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageStore } from '../src/images/image-store.ts';
import { importInto } from '../src/images/import-image.ts';
import { manifestDigest, parseManifest } from '../src/images/manifest.ts';
import { XENOSCTL } from '../test/cli/run-xenosctl.ts';
import { removeDataDir, startXenosd } from '../test/daemon/xenosd-process.ts';
import { printFigure } from './lib/figures.ts';

const BENCH = 'image-push';
const sizeMiB = Number(process.argv[2] ?? 256);
const files = Number(process.argv[3] ?? 256);
const bytes = sizeMiB * 1024 * 1024;
const load = () =>
  `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;

const dir = mkdtempSync(join(tmpdir(), 'bench-image-push-'));

function writeRandom(path: string, n: number): void {
  const out = Buffer.allocUnsafe(n);
  for (let o = 0; o < n; o += 1 << 20) randomBytes(Math.min(1 << 20, n - o)).copy(out, o);
  writeFileSync(path, out);
}

/** Read, hash and write once: the least any upload of these bytes does. */
async function onePass(paths: string[]): Promise<number> {
  const t0 = performance.now();
  for (const [i, p] of paths.entries()) {
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(c, _e, done) {
        hash.update(c);
        done(null, c);
      },
    });
    await pipeline(createReadStream(p), tap, createWriteStream(join(dir, `copy-${i}`)));
    hash.digest();
  }
  const ms = performance.now() - t0;
  for (const i of paths.keys()) rmSync(join(dir, `copy-${i}`));
  return ms;
}

async function hashOnly(path: string): Promise<number> {
  const t0 = performance.now();
  const hash = createHash('sha256');
  for await (const c of createReadStream(path)) hash.update(c as Buffer);
  hash.digest();
  return performance.now() - t0;
}

const xd = await startXenosd({ hostName: 'bench', args: ['--max-image-size', `${sizeMiB * 2}Mi`] });
const env = { ...process.env, XENOS_SERVER: xd.url, XENOS_TOKEN: xd.token };
const ctl = (args: string[]): number => {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', XENOSCTL, ...args], {
    env,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`xenosctl ${args.join(' ')}: ${r.stderr}`);
  return performance.now() - t0;
};
const push = (path: string) => ctl(['image', 'push', '-q', path]);
// What any xenosctl command costs before it does anything (Node starting, the CLI loading).
const ctlStart = Math.min(ctl(['version', '--client']), ctl(['version', '--client']));
try {
  const file = join(dir, 'disk.raw');
  writeRandom(file, bytes);
  const baseline = await onePass([file]);
  const first = push(file);
  printFigure({
    bench: BENCH,
    name: `push ${sizeMiB} MiB file`,
    value: first,
    unit: 'ms',
    bound: 2 * baseline + ctlStart,
    note: `${(((bytes / first) * 1000) / 2 ** 20).toFixed(0)} MiB/s; bound: 2 read+hash+write passes of ${baseline.toFixed(0)} ms (client hashes then sends; host writes then cuts) + xenosctl start ${ctlStart.toFixed(0)} ms; ${load()}`,
  });
  const hashMs = await hashOnly(file);
  const again = push(file);
  printFigure({
    bench: BENCH,
    name: 'push again (host holds it)',
    value: again,
    unit: 'ms',
    bound: hashMs + ctlStart,
    note: `bound: one hash pass ${hashMs.toFixed(0)} ms + xenosctl start; nothing sent; ${load()}`,
  });

  const tree = join(dir, 'tree');
  mkdirSync(tree);
  const each = Math.floor(bytes / files);
  const paths: string[] = [];
  for (let i = 0; i < files; i++) {
    const p = join(tree, `f${i}`);
    writeRandom(p, each);
    paths.push(p);
  }
  const treeBaseline = await onePass(paths);
  const treePush = push(tree);
  printFigure({
    bench: BENCH,
    name: `push directory (${files} files)`,
    value: treePush,
    unit: 'ms',
    bound: 3 * treeBaseline + ctlStart,
    note: `bound: 3 passes of ${treeBaseline.toFixed(0)} ms (packed twice; extracted, digested and cut on the host) + xenosctl start; ${load()}`,
  });

  // The write path of a swarm pull: verified chunks at their offsets, from a store that holds the image.
  const from = new ImageStore({ cacheDir: join(dir, 'from') });
  const to = new ImageStore({ cacheDir: join(dir, 'to') });
  const img = await importInto(from, { path: file }, undefined);
  const m = (await from.manifest(img.digest))!;
  const chunks: Buffer[] = [];
  const count = parseManifest(m).chunks.length;
  for (let i = 0; i < count; i++) chunks.push((await from.readChunk(img.digest, i))!);
  const t0 = performance.now();
  const pull = await to.beginPull(m, manifestDigest(m));
  for (const [i, c] of chunks.entries()) await pull.writeChunk(i, c);
  await pull.close();
  const writeMs = performance.now() - t0;
  const h0 = performance.now();
  for (const c of chunks) createHash('sha256').update(c).digest();
  const shaMs = performance.now() - h0;
  printFigure({
    bench: BENCH,
    name: 'verified chunk writes',
    value: ((bytes / writeMs) * 1000) / 2 ** 20,
    unit: 'MiB/s',
    bound: ((bytes / baseline) * 1000) / 2 ** 20,
    boundKind: 'min',
    note: `${parseManifest(m).chunkSize / 2 ** 20} MiB chunks: hash check, pwrite, fsync + bitmap every 8; bound: the read+hash+write copy rate of this disk; SHA-256 alone ${(((bytes / shaMs) * 1000) / 2 ** 20).toFixed(0)} MiB/s; ${load()}`,
  });
} finally {
  await xd.stop();
  removeDataDir(xd.dataDir);
  rmSync(dir, { recursive: true, force: true });
}
