// A real Xen host, end to end below the driver: Xen 4.17 booted under QEMU (scripts/xen/xen-host.ts) with the
// real toolstack in dom0, and the demo guest run as a domain from the config xlConfig builds for the
// manifests/vm-web template — a PVH guest with its disk a qcow2 overlay on the image's disk (served by
// QEMU's qdisk backend in dom0) and its vif on the bridge. The guest must boot to `ready` on its console
// (hvc0, through xenconsoled), `xl list -l` must show the domain the config asked for, its service must
// answer over the bridge with its boot id and a count kept in memory, and `xl shutdown -w` must end it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../scripts/lib/debian.ts';
import { ensureXenHost, type XenHostImage } from '../../../scripts/xen/xen-host.ts';
import { planDisks, resolveVmImage } from '../../../src/drivers/vm-image.ts';
import { domainUuid, xlConfig } from '../../../src/drivers/xen/xl-config.ts';
import { domainState, parseXlList, parseXlListLong } from '../../../src/drivers/xen/xl-list.ts';
import { guestLine } from '../../guest-client.ts';
import { guestImageDir } from '../../guest-image.ts';
import { runOnXenHost, XEN_RUN_WAIT_MS } from './xen-host.ts';
import { specFor, TEMPLATES } from './xl-fixtures.ts';

let host: XenHostImage;
let guestDir: string;
beforeAll(async () => {
  host = await ensureXenHost({ log: (l) => console.log(l) });
  guestDir = await guestImageDir();
}, 20 * 60_000);

/** dom0's side: create the domain, wait for `ready`, ask the guest twice, read xl's view, shut it down. */
const RUN = `#!/bin/sh
say() { echo "XENOS-TEST: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk "BEGIN { printf \\"%.1f\\", $(up) - $1 }"; }
say "xen $(xl info | awk '/^xen_version/ { print $3 }'), caps $(xl info | sed -n 's/^virt_caps *: //p')"
say "node $(node --version)"
# The bridge the config names (the Xen driver makes it; this test runs xl without the driver). Without a
# DHCP answer the demo guest takes 10.0.2.15/24.
ip link add xenosbr0 type bridge && ip addr add 10.0.2.2/24 dev xenosbr0 && ip link set xenosbr0 up ||
  { say "FAIL cannot make the bridge xenosbr0"; exit 1; }
name=$(sed -n 's/^name = "\\(.*\\)"$/\\1/p' /test/domain.cfg)
log=/var/log/xen/console/guest-$name.log
t0=$(up)
xl create /test/domain.cfg > /tmp/create.log 2>&1 || { say "FAIL xl create: $(tail -3 /tmp/create.log | tr '\\n' ' ')"; exit 1; }
say "created in $(since $t0) s"
i=0
until grep -q '^ready' "$log" 2>/dev/null; do
  i=$((i + 1))
  [ $i -gt 1800 ] && { say "FAIL no ready: $(tail -c 600 "$log" | tr '\\r\\n' '  ')"; exit 1; }
  sleep 0.1
done
say "ready in $(since $t0) s"
say "xl-list $(xl list | base64 -w0)"
say "xl-list-long $(xl list -l | base64 -w0)"
say "list $(xl list -l "$name" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const [d]=JSON.parse(s);console.log(JSON.stringify({name:d.config.c_info.name,type:d.config.c_info.type,memkb:d.config.b_info.max_memkb,disk:d.config.disks[0].format,bridge:d.config.nics[0].bridge}))})')"
for n in 1 2; do
  say "GET $(node -e 'fetch("http://10.0.2.15/",{signal:AbortSignal.timeout(10000)}).then(r=>r.text()).then(t=>console.log(t.trim()),e=>console.log("ERR",e.cause?.code??e.message))')"
done
t1=$(up)
if ! timeout 90 xl shutdown -w "$name" > /tmp/shutdown.log 2>&1; then
  say "FAIL xl shutdown: $(tail -3 /tmp/shutdown.log | tr '\\n' ' ')"
  xl destroy "$name"
  exit 1
fi
say "shut down in $(since $t1) s"
i=0
while xl list "$name" > /dev/null 2>&1; do
  i=$((i + 1)); [ $i -gt 100 ] && { say "FAIL still listed 10 s after its shutdown"; exit 1; }
  sleep 0.1
done
say "gone"
`;

