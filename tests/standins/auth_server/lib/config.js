'use strict';
// Configuration of the stand-in, read once from environment variables (see README.md for the table).
// Every value is validated here so a typo fails at start-up with a clear message, not at the first request.

const DEFAULT_JWT_SECRET = 'rozitech-standin-dev-secret-not-for-production';
const HEADER_DRAFTS = ['draft-6', 'draft-7', 'draft-8'];
const SHAPES = ['wrapped', 'bare'];

const DEFAULT_SEED_USERS = [
  {
    email: 'demo@rozitech.test',
    password: 'Demo-Passw0rd!',
    firstName: 'Demo',
    lastName: 'User',
    emailVerified: true,
    organization: 'Rozitech Demo',
  },
  {
    email: 'unverified@rozitech.test',
    password: 'Demo-Passw0rd!',
    firstName: 'Unverified',
    lastName: 'User',
    emailVerified: false,
    organization: 'Rozitech Demo',
  },
];

class ConfigError extends Error {}

function str(env, name, dflt) {
  const v = env[name];
  return v === undefined || v === '' ? dflt : v;
}

function int(env, name, dflt, min, max) {
  const raw = str(env, name, undefined);
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env, name, dflt) {
  const raw = str(env, name, undefined);
  if (raw === undefined) return dflt;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name} must be a boolean (1/0, true/false), got ${JSON.stringify(raw)}`);
}

function oneOf(env, name, dflt, allowed) {
  const v = str(env, name, dflt).trim().toLowerCase();
  if (!allowed.includes(v)) throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

// A TTL for jsonwebtoken: a bare number means seconds (jsonwebtoken would read a numeric *string* as ms).
function ttl(env, name, dflt) {
  const raw = str(env, name, dflt).trim();
  if (/^-?\d+$/.test(raw)) return Number(raw);
  if (!/^-?\d+(\.\d+)?\s*(ms|s|m|h|d|w|y)$/i.test(raw)) {
    throw new ConfigError(`${name} must be seconds or a duration like 15m / 7d, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

// Express `trust proxy`: off by default. Numbers are hop counts; anything else is passed through
// (e.g. "loopback", "10.0.0.0/8, loopback"), see https://expressjs.com/en/guide/behind-proxies.html
function trustProxy(env) {
  const raw = str(env, 'TRUST_PROXY', '').trim();
  if (raw === '' || ['0', 'false', 'off', 'no'].includes(raw.toLowerCase())) return false;
  if (raw.toLowerCase() === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
}

function seedUsers(env) {
  const raw = str(env, 'STANDIN_SEED_USERS', undefined);
  if (raw === undefined) return DEFAULT_SEED_USERS;
  let parsed;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`STANDIN_SEED_USERS is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(parsed)) throw new ConfigError('STANDIN_SEED_USERS must be a JSON list of users');
  parsed.forEach((u, i) => {
    if (!u || typeof u.email !== 'string' || typeof u.password !== 'string') {
      throw new ConfigError(`STANDIN_SEED_USERS[${i}] needs string "email" and "password"`);
    }
  });
  return parsed;
}

function load(env = process.env) {
  const cfg = {
    port: int(env, 'PORT', 4000, 0, 65535),
    host: str(env, 'HOST', '0.0.0.0'),
    jwtSecret: str(env, 'JWT_SECRET', DEFAULT_JWT_SECRET),
    jwtIssuer: str(env, 'JWT_ISSUER', 'rozitech-auth'),
    accessTokenTtl: ttl(env, 'ACCESS_TOKEN_TTL', '15m'),
    refreshTokenTtl: ttl(env, 'REFRESH_TOKEN_TTL', '7d'),
    trustProxy: trustProxy(env),
    responseShape: oneOf(env, 'STANDIN_RESPONSE_SHAPE', 'wrapped', SHAPES),
    seedUsers: seedUsers(env),
    rateLimitMax: int(env, 'RATE_LIMIT_MAX', 150, 1, 1e9),
    rateLimitWindowMs: int(env, 'RATE_LIMIT_WINDOW_MS', 900000, 1000, 2 ** 31 - 1),
    rateLimitHeaders: oneOf(env, 'RATE_LIMIT_HEADERS', 'draft-6', HEADER_DRAFTS),
    rateLimitLegacyHeaders: bool(env, 'RATE_LIMIT_LEGACY_HEADERS', true),
    faultControl: bool(env, 'STANDIN_FAULT_CONTROL', false),
    requestLogSize: int(env, 'STANDIN_REQUEST_LOG_SIZE', 500, 1, 100000),
    shutdownTimeoutMs: int(env, 'STANDIN_SHUTDOWN_TIMEOUT_MS', 10000, 0, 600000),
  };
  cfg.usingDefaultSecret = cfg.jwtSecret === DEFAULT_JWT_SECRET;
  return cfg;
}

module.exports = { load, ConfigError, SHAPES, HEADER_DRAFTS, DEFAULT_SEED_USERS };
