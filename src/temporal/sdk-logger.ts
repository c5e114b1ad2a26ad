/**
 * The Temporal SDK's own log lines (worker state, activity failures, the workflow bundler)
 * through the service's logger, so the log is JSON lines throughout. Below warn they are
 * kept only at LOG_LEVEL=debug or trace: at info the bundler alone would print webpack's
 * module statistics at every start.
 */
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { Logger } from '../logger';

/** Errors under `err`, where pino's serializer keeps their type, message and stack on one line. */
function fields(meta: LogMetadata | undefined): Record<string, unknown> {
  if (!meta) return {};
  const { error, ...rest } = meta as Record<string, unknown>;
  return error instanceof Error ? { ...rest, err: error } : { ...rest, ...(error !== undefined ? { error } : {}) };
}

export function sdkLogger(logger: Logger): TemporalLogger {
  const level = logger.isLevelEnabled('debug') || !logger.isLevelEnabled('warn') ? logger.level : 'warn';
  const sdk = logger.child({ system: 'temporal-sdk' }, { level });
  const log = (level: LogLevel, message: string, meta?: LogMetadata): void => {
    const method = level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
    sdk[method](fields(meta), message);
  };
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}
