#!/usr/bin/env node
'use strict';
// Rozitech auth server stand-in (TEST ONLY). Configuration: environment variables, see README.md.
// Exit codes: 0 after a clean SIGTERM/SIGINT shutdown, 1 when the shutdown timed out, 2 on bad configuration,
// 3 when the port cannot be bound.

const config = require('./lib/config');
const { createApp } = require('./lib/app');

async function main() {
  let cfg;
  try {
    cfg = config.load(process.env);
  } catch (err) {
    if (err instanceof config.ConfigError) {
      process.stderr.write(`auth-standin: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (cfg.usingDefaultSecret) {
    process.stdout.write('auth-standin: JWT_SECRET not set, using the built-in development secret\n');
  }

  const { app, runtime } = await createApp(cfg);
  const server = app.listen(cfg.port, cfg.host);
  server.on('error', (err) => {
    process.stderr.write(`auth-standin: cannot listen on ${cfg.host}:${cfg.port}: ${err.message}\n`);
    process.exit(3);
  });
  server.on('listening', () => {
    const addr = server.address();
    process.stdout.write(
      `auth-standin: listening on ${addr.address}:${addr.port} (shape=${cfg.responseShape}, `
      + `rate limit ${cfg.rateLimitMax}/${cfg.rateLimitWindowMs}ms ${cfg.rateLimitHeaders}`
      + `${cfg.rateLimitLegacyHeaders ? '+legacy' : ''}, trust proxy=${JSON.stringify(cfg.trustProxy)}, `
      + `fault control ${cfg.faultControl ? 'ON' : 'off'})\n`,
    );
  });

  let stopping = false;
  const shutdown = (signal) => {
    if (stopping) return;
    stopping = true;
    runtime.shuttingDown = true;
    process.stdout.write(`auth-standin: ${signal} received, finishing in-flight requests\n`);
    const force = setTimeout(() => {
      process.stderr.write('auth-standin: shutdown timed out, closing remaining connections\n');
      if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
      process.exit(1);
    }, cfg.shutdownTimeoutMs);
    force.unref();
    // Node 18 keeps idle keep-alive sockets open after close(); close them now and as requests finish.
    const idle = setInterval(() => {
      if (typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
    }, 100);
    idle.unref();
    server.close(() => {
      process.stdout.write('auth-standin: stopped\n');
      process.exit(0);
    });
    if (typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`auth-standin: fatal: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
