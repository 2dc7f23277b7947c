// Boots the test Xen host (scripts/xen/xen-host.ts) under QEMU with a test of one's own: `run.sh` and its
// files go on a second disk that dom0 mounts at /test and runs. What the test says on the console as lines
// `XENOS-TEST: ...` comes back, with dom0's exit status (QEMU's isa-debug-exit) and the whole console.
// The root disk is used copy-on-write (-snapshot for it alone), so boots never change the image.

import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { acquireBuildLock } from '../../../scripts/lib/build-lock.ts';
import { run } from '../../../scripts/lib/debian.ts';
import type { XenHostImage } from '../../../scripts/xen/xen-host.ts';
import { guestImageDir } from '../../guest-image.ts';

export interface XenHostTest {
  /** The shell script dom0 runs (as /test/run.sh); its exit status is dom0's. */
  script: string;
  /** Files for the test: path under /test → a host file to copy, or text. */
  files?: Record<string, { from: string } | { text: string }>;
  /** A host directory dom0 sees read-only at /xenos (over 9p): the repository, to run Xenos there. */
  share?: string;
  /** Free space on the test disk beyond its files, for what the test writes (a sparse file here). Default 64. */
  spareMiB?: number;
}

export interface XenHostRun {
  /** dom0's exit status (run.sh's), or undefined when QEMU ended otherwise (a crash, the time limit). */
  status?: number;
  /** The `XENOS-TEST:` lines, the prefix cut off. */
  said: string[];
  /** The whole console (Xen, dom0's kernel, the test). */
  console: string;
  /** Seconds from QEMU's start to each line said, same order as `said`. */
  at: number[];
}

/** This repository: what a test shares into dom0 (at /xenos) to run Xenos there. */
export const REPO = join(import.meta.dirname, '..', '..', '..');

/** The demo guest's image as dom0 sees it through that share (built here first when missing). */
export async function guestImageInDom0(): Promise<string> {
  const rel = relative(REPO, await guestImageDir());
  if (rel.startsWith('..'))
    throw new Error(`the guest image must be inside the repository to reach dom0 (${rel})`);
  return join('/xenos', rel);
}

/** Boots the host, runs the test, and resolves once QEMU has ended (or was killed at `timeoutMs`). */
export async function runOnXenHost(
  host: XenHostImage,
  test: XenHostTest,
  timeoutMs = 5 * 60_000,
): Promise<XenHostRun> {
  const [run] = await runOnXenHosts(host, [test], timeoutMs);
  return run;
}

/** How long a test may wait for another test's Xen hosts to end before booting its own: one run at a time
 *  (each boots Xen under TCG with two vCPUs; three at once on a 2-core machine starve each other until
 *  guests miss their grace periods and builds time out). Test timeouts add it. It must outlast the holders
 *  a test can queue behind — the two-host test (up to 28 min) and the dom0 suite (up to 30): at 25 min, a
 *  CI run where the two-host test took 25.5 min failed the single-host test waiting behind it. */
export const XEN_RUN_WAIT_MS = 60 * 60_000;

/** The network two or more test hosts share: each dom0 has an `eth0` on it (QEMU's UDP socket network,
 *  one link per pair of hosts here: two hosts). */
export const HOSTS_NETWORK = '10.99.0.0/24';

/**
 * Boots one Xen host per test at once, each running its own test. With two, they share a network (each
 * dom0's eth0, addresses for the test to give) and a writable directory at /exchange (9p) through which
 * they tell each other what they must (a listen address, a cluster key). Resolves when all have ended.
 */
