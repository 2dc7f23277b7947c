// Xen's own `xl`, runnable here without Xen: the tests check every domain config the Xen driver writes
// with xl's real parser (`xl create -n CFG` prints the domain xl would create as JSON, or xl's own
// error). `xl` refuses to run without a hypervisor, even for a dry run, so a small preloaded library
// (xl-offline-shim.c beside this file) answers the few calls that would reach one.
//
// ensureOfflineXl() builds it into build/xl-offline (or $XENOS_XL_DIR) when missing or stale: Debian's
// xen-utils-4.17 and the libraries it loads, downloaded and unpacked (nothing is installed: installing
// xen-utils would pull udev and upgrade systemd), and the shim compiled against libxen-dev's headers. It
// installs what it lacks itself (apt, dpkg, gcc). The cache key is the packages' versions, the shim and
// this file; one build at a time per directory (the build lock).

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildError } from '../lib/build-error.ts';
import { acquireBuildLock } from '../lib/build-lock.ts';
import {
  downloadPackage,
  installHostPackages,
  requireCandidates,
  run,
  unpackPackage,
} from '../lib/debian.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const SHIM_SOURCE = join(HERE, 'xl-offline-shim.c');
/** xl and every library it loads that a Debian base lacks; each was found needed by leaving it out. */
const RUNTIME_PACKAGES = [
  'xen-utils-4.17',
  'libxenmisc4.17',
  'libxentoollog1',
  'libyajl2',
  'libxenevtchn1',
  'libxenstore4',
  'libxenhypfs1',
  'libxentoolcore1',
  'libxencall1',
  'libxengnttab1',
  'libxenforeignmemory1',
  'libxendevicemodel1',
];
/** The headers the shim is compiled against. */
const HEADERS_PACKAGE = 'libxen-dev';
const HOST_TOOLS = ['apt-get:apt', 'dpkg-deb:dpkg', 'gcc:gcc'];
const INFO_FILE = 'xl-offline.json';

export interface OfflineXl {
  /** The real xl binary. */
  xl: string;
  /** The environment it runs in: its libraries and the shim. */
  env: { LD_LIBRARY_PATH: string; LD_PRELOAD: string };
  /** `xen-utils-4.17 <version>`. */
  version: string;
}

/** Where it is built: $XENOS_XL_DIR, else build/xl-offline in the repository. */
export function defaultOfflineXlDir(): string {
  return process.env.XENOS_XL_DIR ?? join(HERE, '..', '..', 'build', 'xl-offline');
}

function layout(dir: string, version: string): OfflineXl {
  return {
    xl: join(dir, 'rt', 'usr', 'lib', 'xen-4.17', 'bin', 'xl'),
    env: {
      LD_LIBRARY_PATH: join(dir, 'rt', 'usr', 'lib', 'x86_64-linux-gnu'),
      LD_PRELOAD: join(dir, 'libxlshim.so'),
    },
    version,
  };
}

/** The offline xl in `dir`, built first when missing or stale. */
export async function ensureOfflineXl(
  options: { dir?: string; log?: (line: string) => void } = {},
): Promise<OfflineXl> {
  const dir = options.dir ?? defaultOfflineXlDir();
  const log = options.log ?? (() => {});
  mkdirSync(dir, { recursive: true });
  const lock = await acquireBuildLock(`${dir}.lock`, 10 * 60_000, () =>
    log(`xl-offline: waiting for another build of ${dir}`),
  );
  try {
    installHostPackages(HOST_TOOLS);
    const need = "the offline xl needs Debian 12's main archive";
    const versions = requireCandidates([...RUNTIME_PACKAGES, HEADERS_PACKAGE], need, (l) =>
      log(`xl-offline: ${l}`),
    );
    const version = `xen-utils-4.17 ${versions.get('xen-utils-4.17')!.version}`;
    const hash = createHash('sha256');
    for (const p of [...RUNTIME_PACKAGES, HEADERS_PACKAGE]) hash.update(`${p}=${versions.get(p)!.version}\n`);
    hash.update(readFileSync(SHIM_SOURCE));
    hash.update(readFileSync(fileURLToPath(import.meta.url)));
    const key = hash.digest('hex');
    const info = join(dir, INFO_FILE);
    const built = existsSync(info) ? (JSON.parse(readFileSync(info, 'utf8')) as { key?: string }) : {};
    if (built.key === key) return layout(dir, version);

    log(`xl-offline: building ${dir} from ${version}`);
    const work = mkdtempSync(join(dirname(dir), '.xl-offline-'));
    try {
      const debs = join(work, 'debs');
      mkdirSync(debs);
      const rt = join(work, 'rt');
      for (const p of RUNTIME_PACKAGES) unpackPackage(downloadPackage(p, versions.get(p)!.version, debs), rt);
      const dev = join(work, 'dev');
      unpackPackage(downloadPackage(HEADERS_PACKAGE, versions.get(HEADERS_PACKAGE)!.version, debs), dev);
      const shim = join(work, 'libxlshim.so');
      run('gcc', [
        '-shared',
        '-fPIC',
        '-O2',
        '-Wall',
        '-Werror',
        '-I',
        join(dev, 'usr', 'include'),
        '-o',
        shim,
        SHIM_SOURCE,
      ]);
      rmSync(join(dir, 'rt'), { recursive: true, force: true });
      renameSync(rt, join(dir, 'rt'));
      renameSync(shim, join(dir, 'libxlshim.so'));
      writeFileSync(info, `${JSON.stringify({ key, version }, null, 2)}\n`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const result = layout(dir, version);
    // The proof it works: xl parses an empty config and says what is missing, in its own words.
    const said = offlineXlCheck(result);
    if (!said.includes('Domain name must be specified')) {
      throw new BuildError(`the offline xl does not run: ${said.trim()}`);
    }
    return result;
  } finally {
    lock.release();
  }
}

/** What `xl create -n /dev/null` prints (stdout and stderr): xl refusing a config without a name. */
function offlineXlCheck(x: OfflineXl): string {
  try {
    return run(x.xl, ['create', '-n', '/dev/null'], { env: { ...process.env, ...x.env } });
  } catch (err) {
    return (err as Error).message;
  }
}
