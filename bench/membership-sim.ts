// Benchmark of host membership at sizes this machine cannot run as processes: the SWIM protocol xenosd
// uses (src/p2p/membership, the real code with real keys, signatures and encoded messages, on virtual time
// over an in-memory network with a loss rate) against the two alternatives, modelled (bench/lib/
// membership-models.ts): replicated heartbeat rows, as xenosd did before, and heartbeats on gossipsub.
// For each size: traffic sent per host per second (idle, and while a death spreads), detection of a
// killed host (first suspicion, first and last host to declare it dead), false deaths, and how each
// grows from the smallest size to the largest. Bounds: every live host declares the dead one dead within
// --host-timeout + 1 s; SWIM's traffic is shown as a ratio of the heartbeat rows' (the baseline).
//
//   node bench/membership-sim.ts [sizes=100,1000] [--loss 0.01] [--kills 5] [--host-timeout 15s]
//        [--row-bytes 1900] [--row-overhead 1] [--gossip-bytes 260]
//
// --row-bytes: a Host row as replicated (a one-host xenosd's Host object is 1,287 bytes of JSON; with
// p2p addresses, peer id, the row's versions and its two Ed25519 proofs ≈ 1.9 KB). --row-overhead: rows
// sent per write over the N−1 needed (1 = ideal; 6.2 measured at 30 hosts before this change).
// --gossip-bytes: one heartbeat as gossipsub sends it, from bench/membership-gossipsub.ts.

import { loadavg } from 'node:os';
import { durationMs, flag, positionalArgs } from './lib/args.ts';
import { printFigure } from './lib/figures.ts';
import { gossipsubModel, heartbeatRowsModel, type ModelResult } from './lib/membership-models.ts';
import { summarise } from './lib/stats.ts';
import { runSwimSim, type SwimSimResult } from './lib/swim-sim.ts';

const positional = positionalArgs();
const sizes = (positional[0] ?? '100,1000').split(',').map(Number);
const loss = Number(flag('--loss', '0.01'));
const kills = Number(flag('--kills', '5'));
const tau = durationMs(flag('--host-timeout', '15s'), 'membership-sim');
const rowBytes = Number(flag('--row-bytes', '1900'));
const rowOverhead = Number(flag('--row-overhead', '1'));
const gossipBytes = Number(flag('--gossip-bytes', '260'));
const heartbeatMs = Math.min(3000, Math.max(100, Math.round(tau / 5)));
const bench = 'membership-sim';
const load = () => loadavg()[0].toFixed(1);

interface Row {
  hosts: number;
  swim: SwimSimResult;
  rows: ModelResult;
  gossip: ModelResult;
}