export async function runOnXenHosts(
  host: XenHostImage,
  tests: XenHostTest[],
  timeoutMs = 5 * 60_000,
): Promise<XenHostRun[]> {
  if (tests.length > 2) throw new Error('runOnXenHosts joins two hosts at most');
  const lock = await acquireBuildLock(`${host.dir}.run.lock`, XEN_RUN_WAIT_MS, () =>
    console.log("xen-host: waiting for another test's Xen hosts to end (one run at a time)"),
  );
  const work = mkdtempSync(join(tmpdir(), 'xenos-xen-test-'));
  try {
    const exchange = join(work, 'exchange');
    mkdirSync(exchange);
    const ports = tests.length === 2 ? await freeUdpPorts(2) : [];
    return await Promise.all(
      tests.map((test, i) => {
        const disk = testDisk(join(work, `host-${i}`), test);
        const net: string[] =
          tests.length === 2
            ? [
                ...[
                  '-netdev',
                  `socket,id=hosts,udp=127.0.0.1:${ports[1 - i]},localaddr=127.0.0.1:${ports[i]}`,
                ],
                ...['-device', `virtio-net-pci,netdev=hosts,mac=52:54:00:99:00:0${i + 1}`],
                ...['-virtfs', `local,path=${exchange},mount_tag=exchange,security_model=none`],
              ]
            : [];
        // XENOS_TEST_XEN_CONSOLE=FILE: each console as it comes (FILE.a, FILE.b for two), to watch a long run.
        const tee = process.env.XENOS_TEST_XEN_CONSOLE;
        const teeFile = tee && tests.length > 1 ? `${tee}.${'ab'[i]}` : tee;
        return boot(host, disk, test.share, timeoutMs, net, teeFile);
      }),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
    lock.release();
  }
}

/** Two UDP ports free on loopback now. */
async function freeUdpPorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve) => {
          const s = createSocket('udp4');
          s.bind(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = sockets.map((s) => s.address().port);
  for (const s of sockets) s.close();
  return ports;
}

/** The test's disk (ext4 with run.sh and its files, plus spare room) in `dir`. */
function testDisk(dir: string, test: XenHostTest): string {
  const tree = join(dir, 'test');
  mkdirSync(tree, { recursive: true });
  writeFileSync(join(tree, 'run.sh'), test.script, { mode: 0o755 });
  let bytes = 0;
  for (const [path, source] of Object.entries(test.files ?? {})) {
    const to = join(tree, path);
    mkdirSync(dirname(to), { recursive: true });
    if ('from' in source) copyFileSync(source.from, to);
    else writeFileSync(to, source.text);
    bytes += statSync(to).size;
  }
  const disk = join(dir, 'test.img');
  run('mke2fs', [
    '-q',
    '-t',
    'ext4',
    '-d',
    tree,
    disk,
    `${Math.ceil(bytes / 2 ** 20) + (test.spareMiB ?? 64)}M`,
  ]);
  return disk;
}

function boot(
  host: XenHostImage,
  testDisk: string,
  share: string | undefined,
  timeoutMs: number,
  extra: string[] = [],
  tee?: string,
): Promise<XenHostRun> {
  // Xen on 2 emulated CPUs (SVM + nested paging, so PVH and HVM guests run) with dom0 held to 512 MiB
  // and one vCPU; QEMU's own limits as measured here: -cpu max crashes dom0, and with dom0_max_vcpus=2
  // node in dom0 dies of illegal instructions and segfaults minutes after it starts.
  const args = [
    ...['-accel', 'tcg', '-cpu', 'qemu64,+svm,+npt', '-m', '2048', '-smp', '2'],
    ...['-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio'],
    ...[
      '-kernel',
      host.xen,
      '-append',
      'console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=1',
    ],
    ...['-initrd', `${host.kernel} console=hvc0 earlyprintk=xen panic=-1,${host.initrd}`],
    ...['-drive', `file=${host.rootfs},if=virtio,format=raw,snapshot=on`],
    ...['-drive', `file=${testDisk},if=virtio,format=raw`],
    ...['-device', 'isa-debug-exit,iobase=0xf4,iosize=0x01'],
  ];
  if (share) args.push('-virtfs', `local,path=${share},mount_tag=xenos,security_model=none,readonly=on`);
  args.push(...extra);
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const result: XenHostRun = { said: [], console: '', at: [] };
    if (tee) writeFileSync(tee, '');
    let partial = '';
    qemu.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      result.console += chunk;
      if (tee) appendFileSync(tee, chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = /XENOS-TEST: (.*)$/.exec(line.replaceAll('\r', ''));
        if (!m) continue;
        result.said.push(m[1]);
        result.at.push((performance.now() - began) / 1000);
      }
    });
    qemu.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      result.console += chunk;
    });
    const timer = setTimeout(() => qemu.kill('SIGKILL'), timeoutMs);
    qemu.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    qemu.once('close', (code) => {
      clearTimeout(timer);
      // isa-debug-exit: QEMU exits with (value << 1) | 1; anything else is not dom0's word.
      if (code !== null && code % 2 === 1) result.status = code >> 1;
      resolve(result);
    });
  });
}
