// `xenosctl image push PATH` uploads a local image (a disk file or a directory) to the host xenosctl talks
// to and prints its digest, for `spec.image.digest`; run again after an interruption, it resumes.
// `xenosctl image ls` lists the images of the cluster: digest, kind, size, the hosts that hold each one
// (Host.status.images, written by each host) and the templates that use it.

import type { Command } from 'commander';
import type { Host, HostImage } from '../../model/host.ts';
import { IMAGES_PATH } from '../../model/images-api.ts';
import { HOST, SERVICE_TEMPLATE } from '../../model/kinds.ts';
import type { ServiceTemplate } from '../../model/service-template.ts';
import type { CommandContext } from '../context.ts';
import { UsageError } from '../errors.ts';
import { pushImage } from '../image-push.ts';
import { formatTable } from '../printers/table.ts';
import { formatBytes } from '../progress-bar.ts';
import { progressBar } from '../pull-progress.ts';
import { imageCommand } from './image-pull.ts';

/** What a host's own store says about an image (GET /apis/images.xenos.io/v1/images). */
interface LocalImage {
  digest: string;
  complete: boolean;
  kind?: string;
  size?: number;
  blobSize?: number;
  manifestDigest?: string;
  chunks: number;
  haveChunks: number;
}

export function registerImage(program: Command, ctx: CommandContext): void {
  const image = imageCommand(program).addHelpText(
    'after',
    `
Examples:
  xenosctl image push ./web-root        # a directory image (process driver)
  xenosctl image push disk.qcow2        # a disk image (VM drivers)
  xenosctl image ls
  xenosctl image pull sha256:3f9c...e1 --host node-2`,
  );
  image
    .command('push')
    .description('Upload a file or directory image to the host and print its digest')
    .argument('<path>', 'a disk image file or a directory')
    .option('-q, --quiet', 'print only the digest, no progress')
    .addHelpText(
      'after',
      `
The image is sent once, in pieces, to the host xenosctl talks to; other hosts pull it from the hosts
that hold it. A host that already holds it answers at once (nothing is sent). Interrupted, run the same
command again: it goes on from what the host has. The digest printed is what spec.image.digest takes.

Examples:
  xenosctl image push ./web-root
  DIGEST=$(xenosctl image push -q disk.raw)`,
    )
    .action(async (path: string, opts: { quiet?: boolean }) => {
      const bar = opts.quiet ? undefined : progressBar(ctx.io, `pushing ${path}`);
      const pushed = await pushImage(ctx.client(), path, {
        signal: ctx.signal,
        onProgress: (bytes, size) => bar?.update({ bytes, size }),
      });
      bar?.done();
      if (!opts.quiet && !pushed.uploaded)
        ctx.err(`the host already holds ${pushed.digest}; nothing was sent\n`);
      ctx.out(`${pushed.digest}\n`);
    });
  image
    .command('ls')
    .alias('list')
    .description('List the images of the cluster: digest, kind, size, holders, templates')
    .option('-o, --output <format>', 'wide (full digests) or json')
    .action(async (opts: { output?: string }) => {
      if (opts.output && opts.output !== 'wide' && opts.output !== 'json')
        throw new UsageError(`--output ${JSON.stringify(opts.output)}: use wide or json`);
      const client = ctx.client();
      const [hosts, templates, local] = await Promise.all([
        client.list(HOST, { signal: ctx.signal }),
        client.list(SERVICE_TEMPLATE, { signal: ctx.signal }),
        client.request<{ items: LocalImage[] }>('GET', IMAGES_PATH, {
          signal: ctx.signal,
        }),
      ]);
      const rows = imageRows(hosts.items, templates.items, local.items);
      if (opts.output === 'json') {
        ctx.out(`${JSON.stringify({ items: rows }, null, 2)}\n`);
        return;
      }
      const wide = opts.output === 'wide';
      const headers = ['DIGEST', 'KIND', 'SIZE', 'HOSTS', 'TEMPLATES', ...(wide ? ['MANIFEST', 'HERE'] : [])];
      const table = rows.map((r) => [
        wide ? r.digest : r.digest.slice('sha256:'.length, 'sha256:'.length + 12),
        r.kind ?? '<unknown>',
        r.size === undefined ? '<unknown>' : formatBytes(r.size),
        r.holders.length ? r.holders.join(',') : '<none>',
        r.templates.length ? r.templates.join(',') : '<none>',
        ...(wide ? [r.manifests.join(',') || '<none>', r.here] : []),
      ]);
      if (rows.length === 0) ctx.err('No images found.\n');
      else ctx.out(formatTable(headers, table));
    });
}

export interface ImageRow {
  digest: string;
  kind?: string;
  /** Bytes of the blob (what travels). */
  size?: number;
  holders: string[];
  templates: string[];
  manifests: string[];
  /** On the host xenosctl talks to: complete, a percentage while pulling, or -. */
  here: string;
}

/** One row per image any host holds or any template names, sorted by digest. */
export function imageRows(hosts: Host[], templates: ServiceTemplate[], local: LocalImage[]): ImageRow[] {
  const rows = new Map<string, ImageRow>();
  const row = (digest: string) => {
    let r = rows.get(digest);
    if (!r) {
      r = { digest, holders: [], templates: [], manifests: [], here: '-' };
      rows.set(digest, r);
    }
    return r;
  };
  for (const h of hosts) {
    for (const img of (h.status?.images ?? []) as (HostImage | string)[]) {
      const entry: Partial<HostImage> & { digest: string } = typeof img === 'string' ? { digest: img } : img;
      const r = row(entry.digest);
      r.holders.push(h.metadata.name);
      if (entry.manifest && !r.manifests.includes(entry.manifest)) r.manifests.push(entry.manifest);
      r.size ??= entry.size;
      r.kind ??= entry.kind;
    }
  }
  for (const t of templates) {
    const digest = t.spec?.image?.digest ?? t.status?.digest;
    if (digest) row(digest).templates.push(`${t.metadata.namespace ?? 'default'}/${t.metadata.name}`);
  }
  for (const l of local) {
    const r = row(l.digest);
    r.kind ??= l.kind;
    r.size ??= l.blobSize;
    r.here = l.complete ? 'complete' : `${l.chunks ? Math.floor((100 * l.haveChunks) / l.chunks) : 0}%`;
  }
  for (const r of rows.values()) r.holders.sort();
  return [...rows.values()].sort((a, b) => a.digest.localeCompare(b.digest));
}
