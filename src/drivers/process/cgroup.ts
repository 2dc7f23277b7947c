// Control groups for process-driver domains: one group per domain under a `xenos` subtree, with the memory
// and CPU limits written into it, so the kernel enforces them and the whole process tree can be killed at
// once (cgroup.kill). Supports a pure cgroup v2 host (/sys/fs/cgroup/cgroup.controllers) and a v1/hybrid
// host (memory and cpu hierarchies under /sys/fs/cgroup/{memory,cpu}, plus the unified hierarchy at
// /sys/fs/cgroup/unified for cgroup.kill when it is mounted). Where neither works (no permission, no
// controllers, a container's read-only cgroupfs), `setup` says why and the domain runs without limits.

import { constants } from 'node:fs';
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DomainResources, LimitsReport } from '../driver.ts';
import { waitUntil } from '../wait-until.ts';

export interface CgroupInit {
  /** Where cgroupfs is mounted; tests may point elsewhere. Default /sys/fs/cgroup. */
  fsRoot?: string;
  /** The subtree under which domain groups are made. Default `xenos`. */
  subtree?: string;
}

export type CgroupMode =
  | { kind: 'v2'; root: string }
  | { kind: 'v1'; memory?: string; cpu?: string; unified?: string }
  | { kind: 'none'; reason: string };

export interface CgroupSetup {
  /** `cgroup.procs` files the supervisor writes its own pid into before starting the command. */
  procsFiles: string[];
  limits: LimitsReport;
}

