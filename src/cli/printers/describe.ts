// `xenosctl describe` output: metadata, spec and the rest of status as indented YAML, then the
// conditions and endpoints as tables, then the object's Events, newest last (kubectl's layout).

import { humanDuration } from '../../api/table.ts';
import type { KubeEvent } from '../../client/client.ts';
import { LAST_APPLIED } from '../../client/three-way-patch.ts';
import type { Condition, XObject } from '../../model/object.ts';
import type { Endpoint } from '../../model/service-instance.ts';
import { formatTable } from './table.ts';
import { toYaml } from './yaml.ts';

function indent(text: string, by = 2): string {
  const pad = ' '.repeat(by);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

function mapLines(label: string, m: Record<string, string> | undefined): string[] {
  const entries = Object.entries(m ?? {});
  if (entries.length === 0) return [field(label, '<none>')];
  return entries.map(([k, v], i) => field(i === 0 ? label : '', `${k}=${v}`));
}

function field(label: string, value: string | number | undefined): string {
  return `${(label ? `${label}:` : '').padEnd(14)}${value ?? '<none>'}`;
}

function age(ts: string | undefined, now: number): string {
  if (!ts) return '<unknown>';
  const t = Date.parse(ts);
  return Number.isNaN(t) ? '<invalid>' : humanDuration(now - t);
}

export function describeObject(obj: XObject, events: KubeEvent[], now = Date.now()): string {
  const m = obj.metadata;
  const annotations = { ...(m.annotations ?? {}) };
  delete annotations[LAST_APPLIED];
  const lines: string[] = [
    field('Name', m.name),
    ...(m.namespace ? [field('Namespace', m.namespace)] : []),
    ...mapLines('Labels', m.labels),
    ...mapLines('Annotations', annotations),
    field('API Version', obj.apiVersion),
    field('Kind', obj.kind),
    'Metadata:',
    `  Creation Timestamp:  ${m.creationTimestamp ?? '<none>'} (${age(m.creationTimestamp, now)} ago)`,
    `  Generation:          ${m.generation ?? '<none>'}`,
    `  Resource Version:    ${m.resourceVersion ?? '<none>'}`,
    `  UID:                 ${m.uid ?? '<none>'}`,
  ];
  if (m.deletionTimestamp) lines.push(`  Deletion Timestamp:  ${m.deletionTimestamp}`);
  if (m.finalizers?.length) lines.push(`  Finalizers:          ${m.finalizers.join(', ')}`);
  if (m.ownerReferences?.length) {
    lines.push('  Owner References:');
    for (const o of m.ownerReferences)
      lines.push(`    ${o.kind}/${o.name}${o.controller ? ' (controller)' : ''}`);
  }
  if (obj.spec !== undefined) lines.push('Spec:', indent(toYaml(obj.spec)));
  const { conditions, endpoints, ...restStatus } = (obj.status ?? {}) as Record<string, unknown> & {
    conditions?: Condition[];
    endpoints?: Endpoint[];
  };
  lines.push(
    Object.keys(restStatus).length ? `Status:\n${indent(toYaml(restStatus))}` : 'Status:       <none>',
  );
  if (conditions?.length) {
    const rows = conditions.map((c) => [
      c.type,
      c.status,
      c.reason || '<none>',
      c.lastTransitionTime ? `${age(c.lastTransitionTime, now)} ago` : '<none>',
      c.observedGeneration === undefined ? '<none>' : String(c.observedGeneration),
      c.message || '',
    ]);
    lines.push(
      'Conditions:',
      indent(formatTable(['Type', 'Status', 'Reason', 'Last Transition', 'Generation', 'Message'], rows)),
    );
  }
  if (endpoints?.length) {
    const rows = endpoints.map((e) => [
      e.name,
      e.address,
      String(e.port),
      e.protocol,
      e.url ?? '<none>',
      e.source ?? '',
    ]);
    lines.push(
      'Endpoints:',
      indent(formatTable(['Name', 'Address', 'Port', 'Protocol', 'URL', 'Source'], rows)),
    );
  }
  if (events.length === 0) lines.push('Events:       <none>');
  else {
    const sorted = [...events].sort(
      (a, b) => Date.parse(eventTime(a) ?? '') - Date.parse(eventTime(b) ?? ''),
    );
    const rows = sorted.map((e) => [
      e.type ?? 'Normal',
      e.reason ?? '',
      `${age(eventTime(e), now)}${e.count && e.count > 1 ? ` (x${e.count})` : ''}`,
      e.source?.component ?? e.reportingController ?? '',
      e.message ?? '',
    ]);
    lines.push('Events:', indent(formatTable(['Type', 'Reason', 'Age', 'From', 'Message'], rows)));
  }
  return lines.join('\n') + '\n';
}

function eventTime(e: KubeEvent): string | undefined {
  return e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
}
