// Field paths as people and the Kubernetes API write them (`spec.ports[0].port`,
// `metadata.labels[app.kubernetes.io/name]`): one spelling shared by validation errors and the
// YAML source map, so an error's path finds its line.

export type PathSegment = string | number;

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `['spec', 'ports', 0, 'port']` → `spec.ports[0].port`; keys that are not identifiers go in brackets. */
export function formatFieldPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segments) out = appendFieldPath(out, seg);
  return out;
}

/** `spec.ports` + 0 → `spec.ports[0]`; + `port` → `spec.ports[0].port`. */
export function appendFieldPath(path: string, seg: PathSegment): string {
  if (typeof seg === 'number' || !PLAIN_KEY.test(seg)) return `${path}[${seg}]`;
  return path === '' ? seg : `${path}.${seg}`;
}
