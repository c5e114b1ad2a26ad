// @ts-check
import { builtinModules } from 'node:module';
import eslint from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** Every Node built-in, bare or `node:`-prefixed, with its subpaths (`fs/promises`); not `./cluster`. */
const NODE_BUILTIN = `^(node:|(${builtinModules.map((name) => name.replace(/[/.]/g, '\\$&')).join('|')})(/|$))`;

/**
 * The layers, innermost first. Each may import only from the layers listed in `from`'s
 * exceptions; the lint holds them so a newcomer cannot cross one by accident.
 */
const layers = [
  {
    // Pure rules every layer shares, workflow code included: deterministic, no I/O.
    target: './src/domain',
    from: './src',
    except: ['./domain'],
    message: 'src/domain holds pure rules: it imports nothing else from src/',
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox.
    target: './src/workflows',
    from: './src',
    except: ['./workflows', './domain', './activities/contracts.ts', './search-attributes.ts'],
    message: 'workflows import only workflow code, src/domain, activity contracts and search attributes',
  },
  {
    target: './src/api',
    from: './src/activities',
    except: ['./contracts.ts'],
    message: 'the API talks to workflows through src/client and reads through adapters, never through an activity implementation',
  },
];

export default tseslint.config(
  { ignores: ['lib/', 'node_modules/', '.tools/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      'import-x/no-restricted-paths': ['error', { zones: layers }],
    },
  },
  {
    // The `devenv` launcher is plain CommonJS so it runs with or without a build.
    files: ['bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', __dirname: 'readonly', process: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The /ui page's script runs in the browser as it is, with uPlot loaded before it.
    files: ['src/api/ui/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', fetch: 'readonly', sessionStorage: 'readonly', Intl: 'readonly', uPlot: 'readonly' },
    },
  },
  {
    files: ['src/workflows/**/*.ts', 'src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: NODE_BUILTIN, message: 'workflow code must stay deterministic: no Node APIs' }] },
      ],
    },
  },
);
