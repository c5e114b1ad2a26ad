/** Imported first by worker-child.ts: the process's RSS before any of its own imports. */
export const rssAtStart = process.memoryUsage.rss();
