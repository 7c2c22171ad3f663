// bun test preload: quiet logs unless FLA_LOG is set.
process.env.FLA_LOG ??= 'warn';