const results: Row[] = [];
for (const hosts of sizes) {
  const before = load();
  const swim = await runSwimSim({ hosts, loss, kills, hostTimeoutMs: tau });
  const rows = heartbeatRowsModel({
    hosts,
    hostTimeoutMs: tau,
    intervalMs: heartbeatMs,
    rowBytes,
    overhead: rowOverhead,
  });
  const gossip = gossipsubModel({
    hosts,
    hostTimeoutMs: tau,
    intervalMs: heartbeatMs,
    messageBytes: gossipBytes,
    connected: Math.min(hosts - 1, 300),
  });
  results.push({ hosts, swim, rows, gossip });
  const note = `loss ${loss * 100}%, ${kills} kills, τ ${tau / 1000} s; load ${before} -> ${load()}; ${(swim.realMs / 1000).toFixed(0)} s real`;
  const all = summarise(swim.kills.map((k) => k.allDeadMs));
  const first = summarise(swim.kills.map((k) => k.firstDeadMs));
  const suspect = summarise(swim.kills.map((k) => k.firstSuspectMs));
  console.log(
    `\n${hosts} hosts (SWIM simulated on virtual time; alternatives modelled; heartbeat every ${heartbeatMs} ms)`,
  );
  const w = 52;
  printFigure(
    {
      bench,
      name: `${hosts} hosts SWIM dead at every host (max)`,
      value: all.max,
      unit: 'ms',
      bound: tau + 1000,
      note,
    },
    w,
  );
  printFigure(
    {
      bench,
      name: `${hosts} hosts SWIM dead at the first host (p50)`,
      value: first.p50,
      unit: 'ms',
      bound: tau + 1000,
      note: `first suspicion p50 ${suspect.p50.toFixed(0)} ms`,
    },
    w,
  );
  printFigure(
    {
      bench,
      name: `${hosts} hosts heartbeat rows: dead at every host (p99)`,
      value: summarise(rows.detection.all).p99,
      unit: 'ms',
      bound: tau + 1000,
      note: 'model: τ minus the last heartbeat’s age',
    },
    w,
  );
  printFigure(
    {
      bench,
      name: `${hosts} hosts SWIM sent per host, idle`,
      value: swim.idle.messages,
      unit: 'msgs/s',
      bound: Math.round(rows.messages),
      note: `${swim.idle.bytes.toFixed(0)} B/s, ${swim.idleWakeups.toFixed(1)} wake-ups/s; bound = heartbeat rows (${rows.bytes.toFixed(0)} B/s)`,
    },
    w,
  );
  printFigure(
    {
      bench,
      name: `${hosts} hosts SWIM bytes per host, idle`,
      value: swim.idle.bytes,
      unit: 'B/s',
      bound: Math.round(rows.bytes),
      note: 'bound = heartbeat rows',
    },
    w,
  );
  printFigure(
    {
      bench,
      name: `${hosts} hosts SWIM sent per host, a death spreading`,
      value: swim.busy.messages,
      unit: 'msgs/s',
      bound: Math.round(rows.messages),
      note: `${swim.busy.bytes.toFixed(0)} B/s`,
    },
    w,
  );
  printFigure(
    {
      bench,
      name: `${hosts} hosts gossipsub heartbeats sent per host`,
      value: gossip.messages,
      unit: 'msgs/s',
      bound: Math.round(rows.messages),
      note: `${gossip.bytes.toFixed(0)} B/s (model)`,
    },
    w,
  );
  printFigure(
    {
      bench,
      name: `${hosts} hosts SWIM live hosts declared dead`,
      value: swim.falseDeaths,
      unit: 'hosts',
      note: `must be 0; ${swim.refutations} suspicions refuted in all; joined in ${(swim.joinMs / 1000).toFixed(0)} s (virtual)`,
    },
    w,
  );
}

if (results.length >= 2) {
  const a = results[0];
  const b = results[results.length - 1];
  const grow = (x: number, y: number) => (y / x).toFixed(2);
  console.log(
    `\ngrowth from ${a.hosts} to ${b.hosts} hosts (×${b.hosts / a.hosts} hosts), traffic per host per second:`,
  );
  console.log(
    `  SWIM idle            msgs ×${grow(a.swim.idle.messages, b.swim.idle.messages)}, bytes ×${grow(a.swim.idle.bytes, b.swim.idle.bytes)}`,
  );
  console.log(
    `  SWIM, death spreading msgs ×${grow(a.swim.busy.messages, b.swim.busy.messages)}, bytes ×${grow(a.swim.busy.bytes, b.swim.busy.bytes)}`,
  );
  console.log(
    `  heartbeat rows       msgs ×${grow(a.rows.messages, b.rows.messages)}, bytes ×${grow(a.rows.bytes, b.rows.bytes)}`,
  );
  console.log(
    `  gossipsub heartbeats msgs ×${grow(a.gossip.messages, b.gossip.messages)}, bytes ×${grow(a.gossip.bytes, b.gossip.bytes)}`,
  );
  const detect = (r: Row) => Math.max(...r.swim.kills.map((k) => k.allDeadMs));
  console.log(`  SWIM dead everywhere (max) ${detect(a).toFixed(0)} ms -> ${detect(b).toFixed(0)} ms`);
  printFigure(
    {
      bench,
      name: `SWIM idle traffic growth ${a.hosts} -> ${b.hosts} hosts`,
      value: b.swim.idle.bytes / a.swim.idle.bytes,
      unit: 'x',
      bound: b.rows.bytes / a.rows.bytes,
      note: 'bound = the heartbeat rows’ growth',
    },
    52,
  );
}
