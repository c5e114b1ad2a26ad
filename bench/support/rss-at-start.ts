/** Imported first by worker-child.ts: the process's RSS before any of its own imports (node + ts-node + TypeScript). */
export const rssAtStart = process.memoryUsage.rss();
