'use strict';
// Assembles the Express app. Middleware order matters:
//   request log -> [/__standin control API] -> faults -> rate limit (/api/) -> JSON body -> routes -> 404/errors
// so control routes are never rate limited nor faulted, and faults hit before the limiter counts a request.

const express = require('express');
const { rateLimit, MemoryStore } = require('express-rate-limit');
const { Store } = require('./store');
const { createTokens } = require('./tokens');
const { createAuthRouter } = require('./auth-routes');
const { sendError } = require('./respond');
const standin = require('./standin');

async function createApp(cfg, { quiet = false } = {}) {
  const store = new Store();
  await store.seed(cfg.seedUsers);
  const tokens = createTokens(cfg, store);
  const runtime = { responseShape: cfg.responseShape, shuttingDown: false };
  const state = { faults: { ...standin.NO_FAULTS } };
  const log = new standin.RequestLog(cfg.requestLogSize);
  const limiterStore = new MemoryStore();

  const app = express();
  app.set('trust proxy', cfg.trustProxy);
  app.use(standin.requestLogger(log, { quiet }));
  app.use((req, res, next) => {
    if (runtime.shuttingDown) res.setHeader('Connection', 'close');
    next();
  });

  if (cfg.faultControl) {
    app.use(standin.CONTROL_PREFIX, standin.createControlRouter({
      cfg, state, store, tokens, runtime, log, limiterStore,
    }));
    app.use(standin.faultMiddleware(state, cfg));
  }

  // Same limiter as the real server: per client IP (req.ip, which depends on `trust proxy`) on /api/.
  app.use('/api/', rateLimit({
    windowMs: cfg.rateLimitWindowMs,
    limit: cfg.rateLimitMax,
    standardHeaders: cfg.rateLimitHeaders,
    legacyHeaders: cfg.rateLimitLegacyHeaders,
    store: limiterStore,
    handler(req, res, next, options) {
      // express-rate-limit 7 sets Retry-After only when some rate-limit header family is on; make sure.
      if (!res.hasHeader('Retry-After')) {
        const reset = req.rateLimit && req.rateLimit.resetTime;
        const seconds = reset ? Math.max(0, Math.ceil((reset.getTime() - Date.now()) / 1000))
          : Math.ceil(cfg.rateLimitWindowMs / 1000);
        res.setHeader('Retry-After', String(seconds));
      }
      sendError(res, options.statusCode, 'RATE_LIMITED', standin.RATE_LIMIT_MESSAGE);
    },
  }));

  app.use(express.json({ limit: '100kb' }));

  app.get('/health', (req, res) => {
    res.json({
      status: 'ok',
      service: 'rozitech-auth',
      uptime: Math.round(process.uptime() * 1000) / 1000,
      timestamp: new Date().toISOString(),
    });
  });

  app.use('/api/auth', createAuthRouter({ store, tokens, runtime }));

  app.use((req, res) => sendError(res, 404, 'NOT_FOUND', `Route ${req.method} ${req.path} not found`));

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (err.type === 'entity.parse.failed') return sendError(res, 400, 'INVALID_JSON', 'Request body is not valid JSON');
    if (err.type === 'entity.too.large') return sendError(res, 413, 'PAYLOAD_TOO_LARGE', 'Request body too large');
    if (err.status && err.status >= 400 && err.status < 500) {
      return sendError(res, err.status, 'BAD_REQUEST', err.expose ? err.message : 'Bad request');
    }
    process.stderr.write(`unhandled error on ${req.method} ${req.path}: ${err && err.stack ? err.stack : err}\n`);
    if (res.headersSent) return res.destroy();
    return sendError(res, 500, 'INTERNAL_ERROR', 'Internal server error');
  });

  return { app, store, tokens, runtime, state, log, limiterStore };
}

module.exports = { createApp };
