// Quiet logs in tests unless LOG_LEVEL is set explicitly.
process.env.LOG_LEVEL ??= 'warn';
