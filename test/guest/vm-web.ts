// manifests/vm-web as the project's manifest loader reads it (validated: any error fails the caller), and the
// kernel command line an instance of its template gets, for the tests of the demo guest.

import { join, resolve } from 'node:path';
import { formatLocatedError, loadManifestFiles } from '../../src/api/manifest.ts';
import { expandString, expansionTable } from '../../src/drivers/params.ts';

const repo = resolve(import.meta.dirname, '../..');

export async function vmWebManifests() {
  const r = await loadManifestFiles([join(repo, 'manifests/vm-web')]);
  if (r.errors.length > 0) throw new Error(r.errors.map(formatLocatedError).join('\n'));
  const template = r.docs.find((d) => d.object.kind === 'ServiceTemplate')!.object as any;
  const instance = r.docs.find((d) => d.object.kind === 'ServiceInstance')!.object as any;
  return { template, instance };
}

/** The kernel command line an instance of the template gets. */
export function cmdlineFor(template: any, instanceName: string): string {
  const table = expansionTable({ instance: { name: instanceName, namespace: 'default', uid: 'u' } });
  return expandString(template.spec.domain.boot.cmdline, table, 'spec.domain.boot.cmdline');
}
