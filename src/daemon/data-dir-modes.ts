// The data dir holds the admin token, the token hashes, the key that signs instance tokens, this host's
// p2p identity and often the cluster key and the TLS key: xenosd makes it private at every start. The
// directory becomes 0700 and each secret file in it 0600 (only the user xenosd runs as can read them), with
// a log line for each thing that had to change, so an operator learns that a copy, an untar or a umask
// had left them open. Secrets kept outside the data dir (a --cluster-key or --tls-key elsewhere) are the
// operator's to place: xenosd does not change them, it warns when others can read them.

import { chmodSync, lstatSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Log } from '../log/logger.ts';
import { ADMIN_TOKEN_FILE } from '../model/data-dir.ts';
import { DataDirModeError } from './errors.ts';

/** The secret files xenosd writes into its data dir. */
export const DATA_DIR_SECRETS = [
  ADMIN_TOKEN_FILE,
  'tokens.json',
  'instance-token.key',
  'p2p.key',
  'tls.key',
] as const;

const DIR_MODE = 0o700;
const SECRET_MODE = 0o600;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function inside(dir: string, file: string): boolean {
  const rel = relative(resolve(dir), resolve(file));
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

function tighten(path: string, mode: number, what: string, log: Log): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  // Only what xenosd itself made: a directory, regular files. A symlink is not followed (chmod would
  // change whatever it points to).
  if (!st || !(st.isDirectory() || st.isFile())) return;
  if ((st.mode & 0o777) === mode) return;
  try {
    chmodSync(path, mode);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DataDirModeError(
      `cannot make ${what} ${path} private (mode ${octal(st.mode)}, want ${octal(mode)}): ${
        e.code === 'EPERM' ? `it belongs to uid ${st.uid}; chown it to the user xenosd runs as` : e.message
      }`,
    );
  }
  log.info({ path }, `${what} ${path} had mode ${octal(st.mode)}; set it to ${octal(mode)}`);
}

/**
 * Makes `dataDir` 0700 and its secret files 0600 (logging each change); `extraSecrets` are more secret
 * files (the cluster key, the TLS key): tightened when they are inside the data dir, warned about when
 * they are elsewhere and readable by others. Throws DataDirModeError when a mode cannot be changed.
 */
export function secureDataDir(dataDir: string, opts: { extraSecrets?: string[]; log: Log }): void {
  tighten(dataDir, DIR_MODE, 'data dir', opts.log);
  for (const name of DATA_DIR_SECRETS) tighten(join(dataDir, name), SECRET_MODE, 'secret', opts.log);
  for (const file of opts.extraSecrets ?? []) {
    if (inside(dataDir, file)) {
      tighten(file, SECRET_MODE, 'secret', opts.log);
      continue;
    }
    const st = statSync(file, { throwIfNoEntry: false });
    if (st && (st.mode & 0o077) !== 0) {
      opts.log.warn(
        { path: file },
        `secret ${file} has mode ${octal(st.mode)}: other users can read it; chmod 600 it (xenosd changes modes only inside its data dir)`,
      );
    }
  }
}
