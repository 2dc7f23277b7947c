// What every xenosctl command needs: where to write, the resolved settings (server, token,
// namespace), an API client and a kind resolver, all built lazily from the global options so that
// `--help` and `kubeconfig --server ...` never touch the network or a config file they don't need.

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { XenosClient } from '../client/client.ts';
import { type GlobalFlags, resolveSettings, type Settings } from './config.ts';
import { CliError } from './errors.ts';
import { loadLocalKinds } from './local-kinds.ts';
import { KindResolver } from './resources.ts';

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CliError(`cannot read the certificate authority file ${file}: ${(err as Error).message}`);
  }
}

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** All of standard input, for `-f -`. */
  readStdin: () => Promise<string>;
  /** Standard error is a terminal: progress is drawn as a bar redrawn in place (else plain lines). */
  stderrTTY?: boolean;
  /** The terminal's width, for progress bars. */
  columns?: number;
  /** The terminal's height: a display redrawn in place must fit in it. */
  rows?: number;
}

export const VERSION_STRING = '0.1.0';

export class CommandContext {
  readonly io: Io;
  /** Aborted on SIGINT / when the command ends: every request and watch listens to it. */
  readonly signal: AbortSignal;
  private readonly program: Command;
  private cachedSettings?: Settings;
  private cachedClient?: XenosClient;
  private cachedResolver?: KindResolver;

  constructor(components: { io: Io; program: Command; signal: AbortSignal }) {
    this.io = components.io;
    this.program = components.program;
    this.signal = components.signal;
  }

  flags(): GlobalFlags & { allNamespaces?: boolean } {
    return this.program.opts();
  }

  settings(): Settings {
    this.cachedSettings ??= resolveSettings(this.flags(), this.io.env, this.io.cwd);
    return this.cachedSettings;
  }

  /** True when -n was given (or XENOS_NAMESPACE), so a manifest's other namespace is an error. */
  namespaceExplicit(): boolean {
    return Boolean(this.flags().namespace);
  }

  client(): XenosClient {
    this.cachedClient ??= this.clientFor(this.settings().server);
    return this.cachedClient;
  }

  /** A client of another host's API (`server`), with the same token and CA; the caller closes it. */
  clientFor(server: string): XenosClient {
    const s = this.settings();
    return new XenosClient({
      server,
      token: s.token,
      userAgent: `xenosctl/${VERSION_STRING}`,
      ca: s.caFile ? readCa(s.caFile) : undefined,
    });
  }

  resolver(): KindResolver {
    this.cachedResolver ??= new KindResolver({ client: this.client(), localKinds: loadLocalKinds });
    return this.cachedResolver;
  }

  /** A resolver that never asks the server (client-side dry runs). */
  offlineResolver(): KindResolver {
    return new KindResolver({ client: this.client(), localKinds: loadLocalKinds }, { offline: true });
  }

  /** Ends keep-alive connections so the process can exit. */
  close(): void {
    this.cachedClient?.close();
  }

  out(text: string): void {
    this.io.stdout(text);
  }

  err(text: string): void {
    this.io.stderr(text);
  }
}