describe('a real Xen host (Xen 4.17 under QEMU, the real toolstack in dom0)', () => {
  it(
    'runs the vm-web template as a PVH domain from the generated config, serves, and shuts it down',
    async () => {
      const template = TEMPLATES.find((t) => t.file.startsWith('vm-web'))!.template;
      const spec = specFor(template, {}, guestDir);
      const image = await resolveVmImage(spec);
      const disks = planDisks(spec, image).map((d) => ({
        name: d.name,
        path: `/test/${d.name}.qcow2`,
        format: 'qcow2' as const,
        readOnly: d.readOnly,
      }));
      const config = xlConfig({
        spec,
        kernel: `/test/guest/${image.kernel!.relative}`,
        ramdisk: `/test/guest/${image.initrd!.relative}`,
        disks,
        ports: { http: 80 },
      });
      // The overlay names its base as dom0 sees it; made here, unchecked (-u): the base is on the test disk.
      const scratch = mkdtempSync(join(tmpdir(), 'xenos-xen-overlay-'));
      const overlay = join(scratch, 'root.qcow2');
      run('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-u',
        '-b',
        '/test/guest/disk.img',
        '-F',
        'raw',
        overlay,
        '32M',
      ]);

      const result = await runOnXenHost(
        host,
        {
          script: RUN,
          files: {
            'domain.cfg': { text: config },
            'root.qcow2': { from: overlay },
            'guest/vmlinux': { from: join(guestDir, 'vmlinux') },
            'guest/initrd.img': { from: join(guestDir, 'initrd.img') },
            'guest/disk.img': { from: join(guestDir, 'disk.img') },
          },
        },
        8 * 60_000,
      ).finally(() => rmSync(scratch, { recursive: true, force: true }));
      const said = result.said.join('\n');
      const context = `${said}\n--- console tail:\n${result.console.slice(-3000)}`;
      console.log(
        result.said.map((l, i) => `  dom0, ${result.at[i].toFixed(1)} s after QEMU started: ${l}`).join('\n'),
      );
      expect(result.status, context).toBe(0);
      expect(said).toMatch(/^xen 4\.17\.\d+, caps .*\bhvm\b.*\bhap\b/m);
      expect(said).toMatch(/^node v2\d\./m);
      const list = JSON.parse(/^list (.*)$/m.exec(said)![1]);
      expect(list).toEqual({
        name: spec.id,
        type: 'pvh',
        memkb: 128 * 1024,
        disk: 'qcow2',
        bridge: 'xenosbr0',
      });
      // xl's own listings, read by the driver's readers: the domain runs with what it was given.
      const decoded = (key: string) =>
        Buffer.from(new RegExp(`^${key} (\\S*)$`, 'm').exec(said)![1], 'base64').toString('utf8');
      const rows = parseXlList(decoded('xl-list'));
      expect(rows.find((r) => r.domid === 0)?.name).toBe('Domain-0');
      const row = rows.find((r) => r.name === spec.id)!;
      expect(row, decoded('xl-list')).toBeDefined();
      expect({ state: domainState(row.flags), memoryMiB: row.memoryMiB, vcpus: row.vcpus }).toEqual({
        state: 'running',
        memoryMiB: 128,
        vcpus: 1,
      });
      const long = parseXlListLong(decoded('xl-list-long')).find((e) => e.config.c_info.name === spec.id)!;
      expect(long.domid).toBe(row.domid);
      expect(long.config.c_info).toMatchObject({ uuid: domainUuid(spec), type: 'pvh' });
      const gets = [...said.matchAll(/^GET (.*)$/gm)].map((m) => m[1]);
      expect(gets).toHaveLength(2);
      const [first, second] = gets.map(guestLine);
      expect(first, gets[0]).toBeTruthy();
      expect(second, gets[1]).toBeTruthy();
      expect(second!.boot).toBe(first!.boot);
      expect(second!.count).toBe(first!.count + 1);
      expect(said).toMatch(/^shut down in [\d.]+ s$/m);
      expect(said).toMatch(/^gone$/m);
    },
    30 * 60_000 + XEN_RUN_WAIT_MS,
  );
});
