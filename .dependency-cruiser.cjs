// The layer order of src/ (docs: README "Development", /work/shared style), checked by test/layers.test.ts on every
// `npm test`. Lower layers first; a folder may import its own layer and the layers before it, never one after it:
//
//   errors → protocol → native → crypto → link → {socks, client, exit, netstack} → {control, settings} → {daemon, proxy} → {cli, tui}
//
// client vs control: the issue says both "control below the client proxies" and "{client} → control". Resolved by
// what the folders hold: src/client/ is the tunnel client (pool, connection) and sits below control, which imports
// nothing from it; the proxies that serve a control socket (`zks socks5` / `zks p2p-client`: SOCKS front + tunnel
// client + control socket) moved to src/proxy/, a layer above control beside daemon/ — the code that wires a proxy
// to the control socket sits above both. Peers of one layer do not import each other (control and settings are
// independent; so are daemon and proxy, cli and tui).
//
// The Worker (src/relay-worker/) runs on workerd: it may import protocol, crypto and link (its direct mode ends a
// secured link itself), nothing above, and no Node built-in — neither may protocol/, which the Worker shares.
// Only src/tui/ may import react or ink.

const LAYERS = [
  ['errors'], // ZksError and its codes: the base of every layer, imports nothing
  ['protocol'],
  // Small Linux addons for what Node lacks: ICMP echo sockets (exit), records sealed in place (crypto), malloc tuning.
  ['native'],
  ['crypto'],
  ['link'],
  ['socks', 'client', 'exit', 'netstack'],
  ['control', 'settings'],
  ['daemon', 'proxy'],
  ['cli', 'tui'],
];

const group = (names) => `^src/(${names.join('|')})/`;

/** For each folder: every other folder it may not import (later layers and its peers). */
const layerRules = LAYERS.flatMap((layer, i) => layer.map((name) => {
  const forbidden = [...layer.filter((n) => n !== name), ...LAYERS.slice(i + 1).flat(), 'relay-worker'];
  return {
    name: `layer-${name}`,
    comment: `src/${name}/ may import only ${LAYERS.slice(0, i).flat().join(', ') || 'nothing else in src/'}`,
    severity: 'error',
    from: { path: `^src/${name}/` },
    to: { path: group(forbidden) },
  };
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: split the shared part into a module both can import.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'relay-worker-layers',
      comment: 'The Worker imports protocol, crypto and link only.',
      severity: 'error',
      from: { path: '^src/relay-worker/' },
      to: { path: '^src/', pathNot: '^src/(relay-worker|errors|protocol|crypto|link)/' },
    },
    {
      name: 'no-node-in-worker-code',
      comment: 'src/relay-worker/ and src/protocol/ run on workerd too: no node:* or bare Node built-ins.',
      severity: 'error',
      from: { path: '^src/(relay-worker|errors|protocol)/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'react-ink-only-in-tui',
      comment: 'Like gemini-cli: nothing outside src/tui/ imports react or ink.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/tui/' },
      // Resolved (node_modules/react/…) or, should resolution fail, the bare name.
      to: { path: '((^|/)node_modules/|^)(react|ink|react-[^/]+|ink-[^/]+)(/|$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a type from a higher layer is still an arrow back up.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^src/daemon/tun/build/' },
    // ink and react ship ESM only: resolve packages as Node's `import` does.
    enhancedResolveOptions: { conditionNames: ['import', 'node', 'default'], exportsFields: ['exports'] },
  },
};
