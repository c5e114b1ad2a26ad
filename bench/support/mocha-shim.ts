/**
 * test/support/kube.ts and test/support/temporal.ts register mocha root `after` hooks when
 * they are loaded. Benchmarks run outside mocha, so this module (imported before them)
 * provides a global `after` that only collects the hooks; `runAfterHooks` runs them when
 * the benchmark is done, which stops the apiserver, etcd and the Temporal dev server.
 */
type Hook = (this: { timeout(ms: number): void }) => unknown;

const hooks: Hook[] = [];
const global = globalThis as unknown as { after?: (hook: Hook) => void };
if (typeof global.after !== 'function') {
  global.after = (hook: Hook) => {
    hooks.push(hook);
  };
}

export async function runAfterHooks(): Promise<void> {
  for (const hook of hooks.splice(0)) {
    try {
      await hook.call({ timeout: () => undefined });
    } catch (err) {
      console.error('  cleanup failed:', err);
    }
  }
}
