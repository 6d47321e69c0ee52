// rpm2's loader for JavaScript ecosystem files, run by `node --input-type=module -e`.
//
// `import()` (not `require()`) is what makes every flavour work: CommonJS
// `module.exports`, ESM `export default {apps}`, `export const apps`, `.mjs`,
// `.cjs`, and `.js` under a package.json with "type": "module" (pm2's
// ERR_REQUIRE_ESM complaint). The JSON goes after a marker line so that a
// config which logs while loading does not corrupt it.
//
// With RPM2_CONFIG_EXPR set, the text on stdin is a JavaScript expression
// (a `.json` config that is not JSON, or a config piped to `start -`):
// pm2 evaluates those as `(text)`, so `script: ['a', 'b'].join('')` works.
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { runInThisContext } from 'node:vm';

const file = process.env.RPM2_CONFIG_FILE;
let config;
if (process.env.RPM2_CONFIG_EXPR) {
  config = runInThisContext('(' + readFileSync(0, 'utf8') + ')', { filename: file, timeout: 1000 });
} else {
  const mod = await import(pathToFileURL(file).href);
  config = mod.default ?? { ...mod };
}
const json = JSON.stringify(config, (_key, value) => {
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (typeof value === 'bigint') return value.toString();
  return value;
});
process.stdout.write('\n<<RPM2_CONFIG_JSON>>\n' + (json ?? 'null') + '\n', () => process.exit(0));
