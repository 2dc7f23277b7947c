// What a watched directory holds, read as one revision: its manifests (src/api/manifest.ts's
// loadManifestDir) and the revision they are — `git:<HEAD>` when the directory is in a git checkout, else
// the digest of the manifests. A checkout that is changing (git holds its index lock, HEAD moved while
// the files were read, or the directory's real path — a symlink switch — changed meanwhile) is not read
// half-way: the read says so and the caller tries again shortly. (The caller also waits until the
// directory has been quiet for a moment: checkout.ts cannot see a change that ends between its reads.)

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadManifestDir, type ManifestDirResult } from '../../api/manifest.ts';
import type { Validator } from '../../api/validation.ts';

const run = promisify(execFile);

export type CheckoutRead =
  | { settled: true; revision: string; manifests: ManifestDirResult; root: string }
  | { settled: false; why: string };

/** Reads `dir` as one revision, or says why it could not now. */
export async function readCheckout(
  dir: string,
  validator: Validator,
  signal?: AbortSignal,
): Promise<CheckoutRead> {
  const root = await realpath(dir);
  const git = await gitDir(root);
  if (git && existsSync(join(git, 'index.lock')))
    return { settled: false, why: 'git is changing the checkout' };
  const head = git ? await gitHead(root) : undefined;
  const manifests = await loadManifestDir(root, { validator, signal });
  if ((await realpath(dir)) !== root) return { settled: false, why: `${dir} was switched while it was read` };
  if (git) {
    const after = await gitHead(root);
    if (after !== head || existsSync(join(git, 'index.lock')))
      return { settled: false, why: 'git changed the checkout while it was read' };
  }
  // The same bytes once more: a change that raced the read (git removes its lock a moment before it
  // moves HEAD) shows here as a different digest.
  const again = await loadManifestDir(root, { validator, signal });
  if (again.digest !== manifests.digest)
    return { settled: false, why: 'the files changed while they were read' };
  return { settled: true, revision: head ? `git:${head}` : manifests.digest, manifests, root };
}

/** The git directory of the checkout `dir` is in; undefined when it is in none (or git is missing). */
async function gitDir(dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['-C', dir, 'rev-parse', '--absolute-git-dir'], { timeout: 10_000 });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function gitHead(dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['-C', dir, 'rev-parse', 'HEAD'], { timeout: 10_000 });
    return stdout.trim() || undefined;
  } catch {
    return undefined; // a repository without a commit yet
  }
}
