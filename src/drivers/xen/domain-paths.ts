// Where a Xen domain's files are: the VM layout every VM driver shares (domain.json, vm/disks/<name>.qcow2:
// ../vm-disks.ts) plus the xl config the guest is created from, in `<dataDir>/xen/<id>/`.

import { join } from 'node:path';
import { VmDomainPaths } from '../vm-disks.ts';

/** A Xen domain's files: the VM layout (vm/disks/<name>.qcow2) and its xl config. */
export class XenPaths extends VmDomainPaths {
  /** The config `xl create` reads: xlConfig's output for the spec. */
  get config(): string {
    return join(this.dir, 'domain.cfg');
  }
}
