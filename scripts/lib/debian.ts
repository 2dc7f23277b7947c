// Debian plumbing for the builders under scripts/ (the demo guest, the offline xl): the host tools they run
// (installed when missing, by the same script as `npm run setup`), the versions apt offers for the packages
// they build from, and downloading and unpacking them. Every command runs with a time limit; a failure says
// which command failed and what it printed.

import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError } from './build-error.ts';

const INSTALL_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'install-packages.sh');

interface RunOptions {
  cwd?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
}

/** Runs a command and returns its stdout; throws BuildError naming it, with its stderr, if it fails. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): string {
  return execute(cmd, args, opts).toString('utf8');
}

/** run(), for a command whose output is bytes (an archive). */
export function runBytes(cmd: string, args: string[], opts: RunOptions = {}): Buffer {
  return execute(cmd, args, opts);
}

function execute(cmd: string, args: string[], opts: RunOptions): Buffer {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  try {
    return execFileSync(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      input: opts.input,
      timeout: timeoutMs,
      maxBuffer: 256 * 1024 * 1024,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: Buffer; code?: string; signal?: string; message: string };
    const why =
      e.code === 'ENOENT'
        ? 'not installed'
        : e.signal
          ? `killed by ${e.signal} (time limit ${timeoutMs / 1000} s?)`
          : (e.stderr?.toString('utf8') ?? '').trim() || e.message;
    throw new BuildError(`${cmd} ${args.join(' ')}: ${why}`);
  }
}

/**
 * Makes sure the commands exist, installing the Debian packages that provide them when they do not
 * (`pairs` are `command:package`); with `update`, refreshes apt's package lists first.
 */
export function installHostPackages(pairs: string[], update = false): void {
  try {
    execFileSync('sh', [INSTALL_SCRIPT, ...(update ? ['--update'] : []), ...pairs], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 15 * 60_000,
    });
  } catch {
    throw new BuildError(
      `could not install the host packages this build needs (${pairs.join(' ')}); see the lines above`,
    );
  }
}

/** What apt would install now for each package (its candidate): version and Depends line. */
export interface Candidate {
  version: string;
  depends: string;
}

/** The candidates of `pkgs` in one apt-cache call; packages apt does not know are absent from the map. */
export function candidates(pkgs: string[]): Map<string, Candidate> {
  const found = new Map<string, Candidate>();
  let out: string;
  try {
    out = run('apt-cache', ['show', '--no-all-versions', ...pkgs]);
  } catch {
    return found; // apt-cache fails when any of them is unknown (no package lists yet)
  }
  for (const record of out.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(record)?.[1]?.trim();
    const pkg = field('Package');
    const version = field('Version');
    if (pkg && version && !found.has(pkg)) found.set(pkg, { version, depends: field('Depends') ?? '' });
  }
  return found;
}

/**
 * The candidates of all of `pkgs`, refreshing apt's package lists once when it does not know one of them
 * yet (a fresh machine; `log` says so). Throws naming the ones apt still does not offer, and `need` (who
 * needs them and from where).
 */
export function requireCandidates(
  pkgs: string[],
  need: string,
  log: (line: string) => void,
): Map<string, Candidate> {
  let found = candidates(pkgs);
  if (found.size < pkgs.length) {
    log(
      `apt does not know ${pkgs.filter((p) => !found.has(p)).join(', ')} yet: refreshing its package lists`,
    );
    installHostPackages([], true);
    found = candidates(pkgs);
  }
  const missing = pkgs.filter((p) => !found.has(p));
  if (missing.length > 0) throw new BuildError(`apt offers no ${missing.join(', ')}: ${need}`);
  return found;
}

/** The kernel a `linux-image-<flavour>` meta package depends on (exactly one: `linux-image-6.1.0-N-amd64
 *  (= VERSION)`): its package, version and release (the name under /lib/modules). */
export function kernelOfMeta(meta: Candidate | undefined): {
  package: string;
  version: string;
  release: string;
} {
  const m = /(linux-image-\S+) \(= ([^)]+)\)/.exec(meta?.depends ?? '');
  if (!m)
    throw new BuildError(
      `the kernel meta package depends on no one kernel: ${JSON.stringify(meta?.depends)}`,
    );
  return { package: m[1], version: m[2], release: m[1].replace(/^linux-image-/, '') };
}

/** Downloads PKG=VERSION's .deb into `dir` (no installing, no root needed) and returns its path. */
export function downloadPackage(pkg: string, version: string, dir: string): string {
  run('apt-get', ['download', '-qq', `${pkg}=${version}`], { cwd: dir, timeoutMs: 10 * 60_000 });
  const deb = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new BuildError(`apt-get download ${pkg}=${version} left no .deb in ${dir}`);
  return join(dir, deb);
}

/** Unpacks a .deb's files into `dir` (dpkg-deb -x: no maintainer scripts run, nothing installed). */
export function unpackPackage(deb: string, dir: string): void {
  run('dpkg-deb', ['-x', deb, dir], { timeoutMs: 5 * 60_000 });
}
