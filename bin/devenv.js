#!/usr/bin/env node
// The `devenv` command: in a checkout, the TypeScript source through ts-node (never a
// stale build); in the container image, which ships only the build, lib/cli.js.
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src/cli.ts');
let cli = path.join(root, 'lib/cli.js');
if (existsSync(source)) {
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  cli = source;
}
process.argv[1] = cli;
require(cli).main();
