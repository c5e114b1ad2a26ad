/**
 * `npm run build`'s last step: bundles the compiled workflows (lib/workflows) into
 * lib/workflow-bundle.js, which the worker then loads instead of running webpack itself.
 */
import { writeFile } from 'node:fs/promises';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PREBUILT_WORKFLOW_BUNDLE, WORKFLOW_BUNDLE_OPTIONS } from './worker';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode(WORKFLOW_BUNDLE_OPTIONS);
  await writeFile(PREBUILT_WORKFLOW_BUNDLE, code);
  console.log(`wrote ${PREBUILT_WORKFLOW_BUNDLE} (${(code.length / 2 ** 20).toFixed(1)} MiB)`);
}

main().catch((err: unknown) => {
  console.error('could not bundle the workflows:', err);
  process.exit(1);
});
