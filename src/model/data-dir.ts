// A host's data dir as other programs see it: where xenosd keeps its state by default, and the two files
// in it that say where its API listens and how to get in. xenosd writes them; xenosctl (with no --server)
// and the local-cluster launcher read them. One place, so the writer and its readers cannot drift apart.

/** xenosd's --data-dir, and xenosctl's XENOS_DATA_DIR, when not given: relative to the working directory. */
export const DEFAULT_DATA_DIR = './.xenos';

/** The URL of the running xenosd's API (written once it listens, removed when it stops). */
export const API_ADDR_FILE = 'api.addr';

/** The admin token, written on the first start (mode 0600). */
export const ADMIN_TOKEN_FILE = 'admin.token';
