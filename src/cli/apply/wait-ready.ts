// `xenosctl apply --wait`: after applying, wait until each ServiceTemplate and ServiceInstance applied is
// Ready (at its new generation), drawing a progress bar while its host says it is Pulling the image
// (status.imagePull), one object after the other within one deadline. Other kinds have no Ready to wait
// for and are not waited on.

import type { CommandContext } from '../context.ts';
import type { ManifestObject } from '../manifests.ts';
import { PullDisplay } from '../pull-progress.ts';
import { qualifiedSingular } from '../resources.ts';
import { waitFor } from '../waiters.ts';

const WAITED_KINDS = new Set(['ServiceTemplate', 'ServiceInstance']);

export async function waitApplied(
  ctx: CommandContext,
  objects: ManifestObject[],
  opts: { timeoutMs: number; timeoutText: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (const m of objects) {
    if (!WAITED_KINDS.has(m.kind.kind)) continue;
    const what = `${qualifiedSingular(m.kind)}/${m.name}`;
    const display = new PullDisplay(ctx.io, `${m.kind.singular}/${m.name}`);
    try {
      await waitFor(
        ctx.client(),
        { kind: m.kind, name: m.name, namespace: m.namespace || undefined },
        { kind: 'condition', type: 'Ready', status: 'True' },
        {
          timeoutMs: Math.max(1, deadline - Date.now()),
          signal: ctx.signal,
          timeoutText: opts.timeoutText,
          onObject: (obj) => display.see(obj),
        },
      );
    } finally {
      display.end();
    }
    ctx.out(`${what} ready\n`);
  }
}
