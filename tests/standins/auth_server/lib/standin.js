'use strict';
// Test-only machinery: the request log (memory ring + one stdout line per request), the fault injector
// and the /__standin control API. The control API and faults exist only with STANDIN_FAULT_CONTROL=1.

const http = require('node:http');
const crypto = require('node:crypto');
const express = require('express');
const { sendError } = require('./respond');
const { SHAPES } = require('./config');

const CONTROL_PREFIX = '/__standin';
const LOGGED_HEADERS = ['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-real-ip', 'user-agent'];
const MAX_STATS_PATHS = 1000;
const RATE_LIMIT_MESSAGE = 'Too many requests, please try again later.';
const NO_FAULTS = Object.freeze({
  active: false, latencyMs: 0, status: null, retryAfter: null, drop: false, dripIntervalMs: 0, paths: null,
  times: null,
});

const isControlPath = (path) => path === CONTROL_PREFIX || path.startsWith(`${CONTROL_PREFIX}/`);

// "Bearer eyJ..." -> "Bearer". Anything that does not look like "<scheme> <credentials>" is redacted whole,
// so a bare token sent without a scheme never reaches the log.
function authScheme(value) {
  if (!value) return undefined;
  const parts = String(value).trim().split(/\s+/);
  if (parts.length > 1 && /^[A-Za-z][A-Za-z0-9_-]{0,19}$/.test(parts[0])) return parts[0];
  return '[redacted]';
}

// ---------------------------------------------------------------------------------------------------------
// Request log
// ---------------------------------------------------------------------------------------------------------
class RequestLog {
  constructor(size) {
    this.size = size;
    this.entries = [];
    this.stats = new Map();
    this.total = 0;
  }

  add(entry) {
    this.entries.push(entry);
    if (this.entries.length > this.size) this.entries.splice(0, this.entries.length - this.size);
    this.total += 1;
    let key = entry.path;
    if (!this.stats.has(key) && this.stats.size >= MAX_STATS_PATHS) key = '(other)';
    const s = this.stats.get(key) || { count: 0, statuses: {} };
    s.count += 1;
    const st = entry.dropped ? 'dropped' : String(entry.status);
    s.statuses[st] = (s.statuses[st] || 0) + 1;
    this.stats.set(key, s);
  }

  clear() {
    this.entries = [];
    this.clearStats();
  }

  clearStats() {
    this.stats = new Map();
    this.total = 0;
  }

  statsJson() {
    return { total: this.total, paths: Object.fromEntries(this.stats) };
  }
}

// Logs one line per request to stdout (method, path without query string, status, duration) and records
// non-control requests in the ring buffer. Never logs bodies, query strings or credentials.
function requestLogger(log, { quiet = false } = {}) {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const path = (req.originalUrl || req.url).split('?')[0];
    let done = false;
    const finish = (dropped) => {
      if (done) return;
      done = true;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = dropped ? null : res.statusCode;
      if (!quiet) {
        process.stdout.write(`${new Date().toISOString()} ${req.method} ${path} ${dropped ? 'dropped' : status} ${ms.toFixed(1)}ms\n`);
      }
      if (isControlPath(path)) return;
      const headers = {};
      for (const h of LOGGED_HEADERS) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
      const scheme = authScheme(req.headers.authorization);
      if (scheme) headers.authorization = scheme;
      log.add({
        time: new Date().toISOString(),
        method: req.method,
        path,
        status,
        dropped,
        durationMs: Math.round(ms * 10) / 10,
        ip: req.ip,
        fault: Boolean(res.locals.standinFault),
        headers,
      });
    };
    res.on('finish', () => finish(false));
    res.on('close', () => finish(!res.writableFinished));
    next();
  };
}

// ---------------------------------------------------------------------------------------------------------
// Rate-limit headers for a forced 429 (same formats as express-rate-limit 7, remaining 0)
// ---------------------------------------------------------------------------------------------------------
function limiterName(limit, windowMs) {
  const s = windowMs / 1000;
  const m = s / 60;
  const h = m / 60;
  const d = h / 24;
  if (s < 60) return `${limit}-in-${s}sec`;
  if (m < 60) return `${limit}-in-${m}min`;
  if (h < 24) return `${limit}-in-${h}hr${h > 1 ? 's' : ''}`;
  return `${limit}-in-${d}day${d > 1 ? 's' : ''}`;
}

