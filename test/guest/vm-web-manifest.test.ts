// manifests/vm-web, loaded and validated by the project's own manifest loader: a qemu template whose image
// is the directory npm run guest-image builds, booting that image's kernel and initrd with the instance's
// name on the kernel command line, and an instance of it. (guest-image.test.ts boots the guest with the
// template's boot fields.)

import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultGuestDir, IMAGE_FILES } from '../../scripts/guest-image/guest-image.ts';
import { cmdlineFor, vmWebManifests } from './vm-web.ts';

const repo = resolve(import.meta.dirname, '../..');

describe('manifests/vm-web', () => {
  it('validates, and runs the image npm run guest-image builds with the qemu driver', async () => {
    const { template, instance } = await vmWebManifests();
    expect(template.metadata.name).toBe('vm-web');
    // The relative path resolves to the builder's default output (the checkout's build/guest).
    expect(template.spec.image).toEqual({ path: join(repo, 'build/guest'), format: 'directory' });
    if (!process.env.XENOS_GUEST_DIR) expect(template.spec.image.path).toBe(defaultGuestDir());
    const { boot, memory, vcpus, network } = template.spec.domain;
    expect(IMAGE_FILES).toContain(boot.kernel);
    expect(IMAGE_FILES).toContain(boot.initrd);
    expect({ memory, vcpus, network }).toEqual({ memory: '128Mi', vcpus: 1, network: { mode: 'user' } });
    expect(cmdlineFor(template, 'vm-web-1')).toBe('console=ttyS0 xenos.name=vm-web-1');
    expect(template.spec.ports).toEqual([{ name: 'http', port: 80, appProtocol: 'http' }]);
    expect(template.spec.healthCheck.http).toEqual({ port: 'http', path: '/name' });

    expect(instance.metadata.name).toBe('vm-web-1');
    expect(instance.spec).toMatchObject({ templateRef: { name: 'vm-web' }, driver: 'qemu' });
  });
});
