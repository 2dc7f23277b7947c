// The Xen driver's user network (`network.mode: user`, the default): what QEMU's user network gives a
// QEMU guest, built from dom0's own parts. A bridge (xenosbr0) that dom0 holds the gateway address of, a
// fixed address per guest (leased machine-wide, handed out by dnsmasq's DHCP to the guest's MAC and to no
// one else), and the template's ports forwarded from the host's advertised address to the guest's address.
//
// The bridge and dnsmasq belong to the host, not to one xenosd: made when missing, kept when xenosd stops
// (guests keep their addresses and renew their leases while xenosd restarts). dnsmasq reads one file per
// guest from a directory it watches (--dhcp-hostsdir), runs as nobody, serves DHCP on the bridge only and no
// DNS. The port forwards are xenosd's own listeners, made again for running guests when a driver starts:
// while xenosd is down a guest runs but its ports are not reachable from outside dom0 (the guest's address
// on the bridge still is, from dom0). Outbound traffic from guests is not routed anywhere yet.

import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import type { Log } from '../../log/logger.ts';
import type { DomainSpec } from '../driver.ts';
import type { HostLeases } from '../host-leases.ts';

const run = promisify(execFile);

/** Whether `spec`'s guest is on this network (`network.mode: user`, the default). */
export function userNetwork(spec: DomainSpec): boolean {
  return (spec.network?.mode ?? 'user') === 'user';
}

export interface XenNetworkInit {
  /** The bridge. Default xenosbr0. */
  bridge?: string;
  /** The bridge's /24: dom0 takes .1, guests .16 to .254. Default 10.213.0 (10.213.0.0/24). */
  subnet?: string;
  /** Where the host ports listen (the host's advertised address). */
  listenAddress: string;
  /** The directory of dnsmasq's files for this bridge. Default /run/xenos-xen/<bridge>. */
  stateDir?: string;
}

/** One forward: the host port to the guest's port. */
export interface PortForward {
  hostPort: number;
  guestPort: number;
}

const FIRST_GUEST = 16;
/** Locally administered; bridges are per host, never joined, so every host's may carry it. */
const BRIDGE_MAC = '02:58:65:6e:6f:01';
const LAST_GUEST = 254;

export class XenNetwork {
  readonly bridge: string;
  readonly subnet: string;
  private readonly listenAddress: string;
  private readonly stateDir: string;
  private readonly log: Log;
  private readonly leases: HostLeases;
  private readonly listeners = new Map<string, { servers: Server[]; sockets: Set<Socket> }>();
  private ready?: Promise<void>;

  constructor(components: { log: Log; leases: HostLeases }, init: XenNetworkInit) {
    this.log = components.log;
    this.leases = components.leases;
    this.bridge = init.bridge ?? 'xenosbr0';
    this.subnet = init.subnet ?? '10.213.0';
    this.listenAddress = init.listenAddress;
    this.stateDir = init.stateDir ?? `/run/xenos-xen/${this.bridge}`;
  }

  get gateway(): string {
    return `${this.subnet}.1`;
  }

  private get hostsDir(): string {
    return `${this.stateDir}/hosts`;
  }

  private get pidFile(): string {
    return `${this.stateDir}/dnsmasq.pid`;
  }

