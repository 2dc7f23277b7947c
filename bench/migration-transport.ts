// Benchmark: the migration transport (/xenos/migrate/1.0.0 over the cluster's private network + Noise +
// Yamux, two real libp2p nodes on loopback in this process). (1) Throughput of a bulk transfer, against
// the rate of the same bytes through one plain loopback TCP connection in the same run (what the
// encryption and the muxer cost). (2) How late the last bytes arrive behind a busy stream: a marker
// written while the stream is saturated, from the moment its write is accepted to its arrival, against
// what the 256 KiB send cap alone should allow at the measured rate (plus one idle round trip). This is
// what adds to a live migration's pause when its last pages go out; bytes queued below the cap (the
// kernel's socket buffers, the ciphers' pipeline) are what the ratio shows.
//
//   node bench/migration-transport.ts [sizeMiB=256] [samples=20]

import { once } from 'node:events';
import { createServer, connect as netConnect } from 'node:net';
import { loadavg } from 'node:os';
import type { Duplex } from 'node:stream';
import { DEFAULT_MAX_QUEUED_BYTES } from '../src/p2p/stream-duplex.ts';
import { libp2pPair } from '../test/cluster/migration/libp2p-pair.ts';
import { TestNet } from '../test/p2p/cluster.ts';
import { printFigure } from './lib/figures.ts';
import { percentile, sortedCopy } from './lib/stats.ts';
import { until } from './lib/wait.ts';

const BENCH = 'migration-transport';
const sizeMiB = Number(process.argv[2] ?? 256);
const samples = Number(process.argv[3] ?? 20);
const MiB = 1024 * 1024;
const load = () =>
  `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;

/** Writes `bytes` (1 MiB pieces, with backpressure) and ends; resolves when the reader saw them all. */
async function pump(src: Duplex, dst: Duplex, bytes: number): Promise<number> {
  const piece = Buffer.alloc(MiB, 7);
  let got = 0;
  const done = new Promise<void>((resolve) => {
    dst.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes) resolve();
    });
  });
  const t0 = performance.now();
  for (let sent = 0; sent < bytes; sent += MiB) if (!src.write(piece)) await once(src, 'drain');
  await done;
  return (bytes / MiB / (performance.now() - t0)) * 1000;
}

async function tcpRate(bytes: number): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = netConnect((server.address() as { port: number }).port, '127.0.0.1');
  await once(client, 'connect');
  const [socket] = (await accepted) as [Duplex];
  const rate = await pump(client, socket, bytes);
  client.destroy();
  socket.destroy();
  server.close();
  return rate;
}

/** Keeps `src` saturated; every so often writes a 1-byte marker (0xff) and times its arrival. */
async function tailDelays(src: Duplex, dst: Duplex, n: number): Promise<number[]> {
  const delays: number[] = [];
  let waiting: { at: number; resolve: () => void } | undefined;
  dst.on('data', (d: Buffer) => {
    if (waiting && d.includes(0xff)) {
      delays.push(performance.now() - waiting.at);
      waiting.resolve();
      waiting = undefined;
    }
  });
  const filler = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 64; k++) if (!src.write(filler)) await once(src, 'drain'); // 4 MiB: saturated
    const arrived = new Promise<void>((resolve) => {
      src.write(Buffer.from([0xff]), () => {
        waiting = { at: performance.now(), resolve };
      });
    });
    await arrived;
  }
  return delays;
}

async function main(): Promise<void> {
  const net = new TestNet();
  const keyFile = await net.clusterKeyFile();
  const a = await net.startHost({ clusterKeyFile: keyFile });
  const b = await net.startHost({ clusterKeyFile: keyFile, bootstrap: a.node.multiaddrs });
  await until(
    () => a.node.connectedPeers().length > 0 && b.node.connectedPeers().length > 0,
    10_000,
    'the two nodes connected',
  );
  const pair = await libp2pPair(net, [a, b]);
  try {
    const ref = pair.expect();
    const src = await pair.dialer(ref).open('memory', {});
    const it = pair.incoming(ref.uid)[Symbol.asyncIterator]();
    const dst = (await it.next()).value!.stream;
    const tcp = await tcpRate(sizeMiB * MiB);
    const rate = await pump(src, dst, sizeMiB * MiB);
    console.log(`${BENCH}: ${sizeMiB} MiB, ${load()}`);
    printFigure({
      bench: BENCH,
      name: 'bulk throughput',
      value: rate,
      unit: 'MiB/s',
      bound: Math.round(tcp * 25) / 100,
      boundKind: 'min',
      note: `a quarter of plain loopback TCP, ${tcp.toFixed(0)} MiB/s in this run; ${load()}`,
    });
    // One idle round trip: a byte there and its echo back.
    const rt0 = performance.now();
    const echo = once(src, 'data');
    dst.once('data', (d: Buffer) => dst.write(d));
    src.write(Buffer.from([1]));
    await echo;
    const rtt = performance.now() - rt0;
    const delays = sortedCopy(await tailDelays(src, dst, samples));
    const capMs = (DEFAULT_MAX_QUEUED_BYTES / MiB / rate) * 1000;
    printFigure({
      bench: BENCH,
      name: 'last byte behind a busy stream p50',
      value: percentile(delays, 50),
      unit: 'ms',
      bound: Math.round((capMs + rtt) * 100) / 100,
      note: `256 KiB at ${rate.toFixed(0)} MiB/s + one idle round trip (${rtt.toFixed(1)} ms); ${samples} samples; ${load()}`,
    });
    printFigure({
      bench: BENCH,
      name: 'last byte behind a busy stream max',
      value: delays.at(-1)!,
      unit: 'ms',
    });
    src.destroy();
  } finally {
    await pair.stop();
    await net.cleanup();
  }
}

await main();
