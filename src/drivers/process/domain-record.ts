// The on-disk layout of a process-driver domain and its record, domain.json: the spec, the domain's uid,
// the allocated host ports, and the current run (supervisor pid + its /proc start time, so a recycled pid is
// never adopted). Written atomically (temp file + rename): a coordinator killed mid-write leaves the old
// record intact. The record is 0600 and never holds the instance token (the spec's `token` is dropped
// before writing: it is derived again for every start). Everything but rootfs/ is root-only (0700 dirs),
// and the sandbox shows the domain its rootfs/ and nothing else of this tree.
//
//   <dataDir>/domains/<id>/domain.json
//                          rootfs/            the service's files (its uid's): an overlay mount of the image
//                                             (read-only lower) and layer/upper, or a reflink or plain copy
//                          layer/upper, layer/work   the domain's own overlay layer (its writes), root-only
//                          logs/stdout.log, logs/stderr.log (+ .1 .. .N, rotated by size)
//                          run/exit           exit status written by the supervisor (see supervisor.ts)
//                          run/child.pid      the supervisor's child: bwrap (or the service, unsandboxed)
//                          run/sandbox.json   bwrap's status: the sandbox's pid 1, the exit code
//                          run/bwrap.args     bwrap's options, NUL-separated (read on fd 4: off its cmdline)
//                          run/token          the instance token, 0400, owned by the domain's uid

import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskReport, DomainSpec, IsolationReport, LimitsReport } from '../driver.ts';
import { DOMAIN_ID_PATTERN } from '../driver.ts';
import { InvalidDomainSpecError } from '../errors.ts';

export interface RunRecord {
  /** The supervisor: leader of the domain's session and process group. */
  pid: number;
  /** Field 22 of /proc/<pid>/stat when it was started. */
  startTime: number;
  startedAt: string;
  /** The expanded command and env this run got (exec health checks reuse the env; it holds no secret). */
  command: string[];
  env: Record<string, string>;
  /** The working directory on the host (unsandboxed runs) ... */
  cwd: string;
  /** ... and as the service sees it (inside the sandbox). */
  workDir?: string;
  limits: LimitsReport;
  isolation?: IsolationReport;
  /** Set (and written) before a stop signal is sent: the end is then a stop, not a crash. */
  stopRequestedAt?: string;
  /** Set by the driver when it had to SIGKILL the domain's tree (the supervisor, killed last, may or may
   *  not have written its exit file by then). */
  forcedAt?: string;
}

export interface DomainRecord {
  version: 1;
  spec: DomainSpec;
  /** The digest the rootfs was made from ('' for an image without a digest). */
  preparedDigest: string;
  preparedAt: string;
  /** Host port by port name; kept across runs while still free. */
  ports: Record<string, number>;
  run?: RunRecord;
  /** Runs started after the first. */
  restartCount: number;
  /** The domain's own uid/gid (leased machine-wide) when xenosd runs as root; kept for adoption. */
  identity?: { uid: number; gid: number };
  /** How rootfs/ was made from the image (absent in records older than copy-on-write: a copy). */
  disk?: DiskReport;
}

/** `id`, refused unless it is safe as a path segment (a domain id made by domainIdFor): what every driver
 *  checks before it makes a domain's paths from an id it was given. */
export function checkedDomainId(id: string): string {
  if (!DOMAIN_ID_PATTERN.test(id)) {
    throw new InvalidDomainSpecError(id, `must match ${DOMAIN_ID_PATTERN} (use domainIdFor(instance))`, 'id');
  }
  return id;
}

export class DomainPaths {
  readonly id: string;
  readonly dir: string;

  constructor(domainsDir: string, id: string) {
    this.id = id;
    this.dir = join(domainsDir, id);
  }

  get record(): string {
    return join(this.dir, 'domain.json');
  }
  get rootfs(): string {
    return join(this.dir, 'rootfs');
  }
  /** The domain's own overlay layer (upper and work dirs) when rootfs/ is an overlay mount. */
  get layer(): string {
    return join(this.dir, 'layer');
  }
  get logs(): string {
    return join(this.dir, 'logs');
  }
  get stdout(): string {
    return join(this.dir, 'logs', 'stdout.log');
  }
  get stderr(): string {
    return join(this.dir, 'logs', 'stderr.log');
  }
  get run(): string {
    return join(this.dir, 'run');
  }
  get exitFile(): string {
    return join(this.dir, 'run', 'exit');
  }
  get childPidFile(): string {
    return join(this.dir, 'run', 'child.pid');
  }
  get sandboxStatusFile(): string {
    return join(this.dir, 'run', 'sandbox.json');
  }
  get bwrapArgsFile(): string {
    return join(this.dir, 'run', 'bwrap.args');
  }
  get tokenFile(): string {
    return join(this.dir, 'run', 'token');
  }
}

export async function readRecord(paths: DomainPaths): Promise<DomainRecord | undefined> {
  let text: string;
  try {
    text = await readFile(paths.record, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const rec = JSON.parse(text) as DomainRecord;
  if (rec.version !== 1) throw new Error(`${paths.record}: unknown record version ${String(rec.version)}`);
  return rec;
}

/** The record as `domain.json` holds it: without the token, which is a secret and never stored. */
export function recordText(rec: DomainRecord): string {
  const { token: _secret, ...spec } = rec.spec;
  return `${JSON.stringify({ ...rec, spec }, null, 2)}\n`;
}

export async function writeRecord(paths: DomainPaths, rec: DomainRecord): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const tmp = `${paths.record}.tmp`;
  await rm(tmp, { force: true }); // a leftover from a crash would keep its old mode
  await writeFile(tmp, recordText(rec), { mode: 0o600 });
  await rename(tmp, paths.record);
}

/** The ids of the domains under `domainsDir` (their directories' names). */
export async function domainIdsIn(domainsDir: string): Promise<string[]> {
  const names = await readdir(domainsDir).catch(() => [] as string[]);
  return names.filter((n) => DOMAIN_ID_PATTERN.test(n));
}

/** Every domain's record under `domainsDir`; one that cannot be read is skipped and told to `skipped`. */
export async function readAllRecords(
  domainsDir: string,
  skipped: (id: string, err: Error) => void,
): Promise<DomainRecord[]> {
  const out: DomainRecord[] = [];
  for (const id of await domainIdsIn(domainsDir)) {
    try {
      const rec = await readRecord(new DomainPaths(domainsDir, id));
      if (rec) out.push(rec);
    } catch (err) {
      skipped(id, err as Error);
    }
  }
  return out;
}

/** Reads a small text file, undefined when absent. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}
