// What a driver whose domains are supervised processes (the process driver's services, the QEMU driver's
// guests) keeps on its host: the directory of its domains, the machine's uid and port leases, the sandbox,
// the cgroups, the port book, per-domain locks, the stop and kill timeouts and log rotation — and the
// start, stop and host conditions that go with them. Both drivers hold one, so these live in one place.

import { mkdir } from 'node:fs/promises';
import { type Log, silentLogger } from '../../log/logger.ts';
import type { HostConditionFact } from '../driver.ts';
import { HostLeases } from '../host-leases.ts';
import { KeyedLock } from '../keyed-lock.ts';
import { Sandbox, type SandboxInit, type SandboxStatus } from '../sandbox/sandbox.ts';
import { type CgroupMode, Cgroups } from './cgroup.ts';
import { domainIdsIn } from './domain-record.ts';
import { hostConditionsOf } from './host-conditions.ts';
import { reapAllInterruptedLaunches } from './interrupted-launch.ts';
import { PortBook } from './port-book.ts';
import { DEFAULT_LOG_ROTATION, type LogRotation } from './supervisor.ts';

export interface DomainHostComponents {
  log?: Log;
  /** Machine-wide uid and port leases. Default: the machine's (see host-leases.ts). */
  leases?: HostLeases;
}

/** The options both drivers take for these parts (each driver's Init extends it). */
export interface DomainHostOptions {
  /** The coordinator's data directory. */
  dataDir: string;
  /** The address endpoints are advertised on. Default 127.0.0.1. */
  advertiseAddress?: string;
  /** The cgroup manager, or false to run domains without limits. Default: this data dir's own groups. */
  cgroups?: Cgroups | false;
  /** The sandbox's options, or false to run domains unsandboxed (xenosd --unsafe-no-sandbox). */
  sandbox?: SandboxInit | false;
  /** How long to wait for a killed domain to be gone. Default 5 s. */
  killTimeoutMs?: number;
  /** Size-based rotation of the domains' logs. Default 10 MiB, 3 rotated files kept. */
  logRotation?: LogRotation;
}

export interface DomainHostInit extends DomainHostOptions {
  /** The folder under the data dir that holds the domains (`domains`, `vms`). */
  folder: string;
  /** The driver's default grace between the polite stop and the kill. */
  defaultGraceMs: number;
}

const DEFAULT_KILL_TIMEOUT_MS = 5_000;

export class DomainHost {
  readonly log: Log;
  /** `<dataDir>/<folder>`: one directory per domain under it. */
  readonly dir: string;
  readonly advertiseAddress: string;
  readonly cgroups: Cgroups | undefined;
  readonly leases: HostLeases;
  readonly sandbox: Sandbox | undefined;
  readonly defaultGraceMs: number;
  readonly killTimeoutMs: number;
  readonly rotation: LogRotation;
  readonly ports: PortBook;
  readonly #locks = new KeyedLock();

  constructor(components: DomainHostComponents, init: DomainHostInit) {
    this.log = components.log ?? silentLogger.root;
    this.dir = `${init.dataDir.replace(/\/+$/, '')}/${init.folder}`;
    this.advertiseAddress = init.advertiseAddress ?? '127.0.0.1';
    this.cgroups = init.cgroups === false ? undefined : (init.cgroups ?? Cgroups.forDataDir(init.dataDir));
    this.leases = components.leases ?? new HostLeases();
    this.sandbox = init.sandbox === false ? undefined : new Sandbox({ leases: this.leases }, init.sandbox);
    this.defaultGraceMs = init.defaultGraceMs;
    this.killTimeoutMs = init.killTimeoutMs ?? DEFAULT_KILL_TIMEOUT_MS;
    this.rotation = init.logRotation ?? DEFAULT_LOG_ROTATION;
    this.ports = new PortBook({ leases: this.leases }, { domainsDir: this.dir });
  }

  /** Makes the domains' directory and finishes or undoes launches a killed coordinator left half done. */
  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await reapAllInterruptedLaunches(this.dir, await domainIdsIn(this.dir), {
      timeoutMs: this.killTimeoutMs,
      log: this.log,
    });
  }

  /** Domains outlive the coordinator: only the leases and an empty cgroup subtree go. */
  async stop(): Promise<void> {
    this.leases.close();
    await this.cgroups?.releaseIfEmpty();
  }

  /** The sandbox and cgroup conditions of the Host object, probed now; `whose` names the domains. */
  async conditions(whose?: string): Promise<{ sandbox?: SandboxStatus; facts: HostConditionFact[] }> {
    const sandbox = this.sandbox ? await this.sandbox.probe() : undefined;
    const mode: CgroupMode = this.cgroups
      ? await this.cgroups.detect()
      : { kind: 'none', reason: 'cgroups are turned off in this driver' };
    return { sandbox, facts: hostConditionsOf(this.sandbox, sandbox, mode, whose) };
  }

  /** Runs `fn` alone for domain `id` (prepare, start, stop, destroy and migrations do not interleave). */
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#locks.run(id, fn);
  }
}