/** The cgroup period for cpu quota, in microseconds (the kernel's default). */
const CPU_PERIOD_US = 100_000;

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Cgroups {
  private readonly fsRoot: string;
  private readonly subtree: string;
  private mode?: Promise<CgroupMode>;

  constructor(init: CgroupInit = {}) {
    this.fsRoot = init.fsRoot ?? '/sys/fs/cgroup';
    this.subtree = init.subtree ?? 'xenos';
  }

  /** What this host offers; probed once (creating the subtree to prove it is writable). */
  detect(): Promise<CgroupMode> {
    this.mode ??= this.probe();
    return this.mode;
  }

  private async probe(): Promise<CgroupMode> {
    if (process.platform !== 'linux')
      return { kind: 'none', reason: `cgroups need Linux, not ${process.platform}` };
    const v2Controllers = join(this.fsRoot, 'cgroup.controllers');
    if (await exists(v2Controllers)) {
      const controllers = (await readFile(v2Controllers, 'utf8')).trim().split(/\s+/);
      const missing = ['memory', 'cpu'].filter((c) => !controllers.includes(c));
      if (missing.length) {
        return {
          kind: 'none',
          reason: `cgroup v2 at ${this.fsRoot} lacks the ${missing.join(' and ')} controller`,
        };
      }
      const root = join(this.fsRoot, this.subtree);
      try {
        await writeFile(join(this.fsRoot, 'cgroup.subtree_control'), '+memory +cpu');
        await mkdir(root, { recursive: true });
        await access(root, constants.W_OK);
        await writeFile(join(root, 'cgroup.subtree_control'), '+memory +cpu');
      } catch (err) {
        return {
          kind: 'none',
          reason: `cannot enable memory/cpu controllers under ${root}: ${errorText(err)}`,
        };
      }
      return { kind: 'v2', root };
    }
    const mode: CgroupMode = { kind: 'v1' };
    const reasons: string[] = [];
    for (const [key, file] of [
      ['memory', 'memory.limit_in_bytes'],
      ['cpu', 'cpu.cfs_quota_us'],
    ] as const) {
      const hierarchy = join(this.fsRoot, key);
      if (!(await exists(join(hierarchy, file)))) {
        reasons.push(`no cgroup v1 ${key} hierarchy at ${hierarchy}`);
        continue;
      }
      try {
        await mkdir(join(hierarchy, this.subtree), { recursive: true });
        // It may exist already (made by another user): this process must be able to make groups in it.
        await access(join(hierarchy, this.subtree), constants.W_OK);
        mode[key] = join(hierarchy, this.subtree);
      } catch (err) {
        reasons.push(`cannot create ${join(hierarchy, this.subtree)}: ${errorText(err)}`);
      }
    }
    const unified = join(this.fsRoot, 'unified');
    if (await exists(join(unified, 'cgroup.procs'))) {
      try {
        await mkdir(join(unified, this.subtree), { recursive: true });
        await access(join(unified, this.subtree), constants.W_OK);
        mode.unified = join(unified, this.subtree);
      } catch {
        // Only used for cgroup.kill; killing by pid list works without it.
      }
    }
    if (!mode.memory && !mode.cpu)
      return { kind: 'none', reason: reasons.join('; ') || 'no usable cgroup hierarchy' };
    return mode;
  }

  /** Creates the domain's groups and writes its limits. Never throws: what failed is in `limits.reason`. */
  async setup(id: string, resources: DomainResources | undefined): Promise<CgroupSetup> {
    const mode = await this.detect();
    if (mode.kind === 'none') return { procsFiles: [], limits: { enforced: false, reason: mode.reason } };
    const memory = resources?.memoryBytes;
    const cpuMillis = resources?.cpuMillis ?? (resources?.vcpus ? resources.vcpus * 1000 : undefined);
    const quota =
      cpuMillis !== undefined ? Math.max(1000, Math.round((cpuMillis / 1000) * CPU_PERIOD_US)) : undefined;
    try {
      if (mode.kind === 'v2') {
        const dir = join(mode.root, id);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'memory.max'), memory !== undefined ? String(memory) : 'max');
        if (memory !== undefined) await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => {});
        await writeFile(join(dir, 'cpu.max'), `${quota ?? 'max'} ${CPU_PERIOD_US}`);
        return {
          procsFiles: [join(dir, 'cgroup.procs')],
          limits: { enforced: true, mechanism: `cgroup-v2 ${dir}` },
        };
      }
      const procsFiles: string[] = [];
      const missing: string[] = [];
      if (mode.memory) {
        const dir = join(mode.memory, id);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'memory.limit_in_bytes'), memory !== undefined ? String(memory) : '-1');
        procsFiles.push(join(dir, 'cgroup.procs'));
      } else if (memory !== undefined) missing.push('memory');
      if (mode.cpu) {
        const dir = join(mode.cpu, id);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
        await writeFile(join(dir, 'cpu.cfs_quota_us'), String(quota ?? -1));
        procsFiles.push(join(dir, 'cgroup.procs'));
      } else if (quota !== undefined) missing.push('cpu');
      if (mode.unified) {
        const dir = join(mode.unified, id);
        await mkdir(dir, { recursive: true });
        procsFiles.push(join(dir, 'cgroup.procs'));
      }
      const mechanism = `cgroup-v1 ${[mode.memory && 'memory', mode.cpu && 'cpu'].filter(Boolean).join(',')}`;
      return missing.length
        ? {
            procsFiles,
            limits: { enforced: false, mechanism, reason: `no cgroup v1 ${missing.join('/')} hierarchy` },
          }
        : { procsFiles, limits: { enforced: true, mechanism } };
    } catch (err) {
      return {
        procsFiles: [],
        limits: { enforced: false, reason: `cannot set up cgroup for ${id}: ${errorText(err)}` },
      };
    }
  }

  /** The file holding the domain's memory limit, for checks and tests. */
  async memoryLimitFile(id: string): Promise<string | undefined> {
    const mode = await this.detect();
    if (mode.kind === 'v2') return join(mode.root, id, 'memory.max');
    if (mode.kind === 'v1' && mode.memory) return join(mode.memory, id, 'memory.limit_in_bytes');
    return undefined;
  }

  private async dirs(id: string): Promise<string[]> {
    const mode = await this.detect();
    if (mode.kind === 'v2') return [join(mode.root, id)];
    if (mode.kind === 'v1')
      return [mode.unified, mode.memory, mode.cpu].filter((d) => d !== undefined).map((d) => join(d, id));
    return [];
  }

  /** The `cgroup.procs` files of the domain's groups that exist (to put another process, e.g. an exec,
   *  in them). */
  async procsFiles(id: string): Promise<string[]> {
    const out: string[] = [];
    for (const dir of await this.dirs(id)) {
      if (await exists(join(dir, 'cgroup.procs'))) out.push(join(dir, 'cgroup.procs'));
    }
    return out;
  }

  /** Pids in the domain's groups (empty when none exist). */
  async pids(id: string): Promise<number[]> {
    const all = new Set<number>();
    for (const dir of await this.dirs(id)) {
      const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const line of text.split('\n')) if (line.trim()) all.add(Number(line));
    }
    return [...all];
  }

  /** SIGKILLs every process in the domain's groups: cgroup.kill where the kernel has it, else pid by pid. */
  async kill(id: string): Promise<void> {
    for (const dir of await this.dirs(id)) {
      if (
        await writeFile(join(dir, 'cgroup.kill'), '1').then(
          () => true,
          () => false,
        )
      )
        return;
    }
    for (const pid of await this.pids(id)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  /** Removes the domain's groups; the kernel refuses while processes remain, so kill first. */
  /** Removes the domain's groups once they are empty: a killed group lingers for a moment until the
   *  kernel has reaped its last process. False when they are still there after `timeoutMs`. */
  removeWhenEmpty(id: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
    return waitUntil(
      () =>
        this.remove(id).then(
          () => true,
          () => false,
        ),
      options,
    );
  }

  async remove(id: string): Promise<void> {
    for (const dir of await this.dirs(id)) {
      await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }
}
