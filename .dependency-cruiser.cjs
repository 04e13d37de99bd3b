// The shape of src/: imports run one way, from the module down to the errors, and never in a
// cycle. `npm run lint:deps` checks it (in scripts/test.sh, so in CI). A folder may import its own
// layer's files and any lower layer; folders that share a layer do not import each other.
//
//   module files, lifecycle, testing, cli, index   (Nest's thin layer over the engine, and entry points)
//   engine                                         (one registration's parts, built with `new`, started and stopped)
//   operations                                     (health, metrics)
//   admin                                          (operators' API over the producer and the store)
//   producer | consumer | decorators               (what users call)
//   relay | check                                  (background work: delivery, transaction check)
//   context                                        (transactions: the user's and the library's own)
//   options | telemetry                            (resolved configuration, tracing)
//   publisher                                      (Kafka clients behind MessagePublisher)
//   store                                          (tables, dialects, queries, migrations)
//   events                                         (diagnostics channel)
//   message | common                               (the message's types, small shared tools)
//   errors
const LAYERS = [
  ['errors'],
  ['message', 'common'],
  ['events'],
  ['store'],
  ['publisher'],
  ['options', 'telemetry'],
  ['context'],
  ['relay', 'check'],
  ['producer', 'consumer', 'decorators'],
  ['admin'],
  ['operations'],
  ['engine'],
  ['lifecycle', 'module', 'testing', 'cli', 'index'],
];

/** A path pattern of one folder of src/ ('module' and 'index': the files at the root of src/). */
const folder = (name) =>
  name === 'index' ? '^src/index\\.ts$' : name === 'module' ? '^src/transactional-message\\.[^/]+\\.ts$' : `^src/${name}/`;

const rules = [
  {
    name: 'no-cycles',
    comment: 'Imports run one way: a cycle makes the load order matter and its parts inseparable.',
    severity: 'error',
    from: { path: '^src/' },
    to: { circular: true },
  },
  {
    name: 'no-unknown-folder',
    comment: 'Every folder of src/ has a layer in .dependency-cruiser.cjs: add a new one there.',
    severity: 'error',
    from: { path: '^src/', pathNot: LAYERS.flat().map(folder).join('|') },
    to: {},
  },
];
LAYERS.forEach((layer, i) => {
  for (const name of layer) {
    const higher = LAYERS.slice(i + 1).flat();
    const siblings = layer.filter((other) => other !== name && !(layer.includes('index') && ['module', 'lifecycle', 'index'].includes(other)));
    const forbidden = [...higher, ...siblings];
    if (forbidden.length === 0) continue;
    rules.push({
      name: `${name}-imports-down`,
      comment: `${name} imports only its own layer and lower ones (see the layers at the top of .dependency-cruiser.cjs)`,
      severity: 'error',
      from: { path: folder(name), pathNot: '\\.spec\\.ts$' },
      to: { path: forbidden.map(folder).join('|') },
    });
  }
});

module.exports = {
  forbidden: rules,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.spec\\.ts$' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
