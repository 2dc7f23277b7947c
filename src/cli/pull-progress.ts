// Image pulls as people see them from xenosctl: the `status.imagePull` a host writes on a template or
// instance while its image is pulled from peers (phase Pulling: bytes, size, holders, updatedAt), or what
// a host's pulls API answers, turned into progress-bar samples (progress-bar.ts) on stderr.

import type { XObject } from '../model/object.ts';
import type { ImagePullStatus } from '../model/service-template.ts';
import type { Io } from './context.ts';
import { ProgressBar, type ProgressSample } from './progress-bar.ts';

export function pullSample(p: ImagePullStatus): ProgressSample {
  const at = p.updatedAt ? Date.parse(p.updatedAt) : Number.NaN;
  return { bytes: p.bytes, size: p.size, holders: p.holders, at: Number.isNaN(at) ? undefined : at };
}

/** A progress bar on stderr: drawn in place on a terminal, a plain line every few seconds otherwise. */
export function progressBar(io: Io, label: string): ProgressBar {
  return new ProgressBar({ write: io.stderr, tty: io.stderrTTY === true, columns: io.columns }, { label });
}

/** Short form of a digest for people: `sha256:` and its first 12 hex digits. */
export function shortDigest(digest: string): string {
  return digest.slice(0, 'sha256:'.length + 12);
}

/** Follows one object while something waits on it: a bar while it says Pulling, ended when it stops. */
export class PullDisplay {
  readonly #io: Io;
  readonly #what: string;
  #bar?: ProgressBar;

  constructor(io: Io, what: string) {
    this.#io = io;
    this.#what = what;
  }

  see(obj: XObject | undefined): void {
    const status = obj?.status as { phase?: string; imagePull?: ImagePullStatus } | undefined;
    const pull = status?.imagePull;
    if (status?.phase === 'Pulling' && pull) {
      this.#bar ??= progressBar(
        this.#io,
        `${this.#what}: pulling ${shortDigest(pull.digest)}${pull.host ? ` on ${pull.host}` : ''}`,
      );
      this.#bar.update(pullSample(pull));
      return;
    }
    this.end();
  }

  /** Ends the bar, if one is shown (the pull is over, or the wait is). */
  end(): void {
    this.#bar?.done();
    this.#bar = undefined;
  }
}
