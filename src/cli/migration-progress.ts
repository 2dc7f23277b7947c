// How xenosctl shows ServiceMigrations while it waits on them (drain shows one per instance): each as one
// line — phase, target, mode, stage, percent and bytes while it runs; time, pause and bytes once it
// succeeded; the reason once it failed. On a terminal (stderr) the lines are redrawn in place; elsewhere
// (a log, CI) a line is printed only when a migration's phase, stage or target changes, never control
// characters.

import type { Condition } from '../model/object.ts';
import type { ServiceMigration } from '../model/service-migration.ts';
import type { Io } from './context.ts';
import { formatBytes } from './progress-bar.ts';

/** The condition the migration controller keeps (True once the instance moved). */
const MIGRATED = 'Migrated';

export function isFinished(m: ServiceMigration): boolean {
  return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed';
}

/** Why a migration is where it is (its Migrated condition): `NoTarget: no host can take ...`. */
export function migrationReason(m: ServiceMigration): string | undefined {
  const c = (m.status?.conditions as Condition[] | undefined)?.find((x) => x.type === MIGRATED);
  return c ? `${c.reason}${c.message ? `: ${c.message}` : ''}` : undefined;
}

function seconds(fromIso?: string, toIso?: string): string | undefined {
  const ms = Date.parse(toIso ?? '') - Date.parse(fromIso ?? '');
  return Number.isFinite(ms) && ms >= 0 ? `${(ms / 1000).toFixed(1)} s` : undefined;
}

/** One line for people: `Running → host-2 (Cold)  files  45%  1.2 MiB/2.6 MiB`. */
export function migrationLine(m: ServiceMigration): string {
  const s = m.status ?? {};
  const to = s.targetHost ?? m.spec?.targetHost;
  const where = to ? ` → ${to}` : '';
  switch (s.phase) {
    case 'Succeeded': {
      const facts = [
        s.mode,
        seconds(s.startedAt, s.completedAt),
        s.downtimeMs !== undefined && s.mode === 'Live' ? `paused ${s.downtimeMs} ms` : undefined,
        s.bytesTransferred !== undefined ? formatBytes(s.bytesTransferred) : undefined,
      ].filter(Boolean);
      return `Succeeded${where}${facts.length ? ` (${facts.join(', ')})` : ''}`;
    }
    case 'Failed':
      return `Failed: ${migrationReason(m) ?? 'no reason given'}`;
    case 'Running': {
      const p = s.progress;
      const parts = [`Running${where}${s.mode ? ` (${s.mode})` : ''}`];
      if (p) {
        parts.push(p.stage);
        if (p.percent !== undefined) parts.push(`${p.percent}%`);
        parts.push(p.total ? `${formatBytes(p.bytes)}/${formatBytes(p.total)}` : formatBytes(p.bytes));
        if (p.dirtyRateBytesPerSecond) parts.push(`dirtying ${formatBytes(p.dirtyRateBytesPerSecond)}/s`);
      }
      return parts.join('  ');
    }
    default: {
      const why = migrationReason(m);
      return `Pending${where}${why ? ` (${why})` : ''}`;
    }
  }
}

/** What, when it changes, earns a new plain line. */
function milestone(m: ServiceMigration): string {
  const s = m.status ?? {};
  return [s.phase ?? 'Pending', s.targetHost ?? '', s.progress?.stage ?? ''].join('|');
}

/** The lines of several migrations, each under a label (the instance it moves), kept up to date on stderr. */
export class MigrationBoard {
  readonly #io: Io;
  readonly #labels: string[];
  readonly #width: number;
  readonly #lines = new Map<string, string>();
  readonly #milestones = new Map<string, string>();
  #drawn = 0;

  constructor(io: Io, labels: string[]) {
    this.#io = io;
    this.#labels = labels;
    this.#width = Math.max(0, ...labels.map((l) => l.length));
  }

  /** Shows `m` as the state of the migration labelled `label`. */
  update(label: string, m: ServiceMigration): void {
    this.set(label, migrationLine(m), milestone(m));
  }

  /** Shows a line of text for `label` (a migration that could not even be created, say). */
  set(label: string, line: string, mark = line): void {
    this.#lines.set(label, line);
    if (this.#io.stderrTTY) {
      this.#draw();
      return;
    }
    if (this.#milestones.get(label) === mark) return;
    this.#milestones.set(label, mark);
    this.#io.stderr(`${label.padEnd(this.#width)}  ${line}\n`);
  }

  /** Redraws every line in place: back to the first line drawn, then each line cleared and rewritten. */
  #draw(): void {
    const columns = this.#io.columns ?? 80;
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}F` : '';
    for (const label of this.#labels) {
      const line = `${label.padEnd(this.#width)}  ${this.#lines.get(label) ?? 'Pending'}`;
      // Never wider than the terminal: a wrapped line would throw the redraw off by a row.
      text += `\x1b[2K${line.length >= columns ? `${line.slice(0, columns - 2)}…` : line}\n`;
    }
    this.#drawn = this.#labels.length;
    this.#io.stderr(text);
  }
}