  /** The bridge with dom0's address, and dnsmasq serving it: made once per driver, when a guest first needs them. */
  ensure(): Promise<void> {
    this.ready ??= this.make().catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async make(): Promise<void> {
    const exists = await run('ip', ['link', 'show', this.bridge]).then(
      () => true,
      () => false,
    );
    if (!exists) await run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    const addrs = (await run('ip', ['-o', '-4', 'addr', 'show', 'dev', this.bridge])).stdout;
    if (!addrs.includes(` ${this.gateway}/`)) {
      await run('ip', ['addr', 'add', `${this.gateway}/24`, 'dev', this.bridge]);
    }
    // The same MAC on every host: a guest moved here keeps its ARP entry for the gateway.
    await run('ip', ['link', 'set', this.bridge, 'address', BRIDGE_MAC]);
    await run('ip', ['link', 'set', this.bridge, 'up']);
    await mkdir(this.hostsDir, { recursive: true, mode: 0o755 });
    if ((await this.dnsmasqPid()) !== undefined) return;
    try {
      await run('dnsmasq', [
        '--conf-file=/dev/null',
        '--port=0',
        `--interface=${this.bridge}`,
        '--bind-interfaces',
        '--except-interface=lo',
        `--dhcp-range=${this.subnet}.0,static,255.255.255.0,1h`,
        `--dhcp-hostsdir=${this.hostsDir}`,
        `--dhcp-option=option:router,${this.gateway}`,
        '--dhcp-authoritative',
        '--leasefile-ro',
        '--user=nobody',
        '--group=nogroup',
        `--pid-file=${this.pidFile}`,
      ]);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const why =
        e.code === 'ENOENT'
          ? 'dnsmasq is not installed (Debian: apt install dnsmasq-base)'
          : (e.stderr || e.message).trim();
      throw new Error(`the Xen user network on ${this.bridge} needs dnsmasq for DHCP: ${why}`, {
        cause: err,
      });
    }
    this.log.info(`xen network: bridge ${this.bridge} ${this.gateway}/24, DHCP by dnsmasq`);
  }

  /** dnsmasq's pid for this bridge, when it runs. */
  private async dnsmasqPid(): Promise<number | undefined> {
    const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
    if (!(pid > 0)) return undefined;
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    return comm.trim() === 'dnsmasq' ? pid : undefined;
  }

  /** The guest's address (leased machine-wide for `owner`, the domain's directory), given to its MAC:
   *  `want` when the guest already has one it keeps (it was moved here), else the lowest free one. */
  async attach(id: string, mac: string, owner: string, want?: string): Promise<string> {
    await this.ensure();
    const n =
      want === undefined
        ? this.leases.takeFromRange('xen-address', FIRST_GUEST, LAST_GUEST, owner)
        : this.takeAddress(want, owner);
    if (n === undefined) {
      throw new Error(`no free address left on ${this.bridge} (${this.subnet}.${FIRST_GUEST}-${LAST_GUEST})`);
    }
    const address = `${this.subnet}.${n}`;
    await writeFile(`${this.hostsDir}/${id}`, `${mac},${address}\n`, { mode: 0o644 });
    return address;
  }

  /** The host number of `address` for `owner`: it must be on this subnet and free here. */
  private takeAddress(address: string, owner: string): number {
    const n = Number(address.slice(this.subnet.length + 1));
    if (!address.startsWith(`${this.subnet}.`) || !(n >= FIRST_GUEST && n <= LAST_GUEST)) {
      throw new Error(`the guest's address ${address} is not on ${this.bridge} here (${this.subnet}.0/24)`);
    }
    if (!this.leases.tryTake('xen-address', n, owner)) {
      throw new Error(`the guest's address ${address} is held by another guest on this host`);
    }
    return n;
  }

  /** The address `owner` holds, if any. */
  addressOf(owner: string): string | undefined {
    const [n] = this.leases.heldBy(owner, 'xen-address');
    return n === undefined ? undefined : `${this.subnet}.${n}`;
  }

  /** The guest is gone: its DHCP entry and lease go, so its address can serve the next guest (dnsmasq
   *  would not offer an address it still holds leased to another MAC). Its address lease on the host goes
   *  with the domain's directory. */
  async detach(id: string, mac: string, owner: string): Promise<void> {
    await this.unforward(id);
    const address = this.addressOf(owner);
    await rm(`${this.hostsDir}/${id}`, { force: true });
    const pid = await this.dnsmasqPid();
    if (!address || pid === undefined) return;
    // dnsmasq drops a removed file's entry only when it reads its host entries again.
    process.kill(pid, 'SIGHUP');
    // DHCPRELEASE on the guest's behalf, as OpenStack's DHCP agent does for a deleted port.
    await run('dhcp_release', [this.bridge, address, mac], { timeout: 10_000 }).catch((err) =>
      this.log.warn(
        `xen network: could not release ${address} of ${id} (dhcp_release, in dnsmasq-utils: ${(err as Error).message}); it is offered again once its lease ends`,
      ),
    );
  }

  /** Listens on each host port and relays every connection to the guest's port. */
  async forward(id: string, address: string, forwards: PortForward[]): Promise<void> {
    if (this.listeners.has(id)) return;
    const relay = { servers: [] as Server[], sockets: new Set<Socket>() };
    this.listeners.set(id, relay);
    try {
      for (const f of forwards) {
        const server = createServer((client) => {
          const upstream = createConnection({ host: address, port: f.guestPort });
          relay.sockets.add(client).add(upstream);
          client.pipe(upstream).pipe(client);
          const end = () => {
            client.destroy();
            upstream.destroy();
            relay.sockets.delete(client);
            relay.sockets.delete(upstream);
          };
          client.on('error', end).on('close', end);
          upstream.on('error', end).on('close', end);
        });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(f.hostPort, this.listenAddress, () => {
            server.off('error', reject);
            resolve();
          });
        });
        relay.servers.push(server);
      }
    } catch (err) {
      await this.unforward(id);
      throw err;
    }
  }

  /** Stops relaying the guest's ports (the guest stopped, or xenosd stops). */
  async unforward(id: string): Promise<void> {
    const relay = this.listeners.get(id);
    if (!relay) return;
    this.listeners.delete(id);
    for (const socket of relay.sockets) socket.destroy();
    await Promise.all(relay.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners.keys()].map((id) => this.unforward(id)));
  }
}
