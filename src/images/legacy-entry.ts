// Entries made before images had blobs — `image` and `meta.json` only, as the first image cache wrote
// them — are given their blob, manifest and full bitmap the first time a peer asks for the image, so
// images imported before the swarm can be served like any other. A file's blob is a hard link to it; a
// directory is packed into its canonical tar. The manifest is written last: its presence means done.

import { link, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { packDirectory } from './canonical-tar.ts';
import { HaveBitmap } from './have-bitmap.ts';
import { FILES, readMeta, writeFileAtomic, writeMeta } from './image-entry.ts';
import { cutBlob, encodeManifest, manifestOf } from './manifest.ts';

/** The manifest bytes of the complete entry in `dir`, made now if it has none; undefined when `dir` is
 *  not a complete entry. Call under the store's lock for the digest. */
export async function addBlob(dir: string, chunkSize: number | undefined): Promise<Buffer | undefined> {
  const meta = await readMeta(dir);
  if (!meta) return undefined;
  const done = await readFile(join(dir, FILES.manifest)).catch(() => undefined);
  if (done) return done;
  const blob = join(dir, FILES.blob);
  await rm(blob, { force: true });
  if (meta.kind === 'file') await link(join(dir, FILES.image), blob);
  else {
    const tmp = `${blob}.tmp`;
    const fh = await open(tmp, 'w', 0o444);
    await pipeline(packDirectory(join(dir, FILES.image)), fh.createWriteStream());
    await rename(tmp, blob);
  }
  const cut = await cutBlob(blob, { chunkSize });
  const manifest = manifestOf(cut, meta.digest, meta.kind);
  const bytes = encodeManifest(manifest);
  await HaveBitmap.full(manifest.chunks.length).save(join(dir, FILES.have));
  await writeMeta(dir, {
    ...meta,
    blobSize: manifest.size,
    blobDigest: meta.kind === 'file' ? meta.digest : `sha256:${cut.sha256}`,
  });
  await writeFileAtomic(join(dir, FILES.manifest), bytes);
  return bytes;
}
