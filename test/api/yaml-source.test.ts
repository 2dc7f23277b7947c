// The YAML source map: every field path of every document maps to the line and column of its key
// and value, in block and flow style, across `---`, through comments, anchors and aliases, for
// JSON too; syntax errors come back with their line and column.

import { describe, expect, it } from 'vitest';
import { locateField, parentPath, parseYamlDocuments, type YamlDocument } from '../../src/api/yaml-source.ts';

/** `line:column` of a path's key and value, for compact assertions. */
function at(doc: YamlDocument, path: string): string {
  const k = doc.keys.get(path);
  const v = doc.values.get(path);
  return `${k ? `${k.line}:${k.column}` : '-'} ${v ? `${v.line}:${v.column}` : '-'}`;
}

describe('parseYamlDocuments', () => {
  it('maps block-style keys and values, list items and quoted keys', () => {
    const text = [
      '# a comment line',
      'kind: ServiceTemplate   # trailing comment',
      'spec:',
      '  ports:',
      '    - name: http',
      '      port: 8080',
      '    -   name: "admin"',
      "        'port': 9090",
      '  labels:',
      '    app.kubernetes.io/name: web',
    ].join('\n');
    const { documents, errors } = parseYamlDocuments(text);
    expect(errors).toEqual([]);
    const [doc] = documents;
    expect(doc.value).toEqual({
      kind: 'ServiceTemplate',
      spec: {
        ports: [
          { name: 'http', port: 8080 },
          { name: 'admin', port: 9090 },
        ],
        labels: { 'app.kubernetes.io/name': 'web' },
      },
    });
    expect(doc.start).toEqual({ line: 2, column: 1, offset: 17 });
    expect(at(doc, 'kind')).toBe('2:1 2:7');
    expect(at(doc, 'spec.ports')).toBe('4:3 5:5');
    expect(at(doc, 'spec.ports[0]')).toBe('5:7 5:7');
    expect(at(doc, 'spec.ports[0].port')).toBe('6:7 6:13');
    expect(at(doc, 'spec.ports[1]')).toBe('7:9 7:9');
    expect(at(doc, 'spec.ports[1].name')).toBe('7:9 7:15');
    expect(at(doc, 'spec.ports[1].port')).toBe('8:9 8:17');
    expect(at(doc, 'spec.labels[app.kubernetes.io/name]')).toBe('10:5 10:29');
  });

  it('maps flow style and JSON', () => {
    const flow = parseYamlDocuments('spec: {templateRef: {name: web}, ports: [{name: a, port: 1}]}\n')
      .documents[0];
    expect(at(flow, 'spec.templateRef.name')).toBe('1:22 1:28');
    expect(at(flow, 'spec.ports[0].port')).toBe('1:52 1:58');
    const json = parseYamlDocuments('{\n  "spec": {\n    "replicas": 3,\n    "tags": ["a", "b"]\n  }\n}\n')
      .documents[0];
    expect(json.value).toEqual({ spec: { replicas: 3, tags: ['a', 'b'] } });
    expect(at(json, 'spec.replicas')).toBe('3:5 3:17');
    expect(at(json, 'spec.tags[1]')).toBe('4:19 4:19');
  });

  it('splits documents at ---, skips empty ones and counts only the others', () => {
    const text = '---\n# nothing here\n---\na: 1\n---\n---\nnull\n---\nb:\n  c: 2\n...\n';
    const { documents, errors } = parseYamlDocuments(text);
    expect(errors).toEqual([]);
    expect(documents.map((d) => [d.index, d.value, d.start.line])).toEqual([
      [0, { a: 1 }, 4],
      [1, { b: { c: 2 } }, 9],
    ]);
    expect(at(documents[1], 'b.c')).toBe('10:3 10:6');
  });

  it('points an alias at the alias, copies its value, and supports merge keys', () => {
    const text = [
      'base: &env {name: A, value: x}',
      'copies:',
      '  - *env',
      'merged:',
      '  <<: *env',
      '  value: y',
    ].join('\n');
    const [doc] = parseYamlDocuments(text).documents;
    const v = doc.value as any;
    expect(v.copies[0]).toEqual({ name: 'A', value: 'x' });
    expect(v.merged).toEqual({ name: 'A', value: 'y' });
    v.copies[0].name = 'changed';
    expect(v.base.name).toBe('A');
    expect(at(doc, 'copies[0]')).toBe('3:5 3:5');
    expect(at(doc, 'merged.value')).toBe('6:3 6:10');
    expect(doc.keys.has('merged.<<')).toBe(false);
  });

  it('has no value position for an empty value, only the key', () => {
    const [doc] = parseYamlDocuments('spec:\n  host:\n').documents;
    expect(doc.value).toEqual({ spec: { host: null } });
    expect(at(doc, 'spec.host')).toBe('2:3 -');
  });

  it.each([
    ['an unclosed flow sequence', 'a: 1\nb: [1, 2\nc: 3\n', 3, 1],
    ['a bad indentation', 'spec:\n  a: 1\n b: 2\n', 3, 2],
    ['a tab indentation', 'spec:\n\ta: 1\n', 2, 1],
    ['an unclosed quote', 'a: 1\nb: "open\n', 3, 1],
  ])('reports %s with its line and column', (_name, text, line, column) => {
    const { documents, errors } = parseYamlDocuments(text);
    expect(documents).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line, column });
    expect(errors[0].message).toMatch(/^YAML syntax error: /);
  });

  it('skips only the document with a duplicate key or an unknown alias', () => {
    const text = 'a: 1\n---\nb: 1\nb: 2\n---\nc: *nope\n---\nd: 4\n';
    const { documents, errors } = parseYamlDocuments(text);
    expect(documents.map((d) => d.value)).toEqual([{ a: 1 }, { d: 4 }]);
    expect(errors.map((e) => `${e.line}:${e.column} ${e.message}`)).toEqual([
      '4:1 YAML syntax error: duplicated mapping key',
      '6:5 YAML syntax error: unidentified alias "nope"',
    ]);
  });
});

describe('locateField', () => {
  const [doc] = parseYamlDocuments(
    'spec:\n  templateRef:\n    name: web\n  runStrategy: Sometimes\n',
  ).documents;

  it('prefers the key or the value as asked', () => {
    expect(locateField(doc, 'spec.runStrategy', 'key')).toMatchObject({ line: 4, column: 3 });
    expect(locateField(doc, 'spec.runStrategy', 'value')).toMatchObject({ line: 4, column: 16 });
  });

  it('falls back to the nearest ancestor present, then the document start', () => {
    expect(locateField(doc, 'spec.resources.memory')).toMatchObject({ line: 1, column: 1 });
    expect(locateField(doc, 'spec.templateRef.uid')).toMatchObject({ line: 2, column: 3 });
    expect(locateField(doc, 'status')).toMatchObject({ line: 1, column: 1 });
  });

  it('walks up bracketed and indexed paths', () => {
    expect(parentPath('metadata.labels[app.kubernetes.io/name]')).toBe('metadata.labels');
    expect(parentPath('spec.ports[0].port')).toBe('spec.ports[0]');
    expect(parentPath('spec.ports[0]')).toBe('spec.ports');
    expect(parentPath('[0]')).toBe('');
    expect(parentPath('spec')).toBe('');
    expect(parentPath('')).toBeUndefined();
  });
});
