// The kinds this xenosctl was built with, read from the CRDs through src/api/kinds.ts: the fallback
// when the server's discovery is not available, and the printer columns of `get`.

import { loadKinds } from '../api/kinds.ts';
import type { LocalKind } from './resources.ts';

let cached: LocalKind[] | undefined;

export function loadLocalKinds(): LocalKind[] {
  cached ??= loadKinds()
    .all()
    .map((k) => ({
      kind: k.kind,
      plural: k.plural,
      singular: k.singular,
      shortNames: k.shortNames ?? [],
      namespaced: k.namespaced,
      printerColumns: k.printerColumns ?? [],
    }));
  return cached;
}
