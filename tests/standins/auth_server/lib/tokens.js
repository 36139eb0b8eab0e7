'use strict';
// JWTs (HS256, jsonwebtoken). Access: {userId, email, organizationId, type:"access", iss, iat, exp}.
// Refresh: the same plus type:"refresh" and a jti, recorded in the store so it can be rotated and revoked.

const crypto = require('node:crypto');
const jwt = require('jsonwebtoken');

class TokenError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function createTokens(cfg, store) {
  const signOpts = { algorithm: 'HS256', issuer: cfg.jwtIssuer };

  function claims(user, type) {
    return { userId: user.id, email: user.email, organizationId: user.organizationId, type };
  }

  function signAccess(user, expiresIn = cfg.accessTokenTtl) {
    return jwt.sign(claims(user, 'access'), cfg.jwtSecret, { ...signOpts, expiresIn });
  }

  function signRefresh(user) {
    const jti = crypto.randomUUID();
    const token = jwt.sign(claims(user, 'refresh'), cfg.jwtSecret, {
      ...signOpts, expiresIn: cfg.refreshTokenTtl, jwtid: jti,
    });
    store.recordRefresh(jti, user.id, jwt.decode(token).exp);
    return token;
  }

  function issuePair(user) {
    return { accessToken: signAccess(user), refreshToken: signRefresh(user) };
  }

  // Verifies signature, issuer, expiry and type; returns the payload or throws TokenError.
  function verify(token, type) {
    let payload;
    try {
      payload = jwt.verify(token, cfg.jwtSecret, { algorithms: ['HS256'], issuer: cfg.jwtIssuer });
    } catch (err) {
      if (err.name === 'TokenExpiredError') throw new TokenError('TOKEN_EXPIRED', 'Token has expired');
      throw new TokenError('INVALID_TOKEN', 'Invalid token');
    }
    if (payload.type !== type) throw new TokenError('INVALID_TOKEN_TYPE', `Wrong token type (expected ${type})`);
    return payload;
  }

  return { signAccess, signRefresh, issuePair, verify };
}

module.exports = { createTokens, TokenError };
