/**
 * The layers README "Layout" describes are held by ESLint (eslint.config.mjs), not by
 * good intentions: each import below crosses one, and the lint must refuse it, while the
 * imports the layers allow pass. Linted as if the text were the named file.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve(__dirname, '..');
// Type-aware rules need the file on disk; the layer rules need only its path.
const eslint = new ESLint({
  cwd: root,
  overrideConfig: {
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-misused-promises': 'off',
      '@typescript-eslint/no-unused-vars': 'off',
    },
  },
});

async function problems(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: path.join(root, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('layers the lint holds', function () {
  this.timeout(60_000);

  const refused: [string, string, RegExp][] = [
    ['src/workflows/environment/workflow.ts', "import { readFileSync } from 'node:fs';", /no Node APIs/],
    ['src/workflows/environment/workflow.ts', "import { readFile } from 'fs/promises';", /no Node APIs/],
    ['src/workflows/support-pod.ts', "import { randomUUID } from 'crypto';", /no Node APIs/],
    [
      'src/workflows/environment/planning.ts',
      "import { createKubernetesActivities } from '../../activities/kubernetes';",
      /workflows import only/,
    ],
    ['src/workflows/reconcile.ts', "import { loadConfig } from '../config';", /workflows import only/],
    ['src/domain/shutdown-policy.ts', "import { loadConfig } from '../config';", /pure rules/],
    ['src/domain/enrolment.ts', "import type { RetireReason } from '../workflows/environment/definitions';", /pure rules/],
    ['src/domain/names.ts', "import { setTimeout } from 'node:timers/promises';", /no Node APIs/],
    [
      'src/api/rest.ts',
      "import { createNamespaceStatusReader } from '../activities/kubernetes/namespace-status';",
      /never through an activity implementation/,
    ],
    [
      'src/api/slack/handlers.ts',
      "import { createAwsActivities } from '../../activities/aws';",
      /never through an activity implementation/,
    ],
  ];
  for (const [file, source, why] of refused) {
    it(`refuses in ${file}: ${source}`, async () => {
      const found = await problems(file, `${source}\n`);
      assert.ok(
        found.some((p) => why.test(p)),
        `expected a layer error matching ${why}, got: ${found.join('; ') || 'none'}`,
      );
    });
  }

  const allowed: [string, string][] = [
    ['src/workflows/environment/workflow.ts', "import { samePolicy } from '../../domain/shutdown-policy';"],
    ['src/workflows/environment/workflow.ts', "import type { AwsActivities } from '../../activities/contracts';"],
    ['src/workflows/cluster.ts', "import { EnvCluster } from '../search-attributes';"],
    ['src/api/admission.ts', "import type { StoredNamespace } from '../activities/contracts';"],
    ['src/api/rest.ts', "import { Failure } from '../domain/failures';"],
    ['src/main.ts', "import { createKubernetesActivities } from './activities/kubernetes';"],
  ];
  for (const [file, source] of allowed) {
    it(`allows in ${file}: ${source}`, async () => {
      assert.deepEqual(await problems(file, `${source}\n`), []);
    });
  }
});
