'use strict';
// /api/auth/* : the endpoints of the real auth server that our clients use (R1 in docs/architecture.md).

const express = require('express');
const { sendError, sendOk } = require('./respond');
const { TokenError } = require('./tokens');

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MIN_PASSWORD = 8;

// Express 4 does not catch rejected promises from handlers: forward them to the error handler.
const wrap = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);

function createAuthRouter({ store, tokens, runtime }) {
  const router = express.Router();
  const shape = () => runtime.responseShape;

  function publicUser(user) {
    const out = {
      id: user.id,
      email: user.email,
      firstName: user.firstName,
      lastName: user.lastName,
      emailVerified: user.emailVerified,
      role: user.role,
    };
    if (shape() === 'bare') out.organization = store.organizationOf(user);
    return out;
  }

  function sendTokens(res, status, user, pair) {
    sendOk(res, shape(), status, { ...pair, user: publicUser(user) });
  }

  function badRequest(res, message) {
    sendError(res, 400, 'VALIDATION_ERROR', message);
  }

  // Authorization: Bearer <access token> -> user, or sends 401 and returns null.
  function authenticate(req, res) {
    const header = req.get('authorization') || '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) {
      sendError(res, 401, 'NO_TOKEN', 'Authentication required');
      return null;
    }
    let payload;
    try {
      payload = tokens.verify(m[1], 'access');
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      sendError(res, 401, err.code, err.message);
      return null;
    }
    const user = store.getUser(payload.userId);
    if (!user) {
      sendError(res, 401, 'USER_NOT_FOUND', 'User no longer exists');
      return null;
    }
    return user;
  }

  router.post('/signup', wrap(async (req, res) => {
    const { email, password, firstName, lastName, organizationName } = req.body || {};
    if (typeof email !== 'string' || !EMAIL_RE.test(email.trim())) return badRequest(res, 'A valid email is required');
    if (typeof password !== 'string' || password.length < MIN_PASSWORD) {
      return badRequest(res, `Password must be at least ${MIN_PASSWORD} characters`);
    }
    if (typeof firstName !== 'string' || !firstName.trim() || typeof lastName !== 'string' || !lastName.trim()) {
      return badRequest(res, 'firstName and lastName are required');
    }
    if (store.findByEmail(email)) return sendError(res, 409, 'EMAIL_EXISTS', 'An account with this email already exists');
    let user;
    try {
      user = await store.addUser({
        email, password, firstName: firstName.trim(), lastName: lastName.trim(), emailVerified: false,
        organization: typeof organizationName === 'string' && organizationName.trim()
          ? organizationName.trim() : `${firstName.trim()} ${lastName.trim()}'s Organization`,
      });
    } catch (err) {
      if (err.code === 'EMAIL_EXISTS') return sendError(res, 409, 'EMAIL_EXISTS', 'An account with this email already exists');
      throw err;
    }
    store.issueOneTime('verify-email', user);
    return sendOk(res, shape(), 201, { user: publicUser(user) }, 'Account created; check your email to verify it');
  }));

  router.post('/login', wrap(async (req, res) => {
    const { email, password } = req.body || {};
    if (typeof email !== 'string' || typeof password !== 'string' || !email || !password) {
      return badRequest(res, 'email and password are required');
    }
    const user = await store.authenticate(email, password);
    if (!user) return sendError(res, 401, 'INVALID_CREDENTIALS', 'Invalid email or password');
    return sendTokens(res, 200, user, tokens.issuePair(user));
  }));

  router.post('/refresh', (req, res) => {
    const { refreshToken } = req.body || {};
    if (typeof refreshToken !== 'string' || !refreshToken) return badRequest(res, 'refreshToken is required');
    let payload;
    try {
      payload = tokens.verify(refreshToken, 'refresh');
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      return sendError(res, 401, err.code, err.message);
    }
    const rec = store.refreshRecord(payload.jti);
    if (!rec || rec.userId !== payload.userId) return sendError(res, 401, 'INVALID_TOKEN', 'Unknown refresh token');
    if (rec.revoked) return sendError(res, 401, 'TOKEN_REVOKED', 'Refresh token has been revoked');
    const user = store.getUser(payload.userId);
    if (!user) return sendError(res, 401, 'USER_NOT_FOUND', 'User no longer exists');
    store.revokeRefresh(payload.jti); // rotation: each refresh token works once
    return sendTokens(res, 200, user, tokens.issuePair(user));
  });

  // Revokes the refresh token in the body when it is one of ours; answers 200 either way.
  router.post('/logout', (req, res) => {
    const { refreshToken } = req.body || {};
    if (typeof refreshToken === 'string' && refreshToken) {
      try {
        const payload = tokens.verify(refreshToken, 'refresh');
        store.revokeRefresh(payload.jti);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
      }
    }
    sendOk(res, shape(), 200, null, 'Logged out');
  });

  router.get('/me', (req, res) => {
    const user = authenticate(req, res);
    if (!user) return;
    if (!user.emailVerified) {
      sendError(res, 403, 'EMAIL_NOT_VERIFIED', 'Please verify your email address');
      return;
    }
    const organization = store.organizationOf(user);
    if (shape() === 'bare') {
      sendOk(res, 'bare', 200, { user: { ...publicUser(user), organization } });
    } else {
      sendOk(res, 'wrapped', 200, { user: publicUser(user), organization, licenses: user.licenses });
    }
  });

  router.post('/verify-email', (req, res) => {
    const user = store.consumeOneTime('verify-email', (req.body || {}).token);
    if (!user) return sendError(res, 400, 'INVALID_TOKEN', 'Invalid or expired verification token');
    user.emailVerified = true;
    return sendOk(res, shape(), 200, null, 'Email verified');
  });

  router.post('/forgot-password', (req, res) => {
    const user = store.findByEmail((req.body || {}).email);
    if (user) store.issueOneTime('reset-password', user);
    sendOk(res, shape(), 200, null, 'If an account exists for that email, a reset link has been sent');
  });

  router.post('/reset-password', wrap(async (req, res) => {
    const { token, password } = req.body || {};
    if (typeof password !== 'string' || password.length < MIN_PASSWORD) {
      return badRequest(res, `Password must be at least ${MIN_PASSWORD} characters`);
    }
    const user = store.consumeOneTime('reset-password', token);
    if (!user) return sendError(res, 400, 'INVALID_TOKEN', 'Invalid or expired reset token');
    await store.setPassword(user, password);
    store.revokeAllRefresh(user.id);
    return sendOk(res, shape(), 200, null, 'Password has been reset');
  }));

  return router;
}

module.exports = { createAuthRouter };
