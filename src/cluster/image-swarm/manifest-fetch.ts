// The manifest a pull starts from: this host's own copy when a pull of it was under way (resume), else
// the first holder's whose bytes hash to the manifest digest the holders published — the hosts that list it
// in Host.status.images first, the DHT's providers only when none of them answers.

import type { ImageStore } from '../../images/image-store.ts';
import { manifestDigest } from '../../images/manifest.ts';
import { NoHoldersError } from './errors.ts';
import type { HolderCandidate } from './holders.ts';
import type { ImageClient } from './image-client.ts';

export interface ManifestSources {
  store: Pick<ImageStore, 'manifest'>;
  holders: {
    fromStore(digest: string): HolderCandidate[];
    fromDht(digest: string, signal: AbortSignal): Promise<HolderCandidate[]>;
  };
  client: Pick<ImageClient, 'manifest'>;
}

/** This host's manifest of a resumed pull, else the first holder's that hashes to `expected`: the hosts
 *  that list it first, the DHT's providers only when none of them answers. */
export async function fetchManifest(
  c: ManifestSources,
  digest: string,
  expected: string,
  signal: AbortSignal,
): Promise<Buffer> {
  const local = await c.store.manifest(digest);
  if (local && manifestDigest(local) === expected) return local;
  const listed = c.holders.fromStore(digest);
  const tried: string[] = [];
  const first = [
    ...shuffle(listed.filter((c) => c.manifest === expected)),
    ...shuffle(listed.filter((c) => c.manifest !== expected)),
  ];
  const found = await from(c, digest, first, expected, tried, signal);
  if (found) return found;
  const providers = await c.holders.fromDht(digest, signal);
  const more = providers.filter((p) => !listed.some((c) => c.peerId === p.peerId));
  const late = await from(c, digest, shuffle(more), expected, tried, signal);
  if (late) return late;
  throw new NoHoldersError(
    digest,
    tried.length === 0
      ? 'no live host holds it (the hosts listing it in Host.status.images are down)'
      : `no holder sent manifest ${expected} (${tried.join('; ')})`,
  );
}

async function from(
  c: ManifestSources,
  digest: string,
  candidates: HolderCandidate[],
  expected: string,
  tried: string[],
  signal: AbortSignal,
): Promise<Buffer | undefined> {
  for (const holder of candidates) {
    try {
      const answer = await c.client.manifest(holder.peerId, digest, signal);
      const got = manifestDigest(answer.bytes);
      if (got === expected) return answer.bytes;
      tried.push(`${label(holder)}: its manifest hashes to ${got}`);
    } catch (err) {
      if (signal.aborted) throw err;
      tried.push(`${label(holder)}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

function label(c: HolderCandidate): string {
  return c.host ? `host ${c.host} (peer ${c.peerId})` : `peer ${c.peerId}`;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}
