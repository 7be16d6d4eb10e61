import { pino, type Logger, type LevelWithSilent } from 'pino';

/** The process's root logger: one JSON line per event to stderr. */
export function createLogger(level: LevelWithSilent = 'info', name = 'edgebridge'): Logger {
  return pino(
    {
      name,
      level,
      // Belt and braces: credentials never reach the log even if a caller passes them.
      redact: {
        paths: ['secrets', '*.secrets', 'password', '*.password', 'token', '*.token'],
        censor: '[redacted]',
      },
    },
    // Synchronous: an asynchronous write goes through the libuv threadpool, so a
    // starved pool would silence the log and a forced exit would lose its last lines.
    pino.destination({ dest: 2, sync: true }),
  );
}
