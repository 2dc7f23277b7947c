// The image source of a host with no peers to pull from (xenosd without --p2p): `ensure(digest)` is the
// image this host's store holds, or an ImageNotHeldError saying how to get it here. In a cluster the
// swarm (src/cluster/image-swarm) is the image source and falls back to nothing: it pulls.

import { ImageNotHeldError } from './errors.ts';
import type { ImportedImage } from './image-entry.ts';
import type { ImageSource } from './image-source.ts';
import type { ImageStore } from './image-store.ts';

export function localImageSource(store: Pick<ImageStore, 'get'>): ImageSource {
  return {
    async ensure(digest, options = {}): Promise<ImportedImage> {
      options.signal?.throwIfAborted();
      const held = await store.get(digest);
      if (held) return held;
      throw new ImageNotHeldError(
        digest,
        'this host has no peers to pull it from (xenosd runs without --p2p); push it here with `xenosctl image push PATH`',
      );
    },
  };
}
