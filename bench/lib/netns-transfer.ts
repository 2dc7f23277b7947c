// Moving bytes between network namespaces for bench/distribution: rate caps with `tc` on both ends of a
// host's link (its upload on its own eth0, its download on its port of the switch's bridge), and the
// one-source copy — the seed serves the file over plain HTTP and every other host fetches it at once,
// the way the paper's hosts copied a template from one place. Clients start first and wait on a barrier,
// so process start-up is not timed: the clock runs from the "go" to the last byte the last host holds.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { NetnsHost, NetnsLab } from '../../test/cluster/netns.ts';

/** `tc` caps: `rate` in bits per second on both directions of each host's link. */
export async function capLinks(lab: NetnsLab, hosts: NetnsHost[], rates: number[]): Promise<void> {
  for (const [i, h] of hosts.entries()) {
    const rate = `${Math.round(rates[i])}bit`;
    // A token bucket big enough for the rate at 250 Hz timers, a queue of at most 50 ms at that rate.
    const burst = `${Math.max(32 * 1024, Math.ceil(rates[i] / 8 / 100))}b`;
    const tbf = ['root', 'tbf', 'rate', rate, 'burst', burst, 'latency', '50ms'];
    await lab.exec(h.ns, 'tc', ['qdisc', 'replace', 'dev', 'eth0', ...tbf]);
    await lab.exec(lab.switchNs, 'tc', ['qdisc', 'replace', 'dev', h.switchPort, ...tbf]);
  }
}

/** Serves the file argv[1] on argv[2]:argv[3] to every GET, whole; prints "listening". */
const SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const [file, host, port] = process.argv.slice(1);
const size = fs.statSync(file).size;
http.createServer((req, res) => {
  res.writeHead(200, { 'content-length': size });
  fs.createReadStream(file).pipe(res);
}).listen(Number(port), host, () => process.stdout.write('listening\\n'));
`;

/** Prints "ready", waits for a line on stdin, GETs argv[1], counts and hashes the body; prints
 *  "<done ms since epoch> <bytes> <sha256>". */
const CLIENT = `
const http = require('node:http');
const crypto = require('node:crypto');
process.stdout.write('ready\\n');
process.stdin.once('data', () => {
  http.get(process.argv[1], (res) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    res.on('data', (d) => { bytes += d.length; hash.update(d); });
    res.on('end', () => {
      process.stdout.write(Date.now() + ' ' + bytes + ' ' + hash.digest('hex') + '\\n');
      process.exit(0);
    });
  }).on('error', (e) => { console.error(e.message); process.exit(1); });
});
`;

function lines(child: ChildProcess): { text: () => string } {
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  return { text: () => out };
}

async function until(ok: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The one-source copy: `seed` serves `file`, every host of `to` fetches it at once. Returns the seconds
 * from the start to when the last host held all of it; throws if any host got other bytes than `sha256`.
 */
export async function oneSourceCopy(
  lab: NetnsLab,
  seed: NetnsHost,
  to: NetnsHost[],
  file: string,
  sha256: string,
  timeoutMs: number,
): Promise<number> {
  const port = 18_080;
  const server = lab.spawn(seed.ns, process.execPath, ['-e', SERVER, file, seed.address, String(port)]);
  const serverOut = lines(server);
  const clients: ChildProcess[] = [];
  try {
    await until(
      () => serverOut.text().includes('listening'),
      `the seed's HTTP server (${serverOut.text()})`,
      15_000,
    );
    const outs = to.map((h) => {
      // Its stdin is the barrier (lab.spawn gives none).
      const c = spawn(
        'ip',
        ['netns', 'exec', h.ns, process.execPath, '-e', CLIENT, `http://${seed.address}:${port}/`],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      clients.push(c);
      return lines(c);
    });
    await until(() => outs.every((o) => o.text().includes('ready')), 'the clients to start', 30_000);
    const start = Date.now();
    for (const c of clients) c.stdin?.write('go\n');
    await until(
      () => outs.every((o) => /^\d+ \d+ [0-9a-f]{64}$/m.test(o.text())),
      'every host to hold the file',
      timeoutMs,
    );
    let last = start;
    for (const [i, o] of outs.entries()) {
      const [done, , hash] = /^(\d+) (\d+) ([0-9a-f]{64})$/m.exec(o.text())!.slice(1);
      if (hash !== sha256) throw new Error(`${to[i].ns} received other bytes than the seed's (${hash})`);
      last = Math.max(last, Number(done));
    }
    return (last - start) / 1000;
  } finally {
    for (const c of [server, ...clients]) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit').catch(() => {});
      }
    }
  }
}
