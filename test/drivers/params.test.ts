// Parameter resolution and `${...}` expansion: defaults, required values, patterns, undeclared names,
// unknown references and the `$${` escape, with the field paths the errors must name.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are Xenos `${params.X}` templates, not JS ones

import { describe, expect, it } from 'vitest';
import { ParameterReferenceError, ParameterValueError } from '../../src/drivers/errors.ts';
import {
  expandProcess,
  portEnvName,
  resolveParameters,
  unknownReferences,
} from '../../src/drivers/params.ts';

const declared = [
  { name: 'size', default: 'small', pattern: 'small|large' },
  { name: 'token', required: true, description: 'API token' },
  { name: 'optional' },
];

describe('resolveParameters', () => {
  it('fills defaults and keeps given values', () => {
    expect(resolveParameters(declared, { token: 't1' })).toEqual({ size: 'small', token: 't1' });
    expect(resolveParameters(declared, { token: 't1', size: 'large', optional: 'x' })).toEqual({
      size: 'large',
      token: 't1',
      optional: 'x',
    });
  });

  it.each([
    [{}, 'spec.parameters.token: required parameter is missing (API token)'],
    [{ token: 't', size: 'huge' }, 'spec.parameters.size: value "huge" does not match /small|large/'],
    [{ token: 't', size: 'smaller' }, 'spec.parameters.size: value "smaller" does not match /small|large/'],
    [
      { token: 't', colour: 'red' },
      'spec.parameters.colour: the template declares no parameter "colour"; declared: size, token, optional',
    ],
  ])('rejects %j', (values, message) => {
    const fail = () => resolveParameters(declared, values as Record<string, string>);
    expect(fail).toThrow(ParameterValueError);
    expect(fail).toThrow(message);
  });
});

describe('expandProcess', () => {
  const ctx = {
    params: { size: 'large' },
    ports: { http: 31000 },
    instance: { namespace: 'prod', name: 'web', uid: 'u-1' },
    domain: { id: 'xenos-prod-web-u1', dir: '/data/d' },
  };

  it('expands params, ports, instance and domain fields, and keeps $${ literal', () => {
    const out = expandProcess(
      {
        command: ['/bin/serve', '--size=${params.size}'],
        args: ['--listen=:${port.http}', '$${HOME}'],
        env: {
          WHO: '${instance.namespace}/${instance.name}/${instance.uid}',
          DIR: '${domain.dir}',
          ID: '${ domain.id }',
        },
        workingDir: 'srv/${params.size}',
      },
      ctx,
    );
    expect(out).toEqual({
      command: ['/bin/serve', '--size=large'],
      args: ['--listen=:31000', '${HOME}'],
      env: { WHO: 'prod/web/u-1', DIR: '/data/d', ID: 'xenos-prod-web-u1' },
      workingDir: 'srv/large',
    });
  });

  it('names the field of an unknown reference and what is known', () => {
    const fail = () => expandProcess({ command: ['x'], env: { A: '${params.nope}' } }, ctx);
    expect(fail).toThrow(ParameterReferenceError);
    expect(fail).toThrow(
      /^spec\.process\.env\.A: \$\{params\.nope\} refers to nothing; known: \$\{params\.size\}, \$\{port\.http\}/,
    );
  });

  it('lists unknown references without throwing', () => {
    expect(
      unknownReferences('${params.a} ${port.b} $${params.c} ${instance.name}', ['params.a', 'instance.name']),
    ).toEqual(['port.b']);
  });

  it('makes env names from port names', () => {
    expect(portEnvName('http-admin.v2')).toBe('XENOS_PORT_HTTP_ADMIN_V2');
  });
});
