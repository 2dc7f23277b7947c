// Template parameters: resolving an instance's parameter values against the template's declarations, and
// expanding `${params.NAME}`, `${port.NAME}`, `${instance.name}`, `${instance.namespace}`, `${instance.uid}`,
// `${domain.id}`, `${domain.dir}` in commands, arguments and env values. `$${` writes a literal `${`.
// The controller resolves and checks early (a bad reference is a terminal spec error); the driver expands
// after it has allocated host ports.

import type { ParameterSpec } from '../model/service-template.ts';
import type { DomainProcess, InstanceIdentity } from './driver.ts';
import { ParameterReferenceError, ParameterValueError } from './errors.ts';

export interface ExpansionContext {
  params?: Record<string, string>;
  /** Allocated host port by port name. */
  ports?: Record<string, number>;
  instance?: InstanceIdentity;
  domain?: { id: string; dir?: string };
}

const REFERENCE = /\$(\$?)\{([^}]*)\}/g;

/** The flat `key → value` table a context offers: `params.x`, `port.http`, `instance.name`, ... */
export function expansionTable(ctx: ExpansionContext): Map<string, string> {
  const table = new Map<string, string>();
  for (const [k, v] of Object.entries(ctx.params ?? {})) table.set(`params.${k}`, v);
  for (const [k, v] of Object.entries(ctx.ports ?? {})) table.set(`port.${k}`, String(v));
  if (ctx.instance) {
    table.set('instance.name', ctx.instance.name);
    table.set('instance.namespace', ctx.instance.namespace);
    table.set('instance.uid', ctx.instance.uid);
  }
  if (ctx.domain) {
    table.set('domain.id', ctx.domain.id);
    if (ctx.domain.dir !== undefined) table.set('domain.dir', ctx.domain.dir);
  }
  return table;
}

/** Expands every reference in `text`; throws ParameterReferenceError (naming `field`) on an unknown one. */
export function expandString(text: string, table: Map<string, string>, field: string): string {
  return text.replace(REFERENCE, (whole, escaped: string, key: string) => {
    if (escaped) return whole.slice(1);
    const value = table.get(key.trim());
    if (value === undefined) throw new ParameterReferenceError(field, key, [...table.keys()]);
    return value;
  });
}

/** The references in `text` that `table` does not know (for early, non-throwing checks). */
export function unknownReferences(text: string, known: Iterable<string>): string[] {
  const set = new Set(known);
  const out: string[] = [];
  for (const m of text.matchAll(REFERENCE)) if (!m[1] && !set.has(m[2].trim())) out.push(m[2].trim());
  return out;
}

/** Expands a process spec's command, args, env and working dir. Field paths name the template fields. */
export function expandProcess(
  process: DomainProcess,
  ctx: ExpansionContext,
  fieldPrefix = 'spec.process',
): DomainProcess {
  const table = expansionTable(ctx);
  const out: DomainProcess = {
    command: process.command.map((s, i) => expandString(s, table, `${fieldPrefix}.command[${i}]`)),
    args: process.args?.map((s, i) => expandString(s, table, `${fieldPrefix}.args[${i}]`)),
    env: Object.fromEntries(
      Object.entries(process.env ?? {}).map(([k, v]) => [
        k,
        expandString(v, table, `${fieldPrefix}.env.${k}`),
      ]),
    ),
  };
  if (process.workingDir !== undefined) {
    out.workingDir = expandString(process.workingDir, table, `${fieldPrefix}.workingDir`);
  }
  return out;
}

/**
 * Applies the template's parameter declarations to an instance's values: defaults filled in, required ones
 * present, patterns matched, undeclared names rejected. Throws ParameterValueError with the field path.
 */
export function resolveParameters(
  declared: ParameterSpec[] | undefined,
  values: Record<string, string> | undefined,
  fieldPrefix = 'spec.parameters',
): Record<string, string> {
  const decls = new Map((declared ?? []).map((p) => [p.name, p]));
  const out: Record<string, string> = {};
  for (const name of Object.keys(values ?? {})) {
    if (!decls.has(name)) {
      throw new ParameterValueError(
        `${fieldPrefix}.${name}`,
        `the template declares no parameter "${name}"; declared: ${[...decls.keys()].join(', ') || '(none)'}`,
      );
    }
  }
  for (const decl of decls.values()) {
    const value = values?.[decl.name] ?? decl.default;
    const field = `${fieldPrefix}.${decl.name}`;
    if (value === undefined) {
      if (decl.required) {
        throw new ParameterValueError(
          field,
          `required parameter is missing${decl.description ? ` (${decl.description})` : ''}`,
        );
      }
      continue;
    }
    if (decl.pattern !== undefined && !new RegExp(`^(?:${decl.pattern})$`).test(value)) {
      throw new ParameterValueError(field, `value ${JSON.stringify(value)} does not match /${decl.pattern}/`);
    }
    out[decl.name] = value;
  }
  return out;
}

/** The env name for a port: `XENOS_PORT_<NAME>` with the name upper-cased and non-alphanumerics as `_`. */
export function portEnvName(portName: string): string {
  return `XENOS_PORT_${portName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}
