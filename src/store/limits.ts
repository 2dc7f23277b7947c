// Size limits every layer shares. One object size: the API refuses a write whose stored object would be
// larger, and replication carries (and accepts from peers) any row up to it, so nothing the API accepts can
// be stuck unreplicable. 1.5 MiB is etcd's default request limit, the one Kubernetes objects live under.

/** The largest object (its JSON, metadata + spec + status) the store takes from the API or a peer. */
export const MAX_OBJECT_BYTES = 1536 * 1024;
