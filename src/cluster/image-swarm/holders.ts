// Who may have an image: the hosts whose Host.status.images lists it complete (written and signed by each
// holder, replicated to every host, so they also say which manifest digest to expect), and the peers that
// provide it in the DHT under CID(sha256("/xenos/img/" + digest)) — among them hosts still pulling it,
// which announce themselves once they hold the manifest and a first chunk, so a pull can take chunks from
// other pullers. Only live hosts are asked; this host never is.

import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { HOST } from '../../model/kinds.ts';
import type { ProviderPeer } from '../../p2p/dht-client.ts';
import type { Store } from '../../store/store.ts';

/** The DHT key an image's holders provide under. */
export async function imageCid(digest: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`/xenos/img/${digest}`)));
}

export interface HolderCandidate {
  peerId: string;
  /** The host's name, when the store knows it. */
  host?: string;
  /** The manifest digest it published in Host.status.images (complete holders only). */
  manifest?: string;
}

/** What holder lookup uses of the DHT. */
export interface ProviderLookup {
  findProviders(
    cid: CID,
    options: { signal?: AbortSignal; timeout?: number; quorum?: number },
  ): AsyncIterable<ProviderPeer>;
}

export interface ImageHoldersComponents {
  store: Pick<Store, 'list'>;
  /** Whether the membership sees the host alive. */
  isLive: (host: string) => boolean;
  /** The DHT; absent: the store's holders only. */
  dht?: ProviderLookup;
  /** This host's peer id (never a candidate). */
  self: string;
}

export interface ImageHoldersInit {
  /** How long one DHT provider lookup may take (ms). Default 3 s. */
  dhtTimeoutMs?: number;
  /** Most DHT providers taken per lookup. Default 64. */
  maxProviders?: number;
}

export class ImageHolders {
  readonly #c: ImageHoldersComponents;
  readonly #dhtTimeoutMs: number;
  readonly #maxProviders: number;

  constructor(components: ImageHoldersComponents, init: ImageHoldersInit = {}) {
    this.#c = components;
    this.#dhtTimeoutMs = init.dhtTimeoutMs ?? 3000;
    this.#maxProviders = init.maxProviders ?? 64;
  }

  /** The live hosts that list `digest` complete in Host.status.images (any liveness, with `all`). */
  fromStore(digest: string, { all = false } = {}): HolderCandidate[] {
    const out: HolderCandidate[] = [];
    for (const host of this.#c.store.list(HOST.kind).items) {
      const peerId = host.status?.peerId;
      const entry = host.status?.images?.find((i) => i.digest === digest);
      if (!peerId || !entry || peerId === this.#c.self) continue;
      if (!all && !this.#c.isLive(host.metadata.name)) continue;
      out.push({ peerId, host: host.metadata.name, manifest: entry.manifest });
    }
    return out;
  }

  /** The manifest digest most hosts list for `digest` (ties: the smallest), dead hosts counted too: their
   *  signed word on what the image's manifest is stays good. Undefined when no host lists it. */
  expectedManifest(digest: string): string | undefined {
    const votes = new Map<string, number>();
    for (const c of this.fromStore(digest, { all: true }))
      votes.set(c.manifest!, (votes.get(c.manifest!) ?? 0) + 1);
    let best: string | undefined;
    for (const [m, n] of votes) {
      const bn = best === undefined ? -1 : votes.get(best)!;
      if (n > bn || (n === bn && m < best!)) best = m;
    }
    return best;
  }

  /** The peers that provide `digest` in the DHT (this host left out), as found within the lookup's time;
   *  none when the DHT knows nobody yet (a fresh cluster) or does not answer in time. */
  async fromDht(digest: string, signal: AbortSignal): Promise<HolderCandidate[]> {
    const dht = this.#c.dht;
    if (!dht) return [];
    const out: HolderCandidate[] = [];
    const seen = new Set([this.#c.self]);
    let hostOf: Map<string, string> | undefined; // peer id → host name, listed once per lookup
    try {
      for await (const p of dht.findProviders(await imageCid(digest), {
        signal,
        timeout: this.#dhtTimeoutMs,
        quorum: 3,
      })) {
        if (seen.has(p.peerId)) continue;
        seen.add(p.peerId);
        hostOf ??= this.#hostsByPeer();
        const host = hostOf.get(p.peerId);
        if (host !== undefined && !this.#c.isLive(host)) continue;
        out.push({ peerId: p.peerId, host });
        if (out.length >= this.#maxProviders) break;
      }
    } catch (err) {
      if (signal.aborted) throw err;
    }
    return out;
  }

  #hostsByPeer(): Map<string, string> {
    const out = new Map<string, string>();
    for (const h of this.#c.store.list(HOST.kind).items)
      if (h.status?.peerId && !out.has(h.status.peerId)) out.set(h.status.peerId, h.metadata.name);
    return out;
  }
}
