#!/usr/bin/env node
// The `devenv` command: the compiled CLI when there is a build (`npm run build` -> lib/, the
// container image), else the TypeScript source through ts-node.
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const built = [path.join(root, 'lib/cli.js')].find(existsSync);
let cli;
if (built) {
  cli = built;
} else {
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  cli = path.join(root, 'src/cli.ts');
}
process.argv[1] = cli;
require(cli).main();
