// The image API's group/version and paths: served by the host (src/api/image-upload-route.ts, the pulls
// API in src/cluster/image-swarm) and called by the CLI, which may not import those layers.

export const IMAGES_API_VERSION = 'images.xenos.io/v1';
export const IMAGES_API = `/apis/${IMAGES_API_VERSION}`;
/** Resumable uploads (POST, then PATCH/PUT/GET/DELETE on `<uploads>/<blob hex>`). */
export const UPLOADS_PATH = `${IMAGES_API}/uploads`;
/** This host's images, complete and partial. */
export const IMAGES_PATH = `${IMAGES_API}/images`;
/** Pulls this host makes from its peers (POST {digest}; GET `<pulls>/<digest>`). */
export const PULLS_PATH = `${IMAGES_API}/pulls`;
