// The kinds this xenosctl was built with, read from the CRDs through src/api/kinds.ts: the fallback
// when the server's discovery is not available, and the printer columns of `get`.

import { loadKinds } from '../api/kinds.ts';
import type { LocalKind } from './resources.ts';

let cached: LocalKind[] | undefined;

export function loadLocalKinds(): LocalKind[] {
  cached ??= loadKinds().all();
  return cached;
}
