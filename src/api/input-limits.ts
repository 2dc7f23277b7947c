// The limits the API and manifest loading hold hostile input to, in one place (prototype keys are in
// prototype-safety.ts). The README's "Hostile input" section is the table of these, with why each value
// was chosen.

import { MAX_OBJECT_BYTES } from '../store/limits.ts';

/** Nesting of maps and lists in any body or manifest (JSON, YAML, every patch). The deepest field of a
 *  Xenos kind is about a dozen levels down; js-yaml's parser stops at 100 by default too. Kubernetes
 *  allows 10,000 for arbitrary CRDs, a depth our recursive clone, merge and validation need not walk. */
export const MAX_NESTING_DEPTH = 100;

/** Aliases (`*name`) per YAML document. Real manifests use a handful; go-yaml (Kubernetes) has no count
 *  cap but a ratio of aliased to decoded nodes; a plain count is easier to state and to test. */
export const MAX_YAML_ALIASES = 1000;

/** What one YAML document may expand to through its aliases, in bytes of content (about its JSON size):
 *  a request body is one object, so the object limit; a manifest file may hold a `kind: List`, so the
 *  largest manifest file the client reads. Checked before anything is expanded. */
export const MAX_YAML_EXPANSION_BYTES = { server: MAX_OBJECT_BYTES, client: 16 * 1024 * 1024 };

/** Request bodies from an instance-scoped token (a service inside its domain): what it may send (an
 *  Event of at most MAX_EVENT_BYTES, a patch of its status) is small, and YAML costs about a second of
 *  the API's single thread per 3 MiB to parse, so a service gets far less than the admin's 3 MiB. */
export const MAX_SCOPED_BODY_BYTES = 128 * 1024;

/** Watches one principal may hold open at once: each is a socket and a listener on every write. A
 *  kubectl or a GitOps tool holds one per kind it follows; a service needs one on its instance. */
export const MAX_WATCHES_PER_PRINCIPAL = 100;

/** Operations in one JSON patch: Kubernetes' own cap (maxJSONPatchOperations). */
export const MAX_JSON_PATCH_OPERATIONS = 10_000;

/** Bytes that `copy` operations of one JSON patch may duplicate in total (Kubernetes caps this at its
 *  request size, JSONPatchMaxCopyBytes; here the object size, since a larger copy can never be stored). */
export const MAX_JSON_PATCH_COPY_BYTES = MAX_OBJECT_BYTES;

/** An Event's message, as events.k8s.io/v1 caps its `note` (client-go's recorders truncate to it). */
export const MAX_EVENT_MESSAGE_BYTES = 1024;

/** A whole Event (its JSON): generous for an involvedObject, reason, source and a few labels, small
 *  enough that thousands replicate to every host cheaply. */
export const MAX_EVENT_BYTES = 16 * 1024;

/** Events one principal (the admin, an instance token) may create through the API: a token bucket, as
 *  Kubernetes' EventRateLimit admission plugin keeps per user. A service that reports more than one
 *  event a second for long is broken; the burst covers a start-up flurry. */
export const EVENT_RATE_LIMIT = { burst: 50, perSecond: 1 };

/** How long an Event lives after its last write, like kube-apiserver's --event-ttl default. */
export const DEFAULT_EVENT_TTL_MS = 60 * 60_000;
