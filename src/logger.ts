/**
 * One structured (JSON) logger for the whole service. Secrets are redacted by key name so
 * a token passed in an object never reaches the log, whoever logs it.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'devenv-scheduler' },
    redact: {
      paths: ['*.token', '*.botToken', '*.signingSecret', '*.password', '*.secretAccessKey', '*.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
  });
}