function setExhaustedRateLimitHeaders(req, res, cfg, resetSeconds) {
  const limit = cfg.rateLimitMax;
  const windowSeconds = Math.ceil(cfg.rateLimitWindowMs / 1000);
  if (cfg.rateLimitLegacyHeaders) {
    res.setHeader('X-RateLimit-Limit', String(limit));
    res.setHeader('X-RateLimit-Remaining', '0');
    res.setHeader('X-RateLimit-Reset', String(Math.ceil(Date.now() / 1000) + resetSeconds));
  }
  if (cfg.rateLimitHeaders === 'draft-6') {
    res.setHeader('RateLimit-Policy', `${limit};w=${windowSeconds}`);
    res.setHeader('RateLimit-Limit', String(limit));
    res.setHeader('RateLimit-Remaining', '0');
    res.setHeader('RateLimit-Reset', String(resetSeconds));
  } else if (cfg.rateLimitHeaders === 'draft-7') {
    res.setHeader('RateLimit-Policy', `${limit};w=${windowSeconds}`);
    res.setHeader('RateLimit', `limit=${limit}, remaining=0, reset=${resetSeconds}`);
  } else if (cfg.rateLimitHeaders === 'draft-8') {
    const name = limiterName(limit, cfg.rateLimitWindowMs);
    const pk = Buffer.from(crypto.createHash('sha256').update(String(req.ip)).digest('hex').slice(0, 12))
      .toString('base64');
    res.setHeader('RateLimit-Policy', `"${name}"; q=${limit}; w=${windowSeconds}; pk=:${pk}:`);
    res.setHeader('RateLimit', `"${name}"; r=0; t=${resetSeconds}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------------------
class FaultError extends Error {}

function parseFaults(body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new FaultError('body must be a JSON object');
  const known = ['latencyMs', 'status', 'retryAfter', 'drop', 'dripIntervalMs', 'paths', 'times'];
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length) throw new FaultError(`unknown fault keys: ${unknown.join(', ')} (known: ${known.join(', ')})`);
  const f = { ...NO_FAULTS };
  const num = (k, min, max) => {
    const v = body[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      throw new FaultError(`${k} must be a number between ${min} and ${max}`);
    }
    return v;
  };
  f.latencyMs = num('latencyMs', 0, 600000) || 0;
  f.dripIntervalMs = num('dripIntervalMs', 0, 60000) || 0;
  f.status = num('status', 100, 599);
  if (f.status !== null && !Number.isInteger(f.status)) throw new FaultError('status must be an integer');
  const ra = body.retryAfter;
  if (ra !== undefined && ra !== null) {
    if (typeof ra === 'number' && Number.isInteger(ra) && ra >= 0) f.retryAfter = ra;
    else if (typeof ra === 'string' && ra.trim()) f.retryAfter = ra.trim();
    else throw new FaultError('retryAfter must be a non-negative integer (seconds) or an HTTP-date string');
  }
  if (body.drop !== undefined && body.drop !== null && typeof body.drop !== 'boolean') {
    throw new FaultError('drop must be a boolean');
  }
  f.drop = Boolean(body.drop);
  if (body.paths !== undefined && body.paths !== null) {
    if (!Array.isArray(body.paths) || !body.paths.every((p) => typeof p === 'string' && p.startsWith('/'))) {
      throw new FaultError('paths must be a list of path prefixes starting with "/"');
    }
    f.paths = body.paths.length ? [...body.paths] : null;
  }
  f.times = num('times', 1, 1e9);
  if (f.times !== null && !Number.isInteger(f.times)) throw new FaultError('times must be an integer');
  f.active = Boolean(f.latencyMs || f.dripIntervalMs || f.status !== null || f.drop);
  return f;
}

// Buffers the response body, flushes the headers, then writes the body one byte every `intervalMs`.
function installDrip(req, res, intervalMs) {
  const origWrite = res.write.bind(res);
  const origEnd = res.end.bind(res);
  const chunks = [];
  const toBuf = (chunk, enc) => {
    if (chunk === undefined || chunk === null) return null;
    if (Buffer.isBuffer(chunk)) return chunk;
    if (chunk instanceof Uint8Array) return Buffer.from(chunk);
    return Buffer.from(String(chunk), typeof enc === 'string' ? enc : 'utf8');
  };
  res.write = (chunk, enc, cb) => {
    const b = toBuf(chunk, enc);
    if (b) chunks.push(b);
    const callback = typeof enc === 'function' ? enc : cb;
    if (typeof callback === 'function') process.nextTick(callback);
    return true;
  };
  res.end = (chunk, enc, cb) => {
    let callback = cb;
    let data = chunk;
    let encoding = enc;
    if (typeof data === 'function') { callback = data; data = undefined; encoding = undefined; }
    if (typeof encoding === 'function') { callback = encoding; encoding = undefined; }
    const b = toBuf(data, encoding);
    if (b) chunks.push(b);
    const body = req.method === 'HEAD' ? Buffer.alloc(0) : Buffer.concat(chunks);
    res.write = origWrite;
    res.end = origEnd;
    if (!res.headersSent && !res.hasHeader('content-length')) res.setHeader('Content-Length', String(body.length));
    res.flushHeaders();
    let i = 0;
    const step = () => {
      if (res.destroyed || !res.socket || res.socket.destroyed) return;
      if (i >= body.length) {
        origEnd(callback);
        return;
      }
      origWrite(body.subarray(i, i + 1));
      i += 1;
      setTimeout(step, intervalMs);
    };
    setTimeout(step, intervalMs);
    return res;
  };
}

function faultMiddleware(state, cfg) {
  const applies = (f, path) => f.active && !isControlPath(path)
    && (!f.paths || f.paths.some((p) => path.startsWith(p)));

  return (req, res, next) => {
    const f = state.faults;
    if (!applies(f, req.path)) return next();
    if (f.times !== null) {
      f.times -= 1;
      if (f.times <= 0) state.faults = { ...NO_FAULTS };
    }
    res.locals.standinFault = true;
    if (f.dripIntervalMs > 0) installDrip(req, res, f.dripIntervalMs);
    const act = () => {
      if (req.socket.destroyed) return;
      if (f.drop) {
        req.socket.destroy();
        return;
      }
      if (f.status === null) {
        next();
        return;
      }
      if (f.retryAfter !== null) res.setHeader('Retry-After', String(f.retryAfter));
      if (f.status === 429) {
        const reset = typeof f.retryAfter === 'number' ? f.retryAfter : Math.ceil(cfg.rateLimitWindowMs / 1000);
        setExhaustedRateLimitHeaders(req, res, cfg, reset);
        sendError(res, 429, 'RATE_LIMITED', RATE_LIMIT_MESSAGE);
      } else if (f.status === 204 || f.status === 304 || f.status < 200) {
        res.status(f.status).end();
      } else {
        res.status(f.status).json({
          success: f.status < 400, message: http.STATUS_CODES[f.status] || 'Forced status', code: 'STANDIN_FAULT',
        });
      }
    };
    if (f.latencyMs > 0) setTimeout(act, f.latencyMs);
    else act();
    return undefined;
  };
}

// ---------------------------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------------------------
function createControlRouter({ cfg, state, store, tokens, runtime, log, limiterStore }) {
  const r = express.Router();
  r.use(express.json());

  r.get('/', (req, res) => {
    res.json({
      routes: [
        'GET|PUT|DELETE /__standin/faults', 'GET|DELETE /__standin/requests', 'GET|DELETE /__standin/stats',
        'POST /__standin/rate-limit/reset', 'GET|PUT /__standin/config', 'GET|DELETE /__standin/mailbox',
        'POST /__standin/tokens',
      ],
    });
  });

  r.get('/faults', (req, res) => res.json(state.faults));
  r.put('/faults', (req, res) => {
    try {
      state.faults = parseFaults(req.body);
    } catch (err) {
      if (err instanceof FaultError) return sendError(res, 400, 'VALIDATION_ERROR', err.message);
      throw err;
    }
    return res.json(state.faults);
  });
  r.delete('/faults', (req, res) => {
    state.faults = { ...NO_FAULTS };
    res.json(state.faults);
  });

  r.get('/requests', (req, res) => res.json({ count: log.entries.length, requests: log.entries }));
  r.delete('/requests', (req, res) => {
    log.clear();
    res.json({ cleared: true });
  });
  r.get('/stats', (req, res) => res.json(log.statsJson()));
  r.delete('/stats', (req, res) => {
    log.clearStats();
    res.json({ cleared: true });
  });

  r.post('/rate-limit/reset', async (req, res, next) => {
    try {
      await limiterStore.resetAll();
      res.json({ reset: true });
    } catch (err) {
      next(err);
    }
  });

  const configJson = () => ({
    responseShape: runtime.responseShape,
    jwtIssuer: cfg.jwtIssuer,
    accessTokenTtl: cfg.accessTokenTtl,
    refreshTokenTtl: cfg.refreshTokenTtl,
    trustProxy: cfg.trustProxy,
    rateLimit: {
      max: cfg.rateLimitMax, windowMs: cfg.rateLimitWindowMs, headers: cfg.rateLimitHeaders,
      legacyHeaders: cfg.rateLimitLegacyHeaders,
    },
  });
  r.get('/config', (req, res) => res.json(configJson()));
  r.put('/config', (req, res) => {
    const body = req.body || {};
    const unknown = Object.keys(body).filter((k) => k !== 'responseShape');
    if (unknown.length) return sendError(res, 400, 'VALIDATION_ERROR', `only responseShape can be changed, got ${unknown.join(', ')}`);
    if (body.responseShape !== undefined) {
      if (!SHAPES.includes(body.responseShape)) {
        return sendError(res, 400, 'VALIDATION_ERROR', `responseShape must be one of ${SHAPES.join(', ')}`);
      }
      runtime.responseShape = body.responseShape;
    }
    return res.json(configJson());
  });

  r.get('/mailbox', (req, res) => {
    const email = typeof req.query.email === 'string' ? req.query.email.trim().toLowerCase() : null;
    const type = typeof req.query.type === 'string' ? req.query.type : null;
    const messages = store.mailbox.filter((m) => (!email || m.email.toLowerCase() === email) && (!type || m.type === type));
    res.json({ count: messages.length, messages });
  });
  r.delete('/mailbox', (req, res) => {
    store.mailbox.length = 0;
    res.json({ cleared: true });
  });

  r.post('/tokens', (req, res) => {
    const { email, expiresIn } = req.body || {};
    const user = store.findByEmail(email);
    if (!user) return sendError(res, 404, 'USER_NOT_FOUND', 'No user with that email');
    let ttl = cfg.accessTokenTtl;
    if (expiresIn !== undefined && expiresIn !== null) {
      if (typeof expiresIn === 'number' && Number.isInteger(expiresIn)) ttl = expiresIn;
      else if (typeof expiresIn === 'string' && /^-?\d+(\.\d+)?\s*(ms|s|m|h|d|w|y)$/i.test(expiresIn.trim())) ttl = expiresIn.trim();
      else if (typeof expiresIn === 'string' && /^-?\d+$/.test(expiresIn.trim())) ttl = Number(expiresIn.trim());
      else return sendError(res, 400, 'VALIDATION_ERROR', 'expiresIn must be integer seconds or a duration like "-10s", "1h"');
    }
    const accessToken = tokens.signAccess(user, ttl);
    const { exp } = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString('utf8'));
    return res.json({ accessToken, userId: user.id, expiresAt: new Date(exp * 1000).toISOString() });
  });

  r.use((req, res) => sendError(res, 404, 'NOT_FOUND', `No control route ${req.method} ${req.baseUrl}${req.path}`));
  return r;
}

module.exports = {
  CONTROL_PREFIX, NO_FAULTS, RATE_LIMIT_MESSAGE, RequestLog, requestLogger, faultMiddleware, createControlRouter,
  isControlPath, authScheme,
};
