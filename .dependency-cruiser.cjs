// The layer rules of Xenos, checked by dependency-cruiser in `npm run check` (and so in CI). Layers,
// bottom up; a folder imports only folders below it (type-only imports count too):
//
//   src/model, src/log, src/metrics          nothing of the project
//   src/store, src/p2p, src/images           model/log/metrics; store may use p2p's narrow node interface
//   src/client                               model only (the API client xenosctl and the launcher share)
//   src/api, src/drivers, src/reconcile      the layers below; not each other
//   src/cluster                              the layers below
//   controllers/<kind>                       the layers below; never another controller
//   src/daemon                               everything above wires here
//   src/cli, src/local-cluster               tools: xenosctl never imports the daemon, controllers or cluster
//                                            (of src/images only the canonical tar, to pack what it pushes);
//                                            the launcher (npm start) only the client and the daemon's lock
//
// Within a layer only the edges named above exist, so folders cannot form a circle; files must not either.

const LAYER = {
  bottom: '^src/(model|log|metrics)/',
  low: '^src/(store|p2p|images)/',
  middle: '^src/(api|drivers|reconcile)/',
};

const rule = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });

module.exports = {
  forbidden: [
    rule('no-circular', 'No import circles between files.', {}, { circular: true }),
    rule(
      'model-is-the-bottom',
      'src/model holds the object model every layer imports; it imports nothing of the project.',
      { path: '^src/model/' },
      { path: '^(src|controllers)/', pathNot: '^src/model/' },
    ),
    rule(
      'log-is-the-bottom',
      'src/log (the pino root and its component children) imports nothing of the project.',
      { path: '^src/log/' },
      { path: '^(src|controllers)/', pathNot: '^src/log/' },
    ),
    rule(
      'metrics-is-the-bottom',
      'src/metrics (refusal counters) imports nothing of the project but the logger.',
      { path: '^src/metrics/' },
      { path: '^(src|controllers)/', pathNot: '^src/(metrics|log)/' },
    ),
    rule(
      'low-layers-stay-low',
      'src/store, src/p2p and src/images import nothing from api, cli, client, cluster, daemon, drivers, reconcile, the launcher or controllers.',
      { path: LAYER.low },
      { path: '^(src/(api|cli|client|cluster|daemon|drivers|reconcile|local-cluster)|controllers)/' },
    ),
    rule(
      'p2p-below-store',
      'src/p2p knows nothing of the store or images (the store replicates over a narrow node interface of p2p).',
      { path: '^src/p2p/' },
      { path: '^src/(store|images)/' },
    ),
    rule(
      'images-alone',
      'src/images (the image cache) imports neither the store nor p2p.',
      { path: '^src/images/' },
      { path: '^src/(store|p2p)/' },
    ),
    rule(
      'client-imports-only-model',
      'src/client (the API client) speaks HTTP and the object model, nothing else of the project.',
      { path: '^src/client/' },
      { path: '^(src|controllers)/', pathNot: '^src/(client|model)/' },
    ),
    rule(
      'middle-layers-below-cluster',
      'src/api, src/drivers and src/reconcile import neither the cluster, the controllers, the daemon nor the tools.',
      { path: LAYER.middle },
      { path: '^(src/(cli|client|cluster|daemon|local-cluster)|controllers)/' },
    ),
    rule(
      'middle-layers-apart',
      'src/api, src/drivers and src/reconcile do not import each other (they meet in the store and the model).',
      { path: '^src/(api|drivers|reconcile)/' },
      { path: '^src/(api|drivers|reconcile)/', pathNot: '^src/$1/' },
    ),
    rule(
      'cluster-below-controllers',
      'src/cluster imports neither the controllers, the daemon nor the tools.',
      { path: '^src/cluster/' },
      { path: '^(src/(cli|client|daemon|local-cluster)|controllers)/' },
    ),
    rule(
      'controllers-below-daemon',
      'controllers/ import neither the daemon nor the tools.',
      { path: '^controllers/' },
      { path: '^src/(cli|client|daemon|local-cluster)/' },
    ),
    rule(
      'controllers-apart',
      'A controller never imports another controller: they meet in the store.',
      { path: '^controllers/([^/]+)/' },
      { path: '^controllers/', pathNot: '^controllers/$1/' },
    ),
    rule(
      'daemon-below-tools',
      'src/daemon does not import xenosctl or the launcher.',
      { path: '^src/daemon/' },
      { path: '^src/(cli|local-cluster)/' },
    ),
    rule(
      'cli-is-a-client',
      'xenosctl talks to xenosd through the client: it never imports the daemon, controllers, cluster, drivers, reconcile, p2p, images or the launcher — except the canonical tar of src/images, so `xenosctl image push` packs a directory into exactly the bytes a host makes of it.',
      { path: '^src/cli/' },
      {
        path: '^(src/(daemon|cluster|drivers|reconcile|p2p|images|local-cluster|log)|controllers)/',
        pathNot: '^src/images/canonical-tar\\.ts$',
      },
    ),
    rule(
      'launcher-uses-the-client',
      "The launcher (npm start) uses the client, the model and the daemon's data-dir lock only.",
      { path: '^src/local-cluster/' },
      {
        path: '^(src|controllers)/',
        pathNot: '^src/(local-cluster|client|model|daemon/data-dir-lock\\.ts|daemon/errors\\.ts)',
      },
    ),
    rule(
      'nothing-imports-the-tools',
      'xenosctl and the launcher are the top: nothing of the project imports them.',
      { path: '^(src|controllers)/', pathNot: '^src/(cli|local-cluster)/' },
      { path: '^src/(cli|local-cluster)/' },
    ),
    rule(
      'no-dev-dependencies-at-run-time',
      'What runs imports only dependencies; a devDependency may be imported for its types only.',
      { path: '^(src|controllers|bin)/' },
      { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    ),
    rule('resolvable', 'Every import resolves.', {}, { couldNotResolve: true }),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(test|bench|scripts)/' },
    // swc parses TypeScript and tells type-only imports apart (dependency-cruiser cannot use TypeScript 7's
    // compiler yet); type-only imports still count for the layer rules.
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.js'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types'],
    },
  },
};
