// A client of the demo guest (npm run guest-image) that keeps asking GET / while a test moves the guest:
// what it was answered (the guest's boot id and request count, and where) and what failed, each with the
// time the request began. The URL is asked of `url()` before every request, so a client following the
// guest (its endpoint in the API, or the driver's latest info) reaches it wherever it is.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DomainSpec, InstanceIdentity } from '../src/drivers/driver.ts';
import { domainIdFor } from '../src/drivers/driver.ts';
import { httpGet } from './drivers/driver-contract.ts';

const run = promisify(execFile);

/** The lines of /requests.log on a demo guest's disk overlay (ext4 over the image's base), read offline
 *  through `scratch` (a raw copy of the disk). */
export async function requestLog(overlay: string, scratch: string): Promise<string[]> {
  await run('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'raw', overlay, scratch]);
  const { stdout } = await run('debugfs', ['-R', 'cat /requests.log', scratch]);
  return stdout.split('\n').filter(Boolean);
}

/** A domain of the demo guest in image directory `guestDir` for a VM driver: its kernel and initrd, 128 MiB,
 *  one vCPU, its service on port 80 (`http`), `cmdline` added to its command line (` xenos.crash=1`). */
export function demoGuestSpec(
  guestDir: string,
  instance: InstanceIdentity,
  extra: Partial<DomainSpec> = {},
  cmdline = '',
): DomainSpec {
  return {
    id: domainIdFor(instance),
    instance,
    image: { path: guestDir, format: 'directory' },
    boot: { kernel: 'vmlinux', initrd: 'initrd.img', cmdline: `xenos.name=\${instance.name}${cmdline}` },
    ports: [{ name: 'http', port: 80, protocol: 'TCP', appProtocol: 'http' }],
    resources: { memoryBytes: 128 * 1024 * 1024, vcpus: 1 },
    ...extra,
  };
}

/** The demo guest's answer to GET /: `boot=<boot id> count=<n>`, parsed; undefined for anything else. */
export function guestLine(text: string): { boot: string; count: number } | undefined {
  const m = /^boot=(\S+) count=(\d+)$/.exec(text.trim());
  return m ? { boot: m[1], count: Number(m[2]) } : undefined;
}

export interface GuestClient {
  answers: { at: number; boot: string; count: number; url: string }[];
  errors: { at: number; error: string }[];
  stop(): Promise<void>;
}

/** Requests GET / every `everyMs` until stopped. */
export function keepRequesting(
  url: () => string | undefined | Promise<string | undefined>,
  everyMs: number,
): GuestClient {
  const client: GuestClient = { answers: [], errors: [], stop: async () => {} };
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      const at = Date.now();
      const where = await Promise.resolve(url()).catch(() => undefined);
      const r = where ? await httpGet(where) : undefined;
      const line = r && r.status === 200 ? guestLine(r.body) : undefined;
      if (line && where) client.answers.push({ at, ...line, url: where });
      else
        client.errors.push({
          at,
          error: !where ? 'no endpoint' : r ? `HTTP ${r.status}: ${r.body.slice(0, 80)}` : 'no answer',
        });
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  client.stop = async () => {
    stopped = true;
    await done;
  };
  return client;
}
