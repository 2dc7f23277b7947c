// The symlink rule of directory images. A directory image is content-addressed: its digest must say
// everything about what a domain gets. A symbolic link is hashed as its target text and copied as a link
// (never followed on import, as a tar or OCI layer stores it), so a link whose target lies outside the
// image would make the same digest mean different content on each host — `/etc/shadow`, the data dir
// with the admin token, whatever `../../..` reaches from where the image happens to be cached. Unlike an
// OCI runtime, the process driver does not run a domain in a root of its own, so such a link would be
// followed on the host. The rule: every link must resolve inside the image, as the kernel would resolve
// it from the image's root — relative, never climbing above the root, also through other links of the
// image. A link that fails to resolve before leaving the image (dangling, a loop, through a file) is
// kept: it can never reach outside, and the kernel answers ENOENT, ELOOP or ENOTDIR at run time.
// The check runs on the staged copy, which only this host writes, with lstat/readlink on paths whose
// every directory component has been seen to be a real directory, so it never follows a link itself.

import { lstat, readdir, readlink } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { ImageLinkEscapeError } from './errors.ts';

/** As Linux's MAXSYMLINKS: past this many links in one resolution, the kernel answers ELOOP. */
const MAX_LINK_HOPS = 40;

/** Whether the link at `linkPath` (components below `root`) resolves to something outside `root`. */
export async function linkEscapes(root: string, linkPath: string[], target: string): Promise<boolean> {
  if (isAbsolute(target)) return true;
  const at = linkPath.slice(0, -1);
  let pending = target.split('/');
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (at.length === 0) return true;
      at.pop();
      continue;
    }
    const st = await lstat(join(root, ...at, c)).catch(() => undefined);
    if (!st) return false; // dangling from here on: ENOENT at run time
    if (st.isSymbolicLink()) {
      if (++hops > MAX_LINK_HOPS) return false; // a loop: ELOOP at run time
      const next = await readlink(join(root, ...at, c));
      if (isAbsolute(next)) return true;
      pending = [...next.split('/'), ...pending];
      continue;
    }
    if (st.isDirectory()) {
      at.push(c);
      continue;
    }
    // A file: resolution ends here (or fails with ENOTDIR if components remain).
    return false;
  }
  return false;
}

/** Throws ImageLinkEscapeError for the first link below `root` that leads out of it. */
export async function refuseEscapingLinks(root: string, source: string, signal?: AbortSignal): Promise<void> {
  async function walk(rel: string[]): Promise<void> {
    for (const entry of await readdir(join(root, ...rel), { withFileTypes: true })) {
      signal?.throwIfAborted();
      const path = [...rel, entry.name];
      if (entry.isDirectory()) await walk(path);
      else if (entry.isSymbolicLink()) {
        const target = await readlink(join(root, ...path));
        if (await linkEscapes(root, path, target))
          throw new ImageLinkEscapeError(source, path.join('/'), target);
      }
    }
  }
  await walk([]);
}
