// Peer exchange (BitTorrent's PEX): a holder remembers which peers asked it for an image lately and tells
// each puller that asks for its bitmap who the others are, so pullers of the same image find each other
// within a request instead of waiting for the DHT (a partial holder is provided only once it has a chunk,
// and lookups take seconds) — measured with three pullers and one seed: the first chunks passed between
// pullers 3–4 s after they had arrived, while the pullers kept asking the seed.
//
// What is remembered is only ever the authenticated remote peer of a request on the cluster's own
// connections, never a peer's claim about others; a puller that is told a name still checks it like any
// holder (it must answer the bitmap request and cut the image by the expected manifest). Bounded: at most
// MAX_IMAGES images (the oldest forgotten), MAX_PEERS_PER_IMAGE peers each (the least recent forgotten),
// entries older than the window dropped; an answer names at most MAX_PEX_PEERS.

/** Peers an answer names at most (protocol.ts checks it on the way in). */
export const MAX_PEX_PEERS = 16;
const MAX_PEERS_PER_IMAGE = 32;
const MAX_IMAGES = 64;
/** A peer that asked within this long is still taken to be pulling. */
const DEFAULT_WINDOW_MS = 60_000;

export class PeerExchange {
  /** digest → peer → when it last asked (ms); Map order: least recent first. */
  readonly #byImage = new Map<string, Map<string, number>>();
  readonly #windowMs: number;

  constructor({ windowMs = DEFAULT_WINDOW_MS }: { windowMs?: number } = {}) {
    this.#windowMs = windowMs;
  }

  /** `peer` asked for `digest` at `now`. */
  seen(digest: string, peer: string, now = Date.now()): void {
    let peers = this.#byImage.get(digest);
    if (peers) this.#byImage.delete(digest);
    else peers = new Map();
    this.#byImage.set(digest, peers); // most recently asked image last
    if (this.#byImage.size > MAX_IMAGES) this.#byImage.delete(this.#byImage.keys().next().value as string);
    peers.delete(peer);
    peers.set(peer, now);
    if (peers.size > MAX_PEERS_PER_IMAGE) peers.delete(peers.keys().next().value as string);
  }

  /** The peers other than `except` that asked for `digest` within the window, most recent first. */
  others(digest: string, except: string, now = Date.now()): string[] {
    const peers = this.#byImage.get(digest);
    if (!peers) return [];
    const out: string[] = [];
    for (const [peer, at] of [...peers].reverse()) {
      if (now - at > this.#windowMs) {
        peers.delete(peer);
        continue;
      }
      if (peer !== except && out.length < MAX_PEX_PEERS) out.push(peer);
    }
    return out;
  }
}
