// Two real Xen hosts, each Xen 4.17 under its own QEMU with xenosd in dom0, joined into one Xenos cluster
// over a network of their own (each dom0's eth0 on QEMU's UDP socket link between them): host a starts
// the cluster (its key and listen address handed to b through a shared directory), b joins it, and each
// must see both hosts Ready with the xen driver through its own API. The ground the Xen migration stands on.

import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ensureXenHost, type XenHostImage } from '../../../scripts/xen/xen-host.ts';
import { runOnXenHosts } from './xen-host.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');
const SUITE_MS = 15 * 60_000;
let host: XenHostImage;
beforeAll(async () => {
  host = await ensureXenHost({ log: (l) => console.log(l) });
}, 20 * 60_000);

/** What dom0 of host `n` (1 = a, 2 = b) runs: its address, xenosd (a starts the cluster, b joins), then
 *  waits until its API shows both hosts Ready on Xen, and until the other host has seen the same. */
function script(n: 1 | 2): string {
  const name = n === 1 ? 'xen-a' : 'xen-b';
  return `#!/bin/sh
say() { echo "XENOS-TEST: $*"; }
fail() { say "FAIL $*"; [ -f /tmp/xenosd.log ] && tail -20 /tmp/xenosd.log | sed 's/^/XENOS-TEST: xenosd: /'; exit 1; }
waitfor() { i=0; until [ -e "$1" ]; do i=$((i + 1)); [ $i -gt "$2" ] && fail "no $1 after $2 s"; sleep 1; done; }
modprobe virtio_net || fail "no virtio_net"
i=0; until ip link show eth0 > /dev/null 2>&1; do i=$((i + 1)); [ $i -gt 50 ] && fail "no eth0"; sleep 0.1; done
ip addr add 10.99.0.${n}/24 dev eth0 && ip link set eth0 up || fail "cannot address eth0"
mkdir -p /exchange && mount -t 9p -o trans=virtio,version=9p2000.L exchange /exchange || fail "no /exchange"
cd /xenos || fail "no /xenos share"
mkdir -p /test/data
export HOME=/tmp
${
  n === 1
    ? `node bin/xenosd.js --data-dir /test/data --host-name ${name} --driver auto --api 127.0.0.1:7443 \\
  --cluster-key /exchange/cluster.key --p2p 10.99.0.1:7000 --host-timeout 60s > /tmp/xenosd.log 2>&1 &
waitfor /test/data/p2p.addrs 300
cp /test/data/p2p.addrs /exchange/a.addrs.tmp && mv /exchange/a.addrs.tmp /exchange/a.addrs`
    : `waitfor /exchange/a.addrs 400
node bin/xenosd.js --data-dir /test/data --host-name ${name} --driver auto --api 127.0.0.1:7443 \\
  --cluster-key /exchange/cluster.key --p2p 10.99.0.2:7000 --host-timeout 60s \\
  --join "$(grep 10.99.0.1 /exchange/a.addrs | head -1)" > /tmp/xenosd.log 2>&1 &`
}
XENOSD=$!
waitfor /test/data/admin.token 300
export XENOS_SERVER=http://127.0.0.1:7443 XENOS_TOKEN="$(cat /test/data/admin.token)"
seen() {
  node bin/xenosctl.js get hosts -o json 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const hosts = JSON.parse(s).items.filter((h) => h.status?.driver === "xen" &&
        h.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
      console.log(hosts.map((h) => h.metadata.name).sort().join(","));
    });'
}
i=0
until [ "$(seen)" = "xen-a,xen-b" ]; do
  i=$((i + 1)); [ $i -gt 150 ] && fail "did not see both hosts Ready on xen (sees: $(seen))"
  sleep 2
done
say "sees $(seen)"
touch /exchange/seen-${n}
waitfor /exchange/seen-${3 - n} 300
kill $XENOSD; wait $XENOSD
say "xenosd stopped"
`;
}

it(
  'joins two Xen hosts, each with xenosd in dom0, into one cluster',
  async () => {
    const runs = await runOnXenHosts(
      host,
      [
        { share: REPO, spareMiB: 512, script: script(1) },
        { share: REPO, spareMiB: 512, script: script(2) },
      ],
      SUITE_MS,
    );
    for (const [i, run] of runs.entries()) {
      const report = run.said.join('\n');
      console.log(report.replace(/^/gm, `  host ${'ab'[i]}: `));
      expect(run.status, `${report}\n--- console tail:\n${run.console.slice(-2000)}`).toBe(0);
      expect(run.said).toContain('sees xen-a,xen-b');
    }
  },
  SUITE_MS + 60_000,
);
