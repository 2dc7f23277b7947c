// A self-signed TLS certificate for the API, made once in the data dir with the `openssl` command
// (Node has no X.509 writer, and no npm library for it is installed). kubectl only sends bearer
// tokens over TLS, so a host that talks to kubectl needs HTTPS even on loopback.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateError';
  }
}

/** DATA_DIR/tls.crt and tls.key, created on first use; valid for localhost, 127.0.0.1, ::1,
 *  the host name and the API host. */
export async function ensureSelfSignedCert(
  dataDir: string,
  names: string[],
  opts: { signal?: AbortSignal } = {},
): Promise<{ cert: string; key: string }> {
  const cert = join(dataDir, 'tls.crt');
  const key = join(dataDir, 'tls.key');
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  const sans = new Set(['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
  for (const n of names) if (n && n !== '0.0.0.0' && n !== '::') sans.add(isIP(n) ? `IP:${n}` : `DNS:${n}`);
  try {
    await run(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        `/CN=${names[0] ?? 'xenosd'}`,
        '-addext',
        `subjectAltName=${[...sans].join(',')}`,
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { signal: opts.signal, timeout: 30_000 },
    );
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new CertificateError(
        'cannot make a self-signed certificate: the openssl command is not installed; install it or pass --tls-cert and --tls-key',
      );
    }
    throw new CertificateError(
      `openssl could not make a self-signed certificate in ${dataDir}: ${(e.stderr ?? e.message).trim()}`,
    );
  }
  return { cert, key };
}
