'use strict';
// In-memory state: users, organizations, refresh-token records, one-time tokens (verify/reset) and the
// "mailbox" those one-time tokens are delivered to. Everything is lost on restart, by design.

const crypto = require('node:crypto');
const { promisify } = require('node:util');

const scrypt = promisify(crypto.scrypt);
const KEY_LEN = 32;
const VERIFY_TTL_MS = 24 * 3600 * 1000;
const RESET_TTL_MS = 3600 * 1000;
const MAILBOX_SIZE = 500;

// A stable UUID (v5-shaped) derived from a name, so seeded users and orgs keep their ids across restarts
// and tokens minted before a restart still resolve to the same user.
function stableUuid(namespace, name) {
  const h = crypto.createHash('sha256').update(`${namespace}:${name}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

function slugify(name) {
  return String(name).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'org';
}

async function hashPassword(password) {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt, KEY_LEN);
  return { salt, key };
}

async function checkPassword(password, hash) {
  const key = await scrypt(password, hash.salt, KEY_LEN);
  return crypto.timingSafeEqual(key, hash.key);
}

const DUMMY_HASH_PROMISE = hashPassword('dummy-password-for-timing');

function defaultLicenses() {
  return {
    'saas-admin': { active: true, plan: 'standard', seats: 5, expiresAt: null },
  };
}

class Store {
  constructor() {
    this.users = new Map(); // id -> user
    this.byEmail = new Map(); // lower-case email -> id
    this.orgs = new Map(); // id -> org
    this.refresh = new Map(); // jti -> {userId, revoked, expiresAt}
    this.oneTime = new Map(); // token -> {type, userId, expiresAt}
    this.mailbox = [];
  }

  // organization: a name, or {id?, name, slug?}, or null/undefined (none).
  ensureOrg(organization) {
    if (organization === null || organization === undefined || organization === '') return null;
    const spec = typeof organization === 'string' ? { name: organization } : organization;
    if (!spec.name) throw new Error('organization needs a "name"');
    const slug = spec.slug || slugify(spec.name);
    const id = spec.id ? String(spec.id) : stableUuid('org', slug);
    if (!this.orgs.has(id)) this.orgs.set(id, { id, name: String(spec.name), slug });
    return this.orgs.get(id);
  }

  findByEmail(email) {
    if (typeof email !== 'string') return null;
    const id = this.byEmail.get(email.trim().toLowerCase());
    return id ? this.users.get(id) : null;
  }

  getUser(id) {
    return this.users.get(id) || null;
  }

  async addUser({ id, email, password, firstName = '', lastName = '', emailVerified = false, role = 'user',
    organization = null, licenses }) {
    const clean = String(email).trim();
    const lower = clean.toLowerCase();
    if (this.byEmail.has(lower)) {
      const err = new Error('email already registered');
      err.code = 'EMAIL_EXISTS';
      throw err;
    }
    const org = this.ensureOrg(organization);
    const user = {
      id: id ? String(id) : crypto.randomUUID(),
      email: clean,
      firstName: String(firstName),
      lastName: String(lastName),
      emailVerified: Boolean(emailVerified),
      role: String(role),
      organizationId: org ? org.id : null,
      licenses: licenses === undefined ? defaultLicenses() : licenses,
      passwordHash: await hashPassword(password),
      createdAt: new Date().toISOString(),
    };
    this.users.set(user.id, user);
    this.byEmail.set(lower, user.id);
    return user;
  }

  async seed(users) {
    for (const u of users) {
      const user = await this.addUser({ ...u, id: u.id || stableUuid('user', u.email.trim().toLowerCase()) });
      if (!user.emailVerified) this.issueOneTime('verify-email', user);
    }
  }

  // Returns the user when email + password match, else null; spends the same time either way.
  async authenticate(email, password) {
    const user = this.findByEmail(email);
    if (!user) {
      await checkPassword(String(password), await DUMMY_HASH_PROMISE);
      return null;
    }
    return (await checkPassword(String(password), user.passwordHash)) ? user : null;
  }

  async setPassword(user, password) {
    user.passwordHash = await hashPassword(password);
  }

  organizationOf(user) {
    return user.organizationId ? this.orgs.get(user.organizationId) || null : null;
  }

  // --- refresh tokens (by jti) ---
  recordRefresh(jti, userId, expSeconds) {
    this.refresh.set(jti, { userId, revoked: false, expiresAt: expSeconds * 1000 });
    this.pruneRefresh();
  }

  refreshRecord(jti) {
    return this.refresh.get(jti) || null;
  }

  revokeRefresh(jti) {
    const rec = this.refresh.get(jti);
    if (rec) rec.revoked = true;
    return Boolean(rec);
  }

  revokeAllRefresh(userId) {
    for (const rec of this.refresh.values()) if (rec.userId === userId) rec.revoked = true;
  }

  pruneRefresh() {
    if (this.refresh.size < 10000) return;
    const now = Date.now();
    for (const [jti, rec] of this.refresh) if (rec.expiresAt < now) this.refresh.delete(jti);
  }

  // --- one-time tokens, delivered to the mailbox ---
  issueOneTime(type, user) {
    const token = crypto.randomBytes(32).toString('hex');
    const ttlMs = type === 'verify-email' ? VERIFY_TTL_MS : RESET_TTL_MS;
    const expiresAt = Date.now() + ttlMs;
    this.oneTime.set(token, { type, userId: user.id, expiresAt });
    this.mailbox.push({
      type,
      email: user.email,
      userId: user.id,
      token,
      createdAt: new Date().toISOString(),
      expiresAt: new Date(expiresAt).toISOString(),
    });
    if (this.mailbox.length > MAILBOX_SIZE) this.mailbox.splice(0, this.mailbox.length - MAILBOX_SIZE);
    return token;
  }

  // Consumes the token; returns the user or null (unknown, wrong type, used or expired).
  consumeOneTime(type, token) {
    if (typeof token !== 'string') return null;
    const rec = this.oneTime.get(token);
    if (!rec || rec.type !== type) return null;
    this.oneTime.delete(token);
    if (rec.expiresAt < Date.now()) return null;
    return this.getUser(rec.userId);
  }
}

module.exports = { Store, stableUuid };
