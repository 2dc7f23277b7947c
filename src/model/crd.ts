// The shape of a CustomResourceDefinition as crds/*.yaml holds it, typed with @kubernetes/client-node's
// apiextensions.k8s.io/v1 models (type-only: nothing of the client runs). The one part not taken from
// the client is the schema: its V1JSONSchemaProps renames `$ref` and every `x-kubernetes-*` key for the
// client's own serializer (`xKubernetesIntOrString`), so it would not describe the YAML's keys; a schema
// stays a plain JSON Schema node, checked key by key by the kind registry.

import type {
  V1CustomResourceDefinition,
  V1CustomResourceDefinitionSpec,
  V1CustomResourceDefinitionVersion,
} from '@kubernetes/client-node';

/** A node of a CRD's openAPIV3Schema, as written in the YAML (JSON Schema plus `x-kubernetes-*`). */
export type SchemaNode = Record<string, any>;

export type CrdVersion = Omit<V1CustomResourceDefinitionVersion, 'schema'> & {
  schema?: { openAPIV3Schema?: SchemaNode };
};

export type CrdSpec = Omit<V1CustomResourceDefinitionSpec, 'versions'> & { versions: CrdVersion[] };

/** A CRD after the kind registry checked its shape. */
export type CustomResourceDefinition = Omit<V1CustomResourceDefinition, 'spec' | 'status'> & {
  spec: CrdSpec;
};
